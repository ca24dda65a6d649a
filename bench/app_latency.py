"""App latency: start-up, map placement, slider vs no-op round trip, and (--load) 20 concurrent clients.

    python bench/app_latency.py            # start-up, placement, slider vs noop
    python bench/app_latency.py --load     # also 20 gradio_client clients x 50 mixed requests

Uses LATENT_EXPLORER_CHECKPOINTS like the app (default: checkpoints/ next to app.py).
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import RunningApp  # noqa: E402  (same launcher as the tests)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def bench_import() -> None:
    code = ("import time, sys; t = time.perf_counter(); import app; "
            "print(f'{time.perf_counter() - t:.2f} {app.LOAD_SECONDS:.2f} {\"umap\" in sys.modules}')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    total, load, umap = out.stdout.split()[-3:]
    print(f"import app (gradio + torch + all models/atlases): {total} s, of which loading models+atlases {load} s; "
          f"umap imported: {umap}")


def bench_placement(n: int = 50) -> None:
    """First and later calls of the map placement in a fresh process (encode both models + kNN + draw)."""
    code = f"""
import time
import numpy as np
from explorer.bundle import load_all, default_device
import torch
torch.set_num_threads(1)
from explorer import service
b = load_all(device=default_device())["mnist"]
img = b.images[123]
t = time.perf_counter(); service.place(b, img); first = (time.perf_counter() - t) * 1000
ts = []
for i in range({n}):
    t = time.perf_counter(); service.place(b, b.images[i]); ts.append((time.perf_counter() - t) * 1000)
print(f"{{first:.1f}} {{np.median(ts):.1f}} {{np.percentile(ts, 95):.1f}}")
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    first, med, p95 = out.stdout.split()[-3:]
    print(f"map placement (in-process, fresh start): first call {first} ms, median {med} ms, p95 {p95} ms "
          f"over {n} calls (limit 50 ms)")


def slider_payload(client, image: str) -> list:
    from gradio_client import handle_file

    out = client.predict("mnist", handle_file(image), "encoded input", api_name="/sliders_from_input")
    return [o["value"] if isinstance(o, dict) else o for o in out[:32]]


def bench_slider_vs_noop(url: str, image: str, n: int, download: bool) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=download)
    values = slider_payload(client, image)
    for _ in range(5):  # warm up both endpoints
        client.predict("mnist", *values, api_name="/slide")
        client.predict("mnist", *values, api_name="/noop")
    slide, noop = [], []
    for _ in range(n):  # interleaved, so both see the same machine load
        t = time.perf_counter()
        client.predict("mnist", *values, api_name="/slide")
        slide.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        client.predict("mnist", *values, api_name="/noop")
        noop.append((time.perf_counter() - t) * 1000)
    ms, mn = statistics.median(slide), statistics.median(noop)
    how = "client downloads the images" if download else "images returned as URLs (download_files=False)"
    print(f"slider move vs noop round trip, {how}: median {ms:.1f} ms vs {mn:.1f} ms, "
          f"ratio {ms / mn:.2f} (limit 1.5), n={n} each")


def bench_load(url: str, image: str, clients: int = 20, requests: int = 50) -> None:
    from gradio_client import Client, handle_file

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        rng = random.Random(k)
        try:
            c = Client(url, verbose=False, download_files=False)
            values = slider_payload(c, image)
        except Exception as e:  # a client that cannot even connect counts as failures
            with lock:
                failures.extend([f"connect: {e}"] * requests)
            return
        calls = [
            lambda: c.predict("mnist", *values, api_name="/slide"),
            lambda: c.predict("mnist", *values, api_name="/noop"),
            lambda: c.predict("mnist", rng.randrange(1000), 1.0, api_name="/sample"),
            lambda: c.predict("mnist", handle_file(image), 0, api_name="/reconstruct"),
            lambda: c.predict("mnist", handle_file(image), api_name="/place_on_map"),
            lambda: c.predict("mnist", rng.randrange(5000), api_name="/pick_test"),
            lambda: c.predict("mnist", handle_file(image), handle_file(image), 8, "linear", api_name="/interpolate"),
        ]
        for _ in range(requests):
            call = rng.choice(calls)
            t = time.perf_counter()
            try:
                call()
                with lock:
                    latencies.append((time.perf_counter() - t) * 1000)
            except Exception as e:
                with lock:
                    failures.append(repr(e)[:200])

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    print(f"load test: {clients} clients x {requests} mixed requests in {wall:.1f} s: "
          f"{len(latencies)} ok, {len(failures)} failed; p50 {pct(latencies, 50):.0f} ms, "
          f"p95 {pct(latencies, 95):.0f} ms")
    for f in failures[:5]:
        print("  failure:", f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=60, help="slider and noop calls each (median over them)")
    p.add_argument("--load", action="store_true", help="also run the 20-client load test")
    args = p.parse_args()
    print(f"checkpoints: {os.environ.get('LATENT_EXPLORER_CHECKPOINTS', ROOT / 'checkpoints')}")
    bench_import()
    bench_placement()
    app = RunningApp(name="bench")
    try:
        print(f"start-up to serving (python app.py until /config answers): {app.startup_s:.2f} s (limit 5 s)")
        with np.load(Path(os.environ.get("LATENT_EXPLORER_CHECKPOINTS", ROOT / "checkpoints")) / "mnist" / "atlas.npz") as f:
            digit = f["images"][7]
        image = str(Path(tempfile.mkdtemp()) / "digit.png")
        Image.fromarray(digit).save(image)
        bench_slider_vs_noop(app.url, image, args.n, download=False)
        bench_slider_vs_noop(app.url, image, args.n, download=True)
        if args.load:
            bench_load(app.url, image)
    finally:
        app.stop()


if __name__ == "__main__":
    main()
