"""Evaluate a checkpoint on the test set: `python -m training.evaluate CHECKPOINT_DIR [--data-root DIR] [--k 1000]`.

Writes an "eval" block (full test set) and an "atlas_check" block (1000 atlas images drawn at random, seeded,
k=100, seed 0) into CHECKPOINT_DIR/metrics.json, keeping the training provenance already there.

Figures, all averaged over test images:
  recon_per_image  -log p(x|z) at z = posterior mode, summed over pixels (BCE nats for a Bernoulli
                   decoder; for a Gaussian decoder the squared error summed over pixels)
  mse_per_pixel    mean of (E[x|z=mode] - x)^2 over pixels
  neg_elbo         -log p(x|z) + KL(q(z|x) || p(z)), one posterior sample per image (AE: = recon); the KL is
                   closed form for the N(0, I) prior, the one-sample estimate for a learned prior (mog, vamp)
  kl               that KL(q(z|x) || p(z)) alone: the model's own KL, the one in its ELBO
  is_nll           (VAE) -log p(x) estimated with the IWAE bound, k importance samples
                   (Burda, Grosse & Salakhutdinov 2015, "Importance Weighted Autoencoders", eq. 8)
  marginal_kl_per_dim  (VAE) KL(q(z_d|x) || p(z_d)) of each latent dimension's marginals, the model's own prior
                   (Autoencoder.marginal_kl_per_dim): closed form for N(0, I) and a Gaussian q, where the
                   dimensions sum to `kl`; quadrature or sampled for a learned prior or a flow, where they need not
  active_units     (VAE) #dims u with Cov_x(E_q[u|x]) > 0.01 (Burda et al. 2015, section 5.2)
  class_error      (semi-supervised M2) test error of its classifier q(y|x), argmax, on the same test targets
  pca_mse_per_pixel  PCA with latent_dim components fit on the training split (same preprocessing),
                   reconstructing the same test targets; ae_over_pca_mse = mse_per_pixel / that
MNIST targets are dynamically binarized test images, x ~ Bernoulli(intensity), drawn once with
torch.Generator().manual_seed(seed) over the whole split in order (seed 0 by default), as in the
IWAE paper's evaluation; the PCA training split is binarized the same way with seed + 1.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from models import Autoencoder
from models.autoencoder import repeat_labels
from models.checkpoint import CheckpointError, read_metrics, write_metrics
from models.likelihood import mean_image
from training.cli import OneLineParser, fail
from training.data import DataError, load_split, prepare_batch

ATLAS_CHECK = {"n_images": 1000, "k": 100, "seed": 0}  # fixed: a test recomputes these exactly
ATLAS_CHECK_SUBSET = "seeded random sample of the atlas (training.evaluate.atlas_check_positions)"
ACTIVE_THRESHOLD = 0.01


# ---- reusable pieces (plain functions the tests call) ------------------------------------------
def importance_log_weights(model, x: Tensor, posterior, eps: Tensor, labels: Tensor | None = None) -> Tensor:
    """log w = log p(x|z) + log p(z) - log q(z|x) at (z, log q) = posterior.transform(eps); eps (c, B, D) -> (c, B).

    `model` is anything with decode(z, labels) -> params, log_likelihood(params, x) -> (B,) and prior_log_prob(z);
    `posterior` anything with transform(eps) -> (z (..., B, D), log q(z|x) (..., B)) (models/posterior.py).
    """
    c, b, d = eps.shape
    z, log_q = posterior.transform(eps)  # (c, B, D), (c, B)
    params = model.decode(z.reshape(c * b, d), repeat_labels(labels, c))
    x_rep = x.unsqueeze(0).expand(c, *x.shape).reshape(c * b, *x.shape[1:])
    log_px_z = model.log_likelihood(params, x_rep).reshape(c, b)
    return log_px_z + model.prior_log_prob(z) - log_q


def iwae_log_px(
    model, x: Tensor, k: int, *, generator: torch.Generator | None = None, chunk: int | None = None, posterior=None,
    labels: Tensor | None = None, log_weights=importance_log_weights,
) -> Tensor:
    """IWAE estimate of log p(x), (B,): logsumexp_i log w_i - log k, z_i ~ q(z|x), i = 1..k.

    All k*B*D standard-normal draws are made up front (cheap: D numbers per sample), so the result
    does not depend on `chunk`; the decoder then runs on `chunk` samples at a time and the
    logsumexp is accumulated across chunks, so decoder memory is bounded by chunk * B whatever k is.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    posterior = posterior if posterior is not None else model.encode(x, labels)
    b, d = posterior.mean.shape
    eps = torch.randn((k, b, d), generator=generator, device=posterior.mean.device, dtype=posterior.mean.dtype)
    chunk = max(1, min(chunk or k, k))
    total = torch.full((b,), -math.inf, device=posterior.mean.device, dtype=posterior.mean.dtype)
    for start in range(0, k, chunk):
        log_w = log_weights(model, x, posterior, eps[start : start + chunk], labels)  # (c, B)
        total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
    return total - math.log(k)


def active_units(means: Tensor, threshold: float = ACTIVE_THRESHOLD) -> tuple[int, Tensor]:
    """Burda et al. 2015: unit u is active if Cov_x(E_q[u|x]) > threshold. means: (N, D) -> (count, (D,) variances)."""
    variances = means.double().var(dim=0, correction=0)
    return int((variances > threshold).sum()), variances


def pca_fit(train: Tensor, n_components: int) -> tuple[Tensor, Tensor]:
    """PCA by eigendecomposition of the covariance (float64): (mean (P,), components (P, n_components))."""
    x = train.flatten(1).double()
    mu = x.mean(dim=0)
    cov = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
    for rows in x.split(10_000):
        c = rows - mu
        cov += c.T @ c
    evals, evecs = torch.linalg.eigh(cov / len(x))  # ascending
    return mu, evecs[:, -n_components:].flip(1)


def pca_mse_per_pixel(train: Tensor, test: Tensor, n_components: int) -> float:
    """Mean squared error per pixel of reconstructing `test` from its top-n PCA projection fit on `train`."""
    mu, v = pca_fit(train, n_components)
    c = test.flatten(1).double() - mu
    recon = c @ v @ v.T
    return float((recon - c).pow(2).mean())


# ---- evaluation of one model on a set of images --------------------------------------------------
@torch.inference_mode()
def per_image_terms(model: Autoencoder, x: Tensor, k: int, g_elbo: torch.Generator | None = None,
                    g_iwae: torch.Generator | None = None, chunk: int | None = None,
                    labels: Tensor | None = None, log_weights=importance_log_weights,
                    g_marginal: torch.Generator | None = None) -> dict[str, Tensor]:
    """The module docstring's figures for each image of a batch x (B, C, H, W), as (B,) tensors: recon
    (-log p(x|z=mode)), sq_err (summed over pixels), elbo_recon and kl (one posterior sample), neg_elbo,
    and with k >= 1 log_px (IWAE, k samples); also mean (B, D) and marginal_kl_per_dim (B, D). `labels` (B,): the
    classes a conditional model needs (its figures are then conditional on them: log p(x|y))."""
    posterior = model.encode(x, labels)
    params = model.decode(posterior.mode(), labels)
    out = {"recon": -model.log_likelihood(params, x),
           "sq_err": (mean_image(params, model.config.likelihood) - x).pow(2).flatten(1).sum(1)}
    z = posterior.sample(g_elbo)
    out["elbo_recon"] = -model.log_likelihood(model.decode(z, labels), x)
    out["kl"] = model.kl(posterior, z)  # closed form for N(0, I); a one-sample estimate for a learned prior
    out["neg_elbo"] = out["elbo_recon"] + out["kl"]
    out["marginal_kl_per_dim"] = model.marginal_kl_per_dim(posterior, g_marginal)  # draws only for a flow
    out["mean"] = posterior.mean
    if k >= 1:
        out["log_px"] = iwae_log_px(model, x, k, generator=g_iwae, chunk=chunk, posterior=posterior, labels=labels,
                                    log_weights=log_weights)
    return out


@torch.inference_mode()
def evaluate_images(
    model: Autoencoder,
    images: Tensor,
    *,
    binarize: bool,
    k: int,
    seed: int = 0,
    batch_size: int = 100,
    decode_batch: int = 10_000,
    progress: bool = False,
    desc: str = "eval",
    labels: Tensor | None = None,
    log_weights=importance_log_weights,
) -> dict:
    """All figures of the module docstring (except PCA) on uint8 images (N, H, W); deterministic given the args.
    `labels` (N,): the classes, which a conditional model reads (its figures are then conditional, -log p(x|y)).
    `log_weights`: importance_log_weights or its compiled_log_weights() twin."""
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    g_bin = torch.Generator().manual_seed(seed)  # binarization: once, whole set, in order
    x_all = prepare_batch(images.cpu(), binarize, g_bin)  # (N, 1, H, W) in [0, 1] or {0, 1}
    g_elbo = torch.Generator(device=device).manual_seed(seed + 1)
    g_iwae = torch.Generator(device=device).manual_seed(seed + 2)
    g_marginal = torch.Generator(device=device).manual_seed(seed + 3)  # its own: the other figures stay as they were
    variational = model.config.is_variational
    sums = {"recon": 0.0, "sq_err": 0.0, "neg_elbo": 0.0, "elbo_recon": 0.0, "kl": 0.0, "log_px": 0.0}
    kl_dim = torch.zeros(model.config.latent_dim, dtype=torch.float64)
    means = []
    chunk = max(1, decode_batch // batch_size)
    conditional = model.config.conditional
    y_all = (labels if conditional else torch.zeros(len(x_all), dtype=torch.long)).split(batch_size)
    bar = tqdm(list(zip(x_all.split(batch_size), y_all)), desc=desc, disable=not progress, file=sys.stderr, leave=False)
    for x, y in bar:
        t = per_image_terms(model, x.to(device), k if variational else 0, g_elbo, g_iwae, chunk,
                            labels=y.to(device) if conditional else None, log_weights=log_weights,
                            g_marginal=g_marginal)
        for key in sums:
            if key in t:
                sums[key] += float(t[key].sum())
        kl_dim += t["marginal_kl_per_dim"].double().sum(0).cpu()
        means.append(t["mean"].cpu())
    n = len(x_all)
    out = {
        "n_images": n,
        "likelihood": model.config.likelihood,
        "binarized": bool(binarize),
        "seed": seed,
        "recon_per_image": sums["recon"] / n if model.config.likelihood == "bernoulli" else sums["sq_err"] / n,
        "mse_per_pixel": sums["sq_err"] / x_all[0].numel() / n,
        "neg_elbo": sums["neg_elbo"] / n,
        "elbo_recon": sums["elbo_recon"] / n,
        "kl": sums["kl"] / n,
        "conditional": conditional,  # a conditional model's figures are given the true label: -log p(x|y)
    }
    if model.config.semi_supervised and labels is not None:  # M2's q(y|x) on the same test targets
        pred = torch.cat([model.classify(x.to(device)).argmax(1).cpu() for x in x_all.split(batch_size)])
        out["class_error"] = float((pred != torch.as_tensor(labels).cpu()).float().mean())
    if variational:
        count, variances = active_units(torch.cat(means))
        out.update({"is_nll": -sums["log_px"] / n, "is_k": k, "marginal_kl_per_dim": (kl_dim / n).tolist(),
                    "active_units": count, "active_unit_variances": variances.tolist()})
    return out


def atlas_check_positions(n_atlas: int, n: int = ATLAS_CHECK["n_images"], seed: int = ATLAS_CHECK["seed"]) -> np.ndarray:
    """Which atlas images the atlas_check uses: n of them drawn at random (seeded), in atlas order; (n,) int64.

    Not the first n: the atlas is sorted by test index, and a test split in index order (a generated grid such as
    dSprites, a folder read class by class) would make its first images one shape or one class."""
    from training.export import subset_indices  # the atlas's own draw from the test set, here from the atlas

    return subset_indices(n_atlas, min(n, n_atlas), seed)


def atlas_check_images(atlas_path: str | os.PathLike, n: int = ATLAS_CHECK["n_images"],
                       seed: int = ATLAS_CHECK["seed"]) -> tuple[Tensor, Tensor | None]:
    """The atlas_check's images (uint8) and labels (int64; None for an atlas without labels), from the atlas."""
    with np.load(atlas_path, allow_pickle=False) as atlas:
        pick = atlas_check_positions(len(atlas["images"]), n, seed)
        labels = torch.from_numpy(atlas["labels"][pick].astype(np.int64)) if "labels" in atlas.files else None
        return torch.from_numpy(atlas["images"][pick]), labels


def atlas_check(model: Autoencoder, atlas_path: str | os.PathLike, binarize: bool) -> dict:
    """The eval figures on 1000 atlas images, k=100, seed 0: recomputable from the shipped files alone."""
    images, labels = atlas_check_images(atlas_path)
    return evaluate_images(model, images, binarize=binarize, k=ATLAS_CHECK["k"], seed=ATLAS_CHECK["seed"],
                           labels=labels if model.config.conditional else None)


# ---- CLI -----------------------------------------------------------------------------------------
def checkpoint_dataset(directory: Path, metrics: dict) -> tuple[str, bool]:
    """(dataset, dynamic binarization) of a checkpoint, from its training provenance (else the folder name)."""
    tc = metrics.get("train_config", {})
    dataset = metrics.get("dataset") or tc.get("dataset") or directory.resolve().parent.name
    mode = tc.get("binarize", "auto")
    return dataset, mode == "dynamic" or (mode == "auto" and dataset == "mnist")


def write_atlas_check(model: Autoencoder, directory: Path, metrics: dict, atlas: str | None, binarize: bool,
                      require: bool) -> None:
    """metrics["atlas_check"] from the atlas beside the checkpoint (or `atlas`), then metrics.json, atomically."""
    atlas_path = Path(atlas) if atlas else directory / ".." / "atlas.npz"
    if atlas_path.is_file():
        metrics["atlas_check"] = dict(ATLAS_CHECK, atlas=atlas_path.name, subset=ATLAS_CHECK_SUBSET, **atlas_check(model, atlas_path, binarize))
    elif require:
        fail("python -m training.evaluate", f"{atlas_path} not found: run training.export first")
    else:
        print(f"note: {atlas_path} not found; atlas_check skipped (run training.export, then evaluate --atlas-only)")
    write_metrics(directory, metrics)


def write_dims(model: Autoencoder, directory: Path, metrics: dict, test: Tensor, test_labels: Tensor, binarize: bool,
               atlas: str | None) -> None:
    """Only marginal_kl_per_dim of the eval and atlas_check blocks, as a full run computes it (same images, seeds and
    batches; k = 0: no importance sampling), then metrics.json and the model card, atomically."""
    prog = "python -m training.evaluate"
    if "eval" not in metrics:
        fail(prog, f"{directory}/metrics.json has no eval block: run without --dims-only first")
    if not model.config.is_variational:
        fail(prog, f"{directory} is a deterministic AE: it has no KL per dimension")
    blocks = [(metrics["eval"], test, test_labels)]
    atlas_path = Path(atlas) if atlas else directory / ".." / "atlas.npz"
    if "atlas_check" in metrics and atlas_path.is_file():
        block = metrics["atlas_check"]
        blocks.append((block, *atlas_check_images(atlas_path, block["n_images"], block.get("seed", 0))))
    for block, images, labels in blocks:
        images = images[: block["n_images"]]
        labels = None if labels is None else labels[: block["n_images"]]
        r = evaluate_images(model, images, binarize=binarize, k=0, seed=block.get("seed", 0), labels=labels)
        block.pop("kl_per_dim", None)  # its old name: KL to N(0, I) whatever the prior
        block["marginal_kl_per_dim"] = r["marginal_kl_per_dim"]
    write_metrics(directory, metrics)
    from training.modelcard import write_card

    write_card(directory)


def compiled_log_weights(model: Autoencoder, device: torch.device):
    """importance_log_weights under torch.compile (decoder, likelihood, prior and log q fused: ~1.6x faster k = 1000
    runs on a CPU, figures equal to ~1e-4 nats), or None with a note when compiling fails (e.g. no C++ compiler)."""
    logging.getLogger("torch._dynamo").setLevel(logging.ERROR)  # a CVAE's label check is a (harmless) graph break
    fn = torch.compile(importance_log_weights)
    try:
        with torch.inference_mode():
            x = torch.zeros(2, model.config.image_channels, model.config.image_size, model.config.image_size,
                            device=device)
            labels = torch.zeros(2, dtype=torch.long, device=device) if model.config.conditional else None
            posterior = model.encode(x, labels)
            fn(model, x, posterior, torch.zeros(1, 2, model.config.latent_dim, device=device), labels)
        return fn
    except Exception as e:  # noqa: BLE001  (any backend error: the eager function gives the same figures)
        print(f"--compile: compiling failed ({type(e).__name__}); evaluating without it", file=sys.stderr)
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="checkpoint folder (config.json, model.safetensors, metrics.json)")
    p.add_argument("--data-root", default="./data", help="folder holding MNIST/raw or FashionMNIST/raw")
    p.add_argument("--k", type=int, default=1000, help="importance samples per image for the NLL (default 1000)")
    p.add_argument("--batch-size", type=int, default=100, help="test images per step (default 100)")
    p.add_argument("--decode-batch", type=int, default=10_000, help="latent samples per decoder call (default 10000)")
    p.add_argument("--max-images", type=int, default=0, help="evaluate only the first N test images (0 = all)")
    p.add_argument("--seed", type=int, default=0, help="seed of binarization and posterior samples (default 0)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    p.add_argument("--atlas", default=None, help="atlas.npz for atlas_check (default: <checkpoint>/../atlas.npz)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the decoder (~1.6x faster k=1000 runs on a CPU; needs a C++ compiler, "
                        "falls back to eager with a note if compiling fails)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--atlas-only", action="store_true",
                   help="recompute only atlas_check (after training.export rewrote the atlas), keep the eval block")
    p.add_argument("--dims-only", action="store_true",
                   help="recompute only the KL per dimension (marginal_kl_per_dim) of the eval and atlas_check "
                        "blocks, keep every other figure (no importance sampling: seconds, not minutes)")
    args = p.parse_args(argv)
    for name in ("k", "batch_size", "decode_batch"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.atlas_only and args.dims_only:
        p.error("--atlas-only and --dims-only are two different partial runs: give one")
    if args.max_images < 0 or args.threads < 0:
        p.error("--max-images and --threads must be >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prog = "python -m training.evaluate"
    directory = Path(args.checkpoint)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    t0 = time.perf_counter()
    try:
        model = Autoencoder.from_pretrained(directory, device=device)
        metrics = read_metrics(directory)
        dataset, binarize = checkpoint_dataset(directory, metrics)
        fmt = (model.config.image_size, model.config.image_channels)
        test, test_labels = load_split(dataset, args.data_root, False, *fmt)
        train, _ = load_split(dataset, args.data_root, True, *fmt)
    except (CheckpointError, DataError, ValueError) as e:
        fail(prog, str(e))
    log_weights = (compiled_log_weights(model, device) if args.compile else None) or importance_log_weights
    if args.max_images:
        test, test_labels = test[: args.max_images], test_labels[: args.max_images]
    if args.atlas_only:
        if "eval" not in metrics:
            fail(prog, f"{directory}/metrics.json has no eval block: run without --atlas-only first")
        write_atlas_check(model, directory, metrics, args.atlas, binarize, require=True)
        print(f"{directory}: atlas_check written ({time.perf_counter() - t0:.0f}s)")
        return
    if args.dims_only:
        write_dims(model, directory, metrics, test, test_labels, binarize, args.atlas)
        print(f"{directory}: marginal_kl_per_dim written ({time.perf_counter() - t0:.0f}s)")
        return
    progress = sys.stderr.isatty()
    result = evaluate_images(model, test, binarize=binarize, k=args.k, seed=args.seed, batch_size=args.batch_size,
                             decode_batch=args.decode_batch, progress=progress, desc=f"eval {directory}",
                             labels=test_labels, log_weights=log_weights)
    # PCA baseline on the same targets (same binarization of the test set: seed, whole split, in order).
    test_x = prepare_batch(test, binarize, torch.Generator().manual_seed(args.seed))
    train_x = prepare_batch(train, binarize, torch.Generator().manual_seed(args.seed + 1))
    result["pca_mse_per_pixel"] = pca_mse_per_pixel(train_x, test_x, model.config.latent_dim)
    result["ae_over_pca_mse"] = result["mse_per_pixel"] / result["pca_mse_per_pixel"]
    result.update({"dataset": dataset, "eval_seconds": round(time.perf_counter() - t0, 1), "device": str(device)})
    metrics["eval"] = result
    write_atlas_check(model, directory, metrics, args.atlas, binarize, require=False)
    from training.modelcard import write_card

    write_card(directory)  # README.md: the Hugging Face model card, from the metrics just written
    summary = {k: result[k] for k in ("recon_per_image", "mse_per_pixel", "neg_elbo", "is_nll", "active_units",
                                      "pca_mse_per_pixel", "class_error") if k in result}
    print(f"{directory}: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items()) + f" ({result['eval_seconds']:.0f}s)")


if __name__ == "__main__":
    main()
