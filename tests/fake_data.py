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


SHAPES = ("circle", "square", "triangle")


def make_shapes(n: int, size: int = 32, seed: int = 0, colour: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (n, size, size, 3), or (n, size, size) when not colour; labels (n,)): one filled shape per
    image (class = circle, square, triangle) of random colour, size and position on a random dark background."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % len(SHAPES)
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    images = np.empty((n, size, size, 3), np.uint8)
    for i, c in enumerate(labels):
        r = rng.uniform(0.18, 0.32) * size
        cx, cy = rng.uniform(r, size - r, 2)
        if c == 0:
            inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2
        elif c == 1:
            inside = (np.abs(xx - cx) <= r * 0.85) & (np.abs(yy - cy) <= r * 0.85)
        else:  # a triangle pointing up: below the two slanted edges, above the base
            inside = (yy <= cy + r * 0.8) & (yy >= cy - r + 1.7 * np.abs(xx - cx))
        fg = rng.uniform(0.5, 1.0, 3) if colour else np.full(3, rng.uniform(0.6, 1.0))
        bg = rng.uniform(0.0, 0.25, 3) if colour else np.full(3, rng.uniform(0.0, 0.2))
        images[i] = (255 * np.where(inside[..., None], fg, bg)).astype(np.uint8)
    return (images if colour else images[..., 0]), labels


def write_shapes_folder(root: str | Path, n: int = 150, size: int = 32, seed: int = 0, colour: bool = True,
                        labelled: bool = True, ext: str = ".png") -> Path:
    """An image folder of make_shapes pictures: class subfolders (ImageFolder layout) or flat; returns root."""
    from PIL import Image

    root = Path(root)
    images, labels = make_shapes(n, size, seed, colour)
    for i, (im, c) in enumerate(zip(images, labels)):
        folder = root / SHAPES[c] if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(folder / f"{i:05d}{ext}")
    return root
