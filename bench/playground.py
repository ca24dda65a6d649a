"""Playground benchmarks, printed side by side in one run:

    python bench/playground.py                 # everything (about 4 minutes on a 2-core CPU)
    python bench/playground.py --only train    # throughput and the readable latent plane (no app)
    python bench/playground.py --only app      # first update, updates a second, other visitors, crowd, memory

- throughput: the training CLI's loop (training.train.train, no hook) against a Playground run, same config (the
  small MLP VAE-2), one thread each, two at once both times (a Playground pair trains two runs);
- a readable latent plane: seconds from Train until the 2-D MLP VAE's validation codes are labelled by a 5-NN
  classifier at >= 90 % of the shipped VAE-2's accuracy on the same images;
- in the app (Chromium, headless): first update on screen after Train, and updates shown a second; the page's
  main-thread busy share while a pair trains, on a fresh page and with every tab opened;
- other visitors: /slide and /noop round trips through gradio_client, idle and while a pair trains;
- 10 visitors pressing Train at once: the cap, queue positions, failed requests;
- the server's memory after 20 runs against its start.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explorer import playground as pg  # noqa: E402
from tests.conftest import RunningApp  # noqa: E402

MNIST = ROOT / "checkpoints" / "mnist"
STEPS = 1500
CLI_CODE = """
import sys, time, json
sys.path.insert(0, {root!r})
import numpy as np, torch
from pathlib import Path
from explorer import playground as pg
from training.train import Data, train
fmt = pg.dataset_format(Path({folder!r}))
s = pg.RunSettings(steps={steps})
with np.load(fmt["path"]) as f:
    images, labels = torch.from_numpy(f["images"]), torch.from_numpy(f["labels"]).long()
data = Data(images[pg.VAL_IMAGES:], images[:pg.VAL_IMAGES], labels[pg.VAL_IMAGES:], labels[:pg.VAL_IMAGES])
torch.set_num_threads(1)
t = time.perf_counter()
train(s.train_config(fmt, {out!r}), s.model_config(fmt, "A"), data=data, progress=False)
print("RATE", {steps} / (time.perf_counter() - t))
"""


def knn_accuracy(codes: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    return float(cross_val_score(KNeighborsClassifier(5), codes, labels, cv=5).mean())


def shipped_reference() -> tuple[float, np.ndarray]:
    """5-NN accuracy of the shipped VAE-2's posterior means of the Playground's validation images."""
    import torch

    from models import Autoencoder

    with np.load(MNIST / pg.DATA_NAME) as f:
        images, labels = f["images"][:pg.VAL_IMAGES], f["labels"][:pg.VAL_IMAGES]
    model = Autoencoder.from_pretrained(MNIST / "vae-2")
    with torch.no_grad():
        mean = model.encode(torch.tensor(images).float().div(255).unsqueeze(1)).mean.numpy()
    return knn_accuracy(mean, labels), labels


def bench_train() -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        procs = [subprocess.Popen([sys.executable, "-c", CLI_CODE.format(root=str(ROOT), folder=str(MNIST), steps=STEPS,
                                                                          out=str(tmp / f"cli-{i}"))],
                                  stdout=subprocess.PIPE, text=True, cwd=ROOT) for i in range(2)]
        cli = [float(p.communicate()[0].split("RATE")[-1]) for p in procs]
        ref, labels = shipped_reference()
        p = pg.Playground(spares=2, root=tmp / "pg")
        p.warm()
        for w in p.spares:
            w.wait_ready(60)
        t0 = time.perf_counter()
        job = p.start("bench", MNIST, (pg.RunSettings(steps=STEPS), pg.RunSettings(steps=STEPS)))
        run, seen, readable, first = job.runs[0], 0, None, None
        while job.state != "ended":
            if run.frames > seen and run.frame is not None:
                seen = run.frames
                first = first or time.perf_counter() - t0
                if readable is None and knn_accuracy(run.frame["xy"], labels) >= 0.9 * ref:
                    readable = time.perf_counter() - t0
            time.sleep(0.02)
        p.shutdown()
        rates = [r.end["metrics"]["steps_per_s"] for r in job.runs]
        share = [r.end["metrics"]["snapshot_seconds"] / r.end["metrics"]["seconds"] for r in job.runs]
        acc = knn_accuracy(run.frame["xy"], labels)
        print(f"training throughput, MLP VAE-2, {STEPS} steps, 1 thread, 2 runs at once: training CLI loop "
              f"{statistics.mean(cli):.1f} steps/s ({', '.join(f'{c:.1f}' for c in cli)}) vs Playground "
              f"{statistics.mean(rates):.1f} steps/s ({', '.join(f'{r:.1f}' for r in rates)}): "
              f"{statistics.mean(rates) / statistics.mean(cli):.2f}x (goal >= 0.8x); live snapshots took "
              f"{100 * statistics.mean(share):.0f} % of a run's time (goal <= 20 %)")
        print(f"readable latent plane: the shipped VAE-2's 5-NN accuracy on the {pg.VAL_IMAGES} validation images "
              f"{ref:.3f}; the Playground's 2-D MLP VAE reached 90 % of it ({0.9 * ref:.3f}) "
              + (f"{readable:.1f} s after Train" if readable else "never") + f" (goal <= 20 s); {acc:.3f} after "
              f"{STEPS} steps; first snapshot {first:.2f} s after Train (in-process, warm workers)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


SMALL = ["vae", 2, 1.0, 0, 0.0, "standard", "mlp", 1e-3]


def round_trips(client, image: str, n: int = 30) -> tuple[float, float]:
    from gradio_client import handle_file

    out = client.predict("mnist", handle_file(image), "encoded input", api_name="/sliders_from_input")
    values = [o["value"] if isinstance(o, dict) else o for o in out[:32]]
    slides, noops = [], []
    for i in range(n + 5):
        payload = list(values)
        payload[0] = float(payload[0]) + 0.01 * (i + 1)
        t = time.perf_counter()
        client.predict("mnist", *payload, api_name="/slide")
        s = time.perf_counter() - t
        t = time.perf_counter()
        client.predict("mnist", *payload, api_name="/noop")
        if i >= 5:
            slides.append(s * 1000)
            noops.append((time.perf_counter() - t) * 1000)
    return statistics.median(slides), statistics.median(noops)


def wait_training(job, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while "Training" not in str(job.outputs()[-1:]):
        if time.monotonic() > deadline:
            raise RuntimeError("the runs did not start")
        time.sleep(0.05)


TABS = ("Reconstruct", "Sample", "Interpolate", "Latent sliders", "Latent map", "Impute", "Anomaly", "Disentanglement",
        "Scorecard", "Diagnostics")


def page_busy(page, seconds: float = 5.0) -> tuple[float, float]:
    """Train a pair, then the share of `seconds` the page's main thread was busy (Chrome's TaskDuration) and the
    distinct latent planes it showed a second; Stop."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")

    def metrics():
        m = {x["name"]: x["value"] for x in cdp.send("Performance.getMetrics")["metrics"]}
        return m["TaskDuration"], m["Timestamp"]

    page.locator("#pg-train").click()
    page.wait_for_function("() => document.querySelector('#pg-view-a .pg-run[data-state=running] .pg-plane')",
                           timeout=30_000)
    page.evaluate("""() => { window.__busy = {seen: new Set(), stop: false};
      const tick = () => { const p = document.querySelector('#pg-view-a .pg-plane'); if (p) window.__busy.seen.add(p.innerHTML);
        if (!window.__busy.stop) requestAnimationFrame(tick); }; tick(); }""")
    (t0, s0) = metrics()
    time.sleep(seconds)
    (t1, s1) = metrics()
    n = page.evaluate("() => { window.__busy.stop = true; return window.__busy.seen.size; }")
    page.locator("#pg-stop").click()
    page.wait_for_function("() => document.querySelector('#pg-view-a .pg-run').dataset.state === 'stopped'")
    time.sleep(4)  # the spares refill while nothing trains
    return (t1 - t0) / (s1 - s0), n / (s1 - s0)


def bench_app() -> None:
    from gradio_client import Client
    from PIL import Image
    from playwright.sync_api import sync_playwright

    app = RunningApp(name="bench-playground")
    tmp = Path(tempfile.mkdtemp())
    try:
        with np.load(MNIST / "atlas.npz") as f:
            Image.fromarray(f["images"][7]).save(tmp / "digit.png")
        image = str(tmp / "digit.png")
        client = Client(app.url, verbose=False, download_files=False)
        client.predict("mnist", *SMALL, 50, *SMALL, 50, api_name="/playground_train")  # first use: workers, kernels
        idle_slide, idle_noop = round_trips(client, image)
        other = Client(app.url, verbose=False, download_files=False)
        job = other.submit("mnist", *SMALL, 20000, *SMALL, 20000, api_name="/playground_train")
        wait_training(job)
        busy_slide, busy_noop = round_trips(client, image)
        other.predict(api_name="/playground_stop")
        job.result(timeout=30)
        print(f"other visitors while a pair trains (gradio_client round trips, medians of 30): /slide {idle_slide:.1f} "
              f"-> {busy_slide:.1f} ms ({busy_slide / idle_slide:.2f}x), /noop {idle_noop:.1f} -> {busy_noop:.1f} ms "
              f"({busy_noop / idle_noop:.2f}x) (goal <= 2x)")

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(app.url)
            page.wait_for_selector("#current img")
            page.get_by_role("tab", name="Playground", exact=True).click()
            time.sleep(6)  # the tab warms its spare workers
            firsts, rates = [], []
            for _ in range(3):
                page.evaluate("""() => { window.__pg = {t0: performance.now(), first: null, seen: new Set()};
                  const tick = () => { const p = document.querySelector('#pg-view-a .pg-plane');
                    const r = document.querySelector('#pg-view-a .pg-run');
                    if (p && r && r.dataset.state === 'running') {
                      if (window.__pg.first === null) window.__pg.first = performance.now() - window.__pg.t0;
                      window.__pg.seen.add(p.innerHTML); }
                    if (!window.__pg.stop) requestAnimationFrame(tick); };
                  document.querySelector('#pg-train').click(); tick(); }""")
                page.wait_for_function("() => window.__pg.first !== null", timeout=30_000)
                first = page.evaluate("() => window.__pg.first")
                page.evaluate("() => window.__pg.seen.clear()")
                time.sleep(5)
                n = page.evaluate("() => { window.__pg.stop = true; return window.__pg.seen.size; }")
                page.locator("#pg-stop").click()
                page.wait_for_function("() => document.querySelector('#pg-view-a .pg-run').dataset.state === 'stopped'")
                time.sleep(4)  # the spares refill while nothing trains
                firsts.append(first / 1000)
                rates.append(n / 5)
            busy = {"fresh page": page_busy(page)}
            for tab in TABS:  # every tab opened: the page holds what they drew
                page.get_by_role("tab", name=tab, exact=True).click()
                time.sleep(3)
            page.get_by_role("tab", name="Playground", exact=True).click()
            busy["every tab opened"] = page_busy(page)
            polls = page.evaluate("() => window.latentPlayground.ms")
            browser.close()
        print(f"in Chromium: first update on screen {', '.join(f'{f:.2f}' for f in firsts)} s after Train (goal <= 1 s); "
              f"{', '.join(f'{r:.1f}' for r in rates)} distinct latent planes shown a second while training (goal >= 4)")
        print("the page's main thread while a pair trains (busy share; planes shown a second): " + "; ".join(
            f"{k} {b:.0%}, {r:.1f}/s" for k, (b, r) in busy.items()) + f"; the page's frame requests answered in "
            f"{statistics.median(polls):.0f} ms median (it asks for the next after drawing the last, so a busy page "
            f"draws fewer instead of falling behind)")

        crowd = [Client(app.url, verbose=False, download_files=False) for _ in range(10)]
        t0 = time.perf_counter()
        jobs = [c.submit("mnist", *SMALL, 100, *SMALL, 100, api_name="/playground_train") for c in crowd]
        spans, positions, failed = {}, set(), 0
        while not all(j.done() for j in jobs):
            for i, j in enumerate(jobs):
                text = str(j.outputs()[-1][0]) if j.outputs() else ""
                if "number" in text:
                    positions.add(int(text.split("number ")[1].split()[0]))
                if "Training" in text:
                    spans.setdefault(i, [time.perf_counter(), None])
                if j.done() and i in spans and spans[i][1] is None:
                    spans[i][1] = time.perf_counter()
            time.sleep(0.05)
        for i, j in enumerate(jobs):
            try:
                out = j.result()
                failed += not all(out[-1][k]["state"] == "done" for k in ("run_a", "run_b"))
            except Exception:
                failed += 1
        wall = time.perf_counter() - t0
        edges = sorted([(a, 1) for a, _ in spans.values()] + [(b or time.perf_counter(), -1) for _, b in spans.values()],
                       key=lambda e: (e[0], e[1]))
        at_once = most = 0
        for _, step in edges:
            at_once += step
            most = max(most, at_once)
        print(f"10 visitors pressing Train at once (100 steps a run): all done in {wall:.1f} s, {failed} failed; queue "
              f"positions shown {sorted(positions)}; at most {most} visitor(s) seen training at once (the cap: "
              f"{pg.MAX_RUNS} runs, one pair)")

        start = rss_mb(app.proc.pid)
        for _ in range(10):
            client.predict("mnist", *SMALL, 100, *SMALL, 100, api_name="/playground_train")
        time.sleep(3)
        end = rss_mb(app.proc.pid)
        print(f"server memory (RSS) after 20 more runs: {start:.0f} -> {end:.0f} MB ({100 * (end / start - 1):+.1f} %, "
              "goal within 10 %)")
    finally:
        app.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("train", "app"), help="one part only")
    args = parser.parse_args()
    if args.only in (None, "train"):
        bench_train()
    if args.only in (None, "app"):
        bench_app()


if __name__ == "__main__":
    main()
