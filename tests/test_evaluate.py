"""The evaluator's pieces against closed forms and independent references.

(a) IWAE estimate on a linear-Gaussian model, where log p(x) is exact (torch.distributions);
(b) chunking the importance samples does not change the estimate;
(c) active units on a synthetic posterior with known active dimensions;
(d) PCA baseline against sklearn's PCA reconstruction;
(e) the CLI end to end on fake data, and its one-line errors.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

from models import Autoencoder, ModelConfig
from models.likelihood import gaussian_log_prob
from models.posterior import DiagonalGaussian, standard_normal_log_prob
from training import evaluate
from training.train import TrainConfig, train

from tests.fake_data import write_fake_mnist

ROOT = Path(__file__).resolve().parents[1]


class LinearGaussian:
    """p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I)  =>  p(x) = N(b, W W^T + s^2 I).

    The encoder is the exact posterior with its mean shifted and its std inflated, so the
    importance weights vary and the ELBO is strictly below log p(x).
    """

    def __init__(self, p: int = 6, d: int = 2, s: float = 0.5, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(p, d, generator=g, dtype=torch.float64)
        self.b = torch.randn(p, generator=g, dtype=torch.float64)
        self.s = s
        precision = torch.eye(d, dtype=torch.float64) + self.w.T @ self.w / s**2
        self.post_cov = torch.linalg.inv(precision)  # exact posterior covariance (full)

    def log_px(self, x: torch.Tensor) -> torch.Tensor:
        cov = self.w @ self.w.T + self.s**2 * torch.eye(len(self.b), dtype=torch.float64)
        return MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)

    def encode(self, x: torch.Tensor, labels=None) -> DiagonalGaussian:
        mean = (x - self.b) @ self.w @ self.post_cov.T / self.s**2 + 0.15  # biased mean
        std = 1.2 * self.post_cov.diagonal().sqrt()  # too wide, and ignores the correlation
        return DiagonalGaussian(mean, (2 * std.log()).expand_as(mean))

    def decode(self, z: torch.Tensor, labels=None) -> torch.Tensor:
        return z @ self.w.T + self.b

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_normal_log_prob(z)

    def kl(self, posterior, z: torch.Tensor) -> torch.Tensor:
        return posterior.kl()

    def log_likelihood(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return gaussian_log_prob(params, x, self.s)

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """Closed form: E_q[log N(x; Wz + b, s^2 I)] - KL(q || p), q diagonal Gaussian."""
        q = self.encode(x)
        resid = x - self.decode(q.mean)
        trace = (self.w.pow(2) * q.std.pow(2).unsqueeze(1)).sum((1, 2))  # tr(W diag(var) W^T)
        p = x.shape[1]
        expected_ll = -0.5 * p * math.log(2 * math.pi * self.s**2) - (resid.pow(2).sum(1) + trace) / (2 * self.s**2)
        return expected_ll - q.kl()


@pytest.fixture(scope="module")
def lg():
    model = LinearGaussian()
    x = model.decode(torch.randn(4, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    x = x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    return model, x


# ---- (a) IWAE vs the exact log-likelihood -------------------------------------------------------------
def test_iwae_converges_to_exact_log_px(lg):
    model, x = lg
    exact, elbo = model.log_px(x), model.elbo(x)
    assert (elbo < exact - 0.1).all()  # the encoder is imperfect enough for the test to mean something
    gaps = {}
    for k in (1, 10, 100, 5000):
        est = evaluate.iwae_log_px(model, x, k, generator=torch.Generator().manual_seed(k), chunk=1000)
        gaps[k] = (exact - est).abs().max().item()
        if k >= 100:
            assert (est >= elbo).all(), (k, est, elbo)  # IWAE bound is tighter than the ELBO
    assert gaps[5000] < 0.05, gaps
    assert gaps[5000] < gaps[10], gaps


def test_iwae_k1_is_the_elbo_in_expectation(lg):
    """k = 1: log w of one posterior sample, an unbiased estimate of the ELBO.

    Mean of 200 seeds x 200 copies = 40000 draws per image; tolerance 5 standard errors.
    """
    model, x = lg
    draws = []
    for seed in range(200):
        xs = x.repeat_interleave(200, dim=0)  # (4 * 200, P): image i occupies rows i*200 .. i*200+199
        est = evaluate.iwae_log_px(model, xs, 1, generator=torch.Generator().manual_seed(seed))
        draws.append(est.reshape(len(x), 200))
    draws = torch.cat(draws, dim=1)  # (4, 40000)
    se = draws.std(dim=1) / math.sqrt(draws.shape[1])
    assert ((draws.mean(dim=1) - model.elbo(x)).abs() < 5 * se).all(), (draws.mean(1), model.elbo(x), se)


# ---- (b) chunking ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_chunked_equals_unchunked(lg, chunk):
    model, x = lg
    full = evaluate.iwae_log_px(model, x, 300, generator=torch.Generator().manual_seed(3))
    chunked = evaluate.iwae_log_px(model, x, 300, generator=torch.Generator().manual_seed(3), chunk=chunk)
    torch.testing.assert_close(chunked, full, rtol=0, atol=1e-10)


def test_matches_the_models_importance_log_weights():
    """The generic estimator agrees with Autoencoder.importance_log_weights on a real (tiny) VAE."""
    torch.manual_seed(0)
    model = Autoencoder(ModelConfig(family="mlp", hidden_dim=32, latent_dim=3)).eval()
    x = torch.bernoulli(torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    with torch.inference_mode():
        log_w = model.importance_log_weights(x, 50, generator=torch.Generator().manual_seed(4))  # (k, B)
        ref = torch.logsumexp(log_w, 0) - math.log(50)
        est = evaluate.iwae_log_px(model, x, 50, generator=torch.Generator().manual_seed(4), chunk=8)
    torch.testing.assert_close(est, ref, rtol=1e-5, atol=1e-4)


def test_compile_falls_back_to_eager_with_a_note(monkeypatch, capsys):
    """--compile on a machine where compiling fails (no C++ compiler, say): a note, then the eager figures."""
    def broken_compile(fn):
        def call(*args, **kwargs):
            raise RuntimeError("no C++ compiler")
        return call
    monkeypatch.setattr(evaluate.torch, "compile", broken_compile)
    model = Autoencoder(ModelConfig(family="mlp", hidden_dim=16, latent_dim=2)).eval()
    assert evaluate.compiled_log_weights(model, torch.device("cpu")) is None
    assert "compiling failed (RuntimeError)" in capsys.readouterr().err


# ---- (c) active units ------------------------------------------------------------------------------------
def test_active_units_on_known_posterior():
    g = torch.Generator().manual_seed(0)
    n, d = 5000, 8
    scale = torch.tensor([1.0, 0.5, 0.2, 0.11, 0.09, 0.01, 0.0, 1e-3])  # var 1, .25, .04, .0121 | .0081, ...
    means = torch.randn(n, d, generator=g) * scale + 3.0  # a common offset does not make a unit active
    count, variances = evaluate.active_units(means)
    assert count == 4
    torch.testing.assert_close(variances, scale.double().pow(2), rtol=0.1, atol=1e-4)


# ---- (d) PCA baseline -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n_components", [1, 5])
def test_pca_matches_sklearn(n_components):
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    train_x = rng.random((400, 30)) @ rng.random((30, 30))  # correlated features
    test_x = rng.random((100, 30)) @ rng.random((30, 30))
    pca = PCA(n_components=n_components, svd_solver="full").fit(train_x)
    ref = np.mean((pca.inverse_transform(pca.transform(test_x)) - test_x) ** 2)
    ours = evaluate.pca_mse_per_pixel(torch.from_numpy(train_x).float(), torch.from_numpy(test_x).float(), n_components)
    assert ours == pytest.approx(ref, rel=1e-4)


# ---- (e) CLI --------------------------------------------------------------------------------------------
def test_cli_bad_dir_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "training.evaluate", str(tmp_path / "missing")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(tmp_path / "missing") in lines[0]


def test_export_missing_model_is_one_line(tmp_path, capsys):
    from training import export

    with pytest.raises(SystemExit) as info:
        export.main(["--dataset", "mnist", "--data-root", str(tmp_path), "--checkpoints", str(tmp_path)])
    assert info.value.code != 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "make checkpoints" in err[0] and "ae-16" in err[0], err


def test_cli_end_to_end_merges_metrics(tmp_path):
    """Train a tiny VAE on fake data, evaluate it: eval + atlas_check merged, provenance kept, figures sane."""
    data_root = write_fake_mnist(tmp_path / "data", n_train=200, n_test=40)
    out = tmp_path / "ckpt" / "mnist" / "vae-4"
    cfg = TrainConfig(dataset="mnist", data_root=str(data_root), out=str(out), epochs=1, batch_size=50,
                      val_size=20, device="cpu")
    train(cfg, ModelConfig(family="mlp", hidden_dim=32, latent_dim=4), progress=False)
    atlas = tmp_path / "ckpt" / "mnist" / "atlas.npz"
    images = np.stack([np.full((28, 28), 40 * i, np.uint8) for i in range(6)])
    np.savez_compressed(atlas, images=images)
    evaluate.main([str(out), "--data-root", str(data_root), "--k", "20", "--batch-size", "16"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"model_config", "train_config", "history", "eval", "atlas_check"} <= set(metrics)
    ev = metrics["eval"]
    assert ev["n_images"] == 40 and ev["binarized"] and ev["is_k"] == 20 and len(ev["marginal_kl_per_dim"]) == 4
    assert sum(ev["marginal_kl_per_dim"]) == pytest.approx(ev["kl"], rel=1e-5)
    assert ev["neg_elbo"] == pytest.approx(ev["elbo_recon"] + ev["kl"], rel=1e-6)
    assert ev["is_nll"] < ev["neg_elbo"] + 1.0  # k=20 bound vs one-sample ELBO estimate
    assert 0 < ev["pca_mse_per_pixel"] < 0.25 and 0 <= ev["active_units"] <= 4
    assert metrics["atlas_check"]["n_images"] == 6 and metrics["atlas_check"]["k"] == 100


def test_atlas_check_draws_its_images_across_the_atlas():
    """The atlas is sorted by test index; a split in index order (dSprites' grid, a folder read class by class) would
    make its first 1000 images one shape or one class. The check's images are a seeded random draw over all of it."""
    pos = evaluate.atlas_check_positions(5000)
    assert len(pos) == 1000 and len(set(pos.tolist())) == 1000 and (np.diff(pos) > 0).all()
    assert 0.45 < (pos < 2500).mean() < 0.55 and pos.max() > 4500  # both halves, in proportion
    assert (pos == evaluate.atlas_check_positions(5000)).all()  # seeded: the shipped figures recompute
    assert (evaluate.atlas_check_positions(6) == np.arange(6)).all()  # a small atlas: all of it
