"""The datasets, as uint8 tensors ready to live on the device: MNIST / Fashion-MNIST through torchvision, or a
person's own images (`folder:PATH`, `npz:FILE`, `idx:PREFIX`; training/sources.py).

Images are uint8 (N, H, W) grayscale or (N, H, W, 3) RGB, channel-last as PIL and the app hold them; to_float
makes the models' (N, C, H, W) floats."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import shutil
import socket
from pathlib import Path

import torch
from torch import Tensor

from . import sources

# name -> (torchvision class name, folder under the data root)
DATASETS = {"mnist": ("MNIST", "MNIST"), "fashion-mnist": ("FashionMNIST", "FashionMNIST")}
TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "latent-explorer" / "data"


class DataError(RuntimeError):
    """The dataset is not where we looked and could not be downloaded."""


def _writable_root(name: str, root: Path) -> Path:
    """torchvision extracts .gz files beside themselves: mirror a read-only root into a cache."""
    folder = DATASETS[name][1]
    raw = root / folder / "raw"
    if not raw.is_dir() or os.access(raw, os.W_OK):
        return root
    mirror = CACHE_ROOT / folder / "raw"
    mirror.mkdir(parents=True, exist_ok=True)
    for f in raw.iterdir():
        if f.is_file() and not (mirror / f.name).exists():
            shutil.copyfile(f, mirror / f".{f.name}.tmp")
            os.replace(mirror / f".{f.name}.tmp", mirror / f.name)
    return CACHE_ROOT


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """torchvision downloads only when the raw files are missing; offline, fail in seconds, not minutes."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def check_spec(name: str) -> str:
    """A --dataset value as given, or a ValueError that lists what is accepted."""
    if name in DATASETS:
        return name
    if sources.is_user_spec(name):
        sources.parse(name)
        return name
    raise ValueError(f"--dataset {name!r}: choose {', '.join(sorted(DATASETS))}, folder:PATH (an image folder), "
                     "npz:FILE, idx:PREFIX or dsprites (dsprites:32, dsprites:64)")


@functools.lru_cache(maxsize=2)
def _user_data(spec: str, image_size: int, channels: int) -> sources.Images:
    try:
        return sources.read(spec, image_size, channels)
    except sources.SourceError as e:
        raise DataError(str(e)) from None


def user_data(spec: str, image_size: int = 0, channels: int = 0) -> sources.Images:
    """A folder:/npz:/idx: dataset, read once per process (train, export and evaluate ask for both splits)."""
    return _user_data(spec, int(image_size), int(channels))


def dataset_info(name: str, image_size: int = 0, channels: int = 0) -> dict:
    """What the app and metrics.json record about a dataset: its folder name, title, classes, image format,
    how the app prepares an upload ("digit": MNIST-style centring; "photo": resize and centre crop), notes."""
    if name in DATASETS:
        return {"name": name, "title": TITLES[name], "spec": name, "class_names": CLASS_NAMES[name], "labelled": True,
                "image_size": 28, "image_channels": 1, "preprocess": "digit", "notes": []}
    d = user_data(name, image_size, channels)
    factors = {} if d.factors is None else {"factors": {
        "names": d.factor_names, "counts": [int(c) for c in d.factors.max(0) + 1]}}
    if sources.parse(name)[0] == "dsprites":  # position is a factor: an upload keeps its place (no centring)
        return {"name": d.name, "title": "dSprites", "spec": d.spec, "class_names": d.class_names, "labelled": True,
                "image_size": d.size, "image_channels": 1, "preprocess": "photo", "notes": d.notes,
                "test_split": {"fraction": sources.TEST_FRACTION, "seed": sources.SPLIT_SEED}, **factors,
                "pair": ["ae-10", "vae-10"]}  # the shipped models (training/checkpoints.sh): what the app opens with
    # Grayscale objects on a dark ground (digits, sketches, MNIST-like items, near-binary or with grey levels) get the
    # digit-style centring and polarity; anything else (colour, or a light ground) is a photo: resized, not inverted.
    digit_like = d.channels == 1 and sources.dark_background(d.images)
    return {"name": d.name, "title": d.name, "spec": d.spec, "class_names": d.class_names, "labelled": d.labelled,
            "image_size": d.size, "image_channels": d.channels, "preprocess": "digit" if digit_like else "photo",
            "notes": d.notes, "test_split": {"fraction": sources.TEST_FRACTION, "seed": sources.SPLIT_SEED}, **factors}


def load_factors(name: str, train: bool, image_size: int = 0, channels: int = 0):
    """The known factors of variation of one split, int64 (N, K) in load_split's order, or None (MNIST has none)."""
    if not sources.is_user_spec(name):
        return None
    d = user_data(name, image_size, channels)
    if d.factors is None:
        return None
    return d.factors[sources.split(len(d.images))[0 if train else 1]]


def load_split(name: str, root: str | os.PathLike, train: bool, image_size: int = 0,
               channels: int = 0) -> tuple[Tensor, Tensor]:
    """(images uint8 (N, H, W) or (N, H, W, 3), labels int64 (N,)) of one split; DataError if unavailable.
    A folder:/npz:/idx: dataset has no test split: sources.split makes one with a fixed seed."""
    if sources.is_user_spec(name):
        d = user_data(name, image_size, channels)
        idx = sources.split(len(d.images))[0 if train else 1]
        return torch.from_numpy(d.images[idx]), torch.from_numpy(d.labels[idx])
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}, folder:PATH, npz:FILE or idx:PREFIX")
    import torchvision.datasets as tvd

    cls_name, folder = DATASETS[name]
    root = Path(root)
    try:
        root_used = _writable_root(name, root)
        # torchvision prints download progress; keep the CLI output to our own lines.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), _socket_timeout(20):
            ds = getattr(tvd, cls_name)(str(root_used), train=train, download=True)
    except Exception as e:  # no network, corrupt file, permission: one message for all
        gz = ", ".join(f + ".gz" for f in RAW_FILES)
        raise DataError(
            f"{name} is not in {root / folder / 'raw'} and could not be downloaded "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'}). "
            f"Put the raw files ({gz}) there, or pass --data-root DIR that holds {folder}/raw/."
        ) from None
    return ds.data.clone(), ds.targets.clone().long()


def raw_file_hashes(name: str, root: str | os.PathLike) -> dict[str, str]:
    """sha256 of each raw file we could find (for provenance in metrics.json)."""
    if sources.is_user_spec(name):
        try:
            return sources.files_sha256(name)
        except (OSError, sources.SourceError):
            return {}
    folder = DATASETS[name][1]
    out = {}
    for base in (Path(root), CACHE_ROOT):
        raw = base / folder / "raw"
        for f in RAW_FILES:
            for cand in (raw / (f + ".gz"), raw / f):
                if cand.is_file() and cand.name not in out:
                    out[cand.name] = hashlib.sha256(cand.read_bytes()).hexdigest()
        if out:
            break
    return out


def to_float(images: Tensor) -> Tensor:
    """uint8 (N, H, W) or (N, H, W, C) -> float (N, C, H, W) in [0, 1]."""
    if images.ndim == 4:
        return images.permute(0, 3, 1, 2).float().div_(255.0)
    return images.unsqueeze(1).float().div_(255.0)


def prepare_batch(images: Tensor, binarize: bool, generator: torch.Generator | None) -> Tensor:
    """uint8 (B, H, W) or float (B, 1, H, W) batch -> model input (B, 1, H, W) in [0, 1].

    Dynamic binarization: x ~ Bernoulli(intensity), fresh each time.
    """
    x = images if images.is_floating_point() else to_float(images)  # float data is already in [0, 1]
    return torch.bernoulli(x, generator=generator) if binarize else x


def binarize_batch(images: Tensor, generator: torch.Generator) -> Tensor:
    """uint8 (B, H, W) (or float (B, 1, H, W) in [0, 1]) -> {0, 1} float (B, 1, H, W), x ~ Bernoulli(intensity): the training loop's binarization.

    The evaluator keeps prepare_batch (torch.bernoulli), so its binarized test set stays fixed; this is
    the same distribution drawn faster. On the CPU, uint8 pixels get 15 random bits each, four pixels
    per 63-bit draw of int64 random_() (whose cost is per element, not per bit): x = 1 iff
    u < v * 32768 / 255 with u uniform on 0..32767, so P(x = 1) = ceil(v * 32768 / 255) / 32768,
    exactly 0 and 1 at v = 0 and 255 and within 1/32768 of v / 255 in between. That is ~2x faster than
    uniform < intensity and ~4x faster than torch.bernoulli (the draw was 9-13% of a 784-400-20 step).
    Float pixels and other devices (where uniform_ is cheap) draw uniform < intensity.
    """
    if images.is_floating_point() or images.device.type != "cpu" or images.ndim == 4:
        x = images if images.is_floating_point() else to_float(images)
        return (torch.rand(x.shape, generator=generator, device=x.device) < x).to(x.dtype)
    n = images.numel()
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(generator=generator)  # uniform on [0, 2^63)
    u = bits.view(torch.int16)[:n].view(images.shape) & 0x7FFF  # 4 lanes of 15 uniform bits each
    return (u < images * (32768 / 255)).unsqueeze(1).float()
