"""`make explore` end to end on a generated 10,000-image 32x32 RGB folder: wall time, and the models'
reconstruction MSE against PCA of the same dimension (issue 11's goal: <= 15 minutes on a 2-core CPU).

    python bench/explore_time.py [--n 10000] [--size 32] [--keep DIR] [-- extra training.explore flags]

The folder holds tests/fake_data.py's coloured shapes (circle, square, triangle; random colour, size, position
and background) as PNG files in class subfolders, written before the clock starts. The timed command is the one
a person runs, `python -m training.explore FOLDER` (default flags), in a subprocess; the figures are read back from
the metrics.json files it wrote (the evaluator's test-split MSE per pixel and its PCA baseline). Prints one line
per model and the total.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--keep", default="", help="write the folder and checkpoints here (default: a temp dir)")
    args, extra = p.parse_known_args()
    from tests.fake_data import write_shapes_folder

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.keep or tmp)
        data = base / "shapes-bench"
        if not data.is_dir():
            t = time.perf_counter()
            write_shapes_folder(data, n=args.n, size=args.size)
            print(f"wrote {args.n} {args.size}x{args.size} RGB PNGs in {time.perf_counter() - t:.0f} s (not timed)")
        ckpt = base / "checkpoints"
        cmd = [sys.executable, "-m", "training.explore", str(data), "--checkpoints", str(ckpt), "--overwrite",
               *[a for a in extra if a != "--"]]
        print("timed:", " ".join(cmd[1:]), f"(cpu count {os.cpu_count()})", flush=True)
        t = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - t
        if r.returncode:
            sys.exit(f"explore failed ({r.returncode}):\n{r.stderr[-3000:]}")
        print(f"total: {seconds:.0f} s = {seconds / 60:.1f} min (goal <= 15 min: {'met' if seconds <= 900 else 'NOT met'})")
        for m in sorted(p.name for p in (ckpt / "shapes-bench").iterdir() if (p / "metrics.json").is_file()):
            metrics = json.loads((ckpt / "shapes-bench" / m / "metrics.json").read_text())
            ev = metrics["eval"]
            print(f"{m:7s} train {metrics['train_seconds']:5.0f} s, {len(metrics['history'])} epochs; test MSE/pixel "
                  f"{ev['mse_per_pixel']:.5f} vs PCA-{m.split('-')[1]} {ev['pca_mse_per_pixel']:.5f} "
                  f"(ratio {ev['ae_over_pca_mse']:.2f})" + (f", IS-NLL {ev['is_nll']:.0f}" if "is_nll" in ev else ""))


if __name__ == "__main__":
    main()
