"""What the app expects on disk, without importing torch: dataset names, model names, file checks.

The app shows this at start-up (before torch and the models are loaded) so that a missing
checkpoint is named at once; deeper checks (a corrupt file) come when the models load.
"""
from __future__ import annotations

import os
from pathlib import Path

DATASETS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
MODEL_NAMES = ("ae-16", "vae-16", "ae-2", "vae-2")
REGENERATE = "make checkpoints"
MODEL_FILES = ("config.json", "model.safetensors")


def checkpoint_root() -> Path:
    """LATENT_EXPLORER_CHECKPOINTS, else checkpoints/ next to the app."""
    env = os.environ.get("LATENT_EXPLORER_CHECKPOINTS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "checkpoints"


def missing_files(root: Path, dataset: str) -> list[str]:
    """The expected files of one dataset that do not exist (the atlas, then each model's two files)."""
    folder = Path(root) / dataset
    expected = [folder / "atlas.npz"] + [folder / m / f for m in MODEL_NAMES for f in MODEL_FILES]
    return [str(p) for p in expected if not p.is_file()]
