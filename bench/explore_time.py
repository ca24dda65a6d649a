"""`make explore` end to end on generated 32x32 RGB folders of 2,000 and 10,000 images: wall time, and the
models' reconstruction MSE against PCA of the same dimension (goals on a 2-core CPU: <= 5 minutes for 2,000 images,
<= 15 minutes for 10,000).

    python bench/explore_time.py [--n 2000,10000] [--size 32] [--keep DIR] [-- extra training.explore flags]

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


GOALS = {2_000: 300, 10_000: 900}  # seconds, at <= 32x32 pixels


def run_case(n: int, size: int, base: Path, extra: list[str]) -> None:
    from tests.fake_data import write_shapes_folder

    data = base / f"shapes-{n}"
    if not data.is_dir():
        t = time.perf_counter()
        write_shapes_folder(data, n=n, size=size)
        print(f"wrote {n} {size}x{size} RGB PNGs in {time.perf_counter() - t:.0f} s (not timed)")
    ckpt = base / "checkpoints"
    cmd = [sys.executable, "-m", "training.explore", str(data), "--checkpoints", str(ckpt), "--overwrite",
           *[a for a in extra if a != "--"]]
    print("timed:", " ".join(cmd[1:]), f"(cpu count {os.cpu_count()})", flush=True)
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t
    if r.returncode:
        sys.exit(f"explore failed ({r.returncode}):\n{r.stderr[-3000:]}")
    goal = GOALS.get(n) if size <= 32 else None
    verdict = f" (goal <= {goal / 60:.0f} min: {'met' if seconds <= goal else 'NOT met'})" if goal else ""
    print(f"{n} images, total: {seconds:.0f} s = {seconds / 60:.1f} min{verdict}")
    out = ckpt / data.name
    for m in sorted(p.name for p in out.iterdir() if (p / "metrics.json").is_file()):
        metrics = json.loads((out / m / "metrics.json").read_text())
        ev = metrics["eval"]
        print(f"  {m:7s} train {metrics['train_seconds']:5.0f} s, {len(metrics['history'])} epochs; test MSE/pixel "
              f"{ev['mse_per_pixel']:.5f} vs PCA-{m.split('-')[1]} {ev['pca_mse_per_pixel']:.5f} "
              f"(ratio {ev['ae_over_pca_mse']:.2f})" + (f", IS-NLL {ev['is_nll']:.0f}" if "is_nll" in ev else ""),
              flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", default="2000,10000", help="comma-separated folder sizes (default 2000,10000)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--keep", default="", help="write the folders and checkpoints here (default: a temp dir)")
    args, extra = p.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(v) for v in args.n.split(",")):
            run_case(n, args.size, Path(args.keep or tmp), extra)


if __name__ == "__main__":
    main()
