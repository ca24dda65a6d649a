"""A person's own images as a dataset: `folder:PATH`, `npz:FILE` or `idx:PREFIX` (the --dataset values besides
the torchvision names).

    folder:PATH   the torchvision ImageFolder layout (class subfolders become labels) or a flat folder (no labels);
                  PNG, JPEG, BMP, WebP, read with PIL
    npz:FILE      arrays `images` (N, H, W) or (N, H, W, C) uint8, and optional integer `labels` (N,)
    idx:PREFIX    MNIST-format IDX files: PREFIX-images-idx3-ubyte and optional PREFIX-labels-idx1-ubyte
    dsprites:SIZE dSprites made in code (training/dsprites.py), SIZE 32 (the default, `dsprites` alone) or 64; its
                  labels are the shape, and its `factors` are the five known factors of variation

A source may carry known factors of variation: an integer matrix `factors` (N, K) with their names, which the
disentanglement metrics read (an npz file gives them as arrays `factors` and optional `factor_names`).

Every source becomes uint8 images of one size, (N, S, S) grayscale or (N, S, S, 3) RGB (channel-last, as PIL and
the app hold them), plus int64 labels (all 0 when there are none). What was fixed on the way (unreadable files
skipped, sizes resized, grayscale and RGB mixed) is listed in `notes`, which the CLIs print and metrics.json keeps.
None of these sources has a test split: `split` makes one with a fixed seed.
"""
from __future__ import annotations

import hashlib
import math
import re
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MIN_IMAGES = 100  # fewer cannot train a model and hold out a validation and a test split
MAX_DEFAULT_SIZE = 64  # the default keeps the images' size up to this and resizes larger ones to it
EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
TEST_FRACTION, SPLIT_SEED = 0.1, 0
KINDS = ("folder", "npz", "idx", "dsprites")


class SourceError(ValueError):
    """Data that cannot be used, with one line that says what is wrong and what to do."""


@dataclass
class Images:
    """A user dataset, read and made uniform."""

    name: str  # the checkpoint folder it trains into (checkpoints/<name>/)
    images: np.ndarray  # uint8 (N, S, S) or (N, S, S, 3)
    labels: np.ndarray  # int64 (N,), 0 when the data has none
    class_names: list[str]
    labelled: bool
    spec: str
    notes: list[str] = field(default_factory=list)
    factors: np.ndarray | None = None  # int64 (N, K): known factors of variation, when the data has them
    factor_names: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int:
        return 1 if self.images.ndim == 3 else self.images.shape[3]

    @property
    def size(self) -> int:
        return self.images.shape[1]


def is_user_spec(spec: str) -> bool:
    return isinstance(spec, str) and (spec == "dsprites" or (spec.split(":", 1)[0] in KINDS and ":" in spec))


def parse(spec: str) -> tuple[str, Path]:
    kind, _, path = spec.partition(":")
    if kind == "dsprites":
        from . import dsprites

        if (path or "32") not in [str(r) for r in dsprites.RESOLUTIONS]:
            raise SourceError(f"--dataset {spec!r}: dSprites comes at 32 or 64 pixels (dsprites:32, dsprites:64)")
        return kind, Path(path or "32")
    if kind not in KINDS or not path:
        raise SourceError(f"--dataset {spec!r}: expected a torchvision name, folder:PATH, npz:FILE, idx:PREFIX or "
                          "dsprites:SIZE")
    return kind, Path(path).expanduser()


def default_name(spec: str) -> str:
    """The checkpoint folder name of a source: its file or folder name, lower case, [a-z0-9-] only (dSprites:
    `dsprites`, or `dsprites-64` at 64x64)."""
    kind, path = parse(spec)
    if kind == "dsprites":
        return "dsprites" if str(path) == "32" else f"dsprites-{path}"
    stem = path.resolve().name
    for suffix in (".npz", "-images-idx3-ubyte"):
        stem = stem.removesuffix(suffix)
    return re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-") or "my-data"


def conv_size(size: int) -> int:
    """The nearest size >= `size` that the conv family takes (models.config.conv_depth halvings divide it)."""
    from models.config import conv_depth

    s = max(4, int(size))
    while s % (2 ** conv_depth(s)):
        s += 1
    return s


def read(spec: str, image_size: int = 0, channels: int = 0) -> Images:
    """Read a folder:/npz:/idx: source. image_size 0: keep the size (most common side, at most 64, rounded up to
    what the conv family takes); channels 0: RGB if any image has colour, else grayscale. SourceError if unusable."""
    kind, path = parse(spec)
    if kind == "dsprites":
        return _dsprites(spec, int(str(path)), image_size, channels)
    if channels not in (0, 1, 3):
        raise SourceError(f"--image-channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    if image_size < 0 or image_size > 512:
        raise SourceError(f"--image-size must be between 4 and 512 pixels (0 = automatic), got {image_size}")
    factors, factor_names = None, []
    if kind == "folder":
        arrays, labels, class_names, notes = _read_folder(path)
    elif kind == "npz":
        arrays, labels, class_names, notes = _read_npz(path)
        factors, factor_names = _read_npz_factors(path, len(arrays))
    else:
        arrays, labels, class_names, notes = _read_idx(path)
    if len(arrays) < MIN_IMAGES:
        raise SourceError(f"{spec}: {len(arrays)} usable images; at least {MIN_IMAGES} are needed to train and "
                          "hold out validation and test images")
    images, more = _uniform(arrays, image_size, channels)
    labelled = labels is not None
    if labels is None:
        labels, class_names = np.zeros(len(images), np.int64), ["all images"]
    return Images(default_name(spec), images, labels, class_names, labelled, spec, notes + more, factors, factor_names)


def _dsprites(spec: str, size: int, image_size: int, channels: int) -> Images:
    from . import dsprites

    if image_size not in (0, size) or channels not in (0, 1):
        raise SourceError(f"{spec}: dSprites is {size}x{size} grayscale (for 64x64 pass --dataset dsprites:64)")
    images = dsprites.render_all(size)
    factors = dsprites.index_to_factors(np.arange(len(images)), size)
    notes = [] if size == dsprites.SIZE else [
        "dSprites at 32x32 with 16 positions per axis (3 x 6 x 40 x 16 x 16 = 184,320 images), each the 64x64 image "
        "averaged over 2x2 blocks: a 64x64 model does not fit the CPU recipe"]
    return Images(default_name(spec), images, factors[:, 0].copy(), list(dsprites.SHAPES), True, spec, notes,
                  factors, list(dsprites.FACTORS))


def split(n: int, seed: int = SPLIT_SEED, test_fraction: float = TEST_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: a seeded permutation's last ceil(n * test_fraction) images are the test split (in
    file order); the training indices stay in the permutation's order, because the trainer holds out the *first*
    --val-size training images for validation (as MNIST's shuffled files allow) and a folder is read class by
    class: in file order, the validation images would all be of the first class."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, math.ceil(n * test_fraction))
    return perm[:-n_test], np.sort(perm[-n_test:])


def files_sha256(spec: str) -> dict[str, str]:
    """Provenance for metrics.json: the sha256 of an npz/idx file; of a folder, one hash over its names and sizes."""
    kind, path = parse(spec)
    if kind == "dsprites":  # made in code: the hash of what training/dsprites.py renders (changes if the code does)
        from . import dsprites

        size = int(str(path))
        return {f"dsprites-{size} images (rendered by training/dsprites.py)":
                hashlib.sha256(dsprites.render_all(size).tobytes()).hexdigest()}
    if kind == "folder":
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(path)}:{f.stat().st_size}\n".encode())
        return {"folder listing (names, sizes)": h.hexdigest()}
    files = [path] if kind == "npz" else [_idx_file(path, "images"), _idx_file(path, "labels")]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f is not None and f.is_file()}


# ---- readers: each returns (list of arrays (H, W) or (H, W, C) uint8, labels or None, class names, notes) -------

def _read_folder(path: Path):
    from PIL import Image, UnidentifiedImageError

    if not path.is_dir():
        raise SourceError(f"folder:{path}: no such folder")
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    labelled = bool(subdirs) and any(_image_files(d) for d in subdirs)
    groups = [(i, _image_files(d)) for i, d in enumerate(subdirs)] if labelled else [(0, _image_files(path))]
    total = sum(len(files) for _, files in groups)
    if total == 0:
        raise SourceError(f"folder:{path}: no image files (PNG, JPEG, BMP, WebP) in it"
                          + (" or its subfolders" if subdirs else ""))
    arrays, labels, bad = [], [], 0
    for label, files in groups:
        for f in files:
            try:
                with Image.open(f) as im:
                    im.load()
                    arrays.append(_pil_array(im))
                    labels.append(label)
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
                bad += 1
    if bad > total / 2:
        raise SourceError(f"folder:{path}: {bad} of {total} image files cannot be decoded; is this the right folder?")
    notes = [f"skipped {bad} of {total} files that are not readable images"] if bad else []
    if not labelled:
        return arrays, None, [], notes
    names = [d.name for d in subdirs]
    used = sorted(set(labels))  # class folders without a readable image drop out; labels stay 0..K-1
    remap = {old: new for new, old in enumerate(used)}
    return arrays, np.array([remap[y] for y in labels], np.int64), [names[i] for i in used], notes


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)


def _pil_array(im) -> np.ndarray:
    """Any PIL image -> uint8 (H, W) grayscale or (H, W, 3) RGB (alpha composited over black)."""
    from PIL import Image

    if im.mode in ("1", "L", "I;16", "I", "F", "LA"):
        if im.mode in ("I;16", "I", "F"):
            a = np.asarray(im, np.float64)
            a = (a - a.min()) / max(a.max() - a.min(), 1e-12) * 255
            return a.astype(np.uint8)
        return np.asarray(im.convert("L"), np.uint8)
    rgba = im.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return np.asarray(Image.alpha_composite(canvas, rgba).convert("RGB"), np.uint8)


def _read_npz(path: Path):
    if not path.is_file():
        raise SourceError(f"npz:{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as f:
            if "images" not in f.files:
                raise SourceError(f"npz:{path}: no array named 'images' (it has {', '.join(f.files) or 'none'})")
            images = f["images"]
            labels = f["labels"] if "labels" in f.files else None
    except SourceError:
        raise
    except Exception as e:  # not a zip, object arrays (pickle), truncated
        raise SourceError(f"npz:{path}: cannot be read as a .npz of arrays ({type(e).__name__})") from None
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3, 4)):
        raise SourceError(f"npz:{path}: 'images' must be (N, H, W) or (N, H, W, C) with C = 1, 3 or 4; "
                          f"got shape {images.shape}")
    if images.dtype != np.uint8:
        raise SourceError(f"npz:{path}: 'images' must be uint8 (0..255), got {images.dtype}")
    if images.ndim == 4:
        images = images[..., 0] if images.shape[3] == 1 else images[..., :3]
    return list(images), *_check_labels(labels, len(images), f"npz:{path}"), []


def _read_npz_factors(path: Path, n: int) -> tuple[np.ndarray | None, list[str]]:
    """An npz's optional `factors` (N, K) integer matrix and `factor_names` (K,) strings."""
    with np.load(path, allow_pickle=False) as f:
        if "factors" not in f.files:
            return None, []
        factors = f["factors"]
        names = [str(x) for x in f["factor_names"]] if "factor_names" in f.files else []
    if factors.ndim != 2 or len(factors) != n or factors.dtype.kind not in "iu" or (factors.size and factors.min() < 0):
        raise SourceError(f"npz:{path}: 'factors' must be non-negative integers of shape (N, K) with N = {n} images; "
                          f"got {factors.dtype} {factors.shape}")
    k = factors.shape[1]
    if names and len(names) != k:
        raise SourceError(f"npz:{path}: {len(names)} factor_names for {k} factors")
    return factors.astype(np.int64), names or [f"factor {j}" for j in range(k)]


def _check_labels(labels, n: int, where: str) -> tuple[np.ndarray | None, list[str]]:
    """(labels remapped to 0..K-1, the K class names: the original values as text, "0".."9" for digits)."""
    if labels is None:
        return None, []
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" and not (labels.dtype.kind == "f" and np.all(np.mod(labels, 1) == 0)):
        raise SourceError(f"{where}: 'labels' must be integers (class indices), got {labels.dtype}")
    labels = labels.astype(np.int64).reshape(-1)
    if len(labels) != n:
        raise SourceError(f"{where}: {len(labels)} labels for {n} images")
    if labels.min() < 0:
        raise SourceError(f"{where}: labels must be >= 0, got {labels.min()}")
    classes = np.unique(labels)
    remap = np.searchsorted(classes, labels)  # 0..K-1 in the order of the original values
    return remap.astype(np.int64), [str(int(c)) for c in classes]


def _idx_file(prefix: Path, what: str) -> Path | None:
    kind = "idx3" if what == "images" else "idx1"
    for cand in (Path(f"{prefix}-{what}-{kind}-ubyte"), Path(f"{prefix}-{what}.{kind}-ubyte"),
                 Path(f"{prefix}-{what}-{kind}-ubyte.gz")):
        if cand.is_file():
            return cand
    if what == "images" and prefix.is_file():  # idx:FILE names the image file itself
        return prefix
    return None


def _read_idx_array(path: Path) -> np.ndarray:
    import gzip

    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise SourceError(f"idx:{path}: not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(dims):
        raise SourceError(f"idx:{path}: header says {dims} but the file holds {body.size} values (truncated?)")
    return body.reshape(dims)


def _read_idx(prefix: Path):
    img_file = _idx_file(prefix, "images")
    if img_file is None:
        raise SourceError(f"idx:{prefix}: no {prefix}-images-idx3-ubyte file")
    images = _read_idx_array(img_file)
    if images.ndim not in (3, 4):
        raise SourceError(f"idx:{img_file}: expected (N, H, W) images, got {images.ndim} dimensions")
    lab_file = _idx_file(prefix, "labels") if img_file != prefix else None
    labels = _read_idx_array(lab_file) if lab_file is not None else None
    return list(images), *_check_labels(labels, len(images), f"idx:{prefix}"), []


# ---- one size, one channel count --------------------------------------------------------------------------

def _uniform(arrays: list[np.ndarray], image_size: int, channels: int) -> tuple[np.ndarray, list[str]]:
    from PIL import Image

    notes = []
    colour = [a.ndim == 3 and not (np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2]))
              for a in arrays]
    n_colour = sum(colour)
    want = channels or (3 if n_colour else 1)
    if want == 3 and n_colour < len(arrays):
        if n_colour:
            notes.append(f"converted {len(arrays) - n_colour} grayscale images to RGB (the other {n_colour} have colour)")
    elif want == 1 and n_colour:
        notes.append(f"converted {n_colour} colour images to grayscale")
    sizes = Counter(a.shape[:2] for a in arrays)
    common = max(sizes.most_common(1)[0][0])
    if image_size:
        target = image_size
    else:
        target = conv_size(min(common, MAX_DEFAULT_SIZE))
    from models.config import conv_depth

    if target % (2 ** conv_depth(target)):
        raise SourceError(f"--image-size {target}: the conv family needs a multiple of {2 ** conv_depth(target)} "
                          f"at this size (try {conv_size(target)})")
    resized = sum(a.shape[:2] != (target, target) for a in arrays)
    if resized:
        seen = ", ".join(f"{w}x{h}" for (h, w), _ in sizes.most_common(3)) + (", ..." if len(sizes) > 3 else "")
        notes.append(f"resized {resized} images (sizes seen: {seen}) to {target}x{target} (shorter side, then a centre crop)")
    out = np.empty((len(arrays), target, target) + ((3,) if want == 3 else ()), np.uint8)
    mode = "RGB" if want == 3 else "L"
    for i, a in enumerate(arrays):
        im = Image.fromarray(a)
        if im.mode != mode:
            im = im.convert(mode)
        if a.shape[:2] != (target, target):
            w, h = im.size
            scale = target / min(w, h)
            nw, nh = max(target, round(w * scale)), max(target, round(h * scale))
            im = im.resize((nw, nh), Image.BILINEAR if scale > 1 else Image.LANCZOS)
            left, top = (nw - target) // 2, (nh - target) // 2
            im = im.crop((left, top, left + target, top + target))
        out[i] = np.asarray(im, np.uint8)
    return out, notes


def dark_background(images: np.ndarray, level: float = 0.2) -> bool:
    """Whether the images show objects on a dark ground, as MNIST and Fashion-MNIST do: the median brightness of
    their 1-pixel border is at most `level` (of white). images: uint8 (N, H, W)."""
    border = np.concatenate([images[:, 0], images[:, -1], images[:, 1:-1, 0], images[:, 1:-1, -1]], axis=1)
    return bool(np.median(border.astype(np.float32)) / 255 <= level)


def near_binary(images: np.ndarray, tolerance: float = 0.1, share: float = 0.9) -> bool:
    """Whether at least `share` of the pixels lie within `tolerance` of black or white (MNIST: 0.91; Fashion-MNIST: 0.60)."""
    sample = images.reshape(-1)[:: max(1, images.size // 2_000_000)].astype(np.float32) / 255
    return bool(np.mean((sample <= tolerance) | (sample >= 1 - tolerance)) >= share)
