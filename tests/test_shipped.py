"""The shipped checkpoints: all 8 present, loadable, small, with provenance, and metrics that reproduce.

Checks checkpoints/ of the repo, or the folder named by LATENT_EXPLORER_CHECKPOINTS. An empty or
partial folder fails loudly: the expected 8 models are listed here, not discovered.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from models import Autoencoder, ModelConfig

REPO = Path(__file__).resolve().parents[1]
ROOT = Path(os.environ.get("LATENT_EXPLORER_CHECKPOINTS", REPO / "checkpoints"))
DATASETS = ("mnist", "fashion-mnist")
MODELS = ("ae-16", "vae-16", "ae-2", "vae-2")
EXPECTED = [f"{d}/{m}" for d in DATASETS for m in MODELS]
MAX_BYTES = 10 * 2**20  # every shipped file (resume state is not shipped: .gitignore)
NOT_SHIPPED = {"resume.safetensors"}
EVAL_KEYS = {"recon_per_image", "mse_per_pixel", "neg_elbo", "is_k", "n_images", "likelihood", "binarized"}
VAE_EVAL_KEYS = {"is_nll", "kl_per_dim", "active_units"}


def discovered() -> list[str]:
    return sorted(str(p.parent.relative_to(ROOT)) for p in ROOT.glob("*/*/config.json"))


def test_every_expected_checkpoint_is_there():
    assert ROOT.is_dir(), f"{ROOT} does not exist: run `make checkpoints`"
    found = discovered()
    missing = sorted(set(EXPECTED) - set(found))
    assert not missing, f"{ROOT} lacks {missing} (found {found}): run `make checkpoints`"


@pytest.fixture(params=EXPECTED)
def name(request) -> str:
    return request.param


def test_loads_and_matches_its_name(name):
    model = Autoencoder.from_pretrained(ROOT / name)
    bottleneck, latent_dim = name.split("/")[1].split("-")
    assert model.config.bottleneck == bottleneck
    assert model.config.latent_dim == int(latent_dim)
    assert model.config.likelihood == "bernoulli"  # both datasets: Bernoulli decoder (team notes)


def test_files_are_small(name):
    folder = ROOT / name
    files = [p for p in [*folder.iterdir(), ROOT / name.split("/")[0] / "atlas.npz"]
             if p.is_file() and p.name not in NOT_SHIPPED]
    assert {"config.json", "model.safetensors", "metrics.json"} <= {p.name for p in files}
    too_big = {str(p.relative_to(ROOT)): p.stat().st_size for p in files if p.stat().st_size >= MAX_BYTES}
    assert not too_big, f"files of 10 MB or more: {too_big}"


def test_metrics_have_provenance(name):
    folder = ROOT / name
    metrics = json.loads((folder / "metrics.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    dataset = name.split("/")[0]
    assert metrics["model_config"] == config
    assert ModelConfig.from_dict(metrics["model_config"]) == Autoencoder.from_pretrained(folder).config
    train_cfg = metrics["train_config"]
    assert train_cfg["dataset"] == dataset and metrics["dataset"] == dataset
    assert metrics["seed"] == train_cfg["seed"]
    hashes = metrics["dataset_files_sha256"]
    assert any(k.startswith("train-images") for k in hashes), hashes
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in hashes.values())
    for package in ("python", "torch", "torchvision", "numpy", "safetensors"):
        assert metrics["versions"][package], package
    assert metrics["train_seconds"] > 0
    history = metrics["history"]
    assert [h["epoch"] for h in history] == list(range(1, train_cfg["epochs"] + 1))
    for h in history:
        for key in ("train_loss", "train_recon", "train_kl", "val_loss", "lr", "step"):
            assert key in h, key
    eval_keys = EVAL_KEYS | (VAE_EVAL_KEYS if config["bottleneck"] == "vae" else set())
    assert eval_keys <= set(metrics.get("eval", {})), f"eval lacks {sorted(eval_keys - set(metrics.get('eval', {})))}"
    assert "atlas_check" in metrics
