"""Priors p(z), one interface: every prior is a mixture of diagonal Gaussians given by its components.

  standard  N(0, I): one component, fixed (the KL to it has a closed form)
  mog       a learned mixture of K Gaussians: weights, means and log-variances are parameters
  vamp      VampPrior (Tomczak & Welling 2018, "VAE with a VampPrior", eq. 9): p(z) = 1/K sum_k q(z | u_k), the
            mixture of the encoder's posteriors of K learned pseudo-inputs u_k

`components(encode, like)` returns (log_weights (K,), means (K, D), logvars (K, D)), on the device and dtype of
the tensor `like`; the model's log p(z) and its samples work from those alone, so the model, the trainer, the
evaluator and the app never ask which prior they hold.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

LOG_2PI = math.log(2 * math.pi)
Components = tuple[Tensor, Tensor, Tensor]


def mixture_log_prob(z: Tensor, log_weights: Tensor, means: Tensor, logvars: Tensor) -> Tensor:
    """log sum_k w_k N(z; mean_k, diag(exp(logvar_k))) for z of shape (..., D) -> (...)."""
    diff = z.unsqueeze(-2) - means  # (..., K, D)
    comp = -0.5 * (LOG_2PI + logvars + diff.pow(2) / logvars.exp()).sum(-1)  # (..., K)
    return torch.logsumexp(log_weights + comp, dim=-1)


def marginal_log_prob(z: Tensor, log_weights: Tensor, means: Tensor, logvars: Tensor) -> Tensor:
    """log p(z_d) of each dimension's 1-D marginal, sum_k w_k N(z_d; mean_kd, exp(logvar_kd)): z (..., D) -> (..., D).

    A mixture of diagonal Gaussians has, on dimension d, the 1-D mixture of its components' d-th coordinates."""
    diff = z.unsqueeze(-2) - means  # (..., K, D)
    comp = -0.5 * (LOG_2PI + logvars + diff.pow(2) / logvars.exp())  # (..., K, D)
    return torch.logsumexp(log_weights.unsqueeze(-1) + comp, dim=-2)


def mixture_sample(n: int, log_weights: Tensor, means: Tensor, logvars: Tensor,
                   generator: torch.Generator | None = None, temperature: float = 1.0) -> Tensor:
    """n draws (n, D): a component by its weight, then mean + temperature * std * eps."""
    k = torch.multinomial(log_weights.softmax(0), n, replacement=True, generator=generator)
    eps = torch.randn((n, means.shape[1]), generator=generator, device=means.device, dtype=means.dtype)
    return means[k] + temperature * (0.5 * logvars[k]).exp() * eps


class StandardNormal(nn.Module):
    """p(z) = N(0, I), as a one-component mixture with nothing to learn."""

    def __init__(self, latent_dim: int, components: int = 1, **_):
        super().__init__()
        self.latent_dim = latent_dim  # no tensors: checkpoints of the standard prior hold nothing for it

    def components(self, encode: Callable, like: Tensor) -> Components:
        zeros = like.new_zeros(1, self.latent_dim)
        return like.new_zeros(1), zeros, zeros


class MixtureOfGaussians(nn.Module):
    """p(z) = sum_k softmax(logits)_k N(z; mean_k, diag(exp(logvar_k))), every parameter learned."""

    def __init__(self, latent_dim: int, components: int = 10, **_):
        super().__init__()
        g = torch.Generator().manual_seed(0)  # spread the means at start, so the components can separate
        self.logits = nn.Parameter(torch.zeros(components))
        self.means = nn.Parameter(torch.randn(components, latent_dim, generator=g))
        self.logvars = nn.Parameter(torch.zeros(components, latent_dim))

    def components(self, encode: Callable, like: Tensor) -> Components:
        return self.logits.log_softmax(0), self.means, self.logvars.clamp(-30.0, 20.0)


class VampPrior(nn.Module):
    """p(z) = 1/K sum_k q(z | u_k) with K learned pseudo-inputs u_k (images, (K, C, H, W), through a sigmoid to
    stay in [0, 1]); their posteriors come from the model's own encoder on every call."""

    def __init__(self, latent_dim: int, components: int = 50, image_shape: tuple[int, int, int] = (1, 28, 28), **_):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.pseudo_inputs = nn.Parameter(0.1 * torch.randn(components, *image_shape, generator=g) - 2.0)

    def components(self, encode: Callable, like: Tensor) -> Components:
        posterior = encode(torch.sigmoid(self.pseudo_inputs))
        k = self.pseudo_inputs.shape[0]
        return posterior.mean.new_full((k,), -math.log(k)), posterior.mean, posterior.logvar


PRIORS = {"standard": StandardNormal, "mog": MixtureOfGaussians, "vamp": VampPrior}
