"""The one config dataclass for every model: saved as config.json beside the weights."""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from typing import Literal


class JsonConfig:
    """config.json <-> a config dataclass (ModelConfig, ClassifierConfig); unknown keys are refused."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, d: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        return cls(**d)


@dataclass
class ModelConfig(JsonConfig):
    """Architecture of an autoencoder. AE vs VAE is the `bottleneck` field, nothing else."""

    family: Literal["conv", "mlp"] = field(default="conv", metadata={"help": "encoder/decoder backbone"})
    bottleneck: Literal["ae", "vae"] = field(
        default="vae", metadata={"help": "ae: deterministic code; vae: diagonal Gaussian posterior"}
    )
    latent_dim: int = field(default=16, metadata={"help": "number of latent dimensions"})
    likelihood: Literal["bernoulli", "gaussian"] = field(
        default="bernoulli", metadata={"help": "decoder likelihood p(x|z): bernoulli (logits) or gaussian"}
    )
    gaussian_std: float = field(default=0.1, metadata={"help": "fixed std of the gaussian likelihood"})
    channels: int = field(default=32, metadata={"help": "conv: width of the first conv layer (doubles once)"})
    hidden_dim: int = field(default=512, metadata={"help": "width of the fully connected hidden layers"})
    # Absent from config.json files written before it existed: they load with this default (their architecture).
    hidden_layers: int = field(default=2, metadata={"help": "mlp: hidden layers per side (encoder and decoder)"})
    # Absent from older config.json files too: they were all ELU.
    activation: Literal["elu", "relu"] = field(default="elu", metadata={"help": "hidden-layer nonlinearity"})
    image_size: int = field(default=28, metadata={"help": "images are image_size x image_size"})
    image_channels: int = field(default=1, metadata={"help": "1 for grayscale"})
    # The VAE's prior p(z) (models/prior.py); absent from older config.json files, which were all standard.
    prior: Literal["standard", "mog", "vamp"] = field(
        default="standard", metadata={"help": "standard: N(0, I); mog: learned mixture of Gaussians; vamp: VampPrior"}
    )
    prior_components: int = field(default=10, metadata={"help": "mog: mixture components; vamp: pseudo-inputs"})
    # The posterior's flow (models/flow.py); absent from older config.json files, which had none.
    flow: Literal["none", "iaf"] = field(
        default="none", metadata={"help": "none: diagonal Gaussian q(z|x); iaf: inverse autoregressive flow on it"}
    )
    flow_steps: int = field(default=2, metadata={"help": "iaf: number of flow steps"})
    flow_hidden: int = field(default=256, metadata={"help": "iaf: hidden units of each step's MADE"})
    flow_context: int = field(default=32, metadata={"help": "iaf: size of the encoder's context vector h"})
    # Class-conditional model (CVAE, Sohn et al. 2015): the label goes into the encoder and the decoder.
    conditional: bool = field(default=False, metadata={"help": "condition encoder and decoder on the class label"})
    num_classes: int = field(default=10, metadata={"help": "conditional: number of classes"})
    # Semi-supervised VAE (M2, Kingma et al. 2014): the CVAE plus a classifier q(y|x), which stands in for the label
    # of an unlabelled image (y summed out under it). Absent from older config.json files: none had it.
    semi_supervised: bool = field(default=False, metadata={
        "help": "M2: a conditional VAE with a classifier head q(y|x); trains on labelled and unlabelled images"})
    # Shown in the app's pickers; absent (empty) for models that carry none.
    title: str = field(default="", metadata={"help": "short human name, e.g. 'VampPrior VAE-16'"})
    description: str = field(default="", metadata={"help": "one sentence on what the model is"})

    def __post_init__(self) -> None:
        # Types first: config.json is user-editable, and "16" or 2.5 would only fail deep in nn.Linear.
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, tp = getattr(self, f.name), hints[f.name]
            if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{f.name} must be an integer, got {value!r}")
            if tp is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if tp in (bool, str) and not isinstance(value, tp):
                raise ValueError(f"{f.name} must be a {tp.__name__}, got {value!r}")
        for name in ("family", "bottleneck", "likelihood", "activation", "prior", "flow"):
            choices = _literal_choices(self, name)
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}")
        for name in ("latent_dim", "channels", "hidden_dim", "hidden_layers", "image_size", "image_channels",
                     "prior_components", "flow_steps", "flow_hidden", "flow_context", "num_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.family == "conv" and self.image_size % 2 ** conv_depth(self.image_size):
            d = conv_depth(self.image_size)
            raise ValueError(f"the conv family halves a {self.image_size}-pixel image {d} times: image_size must be "
                             f"divisible by {2 ** d}, got {self.image_size}")
        if not (0 < self.gaussian_std < math.inf):  # also rejects NaN
            raise ValueError(f"gaussian_std must be > 0, got {self.gaussian_std}")
        if self.prior != "standard" and not self.is_variational:
            raise ValueError(f"prior {self.prior!r} needs bottleneck 'vae': an AE has no prior")
        if self.flow != "none" and not self.is_variational:
            raise ValueError(f"flow {self.flow!r} needs bottleneck 'vae': an AE has no posterior to transform")
        if self.semi_supervised and not (self.conditional and self.is_variational):
            raise ValueError("semi_supervised (M2) is a conditional VAE with a classifier: it needs bottleneck 'vae' "
                             "and conditional true")
        if self.conditional and self.prior == "vamp":
            raise ValueError("a conditional model cannot use the vamp prior: its pseudo-inputs have no class label")

    @property
    def decoder_input_dim(self) -> int:
        """The decoder reads z, and the one-hot label too when the model is conditional."""
        return self.latent_dim + (self.num_classes if self.conditional else 0)

    @property
    def is_variational(self) -> bool:
        return self.bottleneck == "vae"



def conv_depth(image_size: int) -> int:
    """Stride-2 convolutions of the conv family: at least 2, then as many as bring the side down to 7 or less
    (28 -> 2, as every shipped model; 32 -> 3; 64 -> 4), so the flattened features stay small as images grow."""
    d = 2
    while image_size / 2**d > 7:
        d += 1
    return d


def _literal_choices(obj, name: str) -> tuple:
    return typing.get_args(typing.get_type_hints(type(obj))[name])
