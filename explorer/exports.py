"""Downloads: the interpolation strip as an animated GIF (one per model), the latent codes with their UMAP
coordinates and labels as CSV (the atlas, and the current input), and any grid the app shows as a PNG.

Every file is bytes first, then written once under a content-addressed name (explorer.files.write_once: atomic,
so a download never sees half a file); the app hands the paths to Gradio, which serves them (and the API returns
them as files).
"""
from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from .files import write_once
from .images import upscale


def _save(folder: Path, name: str, data: bytes) -> Path:
    digest = hashlib.sha256(data).hexdigest()[:16]
    return write_once(Path(folder) / digest / name, data)


def gif_bytes(frames: np.ndarray, factor: int = 4, ms: int = 150) -> bytes:
    """(T, H, W) or (T, H, W, C) float images in [0, 1] -> an animated GIF, one frame per image, looping, the path
    played forth and back (the last frame then the first again would jump)."""
    pics = [Image.fromarray(upscale(f, factor)) for f in frames]
    pics = [p.convert("RGB").quantize(256, dither=Image.Dither.NONE) for p in pics]
    buf = io.BytesIO()
    pics[0].save(buf, format="GIF", save_all=True, append_images=pics[1:], duration=ms, loop=0, disposal=1,
                 optimize=False)
    return buf.getvalue()


def gif_file(folder: Path, stem: str, frames: np.ndarray, factor: int = 4) -> Path:
    return _save(folder, f"{stem}.gif", gif_bytes(frames, factor))


def png_file(folder: Path, stem: str, image: np.ndarray) -> Path:
    """A picture the app shows (uint8 (H, W) or (H, W, 3)) as a lossless PNG at the resolution shown."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buf, format="PNG")
    return _save(folder, f"{stem}.png", buf.getvalue())


def codes_csv(codes: np.ndarray, map_xy: np.ndarray, labels: np.ndarray | None, class_names: list[str],
              index: np.ndarray | None = None) -> bytes:
    """One row per image: atlas index, label, class name, map x and y (UMAP, or a 2-D model's plane), z0..z(D-1)."""
    d = codes.shape[1]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", "label", "class", "map_x", "map_y", *[f"z{i}" for i in range(d)]])
    index = np.arange(len(codes)) if index is None else index
    for i, z, xy in zip(index, codes, map_xy):
        label = "" if labels is None else int(labels[i])
        name = class_names[label] if labels is not None and label < len(class_names) else ""
        w.writerow([int(i) if i >= 0 else "input", label, name, f"{xy[0]:.6g}", f"{xy[1]:.6g}",
                    *[f"{v:.6g}" for v in z]])
    return buf.getvalue().encode()


def csv_file(folder: Path, stem: str, data: bytes) -> Path:
    return _save(folder, f"{stem}.csv", data)
