"""dSprites (Matthey et al. 2017), made in code: 64x64 binary images of a square, an ellipse or a heart, with five
known factors of variation, every combination once (3 x 6 x 40 x 32 x 32 = 737,280 images), no download.

Factors, in the published order (index into each factor's values):
- shape: square, ellipse, heart;
- scale: 6 values, linearly from 0.5 to 1;
- orientation: 40 values, linearly in [0, 2π) (a step is 2π/40);
- position x and position y: 32 values each, linearly in [0, 1].

How it is drawn (our own rendering, not the published pixels): a pixel is on when its centre lies inside the shape.
A shape of scale 1 spans about 20 pixels; its centre is at pixel 16 + index (16 to 47) on each axis, so a step in
position moves the sprite by exactly one pixel and changes nothing else. Orientation rotates the shape about its
centre (the y axis points down the image). A square rotated by 2π/4 is the same square: its image at orientation
index i equals the one at i + 10. Generation is a pure function of the factor indices, so it is deterministic.
"""
from __future__ import annotations

import numpy as np

SIZE = 64
SHAPES = ("square", "ellipse", "heart")
FACTORS = ("shape", "scale", "orientation", "position_x", "position_y")
COUNTS = (3, 6, 40, 32, 32)
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0, 2 * np.pi, 40, endpoint=False)
HALF = 10.0  # half the side of a scale-1 square, in pixels
FIRST_CENTRE = 16.0  # pixel coordinate of the centre at position index 0


def n_images() -> int:
    return int(np.prod(COUNTS))


def index_to_factors(index: np.ndarray) -> np.ndarray:
    """Flat image indices (N,) -> factor indices (N, 5), in the published order (position y varies fastest)."""
    return np.stack(np.unravel_index(np.asarray(index, np.int64), COUNTS), axis=1)


def factors_to_index(factors: np.ndarray) -> np.ndarray:
    return np.ravel_multi_index(tuple(np.asarray(factors, np.int64).T), COUNTS)


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Is the point (u, v) (shape coordinates: a scale-1 shape fits in [-1, 1]^2) inside the shape?"""
    if shape == 0:  # square
        return (np.abs(u) <= 1) & (np.abs(v) <= 1)
    if shape == 1:  # ellipse, twice as long as wide
        return u**2 + (v / 0.5) ** 2 <= 1
    # heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, scaled to fit [-1, 1]^2 (it spans x in ±1.14, y in -1 .. 1.25)
    x, y = u * 1.14, -v * 1.2 + 0.1
    return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0


def render(factors: np.ndarray) -> np.ndarray:
    """Factor indices (N, 5) -> uint8 images (N, 64, 64) with values 0 and 255."""
    factors = np.atleast_2d(np.asarray(factors, np.int64))
    for k, (c, name) in enumerate(zip(COUNTS, FACTORS)):
        if len(factors) and (factors[:, k].min() < 0 or factors[:, k].max() >= c):
            raise ValueError(f"{name} index must be 0..{c - 1}")
    grid = np.arange(SIZE, dtype=np.float64) + 0.5  # pixel centres
    px, py = np.meshgrid(grid, grid)  # px: column (x), py: row (y, pointing down)
    out = np.zeros((len(factors), SIZE, SIZE), np.uint8)
    for i, (shape, scale, orient, x, y) in enumerate(factors):
        cx, cy = FIRST_CENTRE + x + 0.5, FIRST_CENTRE + y + 0.5
        half = HALF * SCALES[scale]
        c, s = np.cos(ORIENTATIONS[orient]), np.sin(ORIENTATIONS[orient])
        dx, dy = (px - cx) / half, (py - cy) / half
        u, v = c * dx + s * dy, -s * dx + c * dy  # rotate the pixel into the shape's frame
        out[i] = np.where(_inside(int(shape), np.round(u, 12), np.round(v, 12)), 255, 0)
    return out


def images(index: np.ndarray) -> np.ndarray:
    """Flat indices -> uint8 images (N, 64, 64)."""
    return render(index_to_factors(index))


def sample(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images drawn uniformly (with replacement) from every combination: (images (n, 64, 64), factors (n, 5))."""
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, c, n) for c in COUNTS], axis=1)
    return render(factors), factors
