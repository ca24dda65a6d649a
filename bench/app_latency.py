"""App latency: start-up, map placement, slider vs no-op round trip, and (--load) 20 concurrent clients.

    python bench/app_latency.py            # start-up, placement, slider vs noop
    python bench/app_latency.py --load     # also 20 gradio_client clients x 50 mixed requests, and a burst
                                           # of 200 requests from 50 threads at once (half identical)

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


# The floor of any Gradio app's start-up on this machine: one Textbox, launched the same way as app.py.
FLOOR_APP = "import gradio as gr\nwith gr.Blocks() as demo:\n    gr.Textbox()\ndemo.launch()"


def bench_startup_floor(rounds: int = 3) -> None:
    """Start-up to serving of app.py next to a one-Textbox Gradio app, alternating, so that the machine's drift
    falls on both alike (`import gradio` alone is most of either)."""
    times = {"floor": [], "app": []}
    for _ in range(rounds):
        for kind, argv in (("floor", ("-c", FLOOR_APP)), ("app", ("app.py",))):
            running = RunningApp(name=f"bench-startup-{kind}", argv=argv)
            times[kind].append(running.startup_s)
            running.stop()
    floor, app = statistics.median(times["floor"]), statistics.median(times["app"])
    print(f"start-up to serving, median of {rounds} alternating: app.py {app:.2f} s vs a one-Textbox Gradio app "
          f"{floor:.2f} s ({app / floor:.2f}x, +{app - floor:.2f} s); app {', '.join(f'{t:.2f}' for t in times['app'])}, "
          f"floor {', '.join(f'{t:.2f}' for t in times['floor'])}")


def bench_import() -> None:
    code = ("import time, sys; t = time.perf_counter(); import app; t1 = time.perf_counter(); "
            "torch_before = 'torch' in sys.modules; app.MODELS.get(); t2 = time.perf_counter(); "
            "print(f'{t1 - t:.2f} {torch_before} {t2 - t1:.2f} {\"umap\" in sys.modules}')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    ui, torch_before, load, umap = out.stdout.split()[-4:]
    print(f"import app (gradio + the UI; torch imported: {torch_before}): {ui} s; then torch + all models and "
          f"atlases: {load} s; umap imported: {umap}")


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


def slider_payload(client, image: str) -> tuple[list, list]:
    """The 32 slider values for an encoded input, and each slider's (minimum, maximum)."""
    from gradio_client import handle_file

    out = client.predict("mnist", handle_file(image), "encoded input", api_name="/sliders_from_input")
    values = [o["value"] if isinstance(o, dict) else o for o in out[:32]]
    ranges = [(o.get("minimum"), o.get("maximum")) if isinstance(o, dict) else (None, None) for o in out[:32]]
    return values, ranges


def moved(values: list, ranges: list, frac: float) -> list:
    """The payload after a slider move: the AE's and the VAE's first sliders at `frac` of their ranges,
    so each call with a new frac decodes a new code and returns new images (as dragging a slider does)."""
    out = list(values)
    for k in (0, 16):
        lo, hi = ranges[k]
        if lo is not None and hi is not None:
            out[k] = lo + (hi - lo) * frac
    return out


def bench_slider_vs_noop(url: str, image: str, n: int, how: str, phase: float) -> float:
    """Median round trips of /slide and /noop, interleaved; returns the ratio. Slider positions are
    spread over the range (offset by `phase`, so one run does not replay another run's images).

    how = "urls":    the images come back as URLs (download_files=False)
          "fetch":   as "urls", then both PNGs are fetched over one kept-alive HTTP connection (what a
                     browser does)
          "gradio_client": download_files=True: gradio_client downloads each file itself, opening a
                     new httpx client per file (~50 ms each here, most of it loading the CA certificate
                     bundle for an SSL context; measured separately below)
          "gradio_client_noverify": the same with ssl_verify=False, which skips that bundle (the
                     server is plain http on localhost: there is no certificate to verify)
    """
    import httpx
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=how.startswith("gradio_client"),
                    ssl_verify=how != "gradio_client_noverify")
    http = httpx.Client()

    def slide(payload: list) -> None:
        out = client.predict("mnist", *payload, api_name="/slide")
        if how == "fetch":
            for o in out:
                r = http.get(o["url"] if isinstance(o, dict) else o)
                r.raise_for_status()
                assert r.content[:8] == b"\x89PNG\r\n\x1a\n"

    values, ranges = slider_payload(client, image)
    for i in range(20):  # warm up both endpoints (and this client)
        slide(moved(values, ranges, 0.001 * (i + 1) + phase / 100))
        client.predict("mnist", *values, api_name="/noop")
    slides, noops = [], []
    for i in range(n):  # interleaved, so both see the same machine load; the same payload size for both
        payload = moved(values, ranges, 0.01 + 0.98 * (i + phase) / n)
        t = time.perf_counter()
        slide(payload)
        slides.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        client.predict("mnist", *payload, api_name="/noop")
        noops.append((time.perf_counter() - t) * 1000)
    http.close()
    ms, mn = statistics.median(slides), statistics.median(noops)
    label = {"urls": "images returned as URLs",
             "fetch": "images returned as URLs, then both PNGs fetched over a kept-alive connection (as a browser)",
             "gradio_client": "gradio_client downloads both PNGs (download_files=True)",
             "gradio_client_noverify": "gradio_client downloads both PNGs (download_files=True, ssl_verify=False)"}[how]
    print(f"slider move vs noop round trip, {label}: median {ms:.1f} ms vs {mn:.1f} ms, "
          f"ratio {ms / mn:.2f} (limit 1.5), n={n} each")
    return ms / mn


def bench_one_file_floor(url: str, image: str, n: int) -> float:
    """The floor under gradio_client's defaults: /pick_test (an atlas lookup that returns one 28x28 PNG,
    next to no server work) against /noop, interleaved. If this alone is over 1.5x, no endpoint that
    returns even one image can be within 1.5x of the no-op with those defaults, whatever the app does.
    The no-op gets the slider comparison's 33-value payload, so it is if anything the slower of the two."""
    from gradio_client import Client

    client = Client(url, verbose=False)  # defaults: download_files=True, ssl_verify=True
    values, _ = slider_payload(client, image)
    for i in range(5):
        client.predict("mnist", i, api_name="/pick_test")
        client.predict("mnist", *values, api_name="/noop")
    picks, noops = [], []
    for i in range(n):
        t = time.perf_counter()
        path = client.predict("mnist", i, api_name="/pick_test")
        picks.append((time.perf_counter() - t) * 1000)
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        t = time.perf_counter()
        client.predict("mnist", *values, api_name="/noop")
        noops.append((time.perf_counter() - t) * 1000)
    mp, mn = statistics.median(picks), statistics.median(noops)
    print(f"floor with gradio_client's defaults: /pick_test (returns one PNG, ~no server work) vs noop: median "
          f"{mp:.1f} ms vs {mn:.1f} ms, ratio {mp / mn:.2f}, n={n} each")
    return mp / mn


def bench_file_get(url: str, image: str, n: int = 20) -> None:
    """Why download_files=True costs more: one GET of a returned PNG, new connection vs kept-alive."""
    import httpx
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    values, ranges = slider_payload(client, image)
    out = client.predict("mnist", *moved(values, ranges, 0.5), api_name="/slide")
    file_url = out[0]["url"] if isinstance(out[0], dict) else out[0]
    fresh, noverify, kept = [], [], []
    with httpx.Client() as http:
        for _ in range(n):
            t = time.perf_counter()
            httpx.get(file_url).raise_for_status()  # a new httpx client per request, as gradio_client does
            fresh.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            httpx.get(file_url, verify=False).raise_for_status()  # the same without loading the CA bundle
            noverify.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            http.get(file_url).raise_for_status()
            kept.append((time.perf_counter() - t) * 1000)
    print(f"one GET of a returned PNG: {statistics.median(fresh):.1f} ms with a new httpx client (gradio_client's "
          f"download path), {statistics.median(noverify):.1f} ms with a new one and verify=False, "
          f"{statistics.median(kept):.1f} ms over a kept-alive connection")


def bench_load(url: str, image: str, clients: int = 20, requests: int = 50) -> None:
    from gradio_client import Client, handle_file

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        rng = random.Random(k)
        try:
            c = Client(url, verbose=False, download_files=False)
            values, ranges = slider_payload(c, image)
        except Exception as e:  # a client that cannot even connect counts as failures
            with lock:
                failures.extend([f"connect: {e}"] * requests)
            return
        calls = [
            lambda: c.predict("mnist", *moved(values, ranges, rng.random()), api_name="/slide"),
            lambda: c.predict("mnist", *values, api_name="/noop"),
            lambda: c.predict("mnist", rng.randrange(1000), 1.0, api_name="/sample"),
            lambda: c.predict("mnist", handle_file(image), 0, api_name="/reconstruct"),
            lambda: c.predict("mnist", handle_file(image), api_name="/place_on_map"),
            lambda: c.predict("mnist", rng.randrange(10_000), api_name="/pick_test"),
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


def bench_burst(url: str, image: str, n: int = 200, threads: int = 50) -> None:
    """A burst of n requests from `threads` threads at once, one gradio_client session per thread, over
    mixed endpoints; half of the requests are identical (the same /slide, /sample and /init answers, so the
    same image files are served to many responses at once). Every returned file is fetched."""
    import httpx
    from gradio_client import Client, handle_file

    clients = [Client(url, verbose=False, download_files=False) for _ in range(threads)]
    values, ranges = slider_payload(clients[0], image)
    identical = [
        lambda c, i: c.predict("mnist", *[0.0] * 32, api_name="/slide"),
        lambda c, i: c.predict("mnist", 0, 1.0, api_name="/sample"),
        lambda c, i: c.predict("mnist", api_name="/init"),
    ]
    distinct = [
        lambda c, i: c.predict("mnist", *moved(values, ranges, (i * 0.618) % 1), api_name="/slide"),
        lambda c, i: c.predict("mnist", 1000 + i, 1.0, api_name="/sample"),
        lambda c, i: c.predict("mnist", handle_file(image), i, api_name="/reconstruct"),
        lambda c, i: c.predict("mnist", i, api_name="/pick_test"),
    ]
    calls = [identical[i % 3] if i % 2 == 0 else distinct[i % 4] for i in range(n)]

    def urls(v) -> list[str]:
        if isinstance(v, dict):
            return [v["url"]] if v.get("path") and v.get("url") else [u for x in v.values() for u in urls(x)]
        return [u for x in v for u in urls(x)] if isinstance(v, (list, tuple)) else []

    latencies, failures, lock = [], [], threading.Lock()
    start = threading.Barrier(threads)

    def worker(k: int) -> None:
        start.wait()  # all threads fire at once
        with httpx.Client(timeout=60) as http:
            for i in range(k, n, threads):
                t = time.perf_counter()
                try:
                    for u in urls(calls[i](clients[k], i)):
                        http.get(u).raise_for_status()
                    with lock:
                        latencies.append((time.perf_counter() - t) * 1000)
                except Exception as e:
                    with lock:
                        failures.append(repr(e)[:200])

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    t0 = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    print(f"burst: {n} requests from {threads} threads at once (half identical), every returned file fetched, "
          f"in {time.perf_counter() - t0:.1f} s: {len(latencies)} ok, {len(failures)} failed; "
          f"p50 {pct(latencies, 50):.0f} ms, p95 {pct(latencies, 95):.0f} ms")
    for f in failures[:5]:
        print("  failure:", f)


def bench_lab(url: str, image: str, n: int = 10) -> None:
    """Median latency of the Scorecard, Anomaly and Impute endpoints, next to the no-op's, in one run."""
    from gradio_client import Client, handle_file

    c = Client(url, verbose=False)
    values = [0.0] * 32
    calls = {
        "/noop": lambda: c.predict("mnist", *values, api_name="/noop"),
        "/scorecard": lambda: c.predict("mnist", api_name="/scorecard"),
        "/anomaly (k = 100)": lambda: c.predict("mnist", handle_file(image), "other_dataset", "nll", api_name="/anomaly"),
        "/impute (MwG, 6 chains, 30 steps)": lambda: c.predict("mnist", handle_file(image), "centre", None, 6,
                                                              "metropolis_within_gibbs", 0, api_name="/impute"),
        "/impute (16 chains)": lambda: c.predict("mnist", handle_file(image), "random_80", None, 16,
                                                 "pseudo_gibbs", 0, api_name="/impute"),
    }
    medians = {}
    for name, call in calls.items():
        call()  # warm-up
        times = []
        for _ in range(n):
            t = time.perf_counter()
            call()
            times.append((time.perf_counter() - t) * 1000)
        medians[name] = pct(times, 50)
    for name, ms in medians.items():
        print(f"{name}: median {ms:.0f} ms over {n} calls ({ms / medians['/noop']:.1f}x the no-op)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=60, help="slider and noop calls each (median over them)")
    p.add_argument("--load", action="store_true", help="also run the 20-client load test")
    args = p.parse_args()
    print(f"checkpoints: {os.environ.get('LATENT_EXPLORER_CHECKPOINTS', ROOT / 'checkpoints')}")
    bench_import()
    bench_placement()
    bench_startup_floor()
    app = RunningApp(name="bench")
    try:
        from gradio_client import Client

        Client(app.url, verbose=False).predict("mnist", 0, api_name="/pick_test")  # waits for the models
        ready = time.perf_counter() - app.started
        print(f"start-up to serving (python app.py until /config answers): {app.startup_s:.2f} s (limit 5 s)")
        print(f"start-up to models ready (until a first gradio_client call that needs them returns, client "
              f"set-up included): {ready:.2f} s")
        with np.load(Path(os.environ.get("LATENT_EXPLORER_CHECKPOINTS", ROOT / "checkpoints")) / "mnist" / "atlas.npz") as f:
            digit = f["images"][7]
        image = str(Path(tempfile.mkdtemp()) / "digit.png")
        Image.fromarray(digit).save(image)
        for how, phase in (("urls", 0.2), ("fetch", 0.4), ("gradio_client", 0.6), ("gradio_client_noverify", 0.8)):
            bench_slider_vs_noop(app.url, image, args.n, how, phase)
        bench_one_file_floor(app.url, image, args.n)
        bench_file_get(app.url, image)
        bench_lab(app.url, image)
        if args.load:
            bench_load(app.url, image)
            bench_burst(app.url, image)
    finally:
        app.stop()


if __name__ == "__main__":
    main()
