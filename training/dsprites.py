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

The 32x32 variant (what the shipped models train on: a 64x64 model does not fit this project's CPU recipe) keeps the
shape, scale and orientation factors and 16 positions per axis (3 x 6 x 40 x 16 x 16 = 184,320 images): each image
is the 64x64 one at position index 2p, averaged over 2x2 pixel blocks, so its pixels take five grey levels at the
edges and a position step moves the sprite by exactly one pixel.
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


RESOLUTIONS = (64, 32)


def counts(size: int = SIZE) -> tuple[int, ...]:
    """Values per factor at a resolution: the published counts at 64x64; 16 positions per axis at 32x32."""
    if size not in RESOLUTIONS:
        raise ValueError(f"dSprites comes at 64x64 or 32x32 pixels, not {size}")
    return COUNTS if size == SIZE else COUNTS[:3] + (16, 16)


def n_images(size: int = SIZE) -> int:
    return int(np.prod(counts(size)))


def index_to_factors(index: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Flat image indices (N,) -> factor indices (N, 5), in the published order (position y varies fastest)."""
    return np.stack(np.unravel_index(np.asarray(index, np.int64), counts(size)), axis=1)


def factors_to_index(factors: np.ndarray, size: int = SIZE) -> np.ndarray:
    return np.ravel_multi_index(tuple(np.asarray(factors, np.int64).T), counts(size))


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


def render_at(factors: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Factor indices (N, 5) at a resolution -> uint8 images (N, size, size)."""
    if counts(size) == COUNTS:
        return render(factors)
    f = np.atleast_2d(np.asarray(factors, np.int64)).copy()
    if len(f) and (f[:, 3:].min() < 0 or f[:, 3:].max() >= 16):
        raise ValueError("position index must be 0..15 at 32x32")
    f[:, 3:] *= 2
    big = render(f).reshape(len(f), size, 2, size, 2).astype(np.uint16)
    return ((big.sum((2, 4)) + 2) // 4).astype(np.uint8)  # 2x2 means, rounded: 0, 64, 128, 191, 255


def images(index: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Flat indices -> uint8 images (N, size, size)."""
    return render_at(index_to_factors(index, size), size)


def render_all(size: int = SIZE) -> np.ndarray:
    """Every image in flat-index order, (n_images(size), size, size) uint8: each (shape, scale, orientation) drawn once
    at position (0, 0) and shifted, which is exact because a position step is a whole pixel (tested against render)."""
    c = counts(size)
    out = np.zeros((n_images(size), size, size), np.uint8)
    block = c[3] * c[4]
    for i, (shape, scale, orient) in enumerate(np.ndindex(*c[:3])):
        base = render_at([[shape, scale, orient, 0, 0]], size)[0]
        tile = out[i * block:(i + 1) * block].reshape(c[3], c[4], size, size)
        for x in range(c[3]):
            row = np.roll(base, x, axis=1)  # a position step is one pixel at either resolution
            for y in range(c[4]):
                tile[x, y] = np.roll(row, y, axis=0)
    return out


def sample(n: int, seed: int = 0, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """n images drawn uniformly (with replacement) from every combination: (images (n, size, size), factors (n, 5))."""
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, c, n) for c in counts(size)], axis=1)
    return render_at(factors, size), factors
