"""Latent-space operations on plain numpy arrays: interpolation, atlas distances, map placement, GMM sampling."""
from __future__ import annotations

import numpy as np


def lerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """(D,), (D,) -> (steps, D) on the straight line from a to b, ends included."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return ((1 - t) * a[None] + t * b[None]).astype(np.float32)


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985; White 2016 "Sampling generative networks").

    Moves along the great circle between the directions of a and b while the norm goes linearly
    from |a| to |b|; falls back to lerp when a, b are (anti)parallel or one is ~0.
    """
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na < 1e-8 or nb < 1e-8:
        return lerp(a, b, steps)
    ua, ub = a / na, b / nb
    omega = float(np.arccos(np.clip(ua @ ub, -1.0, 1.0)))
    if omega < 1e-6 or np.pi - omega < 1e-6:
        return lerp(a, b, steps)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    direction = (np.sin((1 - t) * omega) * ua + np.sin(t * omega) * ub) / np.sin(omega)
    return (direction * ((1 - t) * na + t * nb)).astype(np.float32)


def pairwise_sq_dists(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(M, D), (N, D) -> (M, N) squared Euclidean distances, clamped at 0."""
    d = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.maximum(d, 0.0)


def nearest_distance(z: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(M, D) queries -> (M,) Euclidean distance to the nearest of `codes` (N, D)."""
    return np.sqrt(pairwise_sq_dists(np.atleast_2d(z).astype(np.float64), codes.astype(np.float64)).min(1))


def nn_distance_quantiles(codes: np.ndarray, qs=(0.5, 0.95), n_query: int = 500, seed: int = 0) -> np.ndarray:
    """Quantiles of the distance from an atlas code to its nearest *other* atlas code (leave-one-out).

    The median is the typical gap between data codes (the unit for normalized distances); the 95%
    quantile is the "far from the data" threshold: a data code itself exceeds it 5% of the time.
    """
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(codes), size=min(n_query, len(codes)), replace=False)
    d = pairwise_sq_dists(codes[idx].astype(np.float32), codes.astype(np.float32)).astype(np.float64)
    d[np.arange(len(idx)), idx] = np.inf  # exclude each query itself
    return np.quantile(np.sqrt(d.min(1)), qs)


def median_nn_distance(codes: np.ndarray, n_query: int = 500, seed: int = 0) -> float:
    """Median distance from an atlas code to its nearest other atlas code (scale of the data cloud)."""
    return float(nn_distance_quantiles(codes, (0.5,), n_query, seed)[0])


def knn_place(z: np.ndarray, codes: np.ndarray, positions: np.ndarray, k: int = 10) -> np.ndarray:
    """Map position of new codes: inverse-distance weighted mean of the k nearest atlas codes' positions.

    z (M, D), codes (N, D), positions (N, 2) -> (M, 2). No UMAP at request time: a few ms for N=10,000.
    """
    d2 = pairwise_sq_dists(np.atleast_2d(z).astype(np.float64), codes.astype(np.float64))
    k = min(k, len(codes))
    nn = np.argpartition(d2, k - 1, axis=1)[:, :k]  # (M, k)
    d = np.sqrt(np.take_along_axis(d2, nn, axis=1))
    w = 1.0 / (d + 1e-6)
    w /= w.sum(1, keepdims=True)
    return (w[..., None] * positions[nn]).sum(1).astype(np.float32)


def gmm_sample(weights: np.ndarray, means: np.ndarray, covariances: np.ndarray, n: int,
               rng: np.random.Generator, temperature: float = 1.0) -> np.ndarray:
    """n draws from a full-covariance Gaussian mixture stored as arrays; temperature scales the std."""
    weights = np.asarray(weights, np.float64)
    comp = rng.choice(len(weights), size=n, p=weights / weights.sum())
    d = means.shape[1]
    chol = np.linalg.cholesky(covariances + 1e-6 * np.eye(d))  # (K, D, D)
    eps = rng.standard_normal((n, d))
    return (means[comp] + temperature * np.einsum("nij,nj->ni", chol[comp], eps)).astype(np.float32)


def quantile_ranges(codes: np.ndarray, lo: float = 0.005, hi: float = 0.995) -> np.ndarray:
    """(N, D) -> (D, 2) per-dimension [lo, hi] quantiles: slider ranges that cover the data, not a fixed ±3."""
    r = np.quantile(codes, [lo, hi], axis=0).T.astype(np.float64)
    width = r[:, 1] - r[:, 0]
    r[width < 1e-6] += np.array([-0.5, 0.5])  # a dead dimension still gets a usable slider
    # Round outwards to 2 decimals: readable slider ends that still cover the quantile range.
    return np.stack([np.floor(r[:, 0] * 100) / 100, np.ceil(r[:, 1] * 100) / 100], 1)


def grid_codes(x_range: tuple[float, float], y_range: tuple[float, float], n: int) -> np.ndarray:
    """(n*n, 2) codes on a regular grid, row-major with y decreasing (top row = largest y), like a plot."""
    xs = np.linspace(*x_range, n)
    ys = np.linspace(*y_range, n)[::-1]
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
