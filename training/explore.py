"""One command from an image folder to the app: `python -m training.explore PATH` (`make explore DATA=PATH`).

PATH is an image folder (class subfolders = labels, or flat), an .npz file (arrays images, labels) or the prefix of
MNIST-format IDX files; `folder:`, `npz:` and `idx:` prefixes say it explicitly. The job:

1. reads the data once (training/sources.py: sizes, channels, unreadable files; one line and exit 1 if unusable),
   holds out a test split with a fixed seed and picks the likelihood (`--likelihood auto`: Bernoulli for
   near-binary pixels, a Gaussian with fixed std 0.1 otherwise);
2. trains the default pair, AE-16 and VAE-16 (the shipped models' conv backbone), and the 2-D pair unless
   `--no-2d`, into checkpoints/<name>/ (a fixed number of optimizer steps per model unless --epochs is given, so
   the time follows the image size rather than the number of images);
3. writes the atlas (training/export.py) and evaluates every model (training/evaluate.py: reconstruction error,
   ELBO, IS-NLL with k = 100, and the PCA baseline of the same dimension).

One progress bar covers the whole job, with the time left. The next `make run` shows the dataset in the app.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import time
from pathlib import Path

from training.cli import OneLineParser, _parse_bool, fail
from training.data import DataError, dataset_info, load_split, sources

# The training budget of a model, from the data: EPOCHS passes over the training images, at most STEPS optimizer
# steps (batch 128) at up to 32x32 pixels and proportionally fewer above (a step costs its pixels); at least 3 epochs.
# 10,000 images at 32x32: 23 and 9 epochs (the step caps); 2,000: 40 and 16 (520 and 208 steps).
EPOCHS_16, EPOCHS_2 = 40, 16
STEPS_16, STEPS_2 = 1500, 600
MODELS = (("ae-16", "ae", 16), ("vae-16", "vae", 16), ("ae-2", "ae", 2), ("vae-2", "vae", 2))
SHIPPED_NAMES = ("mnist", "fashion-mnist", "dsprites")


def budget_epochs(per_epoch: int, latent_dim: int, image_size: int) -> int:
    """Epochs of one model with `per_epoch` optimizer steps an epoch (the module's budget rule above)."""
    epochs, steps = (EPOCHS_16, STEPS_16) if latent_dim > 2 else (EPOCHS_2, STEPS_2)
    steps *= min(1.0, (32 / image_size) ** 2)
    return max(3, min(epochs, round(steps / per_epoch)))


def to_spec(path: str) -> str:
    """A --dataset value from what a person types: a prefixed spec as is; else a folder, an .npz file or IDX files."""
    if sources.is_user_spec(path):
        return path
    p = Path(path).expanduser()
    if p.is_dir():
        return f"folder:{path}"
    if p.suffix.lower() == ".npz":
        return f"npz:{path}"
    if p.name.endswith("idx3-ubyte") or p.name.endswith("idx3-ubyte.gz") or Path(f"{path}-images-idx3-ubyte").is_file():
        return f"idx:{path}"
    raise DataError(f"{path}: no such folder, .npz file or IDX files (PATH-images-idx3-ubyte)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m training.explore", description=__doc__.split("\n")[0])
    p.add_argument("data", metavar="PATH", help="image folder, .npz file or IDX prefix (or folder:/npz:/idx: PATH)")
    p.add_argument("--name", default="", help="the dataset's folder under --checkpoints and its title in the app "
                                               "(default: the data's file or folder name)")
    p.add_argument("--checkpoints", default="checkpoints", help="where the dataset folder is written")
    p.add_argument("--epochs", type=int, default=0,
                   help=f"epochs per model (default 0: from the data, {EPOCHS_16} epochs of a 16-D model and "
                        f"{EPOCHS_2} of a 2-D one, at most {STEPS_16} and {STEPS_2} optimizer steps at 32x32 pixels)")
    p.add_argument("--no-2d", dest="pair_2d", action="store_false", help="train the AE-16 and VAE-16 only")
    p.add_argument("--image-size", type=int, default=0, help="resize to SxS (default 0: keep, at most 64)")
    p.add_argument("--image-channels", type=int, default=0, choices=(0, 1, 3),
                   help="1 grayscale, 3 RGB (default 0: RGB if any image has colour)")
    p.add_argument("--likelihood", default="auto", choices=("auto", "bernoulli", "gaussian"),
                   help="decoder likelihood (default auto: bernoulli for near-binary pixels, else gaussian)")
    p.add_argument("--preprocess", default="auto", choices=("auto", "digit", "photo"),
                   help="how the app prepares an upload: digit (centre the object, light on dark, as MNIST), photo "
                        "(resize and crop, colours kept); default auto: digit for grayscale objects on a dark ground")
    p.add_argument("--k", type=int, default=100, help="importance samples of the IS-NLL (default 100)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default 0: torch's choice)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda")
    p.add_argument("--overwrite", type=_parse_bool, nargs="?", const=True, default=False, metavar="{true,false}",
                   help="replace an existing dataset folder of the same name")
    args = p.parse_args(argv)
    if args.epochs < 0 or args.k < 1 or args.threads < 0:
        p.error("--epochs and --threads must be >= 0, --k >= 1")
    if args.name and (args.name != sources.default_name(f"npz:{args.name}") or args.name in SHIPPED_NAMES):
        p.error(f"--name {args.name!r}: use lower-case letters, digits and '-', and not a shipped dataset's name")
    return args


class Job:
    """One tqdm bar over every unit of work: an optimizer step is one unit; the atlas and each evaluation count as
    many units as they are expected to take (measured against the steps done so far)."""

    def __init__(self, total_steps: int, extra: int):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total_steps + extra, unit="step", desc="explore", file=sys.stderr,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed} elapsed, ~{remaining} left {postfix}",
                        dynamic_ncols=True)

    def step(self) -> None:
        self.bar.update(1)

    def stage(self, text: str) -> None:
        self.bar.set_postfix_str(text)

    def done(self, units: int) -> None:
        self.bar.update(max(0, min(units, self.bar.total - self.bar.n)))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prog = "python -m training.explore"
    t0 = time.perf_counter()
    try:
        spec = to_spec(args.data)
        info = dataset_info(spec, args.image_size, args.image_channels)
        train_x, _ = load_split(spec, ".", True, args.image_size, args.image_channels)
    except (DataError, ValueError) as e:
        fail(prog, str(e))
    name = args.name or info["name"]
    if name in SHIPPED_NAMES:
        fail(prog, f"the data's name {name!r} is a shipped dataset's: pass --name NAME")
    out = Path(args.checkpoints) / name
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        fail(prog, f"{out} exists: pass --name NEW or --overwrite")
    import torch

    from models import ModelConfig
    from training.train import RESUME_NAME, TrainConfig, default_val_size, resolve_data_flags, train

    if args.threads:
        torch.set_num_threads(args.threads)
    flags = argparse.Namespace(dataset=spec, data_root=".", image_size=info["image_size"],
                               image_channels=info["image_channels"], likelihood=args.likelihood, binarize="auto")
    flags = resolve_data_flags(flags, say=lambda m: print(m, file=sys.stderr))
    n_train = len(train_x)
    val = default_val_size(n_train)
    per_epoch = math.ceil((n_train - val) / 128)
    plan = [(m, b, d) for m, b, d in MODELS if args.pair_2d or d > 2]
    epochs = {m: args.epochs or budget_epochs(per_epoch, d, info["image_size"]) for m, _, d in plan}
    total_steps = sum(epochs[m] * per_epoch for m, _, _ in plan)
    # the atlas (UMAP's first fit is ~30 s of JIT) and the evaluations: about a fifth of the training, by measurement
    print(f"{spec}: {n_train} training images ({val} of them for validation), {info['image_size']}x{info['image_size']}, "
          f"{info['image_channels']} channel(s); training "
          f"{', '.join(f'{m} ({epochs[m]} epochs, {epochs[m] * per_epoch} steps)' for m, _, _ in plan)} "
          f"into {out}", file=sys.stderr)
    job = Job(total_steps, extra=max(1, total_steps // 5))
    log = io.StringIO()  # the per-epoch JSON lines of training.train: kept in each model's metrics.json history
    try:
        for model_name, bottleneck, dim in plan:
            job.stage(f"training {model_name}")
            steps = epochs[model_name] * per_epoch
            cfg = TrainConfig(dataset=spec, data_root=".", out=str(out / model_name), epochs=epochs[model_name],
                              batch_size=128, lr=1e-3, seed=0, val_size=val, device=args.device,
                              binarize=flags.binarize, weights_dtype="float16",
                              kl_warmup_steps=steps // 10 if bottleneck == "vae" else 0)
            model_cfg = fit_in_file(ModelConfig(family="conv", bottleneck=bottleneck, latent_dim=dim,
                                                 likelihood=flags.likelihood, image_size=flags.image_size,
                                                 image_channels=flags.image_channels,
                                                 title=f"{bottleneck.upper()}-{dim}"))
            with contextlib.redirect_stdout(log):
                train(cfg, model_cfg, progress=False, on_step=lambda _: job.step())
            (out / model_name / RESUME_NAME).unlink(missing_ok=True)  # a finished run needs no resume state
        job.stage("atlas (UMAP of each model's codes)")
        before = job.bar.n
        from training import evaluate, export

        with contextlib.redirect_stdout(log):
            atlas = export.build_atlas(spec, ".", args.checkpoints, device="cpu", log=lambda m: None,
                                       folder=name)
        export.save_atlas(out / export.ATLAS_NAME, atlas)
        export.save_atlas(out / export.PLAYGROUND_NAME, export.build_playground(spec, ".", flags.image_size,
                                                                                flags.image_channels))
        written = export.write_info(out, spec, flags.image_size, flags.image_channels)
        if args.name:  # the app shows the chosen name as the title
            written["title"] = written["name"] = name
        if args.preprocess != "auto":
            written["preprocess"] = args.preprocess
        if args.name or args.preprocess != "auto":
            export.write_json(out / export.INFO_NAME, written)
        job.done(max(0, total_steps // 10 - (job.bar.n - before)))
        for model_name, _, _ in plan:
            job.stage(f"evaluating {model_name}")
            with contextlib.redirect_stdout(log):
                evaluate.main([str(out / model_name), "--k", str(args.k), "--data-root", "."]
                              + (["--threads", str(args.threads)] if args.threads else []))
            job.done(max(1, total_steps // 10 // len(plan)))
    except (DataError, ValueError) as e:
        job.bar.close()
        fail(prog, str(e))
    except KeyboardInterrupt:
        job.bar.close()
        fail(prog, f"interrupted; {out} is incomplete: run again with --overwrite", 130)
    job.bar.close()
    print(summary(out, [m for m, _, _ in plan], time.perf_counter() - t0))


MAX_WEIGHT_BYTES = 9_500_000  # model.safetensors in float16: under the 10 MB a Space takes without LFS


def fit_in_file(model_cfg):
    """The config with the widest hidden layer (512, 384, 256, ...) whose float16 weights stay under
    MAX_WEIGHT_BYTES: the conv family's flattened features grow with the image (48x48: 10.2 MB at 512)."""
    import dataclasses

    from models import Autoencoder

    for hidden in (512, 384, 256, 192, 128, 96, 64):
        cfg = dataclasses.replace(model_cfg, hidden_dim=hidden)
        if 2 * sum(p.numel() for p in Autoencoder(cfg).parameters()) <= MAX_WEIGHT_BYTES:
            return cfg
    return cfg


def summary(out: Path, names: list[str], seconds: float) -> str:
    """The figures of each model (metrics.json's eval block), and how to see them in the app."""
    from models import read_metrics

    lines = [f"{out}: {len(names)} models, atlas and figures in {seconds / 60:.1f} min"]
    for n in names:
        ev = read_metrics(out / n).get("eval", {})
        nll = f", IS-NLL {ev['is_nll']:.1f}" if "is_nll" in ev else ""
        lines.append(f"  {n}: MSE/pixel {ev.get('mse_per_pixel', float('nan')):.4f} "
                     f"(PCA of the same dimension: {ev.get('pca_mse_per_pixel', float('nan')):.4f}){nll}")
    lines.append(f"Run `make run` (or `LATENT_EXPLORER_CHECKPOINTS={out.parent} python app.py`) and pick "
                 f"{out.name} in the app.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
