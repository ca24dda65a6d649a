"""The disentanglement metrics (training/disentanglement.py) against known answers on a toy process with three
independent factors: the factors themselves score at the top, noise at chance, a rotation that mixes two factors
lowers MIG and DCI disentanglement but not informativeness, and a duplicated factor lowers completeness."""
from __future__ import annotations

import numpy as np
import pytest

from training import disentanglement as dm

COUNTS = (5, 8, 10)
TRUTH = dm.GroundTruth(COUNTS, observe=lambda f: f.astype(np.float64))


def identity(x):
    return (x - np.array(COUNTS) / 2) / np.array(COUNTS)


def noise_of(rng):
    return lambda x: rng.normal(size=(len(x), 3))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    f, ft = TRUTH.sample(3000, rng), TRUTH.sample(1500, rng)
    return f, ft, rng


def rotate(z, angle=np.pi / 4):
    r = z.copy()
    c, s = np.cos(angle), np.sin(angle)
    r[:, 0], r[:, 1] = c * z[:, 0] - s * z[:, 1], s * z[:, 0] + c * z[:, 1]
    return r


def test_mig(data):
    f, _, rng = data
    assert dm.mig(identity(f), f)["mig"] > 0.95
    assert dm.mig(rng.normal(size=f.shape), f)["mig"] < 0.05
    assert dm.mig(rotate(identity(f)), f)["mig"] < 0.6  # factors 0 and 1 now share two dimensions


def test_dci(data):
    f, ft, rng = data
    ident = dm.dci(identity(f), f, identity(ft), ft, n_estimators=20)
    assert ident["disentanglement"] > 0.9 and ident["completeness"] > 0.9 and ident["informativeness"] > 0.95
    noise = dm.dci(rng.normal(size=f.shape), f, rng.normal(size=ft.shape), ft, n_estimators=20)
    assert noise["informativeness"] < 0.3  # chance is 1/5, 1/8, 1/10
    rot = dm.dci(rotate(identity(f)), f, rotate(identity(ft)), ft, n_estimators=20)
    assert rot["disentanglement"] < ident["disentanglement"] - 0.2
    assert rot["informativeness"] > ident["informativeness"] - 0.1  # the information is all still there
    dup = lambda z: np.concatenate([z[:, :1], z], axis=1)  # noqa: E731  (factor 0 coded twice)
    twice = dm.dci(dup(identity(f)), f, dup(identity(ft)), ft, n_estimators=20)
    assert twice["completeness"] < ident["completeness"] - 0.1


def test_sap(data):
    f, ft, rng = data
    ident = dm.sap(identity(f), f, identity(ft), ft)["sap"]
    noise = dm.sap(rng.normal(size=f.shape), f, rng.normal(size=ft.shape), ft)["sap"]
    assert ident > 0.1 and abs(noise) < 0.05 and ident > noise + 0.1


def test_beta_vae_and_factor_vae_metrics():
    rng = np.random.default_rng(1)
    beta_top = dm.beta_vae(TRUTH, identity, rng, train=300, test=150)["beta_vae"]
    beta_noise = dm.beta_vae(TRUTH, noise_of(rng), rng, train=300, test=150)["beta_vae"]
    assert beta_top > 0.95 and beta_noise < 0.5  # chance: 1/3
    fv_top = dm.factor_vae(TRUTH, identity, rng, train=300, test=150, variance_points=2000, prune_below=0.0)
    fv_noise = dm.factor_vae(TRUTH, noise_of(rng), rng, train=300, test=150, variance_points=2000)
    assert fv_top["factor_vae"] > 0.95 and fv_noise["factor_vae"] < 0.5


def test_score_on_a_factor_grid_reads_codes_by_index():
    counts = (3, 4, 5)
    grid = np.stack(np.unravel_index(np.arange(int(np.prod(counts))), counts), 1).astype(np.float64)
    small = {"mig": {"points": 2000, "bins": 20}, "sap": {"train": 1000, "test": 500},
             "dci": {"train": 1000, "test": 500, "model": "GradientBoostingClassifier"},
             "beta_vae": {"train": 300, "test": 150, "batch": 16},
             "factor_vae": {"train": 300, "test": 150, "batch": 16, "variance_points": 1000, "prune_below": 0.0}}
    good = dm.score(grid / np.array(counts), counts, seed=0, protocol=small, dci_estimators=10)
    noise = dm.score(np.random.default_rng(0).normal(size=grid.shape), counts, seed=0, protocol=small,
                     dci_estimators=10)
    for key in ("mig", "dci_disentanglement", "beta_vae", "factor_vae"):
        assert good[key] > 0.9 and noise[key] < 0.55, (key, good[key], noise[key])
    assert np.shape(good["mutual_info"]) == (3, 3) and set(good["seconds"]) == {"mig", "sap", "dci", "beta_vae",
                                                                                "factor_vae"}
    assert good["protocol"]["seed"] == 0 and good["protocol"]["dci"]["n_estimators"] == 10
    again = dm.score(grid / np.array(counts), counts, seed=0, protocol=small, dci_estimators=10)
    assert again["mig"] == good["mig"] and again["factor_vae"] == good["factor_vae"]  # seeded
