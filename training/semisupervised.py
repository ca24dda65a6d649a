"""M1+M2 and the few-label baselines: how well 100 labels classify MNIST, model by model.

    python -m training.semisupervised --dataset mnist --data-root DATA [--labels-per-class 10] [--m2 DIR]

Writes checkpoints/<dataset>/semisupervised.json with the test error of:
  m1m2        M2 (models/autoencoder.py, semi_supervised) trained on the shipped VAE-16's codes (M1; another VAE of the
              dataset with --m1, e.g. a 50-D one as in the paper), as in Kingma et al. 2014: its input is a code
              z ~ q(z|x), drawn anew each batch (its mean with --features mean), with a Gaussian likelihood; trained
              into --out. It classifies a test image by its mean
  m2          (with --m2 DIR) a trained M2 on pixels, its classifier q(y|x) on the test images
  cnn         the project's CNN classifier (training/classifier.py) trained on the same labelled images alone
  logreg/knn5 on the AE-16 and VAE-16 latent means (M1), fitted on the same labelled images; and the scorecard's
              protocol (training.scorecard.probe: 10 random draws of the same size, mean and std)
  published   Kingma et al. 2014, Table 1, 100 labels: M2 11.97 %, M1+M2 3.33 %
The labelled images are training.train.labelled_subset(labels, N, seed) of the training split after its first
5,000 (validation) images: the same draw `python -m training.train --labels-per-class N` makes.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from models import Autoencoder, CheckpointError, ModelConfig
from models.checkpoint import atomic_write_text, read_metrics

from .cli import OneLineParser, fail
from .data import DATASETS, DataError, load_split
from .train import Data, TrainConfig, default_val_size, labelled_subset, train

PUBLISHED = {"source": "Kingma, Rezende, Mohamed & Welling 2014, Semi-supervised learning with deep generative "
                       "models, Table 1 (MNIST, 100 labels)", "m2": 0.1197, "m1m2": 0.0333}


@torch.inference_mode()
def latent_means(model: Autoencoder, images: torch.Tensor) -> torch.Tensor:
    return latent_posteriors(model, images)[0]


@torch.inference_mode()
def latent_posteriors(model: Autoencoder, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q(z|x)'s mean and std (N, D) of each image (an AE's std is 0)."""
    from .data import to_float

    qs = [model.encode(to_float(b)) for b in images.split(1000)]
    return (torch.cat([q.mean for q in qs]),
            torch.cat([getattr(q, "std", torch.zeros_like(q.mean)) for q in qs]))


def feature_shape(dim: int) -> tuple[int, int]:
    """(channels, side) of a dim-D code as an 'image' for the MLP backbone, which flattens it back: a square code
    (16 -> 1 x 4 x 4) is one channel, any other (50 -> 50 x 1 x 1) one channel per dimension."""
    side = int(round(dim**0.5))
    return (1, side) if side * side == dim else (dim, 1)


def as_images(codes: torch.Tensor) -> torch.Tensor:
    """(N, D) codes -> (N, channels, side, side) as feature_shape(D) gives."""
    c, side = feature_shape(codes.shape[1])
    return codes.reshape(len(codes), c, side, side).contiguous()


def m1m2_configs(args, out: Path, feature_dim: int = 16) -> tuple[TrainConfig, ModelConfig]:
    cfg = TrainConfig(dataset=args.dataset, out=str(out), epochs=args.epochs, batch_size=128, lr=args.lr,
                      binarize="none", labels_per_class=args.labels_per_class, class_weight=args.class_weight,
                      seed=args.seed, threads=args.threads, device="cpu")
    channels, side = feature_shape(feature_dim)
    m1 = getattr(args, "m1", "vae-16")
    model_cfg = ModelConfig(family="mlp", bottleneck="vae", latent_dim=args.m2_latent, hidden_dim=args.hidden,
                            hidden_layers=1, likelihood="gaussian", gaussian_std=args.feature_std,
                            image_size=side, image_channels=channels, conditional=True, semi_supervised=True,
                            title="M1+M2 (100 labels)",
                            description=f"M2 trained on draws of the {m1}'s posterior (Kingma et al. 2014, M1+M2).")
    return cfg, model_cfg


def error_of(pred: np.ndarray, truth: np.ndarray) -> float:
    return float((np.asarray(pred) != np.asarray(truth)).mean())


def fit_error(clf, train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray) -> float:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return 1.0 - float(make_pipeline(StandardScaler(), clf).fit(train, train_y).score(test, test_y))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m training.semisupervised", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    p.add_argument("--data-root", default="./data", help="folder holding MNIST/raw or FashionMNIST/raw")
    p.add_argument("--checkpoints", default=str(Path(__file__).resolve().parent.parent / "checkpoints"))
    p.add_argument("--labels-per-class", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="the labelled draw and the training seed")
    p.add_argument("--out", default="runs/m1m2", help="where the M1+M2 model is trained")
    p.add_argument("--m1", default="vae-16", help="M1: the VAE (a model folder of the dataset) whose codes M2 reads")
    p.add_argument("--m2", help="a trained M2 on pixels (a checkpoint folder) to report beside it")
    p.add_argument("--epochs", type=int, default=60, help="M1+M2 epochs (default 60, ~18 s each on one thread)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--class-weight", type=float, default=10.0, help="M2's alpha")
    p.add_argument("--features", choices=("sample", "mean"), default="sample",
                   help="M1+M2 reads z ~ q(z|x) of the VAE-16, drawn anew each batch (as the paper), or its mean")
    p.add_argument("--feature-std", type=float, default=0.3, help="std of M1+M2's Gaussian likelihood of a code")
    p.add_argument("--m2-latent", type=int, default=16, help="M1+M2's own latent size")
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--cnn-epochs", type=int, default=200, help="epochs of the CNN on the labelled images alone")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    for flag in ("labels_per_class", "epochs", "m2_latent", "hidden", "cnn_epochs"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if not args.feature_std > 0 or not args.lr > 0 or args.class_weight < 0:
        p.error("--feature-std and --lr must be > 0, --class-weight >= 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prog = "python -m training.semisupervised"
    if args.threads:
        torch.set_num_threads(args.threads)
    folder = Path(args.checkpoints) / args.dataset
    t0 = time.perf_counter()
    try:
        train_x, train_y = load_split(args.dataset, args.data_root, train=True)
        test_x, test_y = load_split(args.dataset, args.data_root, train=False)
        m1 = {name: Autoencoder.from_pretrained(folder / name) for name in dict.fromkeys(("ae-16", "vae-16", args.m1))}
        m2 = Autoencoder.from_pretrained(args.m2) if args.m2 else None
    except (CheckpointError, DataError) as e:
        fail(prog, str(e))
    if m1[args.m1].config.bottleneck != "vae" or m1[args.m1].config.conditional:
        fail(prog, f"--m1 {args.m1}: M1 must be an unconditional VAE")
    if m2 is not None and not m2.config.semi_supervised:
        fail(prog, f"{args.m2} is not a semi-supervised (M2) model")
    n_val = default_val_size(len(train_x))
    pool_x, pool_y = train_x[n_val:], train_y[n_val:]
    try:
        picked = labelled_subset(pool_y, args.labels_per_class, args.seed)
    except ValueError as e:
        fail(prog, str(e))
    y_lab, y_test = pool_y[picked].numpy(), test_y.numpy()
    out: dict = {"dataset": args.dataset, "labels_per_class": args.labels_per_class, "labelled": len(picked),
                 "seed": args.seed, "labelled_indices": picked.tolist(), "published": PUBLISHED, "test_error": {}}

    # M1: the shipped models' latent means, with linear and kNN classifiers on the labelled ones
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    from .scorecard import probe

    codes, stds = {}, {}
    for name, model in m1.items():
        tr, stds[name] = (t.numpy() for t in latent_posteriors(model, train_x))
        te = latent_means(model, test_x).numpy()
        codes[name] = (tr, te)
        lab = tr[n_val:][picked.numpy()]
        out["test_error"][f"logreg on {name}"] = fit_error(LogisticRegression(max_iter=2000), lab, y_lab, te, y_test)
        out["test_error"][f"knn5 on {name}"] = fit_error(KNeighborsClassifier(5), lab, y_lab, te, y_test)
        p = probe(tr, train_y.numpy(), te, y_test, args.labels_per_class, all_labels=False)
        out.setdefault("scorecard_probe", {})[name] = {
            k: {"error_mean": 1 - v["few_labels_mean"], "error_std": v["few_labels_std"]} for k, v in p.items()}
    print(json.dumps(out["test_error"]), flush=True)

    # the CNN on the labelled images alone
    from models.classifier import ClassifierConfig

    from .classifier import accuracy, train_classifier

    torch.manual_seed(args.seed)
    cnn, _ = train_classifier(ClassifierConfig(), pool_x[picked], pool_y[picked], epochs=args.cnn_epochs,
                              batch_size=len(picked), seed=args.seed, log=lambda s: None)
    out["test_error"]["cnn on the labelled images alone"] = 1.0 - accuracy(cnn.eval(), test_x, test_y)
    print(f"cnn: {out['test_error']['cnn on the labelled images alone']:.4f}", flush=True)

    # M1+M2: M2 on the M1's codes (the VAE-16's by default)
    tr, te = (torch.from_numpy(c) for c in codes[args.m1])
    cfg, model_cfg = m1m2_configs(args, Path(args.out), tr.shape[1])
    noise = as_images(torch.from_numpy(stds[args.m1])[n_val:]) if args.features == "sample" else None
    data = Data(as_images(tr[n_val:]), as_images(tr[:n_val]), train_y[n_val:], train_y[:n_val], noise)
    t = time.perf_counter()
    try:
        m1m2, history = train(cfg, model_cfg, data=data, progress=False)
    except ValueError as e:
        fail(prog, str(e))
    with torch.inference_mode():
        pred = torch.cat([m1m2.classify(b).argmax(1) for b in as_images(te).split(1000)]).numpy()
    out["test_error"]["m1m2"] = error_of(pred, y_test)
    out["m1m2"] = {"folder": str(args.out), "m1": args.m1, "features": args.features,
                   "model_config": json.loads(model_cfg.to_json()),
                   "train_config": {k: v for k, v in vars(cfg).items() if k not in ("data_root", "device")},
                   "val_class_error": history[-1].get("val_class_error"), "train_seconds": round(time.perf_counter() - t, 1)}
    if m2 is not None:
        with torch.inference_mode():
            from .data import prepare_batch

            x = prepare_batch(test_x, True, torch.Generator().manual_seed(0))  # the evaluator's binarized test set
            pred = torch.cat([m2.classify(b).argmax(1) for b in x.split(1000)]).numpy()
        out["test_error"]["m2"] = error_of(pred, y_test)
        out["m2"] = {"folder": str(args.m2), "epochs": len(read_metrics(args.m2).get("history", []))}
    best = min(out["test_error"], key=out["test_error"].get)
    out["best"] = {"model": best, "test_error": out["test_error"][best], "goal": 0.033,
                   "meets_goal": out["test_error"][best] <= 0.033}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    path = folder / "semisupervised.json"
    atomic_write_text(path, json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(json.dumps(out["test_error"], indent=1))
    print(f"wrote {path} in {out['seconds']:.0f} s")


if __name__ == "__main__":
    main()
