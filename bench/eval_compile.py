"""The evaluator's IS-NLL with and without `--compile`, side by side in one run: CPU seconds and agreement.

    python bench/eval_compile.py [--checkpoint checkpoints/mnist/vae-16-iaf] [--images 100] [--k 1000] [--threads 1]

Both runs use the same images, seeds and k; the figure is evaluate_images' mean IS-NLL (nats). The compiled
run is timed after a warm-up call, so compile time is printed apart (a full k = 1000 run pays it once).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models import Autoencoder  # noqa: E402
from training import evaluate  # noqa: E402
from training.data import load_split  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(ROOT / "checkpoints/mnist/vae-16-iaf"))
    p.add_argument("--data-root", default=str(ROOT / ".data"), help="MNIST/raw's parent (test images)")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = Autoencoder.from_pretrained(args.checkpoint).eval()
    images, labels = load_split("mnist", args.data_root, False)
    images, labels = images[: args.images], labels[: args.images]

    def run(fn):
        t = time.perf_counter()
        r = evaluate.evaluate_images(model, images, binarize=True, k=args.k, labels=labels, log_weights=fn)
        return time.perf_counter() - t, r["is_nll"]

    t0 = time.perf_counter()
    compiled = evaluate.compiled_log_weights(model, torch.device("cpu"))
    if compiled is None:
        sys.exit("compiling failed on this machine: nothing to compare")
    run(compiled)  # warm-up: the real shapes compile here
    t_compile = time.perf_counter() - t0
    t_eager, nll_eager = run(evaluate.importance_log_weights)
    t_comp, nll_comp = run(compiled)
    decodes = args.images * args.k
    print(f"{args.checkpoint}: {args.images} images x k={args.k}, {args.threads} thread(s)")
    print(f"  eager     {t_eager:7.1f} s  {decodes / t_eager:7.0f} decodes/s  IS-NLL {nll_eager:.4f}")
    print(f"  compiled  {t_comp:7.1f} s  {decodes / t_comp:7.0f} decodes/s  IS-NLL {nll_comp:.4f}")
    print(f"  speed-up {t_eager / t_comp:.2f}x, |difference| {abs(nll_eager - nll_comp):.2e} nats, "
          f"compile + warm-up {t_compile:.0f} s (once per run)")


if __name__ == "__main__":
    main()
