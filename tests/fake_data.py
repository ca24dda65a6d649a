"""Tiny synthetic MNIST-format data, so the tests need no download and no ../shared.

Each class is a blurred stroke at its own angle plus a blob at its own position, with a little
jitter per image: structured enough for a model to learn, small enough to train in seconds.
torchvision reads the uncompressed idx files in ROOT/MNIST/raw and ROOT/FashionMNIST/raw and
skips its download.
"""
from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

SIZE = 28
FOLDERS = ("MNIST", "FashionMNIST")


def make_images(n: int, seed: int = 0, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, size, size), labels int64 (n,)): class c = stroke at angle c*18 deg + a blob."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % 10
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images = np.empty((n, size, size), dtype=np.uint8)
    c0 = (size - 1) / 2
    for i, c in enumerate(labels):
        angle = math.pi * c / 10 + rng.normal(0, 0.05)
        cx, cy = c0 + rng.normal(0, 0.7), c0 + rng.normal(0, 0.7)
        img = np.zeros((size, size))
        for t in np.linspace(-0.35 * size, 0.35 * size, 15):  # the stroke: Gaussian dots along a line
            px, py = cx + t * math.cos(angle), cy + t * math.sin(angle)
            img += np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * 1.2**2))
        bx = c0 + 0.3 * size * math.cos(2 * math.pi * c / 10 + 1.0)
        by = c0 + 0.3 * size * math.sin(2 * math.pi * c / 10 + 1.0)
        img += 2.0 * np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * 2.0**2))  # the blob
        images[i] = np.clip(255 * img / img.max(), 0, 255).astype(np.uint8)
    return images, labels


def _write_idx_images(path: Path, images: np.ndarray) -> None:
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 0x0803, n, h, w) + images.astype(np.uint8).tobytes())


def _write_idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">II", 0x0801, len(labels)) + labels.astype(np.uint8).tobytes())


def write_fake_mnist(root: str | Path, n_train: int = 200, n_test: int = 50, seed: int = 0,
                     folders: tuple[str, ...] = FOLDERS) -> Path:
    """Write the four uncompressed idx files into ROOT/<folder>/raw for each folder; returns ROOT."""
    root = Path(root)
    train = make_images(n_train, seed)
    test = make_images(n_test, seed + 1)
    for folder in folders:
        raw = root / folder / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for prefix, (images, labels) in (("train", train), ("t10k", test)):
            _write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
            _write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root
