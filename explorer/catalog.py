"""What the app expects on disk, without importing torch: dataset names, model names, file checks.

The app shows this at start-up (before torch and the models are loaded) so that a missing
checkpoint is named at once; deeper checks (a corrupt file) come when the models load.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

DATASETS = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
APP_MODELS = ("ae-16", "vae-16", "ae-2", "vae-2")  # the models the tabs compare; every other model folder loads too
REGENERATE = "make checkpoints"
MODEL_FILES = ("config.json", "model.safetensors")


def checkpoint_root() -> Path:
    """LATENT_EXPLORER_CHECKPOINTS, else checkpoints/ next to the app."""
    env = os.environ.get("LATENT_EXPLORER_CHECKPOINTS")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "checkpoints"


def missing_files(root: Path, dataset: str) -> list[str]:
    """The expected files of one dataset that do not exist (the atlas, then each model's two files)."""
    folder = Path(root) / dataset
    expected = [folder / "atlas.npz"] + [folder / m / f for m in APP_MODELS for f in MODEL_FILES]
    return [str(p) for p in expected if not p.is_file()]


def find_models(folder: Path) -> list[str]:
    """Every model of a dataset folder, by name: each subfolder holding config.json and model.safetensors,
    except the scorecard's classifier (its config says "kind": "classifier"). A config that cannot be read
    still counts: loading it then says what is wrong with it."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    names = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not all((sub / f).is_file() for f in MODEL_FILES):
            continue
        try:
            config = json.loads((sub / "config.json").read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            config = None
        if not (isinstance(config, dict) and config.get("kind") == "classifier"):
            names.append(sub.name)
    return names
