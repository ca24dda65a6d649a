"""A small CNN classifier: the scorecard's judge of generated, imputed and interpolated images.

Its penultimate layer is the feature space of the scorecard's Fréchet distance and precision/recall
(the role Inception-v3 plays for FID on natural images; a network trained on the dataset itself is the
usual choice for MNIST-like data). Saved like the autoencoders: config.json + model.safetensors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from .checkpoint import CheckpointError, load_pretrained, save_pretrained
from .config import JsonConfig


@dataclass
class ClassifierConfig(JsonConfig):
    """Architecture of the classifier; `kind` tells it apart from an autoencoder's config.json."""

    kind: str = "classifier"
    num_classes: int = field(default=10, metadata={"help": "number of classes"})
    channels: int = field(default=16, metadata={"help": "width of the first conv block (doubles once)"})
    feature_dim: int = field(default=128, metadata={"help": "width of the penultimate layer (the features)"})
    image_size: int = 28
    image_channels: int = 1

    def __post_init__(self) -> None:
        if self.kind != "classifier":
            raise ValueError(f"kind must be 'classifier', got {self.kind!r}")
        for name in ("num_classes", "channels", "feature_dim", "image_size", "image_channels"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {self.image_size}")



def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 convs (BatchNorm, ReLU), then 2x2 max-pooling: (B, c_in, H, W) -> (B, c_out, H/2, W/2)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.MaxPool2d(2),
    )


class Classifier(nn.Module):
    """(B, C, H, W) in [0, 1] -> class logits; `features` gives the penultimate activations."""

    config_class = ClassifierConfig

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        c, s = config.channels, config.image_size // 4
        self.body = nn.Sequential(
            conv_block(config.image_channels, c),  # (B, c, H/2, W/2)
            conv_block(c, 2 * c),  # (B, 2c, H/4, W/4)
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(2 * c * s * s, config.feature_dim), nn.ReLU(),  # (B, feature_dim): the features
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(config.feature_dim, config.num_classes))

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))

    def save_pretrained(self, directory: str | Path, metrics: dict | None = None) -> None:
        save_pretrained(self, directory, metrics, dtype=torch.float16)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> "Classifier":
        return load_pretrained(cls, directory, device, config_class=ClassifierConfig)


__all__ = ["Classifier", "ClassifierConfig", "CheckpointError"]
