"""Inverse autoregressive flow (IAF) posterior: Kingma et al. 2016, "Improved Variational Inference with
Inverse Autoregressive Flow", section 4 and Algorithm 1 (the numerically stable, LSTM-style update).

    z_0 = mean + std * eps,  eps ~ N(0, I)                       (the encoder's diagonal Gaussian)
    [m_t, s_t] = MADE_t(z_{t-1}, h);  sigma_t = sigmoid(s_t)     (autoregressive in z, h = encoder context)
    z_t = sigma_t * z_{t-1} + (1 - sigma_t) * m_t                (dz_t,i / dz_{t-1},i = sigma_t,i)
    log q(z_T | x) = log N(z_0; mean, std) - sum_t sum_i log sigma_t,i

Each step's Jacobian is triangular (in that step's variable order), so its log-determinant is the sum of
the log gates; consecutive steps reverse the order. Sampling is one pass per step. `log_prob` of a z that
this posterior did not draw inverts the flow, D passes per step (each pass fixes one more coordinate).

Hand-written (a masked two-layer MLP and the update, ~80 lines) rather than taken from zuko or pyro: every
sampler here takes a torch.Generator for reproducible draws, which neither library's rsample accepts, and
the device image has neither installed.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .posterior import DiagonalGaussian


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (Germain et al. 2015, MADE)."""

    def __init__(self, n_in: int, n_out: int, mask: Tensor):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", mask.bool())  # saved (1 byte a weight): the exact connectivity trained with

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """(z (..., D), h (..., C)) -> (m, s), each (..., D); output i depends only on z_j with order[j] < order[i]
    (and on all of h). Two hidden layers of `hidden` units; hidden degrees cycle through 0..D-2."""

    def __init__(self, dim: int, context: int, hidden: int, order: Tensor):
        super().__init__()
        deg_in = order
        deg_hidden = torch.arange(hidden) % max(dim - 1, 1)
        m1 = (deg_hidden[:, None] >= deg_in[None, :])  # (H, D): hidden unit k sees inputs of degree <= its own
        m2 = (deg_hidden[:, None] >= deg_hidden[None, :])
        m3 = (deg_in[:, None] > deg_hidden[None, :])  # (D, H): output i sees hidden units of degree < its own
        self.layer1 = MaskedLinear(dim, hidden, m1)
        self.context = nn.Linear(context, hidden)
        self.layer2 = MaskedLinear(hidden, hidden, m2)
        self.out = MaskedLinear(hidden, 2 * dim, torch.cat([m3, m3]))  # rows [0, D): m; rows [D, 2D): s
        # Start each step near the identity: sigma = sigmoid(s) close to 1 (Kingma et al. 2016, section 4:
        # "initialize s so that sigma is close to 1"); a positive bias on s does that.
        with torch.no_grad():
            self.out.weight[dim:].zero_()
            self.out.bias[dim:].fill_(2.0)

    def forward(self, z: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        a = F.elu(self.layer1(z) + self.context(h))
        a = F.elu(self.layer2(a))
        return self.out(a).chunk(2, dim=-1)


class IAF(nn.Module):
    """`steps` IAF steps over a D-dimensional latent with a C-dimensional context."""

    def __init__(self, dim: int, context: int, hidden: int, steps: int):
        super().__init__()
        forward, backward = torch.arange(dim), torch.arange(dim).flip(0)
        self.steps = nn.ModuleList(MADE(dim, context, hidden, forward if t % 2 == 0 else backward)
                                   for t in range(steps))
        self.dim = dim

    def forward(self, z0: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """z_0 (..., D) -> (z_T, sum of the log-determinants (...))."""
        z, log_det = z0, z0.new_zeros(z0.shape[:-1])
        for made in self.steps:
            m, s = made(z, h)
            sigma = torch.sigmoid(s)
            z = sigma * z + (1 - sigma) * m
            log_det = log_det + F.logsigmoid(s).sum(-1)
        return z, log_det

    def inverse(self, z: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """z_T -> (z_0, the same log-determinant as forward(z_0)): D passes per step, last step first."""
        log_det = z.new_zeros(z.shape[:-1])
        for made in reversed(self.steps):
            prev = torch.zeros_like(z)
            for _ in range(self.dim):  # pass i fixes the coordinate of order i (earlier ones are already exact)
                m, s = made(prev, h)
                sigma = torch.sigmoid(s)
                prev = (z - (1 - sigma) * m) / sigma
            log_det = log_det + F.logsigmoid(made(prev, h)[1]).sum(-1)
            z = prev
        return z, log_det


class FlowPosterior:
    """q(z|x): the encoder's diagonal Gaussian pushed through an IAF, with the DiagonalGaussian interface.

    `mean` is the flow applied to the Gaussian's mean (eps = 0): the code the app shows and decodes. `std` and
    `logvar` are those of the Gaussian before the flow. `kl()` and `kl_per_dim()` have no closed form: the model
    uses the Monte-Carlo KL (`Autoencoder.kl`) and the sampled marginal KL (`Autoencoder.marginal_kl_per_dim`).
    """

    def __init__(self, mean: Tensor, logvar: Tensor, context: Tensor, flow: IAF):
        self.base = DiagonalGaussian(mean, logvar)
        self.logvar, self.std = self.base.logvar, self.base.std
        self.context, self.flow = context, flow
        self.mean = flow(mean, context)[0]
        self._cache: tuple[Tensor, Tensor] | None = None  # the last (z, log q(z)) drawn, as torch's cache_size=1

    def _context(self, z: Tensor) -> Tensor:
        return self.context.expand(*z.shape[:-1], self.context.shape[-1])

    def transform(self, eps: Tensor) -> tuple[Tensor, Tensor]:
        """eps (..., B, D) ~ N(0, I) -> (z (..., B, D), log q(z|x) (..., B))."""
        z0, log_q0 = self.base.transform(eps)
        z, log_det = self.flow(z0, self._context(z0))
        self._cache = (z, log_q0 - log_det)
        return self._cache

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        return self.transform(self.base.noise(generator))[0]

    def mode(self) -> Tensor:
        return self.mean

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z|x) for z (..., B, D): the cached value for the last draw, else by inverting the flow."""
        if self._cache is not None and z is self._cache[0]:
            return self._cache[1]
        z0, log_det = self.flow.inverse(z, self._context(z))
        return self.base.log_prob(z0) - log_det

    def kl_per_dim(self) -> Tensor:
        raise ValueError("a flow posterior has no closed-form KL per dimension: use the model's marginal_kl_per_dim")

    def kl(self) -> Tensor:
        raise ValueError("a flow posterior has no closed-form KL: use the model's kl(posterior, z)")
