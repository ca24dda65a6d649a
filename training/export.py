"""Build the app's atlas: `python -m training.export --dataset mnist --data-root DIR [--checkpoints DIR]`.

Writes <checkpoints>/<dataset>/atlas.npz (np.savez_compressed, no pickle), the format in the
team notes: the test set (a seeded subset of it beyond 10,000 images), each model's posterior means
(and stds) and a 2-D umap-learn embedding of each larger model's means, stored as float16 (three
significant digits: ample for maps, neighbours and sliders, and it keeps a 10,000-image atlas under
10 MB; the app reads them as float32), and a 10-component full-covariance
GaussianMixture fitted on each AE's training-set codes. umap / sklearn are imported inside the
functions that need them, so importing this module (or the app) never pulls them in.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from explorer.catalog import APP_MODELS, SHIPPED, find_models
from models import Autoencoder
from models.checkpoint import CheckpointError, atomic_write
from training.cli import OneLineParser, fail
from training.data import DATASETS, DataError, check_spec, dataset_info, load_factors, load_split, sources, to_float

ATLAS_NAME = "atlas.npz"
INFO_NAME = "dataset.json"  # the dataset's title, classes, image format and upload preprocessing (data.dataset_info)
CODE_DTYPE = np.float16  # the atlas's means, stds and map positions (see the module's docstring)
REGENERATE = "run `make checkpoints` to regenerate every model (see training/checkpoints.sh)"


def subset_indices(n_total: int, n: int, seed: int = 0) -> np.ndarray:
    """The atlas subset: n distinct test indices from a seeded permutation, sorted ascending; (n,) int64."""
    g = torch.Generator().manual_seed(seed)
    return np.sort(torch.randperm(n_total, generator=g)[:n].numpy()).astype(np.int64)


@torch.inference_mode()
def encode_images(model: Autoencoder, images: torch.Tensor, batch_size: int = 1000,
                  labels: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, H, W) or (N, H, W, C) -> posterior mean and std, float32 (N, D) each (std is 0 for an AE).

    The encoder sees intensities in [0, 1] (no binarization), as the app does; a conditional model
    also reads `labels` (N,), the images' true classes.
    """
    device = next(model.parameters()).device
    means, stds = [], []
    label_chunks = labels.split(batch_size) if labels is not None else [None] * len(images.split(batch_size))
    for chunk, y in zip(images.split(batch_size), label_chunks):
        posterior = model.encode(to_float(chunk).to(device), None if y is None else y.to(device))
        means.append(posterior.mean.float().cpu())
        stds.append(posterior.std.float().cpu())
    return torch.cat(means).numpy(), torch.cat(stds).numpy()


def umap_embedding(means: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D umap-learn embedding of (N, D) codes, random_state=seed; (N, 2) float32."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden to 1 by setting random_state" etc.
        import umap

        return umap.UMAP(n_components=2, random_state=seed).fit_transform(means).astype(np.float32)


def fit_gmm(codes: np.ndarray, n_components: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    """sklearn GaussianMixture(K, full covariance) on (N, D) codes -> weights (K,), means (K, D), covariances (K, D, D)."""
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(n_components=n_components, covariance_type="full", random_state=seed).fit(codes)
    return {"gmm_weights": gmm.weights_.astype(np.float32), "gmm_means": gmm.means_.astype(np.float32),
            "gmm_covariances": gmm.covariances_.astype(np.float32)}


def load_model(folder: Path, device: torch.device) -> Autoencoder:
    if not folder.is_dir():
        raise CheckpointError(f"model folder {folder} is missing; {REGENERATE}")
    try:
        return Autoencoder.from_pretrained(folder, device=device)
    except CheckpointError as e:
        raise CheckpointError(f"{e} ({REGENERATE})") from None


def build_atlas(
    dataset: str,
    data_root: str | os.PathLike,
    checkpoints: str | os.PathLike = "checkpoints",
    *,
    n_images: int = 10_000,
    gmm_train_size: int = 20000,
    seed: int = 0,
    device: str = "cpu",
    log=print,
    folder: str | None = None,
) -> dict[str, np.ndarray]:
    """Every array of atlas.npz for one dataset (a torchvision name or a folder:/npz:/idx: source), keyed as in
    the team notes ({model}__{name}); its folder under `checkpoints` is `folder`, default folder_name(dataset)."""
    folder = Path(checkpoints) / (folder or folder_name(dataset))
    dev = torch.device(device)
    names = find_models(folder)  # every model folder, the ones trained later too
    if folder.name in SHIPPED:  # a shipped dataset's atlas has the app's four models at least
        names = sorted(set(APP_MODELS) | set(names))
    if not names:
        raise CheckpointError(f"{folder} holds no model folder (config.json + model.safetensors); train one first")
    models = {m: load_model(folder / m, dev) for m in names}  # fail before any slow work
    size, channels = image_format(models, folder)
    test_images, test_labels = load_split(dataset, data_root, False, size, channels)
    idx = subset_indices(len(test_images), min(n_images, len(test_images)), seed)
    images = test_images[idx]
    atlas: dict[str, np.ndarray] = {
        "images": images.numpy().astype(np.uint8),  # (N, H, W) grayscale or (N, H, W, 3) RGB, not binarized
        "labels": test_labels[idx].numpy().astype(np.int64),
        "indices": idx,
        "class_names": np.array(dataset_info(dataset, size, channels)["class_names"], dtype=np.str_),
    }
    factors = load_factors(dataset, False, size, channels)
    if factors is not None:  # known factors of variation (dSprites): the Disentanglement tab reads them
        atlas["factors"] = factors[idx]
        atlas["factor_names"] = np.array(dataset_info(dataset, size, channels)["factors"]["names"], dtype=np.str_)
    train_images = None
    for name, model in models.items():
        t0 = time.perf_counter()
        mean, std = encode_images(model, images, labels=test_labels[idx])
        atlas[f"{name}__mean"] = mean.astype(CODE_DTYPE)
        if model.config.is_variational:
            atlas[f"{name}__std"] = std.astype(CODE_DTYPE)
        if model.config.latent_dim > 2:
            atlas[f"{name}__umap"] = umap_embedding(mean, seed).astype(CODE_DTYPE)
        if not model.config.is_variational:
            if train_images is None:
                train_images, train_labels = load_split(dataset, data_root, True, size, channels)
                if gmm_train_size and gmm_train_size < len(train_images):
                    g = torch.Generator().manual_seed(seed)
                    keep = torch.randperm(len(train_images), generator=g)[:gmm_train_size]
                    train_images, train_labels = train_images[keep], train_labels[keep]
            codes, _ = encode_images(model, train_images, labels=train_labels)
            atlas.update({f"{name}__{k}": v for k, v in fit_gmm(codes, 10, seed).items()})
        log(f"{dataset}/{name}: latent_dim {model.config.latent_dim}, {time.perf_counter() - t0:.1f}s")
    return atlas


PLAYGROUND_NAME = "playground.npz"
PLAYGROUND_IMAGES = 10_000


def build_playground(dataset: str, data_root: str | os.PathLike, size: int, channels: int,
                     n_images: int = PLAYGROUND_IMAGES, seed: int = 0) -> dict[str, np.ndarray]:
    """The app's Playground data: a seeded subset of the *training* split (the atlas holds test images, which the
    other tabs evaluate on), as uint8 images, labels and class names; about 1.5 MB compressed for MNIST."""
    images, labels = load_split(dataset, data_root, True, size, channels)
    idx = subset_indices(len(images), min(n_images, len(images)), seed + 1)
    return {"images": images[idx].numpy().astype(np.uint8), "labels": labels[idx].numpy().astype(np.int64),
            "class_names": np.array(dataset_info(dataset, size, channels)["class_names"], dtype=np.str_)}


def folder_name(dataset: str) -> str:
    """The checkpoint folder of a dataset: its torchvision name, or a folder:/npz:/idx: source's file name."""
    return dataset if dataset in DATASETS else sources.default_name(dataset)


def image_format(models: dict[str, Autoencoder], folder: Path) -> tuple[int, int]:
    """(image_size, image_channels) that every model of a dataset folder shares; CheckpointError if they differ."""
    formats = {(m.config.image_size, m.config.image_channels) for m in models.values()}
    if len(formats) != 1:
        raise CheckpointError(f"the models in {folder} take different image formats {sorted(formats)}: "
                              "one dataset folder holds models of one image size and channel count")
    return formats.pop()


def write_info(folder: Path, dataset: str, size: int, channels: int) -> dict:
    """dataset.json beside the atlas: how the app names the dataset and prepares an upload for it."""
    info = dataset_info(dataset, size, channels)
    write_json(folder / INFO_NAME, info)
    return info


def write_json(path: Path, obj: dict) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2) + "\n"))


def save_atlas(path: str | os.PathLike, atlas: dict[str, np.ndarray]) -> None:
    """np.savez_compressed written atomically (an open file, so numpy adds no '.npz' to the temp name)."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **atlas)

    atomic_write(path, write)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m training.export", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True,
                   help="mnist, fashion-mnist, or the folder:/npz:/idx: source the models were trained on")
    p.add_argument("--data-root", default="./data", help="folder holding MNIST/raw or FashionMNIST/raw")
    p.add_argument("--checkpoints", default="checkpoints", help="folder holding <dataset>/<model>/")
    p.add_argument("--n-images", type=int, default=10_000,
                   help="test images in the atlas: the whole test set up to this many, else a seeded subset (default 10000)")
    p.add_argument("--gmm-train-size", type=int, default=20000,
                   help="seeded subset of training images for the AE GMMs (0 = all 60k; default 20000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.n_images < 1 or args.gmm_train_size < 0:
        p.error("--n-images must be >= 1 and --gmm-train-size >= 0")
    try:
        check_spec(args.dataset)
    except ValueError as e:
        p.error(str(e))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prog = "python -m training.export"
    t0 = time.perf_counter()
    try:
        atlas = build_atlas(args.dataset, args.data_root, args.checkpoints, n_images=args.n_images,
                            gmm_train_size=args.gmm_train_size, seed=args.seed, device=args.device)
    except (CheckpointError, DataError, ValueError) as e:
        fail(prog, str(e))
    path = Path(args.checkpoints) / folder_name(args.dataset) / ATLAS_NAME
    save_atlas(path, atlas)
    channels = atlas["images"].shape[3] if atlas["images"].ndim == 4 else 1
    write_info(path.parent, args.dataset, atlas["images"].shape[1], channels)
    save_atlas(path.parent / PLAYGROUND_NAME, build_playground(args.dataset, args.data_root, atlas["images"].shape[1],
                                                               channels, seed=args.seed))
    size = path.stat().st_size / 2**20
    print(f"saved {path} ({len(atlas['images'])} images, {size:.1f} MiB, {time.perf_counter() - t0:.0f}s)")
    if size >= 10:
        print(f"{prog}: warning: {path} is {size:.1f} MiB (budget 10 MiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
