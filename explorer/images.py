"""Turn any user image (upload or drawing) into a dataset's format, and images into display tiles.

A dataset's format (`Format`, from its dataset.json) is its image size, its channels (1: grayscale (H, W) uint8;
3: RGB (H, W, 3)) and how an upload is prepared:
- "digit" (MNIST, Fashion-MNIST, near-binary data): MNIST-style normalization (LeCun et al., the MNIST page):
  crop to the content's bounding box, scale it to fit a box of 20/28 of the side keeping the aspect ratio, then
  paste it so that its center of mass lies at the center. Polarity: these datasets are light objects on black; a
  dark object on light paper (the usual photo or scan) is inverted first, decided by the border pixels (the paper).
- "photo": resize the shorter side to the dataset's size, then crop the centre; colours kept.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_SIDE = 8000  # refuse larger uploads before decoding any pixel (Image.open only reads the header)
SIZE, BOX = 28, 20  # MNIST's side and the box its digits are scaled into


class InputError(ValueError):
    """An input the app cannot use, with a message meant for the person who sent it."""


@dataclass(frozen=True)
class Format:
    """A dataset's image format: size x size pixels, 1 (grayscale) or 3 (RGB) channels, upload preprocessing."""

    size: int = SIZE
    channels: int = 1
    preprocess: str = "digit"  # "digit" or "photo"

    @property
    def shape(self) -> tuple[int, ...]:
        """The numpy shape of one image: (H, W) grayscale, (H, W, 3) RGB."""
        return (self.size, self.size) if self.channels == 1 else (self.size, self.size, self.channels)

    def describe(self) -> str:
        return f"{self.size}x{self.size} {'grayscale' if self.channels == 1 else 'RGB'}"


MNIST = Format()


def load_upload(path: str | os.PathLike, fmt: Format = MNIST) -> np.ndarray:
    """Image file of any size, mode and polarity -> uint8 image of the dataset's format (fmt.shape)."""
    if path is None or not os.path.isfile(path):
        raise InputError("No file received: choose an image file (PNG, JPEG, BMP, GIF, TIFF, WebP).")
    try:
        with warnings.catch_warnings():
            # Our own size check below replaces PIL's decompression-bomb warning/error.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(path) as im:  # lazy: reads the header only
                    w, h = im.size
                    if w > MAX_SIDE or h > MAX_SIDE:
                        raise InputError(
                            f"The image is {w}x{h} pixels; the limit is {MAX_SIDE}x{MAX_SIDE}. Scale it down first."
                        )
                    if w < 1 or h < 1:
                        raise InputError("The image is empty (0 pixels).")
                    im.seek(0)  # first frame of a GIF / multi-page TIFF
                    im.load()
                    pixels = to_gray(im) if fmt.channels == 1 else to_rgb(im)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError("This file is not an image PIL can read: upload a PNG, JPEG, BMP, GIF, TIFF or WebP.") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:  # truncated / corrupt files
        raise InputError(f"The image file is damaged or truncated and cannot be decoded ({type(e).__name__}).") from None
    return to_format(pixels, fmt)


def to_format(pixels: np.ndarray, fmt: Format = MNIST) -> np.ndarray:
    """float (H, W) or (H, W, 3) in [0, 1] -> uint8 image of the dataset's format (fmt.shape), prepared by
    fmt.preprocess (the module docstring)."""
    a = np.asarray(pixels, np.float32)
    if fmt.preprocess == "digit":
        gray = a if a.ndim == 2 else a[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        out = to_dataset_format(gray, fmt.size)
        return out if fmt.channels == 1 else np.repeat(out[..., None], fmt.channels, axis=2)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    im = Image.fromarray((np.clip(a[..., :3], 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
    w, h = im.size
    scale = fmt.size / min(w, h)
    nw, nh = max(fmt.size, round(w * scale)), max(fmt.size, round(h * scale))
    im = im.resize((nw, nh), Image.LANCZOS if scale < 1 else Image.BICUBIC)
    left, top = (nw - fmt.size) // 2, (nh - fmt.size) // 2
    im = im.crop((left, top, left + fmt.size, top + fmt.size))
    return np.asarray(im.convert("L") if fmt.channels == 1 else im, np.uint8)


def to_rgb(im: Image.Image) -> np.ndarray:
    """Any PIL mode -> float32 (H, W, 3) in [0, 1]; alpha over white, as to_gray."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return np.repeat(to_gray(im)[..., None], 3, axis=2)
    im = ImageOps.exif_transpose(im)
    rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
    alpha = rgba[..., 3:4]
    return rgba[..., :3] * alpha + (1.0 - alpha)


def to_gray(im: Image.Image) -> np.ndarray:
    """Any PIL mode (1, L, P, RGB, RGBA, LA, I;16, I, F, CMYK) -> float32 (H, W) in [0, 1]; alpha over white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16/32-bit integer or float pixels
        a = np.asarray(im, dtype=np.float64)
        if im.mode.startswith("I;16"):
            lo, hi = 0.0, 65535.0
        elif a.min() >= 0 and a.max() <= 1:
            lo, hi = 0.0, 1.0
        elif a.min() >= 0 and a.max() <= 255:
            lo, hi = 0.0, 255.0
        else:  # an unknown range: stretch it
            lo, hi = float(a.min()), float(a.max())
        return np.clip((a - lo) / max(hi - lo, 1e-12), 0, 1).astype(np.float32)
    im = ImageOps.exif_transpose(im)  # phone photos: honour the orientation tag
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:4]
        rgb = rgba[..., :3] * alpha + (1.0 - alpha)  # transparent = white paper
        return rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def drawing_to_format(value, fmt: Format = MNIST) -> np.ndarray:
    """A gr.Sketchpad value -> uint8 image of the dataset's format."""
    return to_format(drawing_to_gray(value), fmt)


def drawing_to_gray(value) -> np.ndarray:
    """A gr.Sketchpad value (dict with 'composite', or an array) -> float32 (H, W) in [0, 1]."""
    arr = value.get("composite") if isinstance(value, dict) else value
    if arr is None:
        raise InputError("The drawing is empty: draw a digit or a piece of clothing first.")
    if isinstance(arr, str):
        return load_gray_file(arr)
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return to_gray(Image.fromarray(arr.astype(np.uint8), "RGBA"))
    if arr.ndim == 3:
        return to_gray(Image.fromarray(arr[..., :3].astype(np.uint8), "RGB"))
    return to_gray(Image.fromarray(arr.astype(np.uint8), "L"))


def load_gray_file(path: str) -> np.ndarray:
    with Image.open(path) as im:
        im.load()
        return to_gray(im)


def to_dataset_format(gray: np.ndarray, size: int = SIZE) -> np.ndarray:
    """float (H, W) in [0, 1], any polarity -> uint8 (size, size): light object centred on black (MNIST's way)."""
    g = np.asarray(gray, dtype=np.float32)
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    background = float(np.median(border))
    if background > 0.5:  # light paper, dark ink -> invert so the object is light on black
        g, background = 1.0 - g, 1.0 - background
    g = np.clip((g - background) / max(1.0 - background, 1e-6), 0, 1)  # paper -> exactly black
    if g.max() < 0.1 or (g > 0.1).sum() < 3:
        raise InputError("The image is blank (no visible object): draw or upload something with contrast.")
    g = g / g.max()
    ys, xs = np.nonzero(g > 0.1)
    crop = g[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
    h, w = crop.shape
    scale = BOX * size / SIZE / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = np.asarray(
        Image.fromarray((crop * 255).astype(np.uint8), "L").resize((nw, nh), Image.LANCZOS), dtype=np.float32
    )
    out = np.zeros((size, size), np.float32)
    total = small.sum()
    cy, cx = ((np.arange(nh)[:, None] * small).sum() / total, (np.arange(nw)[None, :] * small).sum() / total)
    top = int(np.clip(round(size / 2 - 0.5 - cy), 0, size - nh))
    left = int(np.clip(round(size / 2 - 0.5 - cx), 0, size - nw))
    out[top: top + nh, left: left + nw] = small
    return np.clip(out, 0, 255).astype(np.uint8)


def upscale(img: np.ndarray, factor: int = 5) -> np.ndarray:
    """(H, W) or (H, W, C) float in [0, 1] or uint8 -> uint8 (H*f, W*f[, C]), nearest neighbour (keeps the pixels
    visible)."""
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.repeat(np.repeat(a, factor, axis=0), factor, axis=1)


def tile(images: np.ndarray, ncols: int, pad: int = 2, factor: int = 2) -> np.ndarray:
    """(N, H, W) or (N, H, W, C) in [0, 1] -> uint8 grid image with `ncols` columns and a grey padding."""
    images = np.asarray(images, dtype=np.float32)
    n, h, w = images.shape[:3]
    nrows = -(-n // ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, *images.shape[3:]), 0.35, np.float32)
    for i, im in enumerate(images):
        r, c = divmod(i, ncols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = im
    return upscale(grid, factor)
