"""Decoder likelihoods log p(x|z), each summed over pixels: (B, C, H, W) -> (B,)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def bernoulli_log_prob(logits: Tensor, x: Tensor) -> Tensor:
    """log Bernoulli(x; sigmoid(logits)); x may be binary or an intensity in [0, 1]."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_log_prob(mean: Tensor, x: Tensor, std: float) -> Tensor:
    """log N(x; mean, std^2 I) with a fixed std."""
    return (-0.5 * ((x - mean) / std).pow(2) - math.log(std) - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)


def log_likelihood(params: Tensor, x: Tensor, kind: str, std: float) -> Tensor:
    if kind == "bernoulli":
        return bernoulli_log_prob(params, x)
    return gaussian_log_prob(params, x, std)


def mean_image(params: Tensor, kind: str) -> Tensor:
    """E[x|z] as an image in [0, 1]."""
    return torch.sigmoid(params) if kind == "bernoulli" else params.clamp(0.0, 1.0)


def sample_pixels(params: Tensor, kind: str, std: float, generator: torch.Generator | None = None) -> Tensor:
    """One draw x ~ p(x|z) from the decoder parameters: Bernoulli pixels in {0, 1}, or mean + std * noise."""
    if kind == "bernoulli":
        u = torch.rand(params.shape, generator=generator, device=params.device, dtype=params.dtype)
        return (u < torch.sigmoid(params)).to(params.dtype)
    noise = torch.randn(params.shape, generator=generator, device=params.device, dtype=params.dtype)
    return params + std * noise
