"""The shipped checkpoints: all present, loadable, small, with provenance, and metrics that reproduce.

Checks checkpoints/ of the repo, or the folder named by LATENT_EXPLORER_CHECKPOINTS. An empty or
partial folder fails loudly: the expected models are listed here, not discovered; every model that is
found (explorer.catalog.find_models) gets the same checks.
"""
from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import pytest

from models import Autoencoder, ModelConfig
from training import sources

REPO = Path(__file__).resolve().parents[1]
ROOT = Path(os.environ.get("LATENT_EXPLORER_CHECKPOINTS", REPO / "checkpoints"))
DATASETS = ("mnist", "fashion-mnist")
MODELS = ("ae-16", "vae-16", "ae-2", "vae-2")
VARIANTS = ["mnist/vae-16-beta4", "mnist/vae-16-vamp", "mnist/vae-16-mog", "mnist/vae-16-iaf", "mnist/cvae-16",
            "fashion-mnist/vae-16-vamp", "fashion-mnist/cvae-16"]  # training/checkpoints.sh VARIANTS
SEMI_SUPERVISED = ["mnist/cvae-50-m2"]  # M2 with 100 labels (training/checkpoints.sh stream_b)
DISENTANGLEMENT = [f"dsprites/{m}" for m in ("ae-10", "vae-10", "vae-10-beta4", "vae-10-beta16", "vae-10-tc6")]
EXPECTED = [f"{d}/{m}" for d in DATASETS for m in MODELS] + VARIANTS + SEMI_SUPERVISED + DISENTANGLEMENT
MAX_BYTES = 10 * 2**20  # every shipped file (resume state is not shipped: .gitignore)
NOT_SHIPPED = {"resume.safetensors"}
EVAL_KEYS = {"recon_per_image", "mse_per_pixel", "neg_elbo", "n_images", "likelihood", "binarized"}
VAE_EVAL_KEYS = {"is_nll", "is_k", "marginal_kl_per_dim", "active_units"}  # importance sampling needs a density: VAE only


def discovered() -> list[str]:
    from explorer.catalog import find_models

    return sorted(f"{d.name}/{m}" for d in ROOT.iterdir() if d.is_dir() for m in find_models(d))


def test_every_expected_checkpoint_is_there():
    assert ROOT.is_dir(), f"{ROOT} does not exist: run `make checkpoints`"
    found = discovered()
    missing = sorted(set(EXPECTED) - set(found))
    assert not missing, f"{ROOT} lacks {missing} (found {found}): run `make checkpoints`"


@pytest.fixture(params=sorted(set(EXPECTED) | (set(discovered()) if ROOT.is_dir() else set())))
def name(request) -> str:
    return request.param


def test_loads_and_matches_its_name(name):
    """Names read <kind>-<latent dim>[-<variant>]: ae (deterministic), vae, cvae (class-conditional; -m2: M2, which
    learns from a few labels)."""
    model = Autoencoder.from_pretrained(ROOT / name)
    match = re.fullmatch(r"(c?v?ae)-(\d+)(-[a-z0-9]+)?", name.split("/")[1])
    assert match, name
    kind, latent_dim, variant = match.groups()
    assert model.config.bottleneck == ("ae" if kind == "ae" else "vae")
    assert model.config.conditional == (kind == "cvae")
    assert model.config.latent_dim == int(latent_dim)
    assert model.config.likelihood == "bernoulli"  # every dataset: Bernoulli decoder (team notes)
    expected = {None: {}, "-beta4": {}, "-beta16": {}, "-tc6": {}, "-vamp": {"prior": "vamp"}, "-mog": {"prior": "mog"},
                "-iaf": {"flow": "iaf"}, "-m2": {"semi_supervised": True}}
    for field, value in expected[variant].items():
        assert getattr(model.config, field) == value, (name, field)
    assert model.config.semi_supervised == (variant == "-m2")
    train_config = json.loads((ROOT / name / "metrics.json").read_text())["train_config"]
    weights = {"-beta4": ("beta", 4), "-beta16": ("beta", 16), "-tc6": ("tc_beta", 6)}  # the loss weight it names
    if variant in weights:
        field, value = weights[variant]
        assert train_config[field] == value, (name, train_config)


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
    if sources.is_user_spec(train_cfg["dataset"]):  # a dataset made in code: the hash of what the code renders now
        assert hashes == _generated_hashes(train_cfg["dataset"]), "the renderer changed since this model was trained"
    else:
        assert any(k.startswith("train-images") for k in hashes), hashes
    assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", v) for v in hashes.values())
    for package in ("python", "torch", "torchvision", "numpy", "safetensors"):
        assert metrics["versions"][package], package
    assert metrics["train_seconds"] > 0
    history = metrics["history"]
    # A run stopped before its last epoch says so (and how far it got): its history is the epochs it ran.
    epochs = len(history) if "stopped_early" in metrics else train_cfg["epochs"]
    assert [h["epoch"] for h in history] == list(range(1, epochs + 1))
    assert epochs <= train_cfg["epochs"]
    for h in history:
        for key in ("train_loss", "train_recon", "train_kl", "val_loss", "lr", "step"):
            assert key in h, key
    eval_keys = EVAL_KEYS | (VAE_EVAL_KEYS if config["bottleneck"] == "vae" else set())
    assert eval_keys <= set(metrics.get("eval", {})), f"eval lacks {sorted(eval_keys - set(metrics.get('eval', {})))}"
    assert "atlas_check" in metrics


@functools.cache
def _generated_hashes(spec: str) -> dict[str, str]:
    return sources.files_sha256(spec)


# ---- the figures in metrics.json reproduce from the shipped files alone --------------------------------
IWAE_IMAGES = 50  # is_nll is re-estimated on this many atlas images (k as shipped) and compared statistically


def _atlas(name: str):
    import numpy as np

    path = ROOT / name.split("/")[0] / "atlas.npz"
    assert path.is_file(), f"{path} is missing: run `make checkpoints` (training.export writes it)"
    with np.load(path, allow_pickle=False) as atlas:
        return {k: atlas[k] for k in atlas.files}


def test_atlas_codes_come_from_this_model(name):
    """The atlas is written separately from the weights: its codes must be this model's posterior means."""
    import numpy as np
    import torch

    from training.data import to_float

    atlas, model = _atlas(name), Autoencoder.from_pretrained(ROOT / name)
    model_name = name.split("/")[1]
    images = torch.from_numpy(atlas["images"][:64])
    labels = torch.from_numpy(atlas["labels"][:64]) if model.config.conditional else None  # a CVAE: the true class
    size = json.loads((ROOT / name.split("/")[0] / "dataset.json").read_text())["image_size"]
    assert atlas["images"].dtype.name == "uint8" and atlas["images"].shape[1:3] == (size, size)
    assert size == model.config.image_size
    with torch.inference_mode():
        posterior = model.encode(to_float(images), labels)
    # stored in half precision (training.export.CODE_DTYPE): equal to the model's codes to within float16's rounding
    assert atlas[f"{model_name}__mean"].dtype == np.float16
    torch.testing.assert_close(torch.from_numpy(atlas[f"{model_name}__mean"][:64]).float(), posterior.mean,
                               rtol=1e-3, atol=1e-4)
    if model.config.is_variational:
        torch.testing.assert_close(torch.from_numpy(atlas[f"{model_name}__std"][:64]).float(), posterior.std,
                                   rtol=1e-3, atol=1e-5)


def test_atlas_check_reproduces(name):
    """Recompute metrics.json's atlas_check with training.evaluate on the shipped atlas.

    Every figure except is_nll depends only on (images, seed), not on k, so they are recomputed with
    k=1 and must agree to float32 round-off (rtol 1e-4: thread counts change summation order).
    is_nll (k importance samples, the expensive part) is re-estimated on the first IWAE_IMAGES
    images (same binarization, same k, fresh draws) and their mean must lie within 4 standard errors
    of the shipped mean over n_images (finite-population correction: the shipped images include these).
    """
    import math

    import torch

    from training import evaluate

    folder = ROOT / name
    torch.set_num_threads(1)
    metrics = json.loads((folder / "metrics.json").read_text())
    shipped = metrics["atlas_check"]
    model = Autoencoder.from_pretrained(folder)
    _, binarize = evaluate.checkpoint_dataset(folder, metrics)
    assert shipped["binarized"] == binarize
    images, labels = evaluate.atlas_check_images(ROOT / name.split("/")[0] / "atlas.npz", shipped["n_images"],
                                                 shipped["seed"])
    assert len(images) == shipped["n_images"] and shipped["subset"] == evaluate.ATLAS_CHECK_SUBSET
    recomputed = evaluate.evaluate_images(model, images, binarize=binarize, k=1, seed=shipped["seed"], labels=labels)
    for key in ("recon_per_image", "mse_per_pixel", "neg_elbo", "elbo_recon", "kl"):
        assert recomputed[key] == pytest.approx(shipped[key], rel=1e-4, abs=1e-6), key
    if not model.config.is_variational:
        return
    assert recomputed["marginal_kl_per_dim"] == pytest.approx(shipped["marginal_kl_per_dim"], rel=1e-4, abs=1e-6)
    assert recomputed["active_units"] == shipped["active_units"]

    # is_nll: IWAE_IMAGES of the images drawn at random, binarized exactly as the evaluator did (whole subset, in
    # order, seeded).
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(1))[:IWAE_IMAGES]
    x = evaluate.prepare_batch(images, binarize, torch.Generator().manual_seed(shipped["seed"]))[pick]
    g_iwae = torch.Generator().manual_seed(shipped["seed"] + 2)
    with torch.inference_mode():
        nll = -evaluate.iwae_log_px(model, x, shipped["k"], generator=g_iwae, chunk=max(1, 10_000 // len(x)),
                                    labels=labels[pick] if model.config.conditional else None)
    n, m = shipped["n_images"], len(x)
    se = nll.std().item() / math.sqrt(m) * math.sqrt(max(0.0, 1 - m / n))
    assert abs(nll.mean().item() - shipped["is_nll"]) <= 4 * se + 1e-3, (nll.mean().item(), shipped["is_nll"], se)
    assert shipped["is_nll"] <= shipped["neg_elbo"] + 4 * se + 1e-3  # the IWAE bound is tighter than the ELBO


def test_atlas_check_is_consistent_with_full_test_set(name):
    """The atlas subset is a random sample of the test set: its figures are close to the full-set ones."""
    metrics = json.loads((ROOT / name / "metrics.json").read_text())
    full, subset = metrics["eval"], metrics["atlas_check"]
    assert full["n_images"] >= subset["n_images"]
    for key in ("recon_per_image", "neg_elbo") + (("is_nll",) if "is_nll" in full else ()):
        assert subset[key] == pytest.approx(full[key], rel=0.1), key
