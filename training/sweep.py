"""How to choose the latent size: an AE and a VAE at each d, one backbone and one recipe, measured side by side.

    python -m training.sweep --dataset mnist --data-root DATA [--dims 2,4,8,16,32,64] [--epochs 10]

For each d of --dims and each kind (ae, vae), trains a model with the same backbone and recipe (RECIPE below: the
MLP backbone, 2 x 512 hidden units; only latent_dim and the bottleneck change) into --runs/<dataset>/<kind>-<d>,
measures it, and writes checkpoints/<dataset>/sweep.json. A model already trained with the same settings is
measured again, not retrained; a run stopped half-way resumes from its last epoch. A model that sweep.json already
holds, measured under the same protocol, keeps its row (--fresh measures it again), so a sweep can be extended, or
finished on another machine, from the shipped file alone.

Figures of each model (each from the project's own code, so it equals what that code reports elsewhere):
  val_loss           the held-out loss of the last epoch: -ELBO of the VAE, -log p(x|z) of the AE, on the
                     validation split of the *training* set (never the test set): the seed's "cross-validation"
  mse_per_pixel, recon_per_image, neg_elbo, is_nll (k = --k), active_units
                     training.evaluate.evaluate_images on the first --eval-images test images, seed 0: the figures
                     `python -m training.evaluate DIR --k K --max-images N` writes
  fd_prior           Fréchet distance of --samples decoded prior samples to the test set, in the shipped classifier's
                     features (training.scorecard.generation; an AE's "prior" is N(0, I), as on the scorecard)
  few_labels_logreg, few_labels_knn5
                     test accuracy of logistic regression and 5-NN on the latent means with --labels-per-class labels
                     per class, the mean of 10 seeded label draws (training.scorecard.probe)
  ood_auroc          AUROC of the best anomaly score against the other dataset's test set, 1,000 images each
                     (training.scorecard.ood_scores; the VAE's IS-NLL with k = --k)

The budget check trains the --check-dims again at --check-epochs and reports, for every figure, whether each kind's
ranking of those d's and the order of the AE and the VAE at each of them are the same at both budgets: the same
d's compared at the same budget, so a longer budget that improves every model alike changes no ranking.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from models import Autoencoder, CheckpointError, ModelConfig
from models.checkpoint import atomic_write_text, read_metrics
from models.classifier import Classifier

from .cli import OneLineParser, fail
from .data import DATASETS, DataError, load_split
from .evaluate import evaluate_images
from .train import TrainConfig, train

DIMS = (2, 4, 8, 16, 32, 64)
KINDS = ("ae", "vae")
EPOCHS, CHECK_DIMS, CHECK_EPOCHS = 10, (8, 16, 32), 30
# The one recipe: every field but latent_dim and bottleneck is the same for every model of the sweep.
RECIPE = {"family": "mlp", "hidden_dim": 512, "hidden_layers": 2, "activation": "elu", "likelihood": "bernoulli"}
TRAIN = {"batch_size": 128, "lr": 1e-3, "seed": 0, "kl_warmup_steps": 430, "weights_dtype": "float16"}
# figure -> (label for plots and the README, "lower" / "higher" is better, which kinds have it)
FIGURES = {
    "val_loss": ("held-out loss (validation split; VAE: −ELBO)", "lower", KINDS),
    "mse_per_pixel": ("reconstruction MSE per pixel", "lower", KINDS),
    "neg_elbo": ("−ELBO, test (nats)", "lower", ("vae",)),
    "is_nll": ("IS-NLL, test (nats)", "lower", ("vae",)),
    "active_units": ("active units", "higher", ("vae",)),
    "fd_prior": ("prior-sample Fréchet distance", "lower", KINDS),
    "few_labels_logreg": ("few-label accuracy (logistic regression)", "higher", KINDS),
    "few_labels_knn5": ("few-label accuracy (5-NN)", "higher", KINDS),
    "ood_auroc": ("OOD AUROC against the other dataset", "higher", KINDS),
}


def model_dir(runs: Path, dataset: str, kind: str, d: int, epochs: int, base_epochs: int) -> Path:
    return runs / dataset / (f"{kind}-{d}" if epochs == base_epochs else f"{kind}-{d}-e{epochs}")


def configs(dataset: str, kind: str, d: int, epochs: int, data_root: str, out: Path, threads: int,
            device: str, train_size: int = 0, val_size: int = -1) -> tuple[TrainConfig, ModelConfig]:
    model_cfg = ModelConfig(bottleneck=kind, latent_dim=d, **RECIPE, title=f"sweep {kind.upper()}-{d}",
                            description=f"Latent-size sweep: {kind.upper()} with a {d}-D code, the sweep's one recipe.")
    cfg = TrainConfig(dataset=dataset, data_root=data_root, out=str(out), epochs=epochs, threads=threads,
                      device=device, train_size=train_size, val_size=val_size, **TRAIN)
    if kind == "ae":
        cfg.kl_warmup_steps = 0  # an AE has no KL to warm up
    return cfg, model_cfg


def trained(cfg: TrainConfig, model_cfg: ModelConfig) -> bool:
    """True when cfg.out holds a finished run of exactly these settings (its metrics.json says so)."""
    m = read_metrics(cfg.out)
    done = m.get("train_config", {})
    ignore = {"threads", "device", "data_root", "resume", "out"}
    same = {k: v for k, v in done.items() if k not in ignore} == {
        k: v for k, v in dataclasses.asdict(cfg).items() if k not in ignore}
    return same and m.get("model_config") == dataclasses.asdict(model_cfg) and len(m.get("history", [])) == cfg.epochs


def train_one(cfg: TrainConfig, model_cfg: ModelConfig, say=print) -> Path:
    out = Path(cfg.out)
    if trained(cfg, model_cfg):
        say(f"{out}: already trained, measured again")
        return out
    cfg.resume = (out / "resume.safetensors").is_file()
    t = time.perf_counter()
    try:
        train(cfg, model_cfg, progress=False)
    except CheckpointError:  # a resume state of other settings: start again
        cfg.resume = False
        train(cfg, model_cfg, progress=False)
    say(f"{out}: trained in {time.perf_counter() - t:.0f} s")
    return out


def measure(folder: Path, ctx, test_x: torch.Tensor, test_y: torch.Tensor, k: int, eval_images: int) -> dict:
    """The module docstring's figures of one trained model."""
    from . import scorecard as sc
    from .evaluate import checkpoint_dataset

    t = time.perf_counter()
    model = Autoencoder.from_pretrained(folder)
    metrics = read_metrics(folder)
    _, binarize = checkpoint_dataset(folder, metrics)
    variational = model.config.is_variational
    ev = evaluate_images(model, test_x[:eval_images], binarize=binarize, k=k if variational else 0, seed=0,
                         labels=test_y[:eval_images])
    name = folder.name
    ctx.folders[name] = folder
    row = {"kind": model.config.bottleneck, "latent_dim": model.config.latent_dim,
           "epochs": len(metrics["history"]), "folder": name,
           "val_loss": metrics["history"][-1]["val_loss"], "train_seconds": metrics.get("train_seconds"),
           **{key: ev.get(key) for key in ("mse_per_pixel", "recon_per_image", "neg_elbo", "kl", "is_nll",
                                            "active_units")}}
    if not variational:  # the evaluator's neg_elbo of an AE is its reconstruction term: no ELBO to speak of
        row.update(neg_elbo=None, kl=None)
    row["fd_prior"] = sc.generation(ctx, name, model)["prior"]["fd"]
    probe = sc.probe(sc.latent_means(model, ctx.train_x), ctx.train_y, sc.latent_means(model, ctx.test_x),
                     ctx.test_y, ctx.labels_per_class, all_labels=False)
    row.update(few_labels_logreg=probe["logreg"]["few_labels_mean"], few_labels_knn5=probe["knn5"]["few_labels_mean"],
               few_labels_logreg_std=probe["logreg"]["few_labels_std"], few_labels_knn5_std=probe["knn5"]["few_labels_std"])
    if ctx.other_test_x is not None:
        sets = sc.ood_inputs(ctx)
        inside = sc.ood_scores(ctx, name, model, sets["test"])
        other = sc.ood_scores(ctx, name, model, sets[sc.OTHER[ctx.dataset]])
        from .metrics import ood_metrics

        aurocs = {s: ood_metrics(inside[s], other[s])["auroc"] for s in inside}
        best = max(aurocs, key=aurocs.get)
        row.update(ood_auroc=aurocs[best], ood_score=best, ood_aurocs=aurocs)
    row["measure_seconds"] = round(time.perf_counter() - t, 1)
    return row


def ranking(values: dict[int, float], better: str) -> list[int]:
    """The d's from best to worst by one figure."""
    return sorted(values, key=lambda d: values[d], reverse=better == "higher")


def budget_check(rows: list[dict], check_rows: list[dict], check_dims: list[int]) -> dict:
    """For each figure and kind: the check d's figures at both budgets and whether their ranking is the same at both;
    whether the AE-VAE order at each check d is the same at both budgets. Each ranking compares models of one budget."""
    out = {"latent_dims": list(check_dims), "epochs": sorted({r["epochs"] for r in rows} | {r["epochs"] for r in check_rows}),
           "figures": {}}
    for fig, (_, better, kinds) in FIGURES.items():
        entry = {}
        for kind in kinds:
            by = {}
            for budget, source in (("short", rows), ("long", check_rows)):
                by[budget] = {r["latent_dim"]: r[fig] for r in source
                              if r["kind"] == kind and r["latent_dim"] in check_dims and r.get(fig) is not None}
            if sorted(by["short"]) != sorted(check_dims) or sorted(by["long"]) != sorted(check_dims):
                continue
            e = {b: [by[b][d] for d in check_dims] for b in by}
            e["ranking_short"], e["ranking_long"] = ranking(by["short"], better), ranking(by["long"], better)
            e["rank_same"] = e["ranking_short"] == e["ranking_long"]
            entry[kind] = e
        if all(k in entry for k in KINDS):
            a, v = entry["ae"], entry["vae"]
            entry["kind_order_same"] = [(a["short"][i] < v["short"][i]) == (a["long"][i] < v["long"][i])
                                        for i in range(len(check_dims))]
        if entry:
            entry["stable"] = all(e["rank_same"] for k, e in entry.items() if k in KINDS) and all(
                entry.get("kind_order_same", [True]))
            out["figures"][fig] = entry
    out["stable_figures"] = sorted(f for f, e in out["figures"].items() if e["stable"])
    out["unstable_figures"] = sorted(f for f, e in out["figures"].items() if not e["stable"])
    return out


def kept_rows(path: Path, protocol: dict) -> dict[tuple, dict]:
    """(kind, d, epochs) -> row of an earlier sweep.json measured under the same protocol (empty if none)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    same = {k: v for k, v in old.get("protocol", {}).items() if k in protocol}
    if same != protocol:
        return {}
    return {(r["kind"], r["latent_dim"], r["epochs"]): r for r in old.get("rows", []) + old.get("check_rows", [])}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m training.sweep", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    p.add_argument("--data-root", default="./data", help="folder holding MNIST/raw or FashionMNIST/raw")
    p.add_argument("--checkpoints", default=str(Path(__file__).resolve().parent.parent / "checkpoints"),
                   help="sweep.json goes to CHECKPOINTS/<dataset>/; the classifier is read from there")
    p.add_argument("--runs", default="runs/sweep", help="where the sweep's models are trained (not shipped)")
    p.add_argument("--dims", default=",".join(map(str, DIMS)), help=f"latent sizes (default {','.join(map(str, DIMS))})")
    p.add_argument("--epochs", type=int, default=EPOCHS, help=f"epochs of every model (default {EPOCHS})")
    p.add_argument("--check-dims", default=",".join(map(str, CHECK_DIMS)),
                   help=f"the d's trained at a second budget (default {','.join(map(str, CHECK_DIMS))}; 'none': no check)")
    p.add_argument("--check-epochs", type=int, default=CHECK_EPOCHS, help="that second budget in epochs")
    p.add_argument("--k", type=int, default=100, help="importance samples of the IS-NLL (default 100)")
    p.add_argument("--eval-images", type=int, default=10_000, help="test images of the evaluator's figures")
    p.add_argument("--samples", type=int, default=10_000, help="prior samples of the Fréchet distance")
    p.add_argument("--labels-per-class", type=int, default=100, help="labels per class of the few-label probes")
    p.add_argument("--ood-images", type=int, default=1000, help="images of each set in the OOD AUROC")
    p.add_argument("--train-size", type=int, default=0, help="use only the first N training images (0: all)")
    p.add_argument("--val-size", type=int, default=-1, help="validation images (-1: the trainer's default)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu", help="training device (default cpu)")
    p.add_argument("--fresh", action="store_true", help="measure every model again, ignoring sweep.json's rows")
    args = p.parse_args(argv)
    try:
        args.dims = sorted({int(v) for v in args.dims.split(",") if v.strip()})
    except ValueError:
        p.error(f"--dims must be comma-separated integers, got {args.dims!r}")
    if not args.dims or min(args.dims) < 1:
        p.error(f"--dims must list latent sizes >= 1, got {args.dims}")
    for flag in ("epochs", "k", "eval_images", "samples", "labels_per_class", "ood_images"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.check_dims.strip().lower() == "none":
        args.check_dims = []
    else:
        try:
            args.check_dims = sorted({int(v) for v in args.check_dims.split(",") if v.strip()})
        except ValueError:
            p.error(f"--check-dims must be comma-separated integers or 'none', got {args.check_dims!r}")
        if len(args.check_dims) < 2:
            p.error(f"--check-dims must name at least two d's to rank (or 'none'), got {args.check_dims}")
        if not set(args.check_dims) <= set(args.dims):
            p.error(f"--check-dims {args.check_dims} are not all among --dims {args.dims} ('none' turns the check off)")
    if args.check_dims and args.check_epochs == args.epochs:
        p.error("--check-epochs must differ from --epochs: the check compares two budgets")
    return args


def main(argv: list[str] | None = None) -> None:
    from . import scorecard as sc

    args = parse_args(argv)
    prog = "python -m training.sweep"
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = Path(args.checkpoints) / args.dataset
    runs = Path(args.runs)
    try:
        classifier = Classifier.from_pretrained(folder / "classifier")
        train_x, train_y = load_split(args.dataset, args.data_root, train=True)
        test_x, test_y = load_split(args.dataset, args.data_root, train=False)
    except (CheckpointError, DataError) as e:
        fail(prog, str(e))
    smallest = int(np.bincount(train_y.numpy()).min())
    if args.labels_per_class > smallest:
        fail(prog, f"--labels-per-class {args.labels_per_class} is more than the smallest class has ({smallest}).")
    try:
        other_x = load_split(sc.OTHER[args.dataset], args.data_root, train=False)[0]
    except DataError as e:
        print(f"no OOD pair: {e}", flush=True)
        other_x = None
    ctx = sc.Context(args.dataset, test_x, test_y.numpy(), train_x, train_y.numpy(), classifier, {}, {},
                     samples=args.samples, labels_per_class=args.labels_per_class, ood_images=args.ood_images,
                     ood_k=args.k, other_test_x=other_x, generation_draws=1)
    t_all = time.perf_counter()
    jobs = [(kind, d, args.epochs) for d in args.dims for kind in KINDS]
    jobs += [(kind, d, args.check_epochs) for d in args.check_dims for kind in KINDS]
    protocol = {"recipe": RECIPE, "train": TRAIN, "epochs": args.epochs, "k": args.k,
                "eval_images": min(args.eval_images, len(test_x)), "samples": args.samples,
                "labels_per_class": args.labels_per_class, "label_draws": sc.LABEL_DRAWS,
                "ood_images": args.ood_images, "ood_pair": sc.OTHER[args.dataset] if other_x is not None else None,
                "train_size": args.train_size or len(train_x)}
    kept = {} if args.fresh else kept_rows(folder / "sweep.json", protocol)
    rows, check_rows = [], []
    for kind, d, epochs in jobs:
        cfg, model_cfg = configs(args.dataset, kind, d, epochs, args.data_root,
                                 model_dir(runs, args.dataset, kind, d, epochs, args.epochs), args.threads,
                                 args.device, args.train_size, args.val_size)
        if (kind, d, epochs) in kept:
            row = kept[(kind, d, epochs)]
            print(f"{kind}-{d} at {epochs} epochs: measured before under the same protocol, kept from sweep.json",
                  flush=True)
        else:
            try:
                out = train_one(cfg, model_cfg, say=lambda s: print(s, flush=True))
                row = measure(out, ctx, test_x, test_y, args.k, args.eval_images)
            except (CheckpointError, DataError, ValueError) as e:
                fail(prog, f"{cfg.out}: {e}")
        (rows if epochs == args.epochs else check_rows).append(row)
        print(json.dumps({k: row[k] for k in ("kind", "latent_dim", "epochs", "val_loss", "mse_per_pixel", "is_nll",
                                              "fd_prior", "few_labels_logreg", "ood_auroc") if k in row}), flush=True)
    result = {
        "dataset": args.dataset,
        "dims": args.dims,
        "kinds": list(KINDS),
        "figures": {k: {"label": v[0], "better": v[1], "kinds": list(v[2])} for k, v in FIGURES.items()},
        "figure_order": list(FIGURES),  # the file's keys are sorted: this is the order to show them in
        "protocol": {**protocol, "threads": torch.get_num_threads(),
                     "figures": __doc__.split("Figures of each model")[1].split("The budget check")[0]},
        "rows": rows,
        "budget_check": budget_check(rows, check_rows, args.check_dims) if check_rows else None,
        "check_rows": check_rows,
        "seconds": round(time.perf_counter() - t_all, 1),
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sweep.json"
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path} in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
