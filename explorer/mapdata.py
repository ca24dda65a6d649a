"""What the interactive latent map (static/latent_map.js) reads, and its server-side twins (numpy only).

Per model, one binary file of its atlas points (map position, code, posterior spread, class: safetensors, fetched
once); per dataset, one sprite sheet of the atlas images (hover thumbnails); per model, a density picture drawn
under the points. The page turns a map position back into a code itself (`code_at`, the inverse of the placement
that puts an input on the map), and the server's `code_at` is the reference the tests hold the page to.
"""
from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image
from safetensors.numpy import save

from . import latent

SPRITE_COLS = 64  # atlas images per sprite row: 10,000 MNIST images make a 1792 x 4396 picture
DENSITY_SIZE = 160  # the density picture's pixels per side
K_INVERSE = 10  # atlas points whose codes make the code of a map position (as latent.knn_place, the other way)


def bounds(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The map's extent: the 0.2 %..99.8 % quantiles of the positions, padded by 5 % (as explorer.plot.Scatter)."""
    lo, hi = np.quantile(np.asarray(xy, np.float64), [0.002, 0.998], axis=0)
    pad = 0.05 * (hi - lo) + 1e-6
    return (lo - pad).astype(np.float64), (hi + pad).astype(np.float64)


def to_unit(xy: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Map positions -> the scatter plot's coordinates, [-1, 1] over the extent (x right, y up); (M, 2)."""
    return (2 * (np.atleast_2d(xy) - lo) / (hi - lo) - 1).astype(np.float32)


def from_unit(u: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (lo + (np.atleast_2d(u) + 1) / 2 * (hi - lo)).astype(np.float32)


def code_at(p: np.ndarray, map_xy: np.ndarray, codes: np.ndarray, plane: bool, k: int = K_INVERSE) -> np.ndarray:
    """The code a map position stands for, (M, D): on a 2-D model's plane the position itself; on a UMAP map the
    inverse-distance weighted mean of the codes of the k atlas points nearest to it on the map."""
    p = np.atleast_2d(np.asarray(p, np.float32))
    return p.copy() if plane else latent.knn_place(p, map_xy, codes, k)


def points_file(map_xy: np.ndarray, codes: np.ndarray, spread: np.ndarray | None, labels: np.ndarray,
                meta: dict) -> bytes:
    """One model's atlas points for the page, as safetensors: xy (N, 2) map positions, codes (N, D), spread (N,)
    (mean posterior std over the dimensions; 0 for an AE), labels (N,) as float32; `meta` (JSON) beside them."""
    n = len(codes)
    tensors = {"xy": np.ascontiguousarray(map_xy, np.float32), "codes": np.ascontiguousarray(codes, np.float32),
               "spread": np.ascontiguousarray(spread if spread is not None else np.zeros(n), np.float32),
               "labels": np.ascontiguousarray(labels, np.float32)}
    return save(tensors, metadata={"meta": json.dumps(meta)})


def sprite_png(images: np.ndarray, cols: int = SPRITE_COLS) -> bytes:
    """The atlas images (N, H, W[, C]) uint8 as one PNG, row-major, `cols` per row: image i at column i % cols,
    row i // cols."""
    n, h, w = images.shape[:3]
    rows = -(-n // cols)
    sheet = np.zeros((rows * h, cols * w, *images.shape[3:]), np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = img
    buf = io.BytesIO()
    Image.fromarray(sheet).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def kde_grid(xy: np.ndarray, lo: np.ndarray, hi: np.ndarray, size: int = DENSITY_SIZE) -> np.ndarray:
    """A Gaussian kernel density of the map positions on a size x size grid over the extent (Scott's bandwidth
    per axis), (size, size) with row 0 at the top (largest y), scaled to a maximum of 1."""
    from scipy.ndimage import gaussian_filter

    xy = np.asarray(xy, np.float64)
    u = (xy - lo) / (hi - lo)  # [0, 1] over the extent
    h, _, _ = np.histogram2d(u[:, 1], u[:, 0], bins=size, range=[[0, 1], [0, 1]])  # rows: y, columns: x
    bw = len(xy) ** (-1.0 / 6.0) * u.std(0)  # Scott's rule in 2-D: n^(-1/(d+4)) * std
    sigma = np.maximum(bw * size, 0.5)  # in grid cells: (x, y)
    d = gaussian_filter(h, sigma=(sigma[1], sigma[0]), mode="constant")[::-1]  # y up -> row 0 at the top
    return d / max(d.max(), 1e-12)


def prior_grid(lo: np.ndarray, hi: np.ndarray, size: int = DENSITY_SIZE) -> np.ndarray:
    """The density of N(0, I) on a 2-D model's plane, on the same grid as kde_grid, scaled to a maximum of 1."""
    cx = lo[0] + (np.arange(size) + 0.5) / size * (hi[0] - lo[0])
    cy = hi[1] - (np.arange(size) + 0.5) / size * (hi[1] - lo[1])  # row 0 at the top
    d = np.exp(-0.5 * (cx[None, :] ** 2 + cy[:, None] ** 2))
    return d / max(d.max(), 1e-12)


def density_png(grid: np.ndarray, rgb=(70, 110, 200)) -> bytes:
    """A density grid in [0, 1] as an RGBA PNG: one colour, its opacity rising with the density."""
    alpha = (np.sqrt(np.clip(grid, 0, 1)) * 150).astype(np.uint8)
    img = np.zeros((*grid.shape, 4), np.uint8)
    img[..., :3] = rgb
    img[..., 3] = alpha
    buf = io.BytesIO()
    Image.fromarray(img, "RGBA").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def selection(labels: np.ndarray, class_names: list[str], indices) -> dict:
    """A selection of atlas points: its indices (checked, in order, without repeats) and its class histogram."""
    idx = parse_indices(indices, len(labels))
    counts = np.bincount(np.asarray(labels)[idx].astype(np.int64), minlength=len(class_names)) if len(idx) else \
        np.zeros(len(class_names), np.int64)
    return {"indices": idx.tolist(), "histogram": {name: int(c) for name, c in zip(class_names, counts)}}


def parse_indices(indices, n: int) -> np.ndarray:
    """Atlas indices from a list or a comma/space-separated string -> (M,) int64, first occurrences in order."""
    from .images import InputError

    if isinstance(indices, str):
        parts = [p for p in indices.replace(",", " ").split() if p]
    elif indices is None:
        parts = []
    else:
        parts = list(indices)
    try:
        values = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise InputError("indices must be whole numbers (a list, or separated by commas or spaces).") from None
    if any(not np.isfinite(v) or not float(v).is_integer() or not 0 <= v < n for v in values):
        raise InputError(f"indices must be whole numbers in 0..{n - 1}.")
    idx = np.asarray(values, np.int64)
    _, first = np.unique(idx, return_index=True)
    return idx[np.sort(first)]
