"""AE and VAE: one class, the bottleneck chosen by config (diffusers AutoencoderKL-style API)."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .backbones import BACKBONES, act
from .config import ModelConfig
from .flow import IAF, FlowPosterior
from .likelihood import log_likelihood, mean_image, sample_pixels
from .posterior import DiagonalGaussian, PointMass
from .prior import PRIORS, marginal_log_prob, mixture_log_prob, mixture_sample

LOG_2PI_E = math.log(2 * math.pi * math.e)
GAUSS_HERMITE_NODES = 32  # E over a 1-D Gaussian of log p(z_d): exact to ~1e-6 nats for the shipped priors
MARGINAL_SAMPLES = 256  # draws per image of a flow posterior, whose marginals have no density


def repeat_labels(labels: Tensor | None, k: int) -> Tensor | None:
    """(B,) labels -> (k * B,), matching z of shape (k, B, D) flattened to (k * B, D); None stays None."""
    return None if labels is None else torch.as_tensor(labels).repeat(k)


def gaussian_marginal_kl(mean: Tensor, logvar: Tensor, components) -> Tensor:
    """KL(N(mean_d, exp(logvar_d)) || p(z_d)) per element, (B, D), p(z_d) the 1-D marginal of a mixture prior's
    components: -entropy (closed form) minus E[log p(z_d)] by probabilists' Gauss-Hermite quadrature."""
    import numpy as np

    nodes, weights = np.polynomial.hermite_e.hermegauss(GAUSS_HERMITE_NODES)  # weight exp(-t^2 / 2)
    t = torch.as_tensor(nodes, dtype=mean.dtype, device=mean.device).view(-1, 1, 1)
    w = torch.as_tensor(weights / weights.sum(), dtype=mean.dtype, device=mean.device).view(-1, 1, 1)
    z = mean + (0.5 * logvar).exp() * t  # (n, B, D)
    cross = -(w * marginal_log_prob(z, *components)).sum(0)
    entropy = 0.5 * (LOG_2PI_E + logvar)
    return cross - entropy


def total_correlation(posterior: DiagonalGaussian, z: Tensor, dataset_size: int) -> Tensor:
    """TC(q(z)) = E_q(z)[log q(z) - sum_d log q(z_d)], the minibatch-weighted sampling estimate (Chen et al. 2018,
    Sec. 4.1 and Appendix C.1): for the batch's z_i ~ q(z|x_i), log q(z_i) ~ logsumexp_j log q(z_i|x_j) - log(N M)
    and log q(z_id) ~ logsumexp_j log q(z_id|x_j) - log(N M), N the dataset size and M the batch size. Scalar.
    The estimate is biased upwards by a constant of the sizes (with N = M, by (D - 1) log M over the TC of the batch's
    mixture mean_j q(z|x_j)): a penalty's gradient does not see it, but its value is not a TC in nats."""
    m, d = posterior.mean.shape
    if dataset_size < m:
        raise ValueError(f"the TC estimate needs the training set's size (>= the batch's {m}), got {dataset_size}")
    var = posterior.logvar.exp()
    diff = z.unsqueeze(1) - posterior.mean.unsqueeze(0)  # (M, M, D): z_i against q(.|x_j)
    log_q = -0.5 * (math.log(2 * math.pi) + posterior.logvar.unsqueeze(0) + diff.pow(2) / var.unsqueeze(0))
    log_nm = math.log(dataset_size * m)
    log_qz = torch.logsumexp(log_q.sum(2), dim=1) - log_nm  # (M,)
    log_prod = (torch.logsumexp(log_q, dim=1) - log_nm).sum(1)  # (M,)
    return (log_qz - log_prod).mean()


class Autoencoder(nn.Module):
    """encoder -> bottleneck -> decoder. `bottleneck='ae'` gives a point-mass code, 'vae' a Gaussian.

    The variants are config fields of this one class: `prior` (models/prior.py), `flow` (models/flow.py) and
    `conditional`. A conditional model (CVAE) reads the class label in the encoder (a one-hot vector joined
    to the encoder's features) and in the decoder (joined to z): every method that encodes or decodes takes
    `labels` ((B,) int64), which the other models ignore; a conditional model refuses to run without them.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        encoder_cls, decoder_cls = BACKBONES[config.family]
        self.encoder = encoder_cls(config)
        # The only AE/VAE difference: the VAE head also predicts a log-variance per dimension.
        n_out = 2 * config.latent_dim if config.is_variational else config.latent_dim
        n_context = config.flow_context if config.flow != "none" else 0
        n_in = self.encoder.out_dim + (config.num_classes if config.conditional else 0)
        self.to_latent = nn.Linear(n_in, n_out + n_context)
        self.decoder = decoder_cls(config)
        self.flow = (IAF(config.latent_dim, config.flow_context, config.flow_hidden, config.flow_steps)
                     if config.flow == "iaf" else None)
        self.prior = PRIORS[config.prior](config.latent_dim, components=config.prior_components,
                                          image_shape=(config.image_channels, config.image_size, config.image_size))
        # M2's q(y|x): a hidden layer on the encoder's features, which come before the label is joined to them.
        self.classifier = (nn.Sequential(nn.Linear(self.encoder.out_dim, config.hidden_dim), act(config),
                                         nn.Linear(config.hidden_dim, config.num_classes))
                           if config.semi_supervised else None)

    # ---- the public interface -------------------------------------------------------------
    def one_hot(self, labels: Tensor | None, like: Tensor) -> Tensor:
        """(B,) class labels -> one-hot (B, num_classes) in like's dtype; refused when missing or out of range."""
        if labels is None:
            raise ValueError("this model is conditional (a CVAE): it needs the class label of every image")
        labels = torch.as_tensor(labels, device=like.device).long().reshape(-1)
        n = self.config.num_classes
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n):
            raise ValueError(f"class labels must lie in 0..{n - 1}, got {labels.min().item()}..{labels.max().item()}")
        return F.one_hot(labels, n).to(like.dtype)

    def _join_label(self, h: Tensor, labels: Tensor | None) -> Tensor:
        """h (..., B, F) -> (..., B, F + num_classes) for a conditional model, else h unchanged."""
        if not self.config.conditional:
            return h
        y = self.one_hot(labels, h)
        if y.shape[0] != h.shape[-2]:
            raise ValueError(f"{y.shape[0]} labels for {h.shape[-2]} codes")
        return torch.cat([h, y.expand(*h.shape[:-1], y.shape[-1])], dim=-1)

    def encode(self, x: Tensor, labels: Tensor | None = None) -> DiagonalGaussian | PointMass | FlowPosterior:
        """x: (B, C, H, W) in [0, 1] -> posterior q(z|x) over (B, latent_dim). An M2 given no labels uses the
        likeliest class of its own q(y|x)."""
        features = self.encoder(x)
        if labels is None and self.classifier is not None:
            labels = self.classifier(features).argmax(1)
        return self._posterior(features, labels)

    def _posterior(self, features: Tensor, labels: Tensor | None) -> DiagonalGaussian | PointMass | FlowPosterior:
        """The encoder's features (B, F) (and a conditional model's labels) -> q(z|x) (or q(z|x, y))."""
        h = self.to_latent(self._join_label(features, labels))
        d = self.config.latent_dim
        if not self.config.is_variational:
            return PointMass(h)
        mean, logvar, context = h[:, :d], h[:, d : 2 * d], h[:, 2 * d :]
        if self.flow is not None:
            return FlowPosterior(mean, logvar, context, self.flow)
        return DiagonalGaussian(mean, logvar)

    def decode(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """z: (B, latent_dim) -> decoder parameters (B, C, H, W): logits or Gaussian means."""
        return self.decoder(self._join_label(z, labels))

    def decode_image(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """z -> E[x|z] in [0, 1], (B, C, H, W): what the app shows."""
        return self.mean_image(self.decode(z, labels))

    def mean_image(self, params: Tensor) -> Tensor:
        """Decoder parameters -> E[x|z] in [0, 1]."""
        return mean_image(params, self.config.likelihood)

    def sample_pixels(self, params: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Decoder parameters -> one draw x ~ p(x|z), (B, C, H, W)."""
        return sample_pixels(params, self.config.likelihood, self.config.gaussian_std, generator)

    def prior_log_prob(self, z: Tensor) -> Tensor:
        """log p(z) for z of shape (..., D) -> (...), whichever prior the config names (models/prior.py)."""
        return mixture_log_prob(z, *self.prior.components(self.encode, z))

    def sample_prior(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> Tensor:
        """n codes z ~ p(z), (n, D); `temperature` scales each component's spread."""
        like = next(self.parameters())
        return mixture_sample(n, *self.prior.components(self.encode, like), generator=generator, temperature=temperature)

    def kl(self, posterior, z: Tensor) -> Tensor:
        """KL(q(z|x) || p(z)) per image, (B,). The standard normal prior has a closed form (Kingma & Welling 2014,
        Appendix B); a learned prior (mog, vamp) has none, so it is the one-sample Monte-Carlo estimate
        log q(z|x) - log p(z) at the z ~ q(z|x) that the caller drew (unbiased; Tomczak & Welling 2018, eq. 11)."""
        if self.closed_form_kl:
            return posterior.kl()
        return posterior.log_prob(z) - self.prior_log_prob(z)

    @torch.no_grad()
    def marginal_kl_per_dim(self, posterior, generator: torch.Generator | None = None,
                            samples: int = MARGINAL_SAMPLES) -> Tensor:
        """KL(q(z_d|x) || p(z_d)) of each dimension's marginals, per image, (B, D), in nats: how much dimension d
        of the code moves away from what the prior expects there, the same figure for every prior and posterior.

        KL_d = -H(q(z_d|x)) - E_q[log p(z_d)], with p(z_d) the prior's 1-D marginal (models/prior.py):
        - N(0, I) prior, Gaussian q: the closed form (Kingma & Welling 2014, Appendix B); the d's sum to the KL.
        - a learned prior (mog, vamp), Gaussian q: the entropy in closed form, E_q[log p(z_d)] by Gauss-Hermite
          quadrature (no sampling noise).
        - a flow q (IAF): both terms from `samples` draws of q(z|x): the cross-entropy by their mean, the entropy
          of each 1-D marginal by the Ebrahimi et al. (1994) spacing estimator (scipy.stats.differential_entropy).
        With a learned prior or a flow, the d's need not sum to the model's KL (the dimensions are not independent
        under p or q): that KL is `kl(posterior, z)`. An AE: zeros.
        """
        if isinstance(posterior, PointMass):
            return torch.zeros_like(posterior.mean)
        if self.closed_form_kl:
            return posterior.kl_per_dim()
        components = self.prior.components(self.encode, posterior.mean)
        if isinstance(posterior, DiagonalGaussian):
            return gaussian_marginal_kl(posterior.mean, posterior.logvar, components)
        from scipy.stats import differential_entropy

        eps = torch.randn((samples, *posterior.mean.shape), generator=generator, device=posterior.mean.device,
                          dtype=posterior.mean.dtype)
        z = posterior.transform(eps)[0]  # (S, B, D)
        cross = -marginal_log_prob(z, *components).mean(0)  # (B, D)
        entropy = differential_entropy(z.double().cpu().numpy(), axis=0, method="ebrahimi")  # (B, D)
        return cross - torch.as_tensor(entropy, dtype=cross.dtype, device=cross.device)

    @property
    def closed_form_kl(self) -> bool:
        """True when KL(q(z|x) || p(z)) has a closed form: an AE (0), or a Gaussian q with the N(0, I) prior."""
        return not self.config.is_variational or (self.config.prior == "standard" and self.config.flow == "none")

    def classify(self, x: Tensor) -> Tensor:
        """M2's q(y|x): x (B, C, H, W) -> class logits (B, num_classes). Only a semi-supervised model has one."""
        if self.classifier is None:
            raise ValueError("only a semi-supervised model (M2) has a classifier q(y|x)")
        return self.classifier(self.encoder(x))

    def _neg_elbo_terms(self, features: Tensor, x: Tensor, labels: Tensor, generator) -> tuple[Tensor, Tensor]:
        """-log p(x|y, z) and KL(q(z|x, y) || p(z)) per image, (B,) each, at one z ~ q(z|x, y)."""
        posterior = self._posterior(features, labels)
        z = posterior.sample(generator)
        return -self.log_likelihood(self.decode(z, labels), x), self.kl(posterior, z)

    def semi_supervised_loss(self, x_labelled: Tensor, labels: Tensor, x_unlabelled: Tensor, *,
                             class_weight: float, beta: float = 1.0,
                             generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """M2's objective (Kingma et al. 2014, "Semi-supervised learning with deep generative models", eqs. 6-9),
        each part averaged over its images:

            L(x, y) = -log p(x|y, z) + beta * KL(q(z|x, y) || p(z)) - log p(y),   z ~ q(z|x, y), p(y) uniform
            labelled (x, y):  L(x, y) + class_weight * (-log q(y|x))
            unlabelled x:     U(x) = sum_y q(y|x) L(x, y) - H(q(y|x))

        loss = mean L(x, y) + mean U(x) + class_weight * mean(-log q(y|x)); with beta = 1, L is -ELBO of
        log p(x, y) and U is -ELBO of log p(x). Terms: loss, recon and kl (the unlabelled images', expected under
        q(y|x)), labelled (mean L), unlabelled (mean U), entropy (mean H(q(y|x))), class_loss and class_error
        (of q(y|x) on the labelled batch)."""
        k = self.config.num_classes
        log_py = -math.log(k)
        h_l = self.encoder(x_labelled)
        recon_l, kl_l = self._neg_elbo_terms(h_l, x_labelled, labels, generator)
        labelled = (recon_l + beta * kl_l).mean() - log_py
        logits_l = self.classifier(h_l)
        class_loss = F.cross_entropy(logits_l, labels)
        h_u = self.encoder(x_unlabelled)
        b = len(x_unlabelled)
        log_q = F.log_softmax(self.classifier(h_u), dim=1)  # (B, K)
        q = log_q.exp()
        every = torch.arange(k, device=x_unlabelled.device).repeat_interleave(b)  # (K * B,): class-major
        recon_u, kl_u = self._neg_elbo_terms(h_u.repeat(k, 1), x_unlabelled.repeat(k, *([1] * (x_unlabelled.dim() - 1))),
                                             every, generator)
        per_class = (recon_u + beta * kl_u).view(k, b).T - log_py  # (B, K): L(x, y) for every y
        entropy = -(q * log_q).sum(1)
        unlabelled = ((q * per_class).sum(1) - entropy).mean()
        return {"loss": labelled + unlabelled + class_weight * class_loss,
                "recon": (q * recon_u.view(k, b).T).sum(1).mean(), "kl": (q * kl_u.view(k, b).T).sum(1).mean(),
                "labelled": labelled, "unlabelled": unlabelled, "entropy": entropy.mean(), "class_loss": class_loss,
                "class_error": (logits_l.argmax(1) != labels).float().mean()}

    def forward(self, x: Tensor, sample_posterior: bool = False, generator: torch.Generator | None = None,
                labels: Tensor | None = None) -> Tensor:
        """Reconstruction E[x|z] of x; deterministic (z = posterior mode) unless asked to sample."""
        posterior = self.encode(x, labels)
        z = posterior.sample(generator) if sample_posterior else posterior.mode()
        return self.decode_image(z, labels)

    def log_likelihood(self, params: Tensor, x: Tensor) -> Tensor:
        """log p(x|z) summed over pixels, (B,)."""
        return log_likelihood(params, x, self.config.likelihood, self.config.gaussian_std)

    def loss(
        self,
        x: Tensor,
        *,
        beta: float = 1.0,
        free_bits: float = 0.0,
        tc_beta: float = 0.0,
        dataset_size: int = 0,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Named loss terms, each summed over pixels / latent dims and averaged over the batch (`labels`: a
        conditional model's classes).

        loss = recon + beta * kl_term, with recon = -log p(x|z), z ~ q(z|x) (one sample).
        Free bits (Kingma et al. 2016, "Improved VI with IAF", eq. 15): the KL of each latent
        dimension, averaged over the batch, is clamped from below at `free_bits` nats in the
        objective only; the reported `kl` is the true KL. For the AE, kl is 0 and loss = recon.
        β-TCVAE (Chen et al. 2018, eq. 4): with `tc_beta` > 0 the total correlation of the aggregate posterior gets
        the weight tc_beta and the rest of the KL (index-code MI and dimension-wise KL) keeps `beta`:
        loss = recon + beta * kl + (tc_beta - beta) * tc, tc the minibatch-weighted estimate over a training set
        of `dataset_size` images (total_correlation); tc_beta = beta = 1 is the ELBO. The terms gain `tc`.
        """
        posterior = self.encode(x, labels)
        z = posterior.sample(generator)
        recon = -self.log_likelihood(self.decode(z, labels), x).mean()
        if tc_beta > 0:
            if not isinstance(posterior, DiagonalGaussian) or free_bits > 0:
                raise ValueError("the total-correlation penalty (β-TCVAE) needs a VAE with a diagonal Gaussian "
                                 "posterior (no flow) and no free bits")
            kl = self.kl(posterior, z).mean()
            tc = total_correlation(posterior, z, dataset_size)
            return {"loss": recon + beta * kl + (tc_beta - beta) * tc, "recon": recon, "kl": kl, "tc": tc}
        use_floor = free_bits > 0 and self.config.is_variational  # an AE has no KL to floor
        if not self.closed_form_kl:
            if use_floor:
                raise ValueError("free bits floor the KL of each dimension, which only a Gaussian posterior with the "
                                 "standard prior has in closed form; train a mog/vamp prior or a flow with --free-bits 0")
            kl = self.kl(posterior, z).mean()  # one-sample Monte-Carlo estimate (see kl())
            return {"loss": recon + beta * kl, "recon": recon, "kl": kl}
        kl_per_dim = posterior.kl_per_dim().mean(dim=0)  # (D,)
        kl = kl_per_dim.sum()
        kl_term = kl_per_dim.clamp(min=free_bits).sum() if use_floor else kl
        return {"loss": recon + beta * kl_term, "recon": recon, "kl": kl}

    @torch.no_grad()
    def importance_log_weights(self, x: Tensor, k: int, generator: torch.Generator | None = None,
                               labels: Tensor | None = None) -> Tensor:
        """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), z_i ~ q(z|x); (k, B).

        logsumexp_i(log w_i) - log k is the IWAE bound on log p(x) (Burda et al. 2015, eq. 8); for a
        conditional model, on log p(x|y).
        """
        posterior = self.encode(x, labels)
        if isinstance(posterior, PointMass):
            raise ValueError("importance sampling needs a VAE (a point-mass posterior has no density)")
        b, d = posterior.mean.shape
        eps = torch.randn((k, b, d), generator=generator, device=x.device, dtype=x.dtype)
        z, log_q = posterior.transform(eps)  # (k, B, D), (k, B)
        params = self.decode(z.reshape(k * b, d), repeat_labels(labels, k))
        log_px_z = self.log_likelihood(params, x.repeat(k, 1, 1, 1)).reshape(k, b)
        return log_px_z + self.prior_log_prob(z) - log_q

    # ---- checkpoints ------------------------------------------------------------------------
    def save_pretrained(self, directory, metrics: dict | None = None, dtype: torch.dtype | None = None) -> None:
        from .checkpoint import save_pretrained

        save_pretrained(self, directory, metrics, dtype)

    @classmethod
    def from_pretrained(cls, directory, device: str | torch.device = "cpu") -> "Autoencoder":
        from .checkpoint import load_pretrained

        return load_pretrained(cls, directory, device)
