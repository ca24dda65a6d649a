"""Filling in missing pixels: an AE's iterative fill, and a VAE's two samplers of p(x_missing | x_observed).

Every function takes images x (B, C, H, W) in [0, 1] and a boolean `missing` of the same shape (True = the
pixel is unknown; its value in x is ignored) and returns images in which the observed pixels are x's own,
bit for bit: only missing pixels are ever written.

The VAE samplers follow Mattei & Frellsen 2018, "Leveraging the exact likelihood of deep latent variable
models" (NeurIPS), section 4:
  pseudo-Gibbs (Rezende et al. 2014): z ~ q(z | x_o, x_m), then x_m ~ p(x_m | z); repeat. Its stationary
    distribution is not p(x_m | x_o) unless q is the exact posterior.
  Metropolis-within-Gibbs (their Algorithm 1): the z step becomes an independence Metropolis-Hastings step
    that targets p(z | x_o, x_m) with the encoder q(z | x_o, x_m) as proposal, so the chain's stationary
    distribution is the model's exact p(z, x_m | x_o), whatever the encoder's errors.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# name -> what it hides (True = missing), for an (H, W) image; the random masks are drawn per image
MASKS = {
    "top_half": "the top half",
    "bottom_half": "the bottom half",
    "left_half": "the left half",
    "centre": "the centre square (half the side: 14x14 on 28x28)",
    "random_50": "50 % of the pixels, at random",
    "random_80": "80 % of the pixels, at random",
}


def preset_mask(name: str, n: int, channels: int, height: int, width: int,
                generator: torch.Generator | None = None) -> Tensor:
    """(n, C, H, W) boolean mask, True = missing; a random mask differs per image and is shared by channels."""
    m = torch.zeros(n, 1, height, width, dtype=torch.bool)
    if name == "top_half":
        m[..., : height // 2, :] = True
    elif name == "bottom_half":
        m[..., height // 2:, :] = True
    elif name == "left_half":
        m[..., :, : width // 2] = True
    elif name == "centre":
        h, w = height // 2, width // 2
        top, left = (height - h) // 2, (width - w) // 2
        m[..., top: top + h, left: left + w] = True
    elif name.startswith("random_") and name.removeprefix("random_").isdigit():
        m = torch.rand(n, 1, height, width, generator=generator) < int(name.removeprefix("random_")) / 100
    else:
        raise ValueError(f"unknown mask {name!r}; choose from {', '.join(MASKS)}")
    return m.expand(n, channels, height, width).clone()


def fill(x: Tensor, missing: Tensor, value: Tensor | float) -> Tensor:
    """x with its missing pixels replaced by `value` (a number, an image, or a batch of images)."""
    return torch.where(missing, torch.as_tensor(value, dtype=x.dtype, device=x.device).expand_as(x), x)


def missing_mse(imputed: Tensor, truth: Tensor, missing: Tensor) -> Tensor:
    """Mean squared error over the missing pixels of each image, (B,)."""
    m = missing.flatten(1).to(truth.dtype)
    return ((imputed - truth).pow(2).flatten(1) * m).sum(1) / m.sum(1).clamp(min=1)


@torch.inference_mode()
def ae_fill(model, x: Tensor, missing: Tensor, start: Tensor | float, steps: int) -> Tensor:
    """Encode the current fill, decode, replace only the missing pixels; `steps` times. Deterministic."""
    current = fill(x, missing, start)
    for _ in range(steps):
        current = torch.where(missing, model.mean_image(model.decode(model.encode(current).mode())), x)
    return current


@dataclass
class Imputations:
    """S chains for each of B images: `means` (S, B, C, H, W) fills the missing pixels with E[x | z] at the
    chain's last z; `draws` with the last sampled pixels x_m ~ p(x_m | z). `acceptance`: the share of
    accepted Metropolis-Hastings proposals (1.0 for pseudo-Gibbs, which accepts every one)."""

    means: Tensor
    draws: Tensor
    acceptance: float
    missing: Tensor  # (B, C, H, W)

    @property
    def mean(self) -> Tensor:
        """The mean of the S imputations, (B, C, H, W): multiple imputation's point estimate. (Averaging would
        round the observed pixels in float, so they are copied from an imputation, where they are exact.)"""
        return torch.where(self.missing, self.means.mean(0), self.means[0])


def _chains(x: Tensor, missing: Tensor, chains: int) -> tuple[Tensor, Tensor]:
    """Repeat each image `chains` times: (S * B, C, H, W), chain-major."""
    return x.repeat(chains, 1, 1, 1), missing.repeat(chains, 1, 1, 1)


@torch.inference_mode()
def pseudo_gibbs(model, x: Tensor, missing: Tensor, start: Tensor | float, steps: int, chains: int = 1,
                 generator: torch.Generator | None = None) -> Imputations:
    """z ~ q(z | current), x_m ~ p(x_m | z), `steps` times, for `chains` independent chains per image."""
    xs, ms = _chains(x, missing, chains)
    current = fill(xs, ms, start)
    params = None
    for _ in range(steps):
        params = model.decode(model.encode(current).sample(generator))
        current = torch.where(ms, model.sample_pixels(params, generator), xs)
    return _result(model, xs, ms, params, current, chains, 1.0)


@torch.inference_mode()
def metropolis_within_gibbs(model, x: Tensor, missing: Tensor, start: Tensor | float, steps: int, chains: int = 1,
                            generator: torch.Generator | None = None) -> Imputations:
    """Mattei & Frellsen 2018, Algorithm 1. Each step: propose z' ~ q(z | x_o, x_m); accept it with probability

        min(1, [p(x_o, x_m | z') p(z') q(z | x_o, x_m)] / [p(x_o, x_m | z) p(z) q(z' | x_o, x_m)])

    (the target is p(z | x_o, x_m), the proposal q depends on the current x_m only); then x_m ~ p(x_m | z).
    The first z is drawn from q and accepted unconditionally."""
    xs, ms = _chains(x, missing, chains)
    current = fill(xs, ms, start)
    z = model.encode(current).sample(generator)
    params = model.decode(z)
    current = torch.where(ms, model.sample_pixels(params, generator), xs)
    accepted = 0.0
    for _ in range(steps):
        posterior = model.encode(current)
        z_new = posterior.sample(generator)
        params_new = model.decode(z_new)
        log_target_new = model.log_likelihood(params_new, current) + model.prior_log_prob(z_new)
        log_target = model.log_likelihood(params, current) + model.prior_log_prob(z)
        log_rho = log_target_new - log_target + posterior.log_prob(z) - posterior.log_prob(z_new)  # (S * B,)
        u = torch.rand(log_rho.shape, generator=generator, dtype=log_rho.dtype, device=log_rho.device)
        accept = torch.log(u) < log_rho
        z = torch.where(accept[:, None], z_new, z)
        params = torch.where(accept.view(-1, *[1] * (params.dim() - 1)), params_new, params)
        current = torch.where(ms, model.sample_pixels(params, generator), xs)
        accepted += float(accept.float().mean())
    return _result(model, xs, ms, params, current, chains, accepted / max(steps, 1))


def _result(model, xs: Tensor, ms: Tensor, params: Tensor | None, current: Tensor, chains: int,
            acceptance: float) -> Imputations:
    b = xs.shape[0] // chains
    means = current if params is None else torch.where(ms, model.mean_image(params), xs)
    shape = (chains, b, *xs.shape[1:])
    return Imputations(means.reshape(shape), current.reshape(shape), acceptance, ms[:b])
