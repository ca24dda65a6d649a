"""Train the scorecard's CNN classifier on one dataset's training split; report its test accuracy.

    python -m training.classifier --dataset mnist --data-root ../shared/data --out checkpoints/mnist/classifier

Adam with a cosine schedule, random shifts of up to 2 pixels as augmentation, fixed epochs (no model
selection on the test set). The test accuracy over the full 10,000 test images goes to metrics.json.
"""
from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from models.classifier import Classifier, ClassifierConfig

from .cli import OneLineParser, add_dataclass_flags, build_dataclass, fail
from .data import DATASETS, DataError, load_split, raw_file_hashes, to_float


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Shift each image by up to `max_shift` pixels in x and y (zero fill): (B, C, H, W) -> same."""
    b, _, h, w = x.shape
    p = max_shift
    padded = F.pad(x, (p, p, p, p))
    dy, dx = (torch.randint(0, 2 * p + 1, (b,), generator=generator) for _ in range(2))
    rows = (torch.arange(h)[None, :] + dy[:, None])[:, None, :, None].expand(b, x.shape[1], h, w + 2 * p)
    out = padded.gather(2, rows)
    cols = (torch.arange(w)[None, :] + dx[:, None])[:, None, None, :].expand(b, x.shape[1], h, w)
    return out.gather(3, cols)


@torch.no_grad()
def accuracy(model: Classifier, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy on uint8 (N, H, W) images."""
    model.eval()
    correct = 0
    for i in range(0, len(images), batch_size):
        correct += (model(to_float(images[i: i + batch_size])).argmax(1) == labels[i: i + batch_size]).sum().item()
    return correct / len(images)


def train_classifier(config: ClassifierConfig, images: Tensor, labels: Tensor, epochs: int, batch_size: int = 128,
                     lr: float = 2e-3, seed: int = 0, max_shift: int = 2, log=print) -> tuple[Classifier, list]:
    """Train on uint8 (N, H, W) images with int64 labels; returns the model and the per-epoch history."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Classifier(config)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(images) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    history = []
    for epoch in range(epochs):
        model.train()
        t0, total, correct = time.perf_counter(), 0.0, 0
        for idx in torch.randperm(len(images), generator=gen).split(batch_size):
            x, y = to_float(images[idx]), labels[idx]
            if max_shift:
                x = random_shift(x, max_shift, gen)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
        row = {"epoch": epoch + 1, "loss": total / len(images), "train_accuracy": correct / len(images),
               "seconds": time.perf_counter() - t0}
        history.append(row)
        log(f"epoch {epoch + 1}/{epochs}: loss {row['loss']:.4f}, train accuracy {row['train_accuracy']:.4f} "
            f"({row['seconds']:.0f} s)")
    return model.eval(), history


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, ClassifierConfig]:
    p = OneLineParser(prog="python -m training.classifier", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    p.add_argument("--data-root", default="./data", help="folder holding MNIST/raw or FashionMNIST/raw")
    p.add_argument("--out", required=True, help="checkpoint folder to write (config.json + model.safetensors)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    add_dataclass_flags(p, ClassifierConfig, skip=("kind", "image_size", "image_channels"))
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.lr > 0:
        p.error(f"--lr must be > 0, got {args.lr}")
    try:
        config = build_dataclass(ClassifierConfig, args)
    except ValueError as e:
        p.error(str(e))
    return args, config


def main(argv: list[str] | None = None) -> None:
    args, config = parse_args(argv)
    prog = "python -m training.classifier"
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        train_x, train_y = load_split(args.dataset, args.data_root, train=True)
        test_x, test_y = load_split(args.dataset, args.data_root, train=False)
    except DataError as e:
        fail(prog, str(e))
    t0 = time.perf_counter()
    model, history = train_classifier(config, train_x, train_y, args.epochs, args.batch_size, args.lr, args.seed)
    acc = accuracy(model, test_x, test_y)
    seconds = time.perf_counter() - t0
    metrics = {
        "test_accuracy": acc, "test_images": len(test_x), "history": history,
        "provenance": {"dataset": args.dataset, "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                       "seed": args.seed, "train_seconds": seconds, "torch": torch.__version__,
                       "threads": torch.get_num_threads(), "machine": platform.machine(),
                       "raw_files_sha256": raw_file_hashes(args.dataset, args.data_root),
                       "command": f"{prog} --dataset {args.dataset} --epochs {args.epochs} --seed {args.seed}"},
    }
    model.save_pretrained(Path(args.out), metrics)
    print(f"{args.dataset}: test accuracy {acc:.4f} on {len(test_x)} images; wrote {args.out} ({seconds / 60:.1f} min)")


if __name__ == "__main__":
    main()
