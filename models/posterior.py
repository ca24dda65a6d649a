"""Posteriors q(z|x) returned by `encode`: one interface for the AE and the VAE.

Both classes (and models/flow.py's FlowPosterior) expose `mean`, `std`, `sample(generator)`, `mode()`,
`transform(eps) -> (z, log q(z|x))`, `kl_per_dim()`, `kl()` and `log_prob(z)`, so the trainer, the evaluator
and the app never branch on "is this a VAE?" or "which posterior is this?".
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussian:
    """q(z|x) = N(mean, diag(exp(logvar))) for a batch: mean and logvar are (B, D)."""

    def __init__(self, mean: Tensor, logvar: Tensor):
        self.mean = mean
        # Clamp keeps exp() finite in float32 without changing any sane posterior.
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)

    def noise(self, generator: torch.Generator | None = None) -> Tensor:
        """eps ~ N(0, I) of the posterior's shape (B, D)."""
        return torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)

    def transform(self, eps: Tensor) -> tuple[Tensor, Tensor]:
        """eps (..., B, D) ~ N(0, I) -> (z = mean + std * eps, log q(z|x) (..., B)): the reparameterized draw."""
        z = self.mean + self.std * eps
        return z, self.log_prob(z)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        """Reparameterized draw z = mean + std * eps, eps ~ N(0, I); (B, D)."""
        return self.mean + self.std * self.noise(generator)

    def mode(self) -> Tensor:
        return self.mean

    def kl_per_dim(self) -> Tensor:
        """KL(q || N(0, I)) per latent dimension, (B, D).

        Closed form, Kingma & Welling 2014, Appendix B: -1/2 (1 + logvar - mean^2 - var).
        """
        return 0.5 * (self.mean.pow(2) + self.logvar.exp() - 1.0 - self.logvar)

    def kl(self) -> Tensor:
        """KL(q || N(0, I)) summed over latent dimensions, (B,)."""
        return self.kl_per_dim().sum(dim=1)

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z|x) for z of shape (..., B, D); sums over D, keeps leading dims."""
        return -0.5 * (LOG_2PI + self.logvar + (z - self.mean).pow(2) / self.logvar.exp()).sum(dim=-1)


class PointMass:
    """The deterministic AE's 'posterior': all mass on the encoder's code, KL defined as 0."""

    def __init__(self, mean: Tensor):
        self.mean = mean

    @property
    def std(self) -> Tensor:
        return torch.zeros_like(self.mean)

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        return self.mean

    def mode(self) -> Tensor:
        return self.mean

    def kl_per_dim(self) -> Tensor:
        return torch.zeros_like(self.mean)

    def kl(self) -> Tensor:
        return self.mean.new_zeros(self.mean.shape[0])

    def transform(self, eps: Tensor) -> tuple[Tensor, Tensor]:
        raise ValueError("a point-mass posterior has no density; importance sampling needs a VAE")

    def log_prob(self, z: Tensor) -> Tensor:
        raise ValueError("a point-mass posterior has no density; importance sampling needs a VAE")


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed over the last dimension."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(dim=-1)
