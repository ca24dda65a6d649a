"""Missing-pixel imputation: the masks, the AE fill, and the VAE samplers against a closed-form conditional."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explorer import impute
from models import Autoencoder, ModelConfig

SAMPLERS = (impute.pseudo_gibbs, impute.metropolis_within_gibbs)


def linear_gaussian_vae(shrink: float = 0.7, inflate: float = 2.0, seed: int = 0):
    """x = W z + b + sigma * eps, z ~ N(0, I), on 3x3 one-channel images: p(x_m | x_o) is Gaussian in closed form.

    The encoder is deliberately wrong: the exact posterior mean shrunk by `shrink`, the variance of each
    dimension inflated by `inflate` (and no correlation), so only a sampler that corrects the encoder's
    errors can recover the true conditional."""
    g = torch.Generator().manual_seed(seed)
    d, p, sigma = 2, 9, 0.3
    model = Autoencoder(ModelConfig(family="mlp", bottleneck="vae", latent_dim=d, likelihood="gaussian",
                                    gaussian_std=sigma, hidden_dim=p, hidden_layers=1, image_size=3))
    w, b = 0.5 * torch.randn(p, d, generator=g), torch.full((p,), 0.5)
    model.decoder.net = nn.Sequential(nn.Linear(d, p), nn.Unflatten(1, (1, 3, 3)))
    model.decoder.net[0].weight.data, model.decoder.net[0].bias.data = w.clone(), b.clone()
    post_cov = torch.linalg.inv(torch.eye(d) + w.T @ w / sigma**2)  # Bishop, PRML eq. 12.42 (probabilistic PCA)
    gain = post_cov @ w.T / sigma**2
    model.encoder.net, model.encoder.out_dim = nn.Flatten(), p
    model.to_latent = nn.Linear(p, 2 * d)
    model.to_latent.weight.data = torch.cat([shrink * gain, torch.zeros(d, p)])
    model.to_latent.bias.data = torch.cat([-shrink * gain @ b, torch.log(inflate * post_cov.diag())])
    return model.eval(), w, b, sigma


def gaussian_conditional(mean: torch.Tensor, cov: torch.Tensor, observed: torch.Tensor, x_o: torch.Tensor):
    """Mean and covariance of x_m | x_o for x ~ N(mean, cov) (Bishop, PRML eqs. 2.81-2.82)."""
    o, m = observed.nonzero()[:, 0], (~observed).nonzero()[:, 0]
    gain = cov[m][:, o] @ torch.linalg.inv(cov[o][:, o])
    return mean[m] + gain @ (x_o - mean[o]), cov[m][:, m] - gain @ cov[o][:, m]


def test_metropolis_within_gibbs_matches_the_closed_form_conditional_and_pseudo_gibbs_does_not():
    model, w, b, sigma = linear_gaussian_vae()
    x = (w @ torch.tensor([1.0, -0.5]) + b).reshape(1, 1, 3, 3)
    missing = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    missing[..., 0, :] = True
    missing[..., 1, 0] = True
    observed = ~missing.flatten()
    mean, cov = gaussian_conditional(b, w @ w.T + sigma**2 * torch.eye(9), observed, x.flatten()[observed])
    sd = cov.diag().sqrt()
    chains = 4000  # independent chains: their last states are independent draws
    results = {}
    for sampler in SAMPLERS:
        r = sampler(model, x, missing, 0.5, steps=200, chains=chains, generator=torch.Generator().manual_seed(1))
        draws = r.draws[:, 0].flatten(1)
        assert torch.equal(draws[:, observed], x.flatten()[observed].expand(chains, -1))  # observed: untouched
        d = draws[:, ~observed]
        results[sampler.__name__] = (((d.mean(0) - mean) / sd).abs().max(), (torch.cov(d.T) - cov).norm() / cov.norm())
    mean_err, cov_err = results["metropolis_within_gibbs"]
    assert mean_err < 0.08 and cov_err < 0.1  # standard error of the mean: 1/sqrt(4000) = 0.016 sd
    mean_err, cov_err = results["pseudo_gibbs"]  # the wrong encoder biases pseudo-Gibbs: the test can tell
    assert mean_err > 0.3 or cov_err > 0.3


@pytest.mark.parametrize("name", list(impute.MASKS))
def test_preset_masks(name):
    m = impute.preset_mask(name, 3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert m.shape == (3, 1, 28, 28) and m.dtype == torch.bool
    share = m.float().mean().item()
    expected = {"centre": 0.25, "random_50": 0.5, "random_80": 0.8}.get(name, 0.5)
    assert abs(share - expected) < 0.03
    if name == "top_half":
        assert m[..., :14, :].all() and not m[..., 14:, :].any()
    if name == "centre":
        assert m[..., 7:21, 7:21].all() and m.sum() == 3 * 14 * 14
    if name.startswith("random"):
        assert not torch.equal(m[0], m[1])  # drawn per image
    with pytest.raises(ValueError, match="unknown mask"):
        impute.preset_mask("random_half", 1, 1, 28, 28)


def tiny_vae(likelihood: str) -> Autoencoder:
    torch.manual_seed(0)
    return Autoencoder(ModelConfig(bottleneck="vae", latent_dim=3, channels=4, hidden_dim=16, likelihood=likelihood)).eval()


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_every_fill_keeps_the_observed_pixels_bit_for_bit(likelihood):
    model = tiny_vae(likelihood)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 1, 28, 28, generator=g)
    missing = impute.preset_mask("random_50", 5, 1, 28, 28, generator=g)
    outs = [impute.ae_fill(model, x, missing, 0.3, steps=3)]
    for sampler in SAMPLERS:
        r = sampler(model, x, missing, 0.3, steps=3, chains=2, generator=g)
        assert r.means.shape == r.draws.shape == (2, 5, 1, 28, 28) and 0 <= r.acceptance <= 1
        outs += [r.means[0], r.means[1], r.draws[0], r.mean]
    for out in outs:
        assert torch.equal(out[~missing], x[~missing])
        assert out.isfinite().all()
    assert not torch.equal(outs[1][missing], outs[2][missing])  # two chains, two imputations


def test_missing_mse_counts_only_missing_pixels():
    truth = torch.zeros(2, 1, 2, 2)
    imputed = torch.tensor([[[[1.0, 2.0], [0.0, 0.0]]], [[[3.0, 0.0], [0.0, 0.0]]]])
    missing = torch.tensor([[[[True, False], [False, False]]], [[[True, True], [False, False]]]])
    assert impute.missing_mse(imputed, truth, missing).tolist() == [1.0, 4.5]


@pytest.mark.parametrize("name,mask", [("ae-16", "random_50"), ("vae-16", "random_50"), ("vae-16", "centre")])
def test_shipped_models_fill_better_than_zeros(name, mask):
    """On 200 MNIST test images of the atlas, from the mean-image fill (as the scorecard): every fill of the
    shipped model beats the zero fill on the missing pixels."""
    from explorer.bundle import checkpoint_root

    folder = checkpoint_root() / "mnist"
    model = Autoencoder.from_pretrained(folder / name).eval()
    with np.load(folder / "atlas.npz") as f:
        x = torch.from_numpy(f["images"][::25]).float().div(255).unsqueeze(1)  # (200, 1, 28, 28)
    missing = impute.preset_mask(mask, len(x), 1, 28, 28, generator=torch.Generator().manual_seed(0))
    start = x.mean(0)
    zero = impute.missing_mse(impute.fill(x, missing, 0.0), x, missing).mean()
    fills = {"iterative": impute.ae_fill(model, x, missing, start, steps=10)}
    if model.config.is_variational:
        for sampler in SAMPLERS:
            r = sampler(model, x, missing, start, steps=10, chains=2, generator=torch.Generator().manual_seed(0))
            fills[sampler.__name__] = r.mean
            assert 0.001 < r.acceptance <= 1  # Metropolis-Hastings proposals are not all refused
    for key, out in fills.items():
        assert torch.equal(out[~missing], x[~missing])
        assert impute.missing_mse(out, x, missing).mean() < 0.8 * zero, key


def test_the_apps_labels_name_every_mask_and_score():
    from explorer import anomaly, service

    assert list(service.MASK_LABELS) == list(impute.MASKS)
    assert list(service.SCORE_LABELS) == list(anomaly.SCORES)
