"""What is on disk, without importing torch: the datasets and models of the checkpoint root, file checks.

A dataset is a folder under the checkpoint root holding its atlas.npz (and dataset.json: its title, classes, image
format and upload preprocessing; training/export.py writes both). A model is any subfolder holding config.json and
model.safetensors. No list of names in the code decides what the app shows: a new folder appears on the next start.
The shipped datasets are expected: the app names their missing files at start-up (before torch and the models
are loaded); deeper checks (a corrupt file) come when the models load.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

SHIPPED = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}  # the datasets checkpoints/ ships (expected, listed first)
APP_MODELS = ("ae-16", "vae-16", "ae-2", "vae-2")  # the models the app loads at start; every other one on first use
DEFAULT_PAIR = ("ae-16", "vae-16")  # Model A and Model B of a dataset whose dataset.json names no "pair"
INFO_NAME = "dataset.json"
REGENERATE = "make checkpoints"
MODEL_FILES = ("config.json", "model.safetensors")
DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "checkpoints"  # the app's own, shipped with it


def checkpoint_root() -> Path:
    """LATENT_EXPLORER_CHECKPOINTS, else checkpoints/ next to the app."""
    env = os.environ.get("LATENT_EXPLORER_CHECKPOINTS")
    return Path(env) if env else DEFAULT_ROOT


def find_datasets(root: Path) -> dict[str, str]:
    """{folder name: title} of every dataset under the checkpoint root: the shipped ones first, then every other
    folder holding an atlas.npz, by name. The shipped ones are expected (listed even when missing, so that the app
    can say what to regenerate) in the app's own checkpoints/ or in a root that holds no dataset at all; a root of
    one's own (LATENT_EXPLORER_CHECKPOINTS) is expected to hold only the folders it has."""
    root = Path(root)
    others = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "atlas.npz").is_file()) if root.is_dir() else []
    own = [k for k in others if k not in SHIPPED]
    expect_shipped = not own or root.resolve() == DEFAULT_ROOT.resolve()
    shipped = [k for k in SHIPPED if expect_shipped or (root / k).is_dir()]
    return {key: dataset_title(root, key) for key in [*shipped, *own]}


def read_atlas(path: str | os.PathLike) -> dict:
    """Every array of an atlas.npz (no pickle), its float16 codes and map positions as float32: the file stores
    them in half precision to stay small, and every computation on them runs in float32 or wider."""
    import numpy as np

    with np.load(path, allow_pickle=False) as f:
        return {k: (f[k].astype(np.float32) if f[k].dtype == np.float16 else f[k]) for k in f.files}


def read_info(folder: Path) -> dict:
    """dataset.json of a dataset folder ({} if absent or unreadable: the atlas and configs then speak for it)."""
    try:
        info = json.loads((Path(folder) / INFO_NAME).read_text())
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


def default_pair(info: dict) -> tuple[str, str]:
    """The Model A and Model B a dataset opens with: dataset.json's "pair" (dSprites: its AE-10 and VAE-10), else
    the AE-16 and the VAE-16. The app loads them at start with the app's four."""
    pair = info.get("pair")
    if isinstance(pair, list) and len(pair) == 2 and all(isinstance(n, str) and n for n in pair):
        return pair[0], pair[1]
    return DEFAULT_PAIR


def dataset_title(root: Path, key: str) -> str:
    title = read_info(Path(root) / key).get("title")
    return title if isinstance(title, str) and title else SHIPPED.get(key, key)


def missing_files(root: Path, dataset: str) -> list[str]:
    """The expected files of a shipped dataset that do not exist (the atlas, then each app model's two files)."""
    if dataset not in SHIPPED:
        return []
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
