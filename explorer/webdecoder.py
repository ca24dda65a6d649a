"""A model's decoder as a file the browser runs (static/live_decoder.js, on TensorFlow.js): live sliders.

Moving a latent slider must show the new decode within a frame or two. A round trip through the
server cannot (Gradio's event path alone costs ~65 ms in Chromium here, a no-op included), so the page
decodes slider moves itself. The decoder is exported, not rewritten: its `nn.Sequential` is walked
into a list of layers, each naming its weights in the decoder's own state dict, and the weights go to
a safetensors file with that list in its metadata. The browser interprets the list; a decoder with a
layer outside `LAYERS` is not exported, and the app then decodes slider moves on the server.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import save
from torch import nn

from models import Autoencoder

from .files import write_once

# torch module -> how the browser applies it (static/live_decoder.js implements exactly these).
LAYERS = {nn.Linear: "linear", nn.ELU: "elu", nn.ReLU: "relu", nn.Unflatten: "unflatten",
          nn.ConvTranspose2d: "conv_transpose2d"}


class UnsupportedDecoder(ValueError):
    """The decoder has a layer the browser cannot run."""


def layer_spec(name: str, module: nn.Module) -> dict:
    """One layer of the decoder's Sequential -> a JSON-able description; weights by state-dict key."""
    kind = LAYERS.get(type(module))
    if kind is None:
        raise UnsupportedDecoder(f"no browser version of {type(module).__name__}")
    spec: dict = {"op": kind}
    if kind == "elu" and module.alpha != 1.0:
        raise UnsupportedDecoder("ELU with alpha != 1")
    if kind == "unflatten":
        spec["shape"] = list(module.unflattened_size)  # (C, H, W)
    if kind in ("linear", "conv_transpose2d"):
        spec["weight"], spec["bias"] = f"{name}.weight", f"{name}.bias"
        if module.bias is None:
            raise UnsupportedDecoder(f"{name} has no bias")
    if kind == "conv_transpose2d":
        m: nn.ConvTranspose2d = module
        square = {m.kernel_size[0] == m.kernel_size[1], m.stride[0] == m.stride[1], m.padding[0] == m.padding[1]}
        if square != {True} or m.groups != 1 or m.dilation != (1, 1) or m.output_padding != (0, 0):
            raise UnsupportedDecoder(f"{name}: only square, ungrouped, undilated transposed convolutions")
        spec.update(kernel=m.kernel_size[0], stride=m.stride[0], padding=m.padding[0])
    return spec


def decoder_spec(model: Autoencoder) -> list[dict]:
    """The decoder as a list of layers (PyTorch layouts), then the map from parameters to E[x|z]."""
    if model.config.conditional:
        raise UnsupportedDecoder("a class-conditional decoder also reads the label")
    net = getattr(model.decoder, "net", None)
    if not isinstance(net, nn.Sequential):
        raise UnsupportedDecoder(f"{type(model.decoder).__name__} is not a Sequential")
    layers = [layer_spec(f"net.{i}", m) for i, m in enumerate(net)]
    # models/likelihood.mean_image: sigmoid of Bernoulli logits, Gaussian means clipped to [0, 1]
    layers.append({"op": "sigmoid" if model.config.likelihood == "bernoulli" else "clip01"})
    return layers


def export_bytes(model: Autoencoder) -> bytes:
    """The decoder's weights (float16 where that is exact, else float32) + the layer list, as safetensors."""
    c = model.config
    tensors = {}
    for k, v in model.decoder.state_dict().items():
        v = v.detach().float().cpu()
        half = v.half()
        tensors[k] = half if torch.equal(half.float(), v) else v.contiguous()
    meta = {"layers": json.dumps(decoder_spec(model)), "latent_dim": str(c.latent_dim),
            "image_shape": json.dumps([c.image_channels, c.image_size, c.image_size])}
    return save(tensors, metadata=meta)


def write_export(model: Autoencoder, folder: Path) -> Path:
    """Write the export under its content hash (once, atomically: a reader never sees half a file)."""
    data = export_bytes(model)
    return write_once(Path(folder) / f"decoder-{hashlib.sha256(data).hexdigest()[:16]}.safetensors", data)


def live_spec(bundle, folder: Path, url_for, models) -> dict:
    """What static/live_decoder.js needs for one dataset: per model, its decoder file's URL, the element ids
    of its sliders (`prefix` + k) and canvas, and which latent dimension slider k shows (`order`).

    models: (model name, slider id prefix, canvas id) triples, or a dict name -> (prefix, canvas). A model that
    cannot be exported (another layer, or a class-conditional decoder, which also reads a label) is left out
    (the server decodes its slider moves)."""
    out = []
    triples = [(n, *ids) for n, ids in models.items()] if isinstance(models, dict) else models
    for name, prefix, canvas in triples:
        view = bundle.models.get(name)
        if view is None:
            continue
        try:
            path = write_export(view.model, folder)
        except UnsupportedDecoder:
            continue
        out.append({"key": name, "prefix": prefix, "canvas": canvas, "url": url_for(path),
                    "order": [int(d) for d in view.order], "latent_dim": int(view.latent_dim)})
    return {"dataset": bundle.key, "models": out}
