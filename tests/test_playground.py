"""The Playground (explorer/playground.py): runs in their own processes, what they show, how they end.

Tiny runs on the shipped checkpoints/mnist/playground.npz (a few hundred steps of the small MLP, a few seconds each).
"""
from __future__ import annotations

import math
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer import playground as pg

ROOT = Path(__file__).resolve().parent.parent
MNIST = ROOT / "checkpoints" / "mnist"


@pytest.fixture(scope="module")
def playground(tmp_path_factory):
    p = pg.Playground(max_runs=2, max_seconds=120, spares=2, root=tmp_path_factory.mktemp("playground"))
    p.warm()
    yield p
    p.shutdown()


def wait_end(job: pg.Job, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while job.state != "ended":
        assert time.monotonic() < deadline, [(r.state, r.reason) for r in job.runs]
        time.sleep(0.05)


def wait_frames(run: pg.Run, n: int = 1, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while run.frames < n:
        assert time.monotonic() < deadline, (run.state, run.reason)
        assert not run.ended, (run.state, run.reason)
        time.sleep(0.02)


@pytest.mark.parametrize("values, message", [
    ({"beta": -1}, "β must be 0 to 50"),
    ({"latent_dim": 0}, "latent size must be 2 to 32"),
    ({"latent_dim": 1000}, "latent size must be 2 to 32"),
    ({"steps": pg.MAX_STEPS + 1}, f"step budget must be 1 to {pg.MAX_STEPS}"),
    ({"lr": float("nan")}, "learning rate must be > 0"),
    ({"lr": 0}, "learning rate must be > 0"),
    ({"lr": "fast"}, "lr must be a number"),
    ({"latent_dim": 2.5}, "whole number"),
    ({"prior": "mog", "free_bits": 0.5}, "free bits need the standard prior"),
    ({"prior": "mog", "bottleneck": "ae"}, "a mog prior needs a VAE"),
])
def test_bad_settings_are_refused_with_what_is_allowed(values, message):
    with pytest.raises(pg.SettingsError, match=message) as e:
        pg.RunSettings.parse("B", values)
    assert str(e.value).startswith("Run B: ")


def test_collapse_at_beta_20_not_at_beta_1_and_the_loss_falls(playground):
    """β = 20 shuts most dimensions (< 0.01 nats, the Diagnostics verdict: collapsed); β = 1 keeps them."""
    job = playground.start("collapse", MNIST, (pg.RunSettings(latent_dim=8, beta=1, steps=400),
                                               pg.RunSettings(latent_dim=8, beta=20, steps=400)))
    wait_end(job)
    low, high = job.runs
    for run in job.runs:
        assert run.state == "done", run.reason
        curves = np.asarray(run.curves)
        assert curves[-1, 1] < 0.6 * curves[0, 1]  # train loss: step 1 vs the last step
        assert math.isfinite(run.end["metrics"]["val_loss"])
    kl_low, kl_high = (np.asarray(r.end["metrics"]["marginal_kl_per_dim"]) for r in job.runs)
    assert (kl_high < 0.01).sum() >= 5 and high.end["verdict_state"] == "collapsed", kl_high
    assert (kl_low < 0.01).sum() <= 2 and low.end["verdict_state"] != "collapsed", kl_low
    assert "collapsed" in high.end["verdict"] and "dimensions carry < 0.01 nats" in high.end["verdict"]
    # the full-length command trains the same model with the training CLI
    assert high.end["command"].startswith("python -m training.train --dataset mnist")
    assert "--beta 20" in high.end["command"] and "--family mlp" in high.end["command"]


def test_free_bits_keep_each_dimension_at_the_floor(playground):
    job = playground.start("free-bits", MNIST, (pg.RunSettings(latent_dim=4, beta=8, free_bits=0.5, steps=400),
                                                pg.RunSettings(latent_dim=4, beta=8, steps=400)))
    wait_end(job)
    floored, plain = (np.asarray(r.end["metrics"]["marginal_kl_per_dim"]) for r in job.runs)
    assert floored.min() >= 0.8 * 0.5, floored  # at the floor, give or take the batch noise around it
    assert plain.min() < 0.1, plain  # without it, β = 8 shuts some dimension


def test_the_zip_loads_and_decodes_as_the_live_view_showed(playground, tmp_path):
    from models import Autoencoder
    from ui.playground import zip_file

    job = playground.start("zip", MNIST, (pg.RunSettings(latent_dim=2, steps=150), pg.RunSettings(bottleneck="ae", steps=150)))
    wait_end(job)
    for run in job.runs:
        path = zip_file(run)
        with zipfile.ZipFile(path) as z:
            assert sorted(Path(n).name for n in z.namelist()) == sorted(["config.json", "model.safetensors",
                                                                          "metrics.json", "README.md"])
            z.extractall(tmp_path / run.slot)
        model = Autoencoder.from_pretrained(tmp_path / run.slot / f"playground-{run.slot.lower()}")
        g = torch.Generator().manual_seed(2)  # the live view's fixed prior noise (Snapshots.prior_g_seed)
        with torch.no_grad():
            z = model.sample_prior(pg.PRIOR_SHOWN, generator=g) if run.slot == "A" else torch.randn((16, 2), generator=g)
            x = model.decode_image(z)[:, 0]
        shown = run.frame["samples"].astype(np.int16)
        assert np.abs((x * 255).round().numpy().astype(np.int16) - shown).max() <= 1  # the last picture's weights


def test_one_visitor_cannot_see_or_stop_another_and_waits_in_line(playground):
    """The cap holds (2 runs: one pair); a second visitor waits in line with its position and cannot stop the
    first; Train pressed twice is refused; Stop ends the runs and their processes within 2 s."""
    long = pg.RunSettings(latent_dim=2, steps=pg.MAX_STEPS)
    first = playground.start("visitor-1", MNIST, (long, long))
    with pytest.raises(pg.SettingsError, match="still training"):
        playground.start("visitor-1", MNIST, (long, long))
    second = playground.start("visitor-2", MNIST, (long, long))
    for run in first.runs:
        wait_frames(run)
    assert playground.position(second) == 1 and all(r.state == "waiting" for r in second.runs)
    assert playground.active == 2
    assert playground.job("visitor-2") is second and playground.job("visitor-3") is None
    assert not playground.stop("visitor-3")  # nothing of its own to stop, and nobody else's
    assert first.state == "running"
    procs = [r.worker.proc for r in first.runs]
    t0 = time.perf_counter()
    assert playground.stop("visitor-1")
    while any(p.poll() is None for p in procs):
        time.sleep(0.01)
    assert time.perf_counter() - t0 <= 2.0
    assert [r.state for r in first.runs] == ["stopped", "stopped"]
    assert all(Path(r.end["out"], "model.safetensors").is_file() for r in first.runs)  # the last good state kept
    for run in second.runs:
        wait_frames(run)  # its turn came
    procs = [r.worker.proc for r in second.runs]
    t0 = time.perf_counter()
    playground.close("visitor-2")  # the page closed: killed at once, files gone
    assert all(p.poll() is not None for p in procs) and time.perf_counter() - t0 <= 2.0
    assert playground.job("visitor-2") is None and not any(r.out.exists() for r in second.runs)
    assert playground.active == 0


def test_a_nan_a_crash_or_the_time_cap_ends_that_run_only(tmp_path, monkeypatch):
    """A NaN loss ends the run with the reason and its last good state; a killed worker ends its run with a
    message while the other run finishes; the server's next job trains, and stops at the wall-time cap."""
    monkeypatch.setenv("LATENT_EXPLORER_NAN_AT_STEP", "0:120")  # training.train's test hook: rank 0, step 120
    p = pg.Playground(max_runs=2, spares=0, root=tmp_path)
    try:
        job = p.start("nan", MNIST, (pg.RunSettings(steps=400), pg.RunSettings(bottleneck="ae", steps=400)))
        wait_end(job)
        for run in job.runs:
            assert run.state == "diverged" and "loss became nan at step" in run.reason, run.reason
            assert Path(run.end["out"], "model.safetensors").is_file()
            assert run.end["metrics"]["steps"] <= 120 and math.isfinite(run.end["metrics"]["val_loss"])
        monkeypatch.delenv("LATENT_EXPLORER_NAN_AT_STEP")
        job = p.start("nan", MNIST, (pg.RunSettings(steps=3000), pg.RunSettings(bottleneck="ae", steps=300)))
        wait_frames(job.runs[0])
        job.runs[0].worker.proc.kill()
        wait_end(job)
        assert job.runs[0].state == "failed" and "ended unexpectedly" in job.runs[0].reason
        assert job.runs[1].state == "done", job.runs[1].reason
        p.max_seconds = 1.5  # the wall-time cap: a run stops there with its last good state, whatever its budget
        job = p.start("nan", MNIST, (pg.RunSettings(steps=pg.MAX_STEPS), pg.RunSettings(steps=pg.MAX_STEPS)))
        wait_end(job)
        for run in job.runs:
            assert run.state == "capped" and "1.5 s time cap" in run.reason, run.reason
            assert run.end["metrics"]["steps"] < pg.MAX_STEPS and Path(run.end["out"], "model.safetensors").is_file()
    finally:
        p.shutdown()


# ---- through the app: gradio_client (one Client is one visitor) ----------------------------------------------------
SMALL_VAE = ["vae", 2, 1.0, 0, 0.0, "standard", "mlp", 1e-3, 120]
SMALL_AE = ["ae", 2, 1.0, 0, 0.0, "standard", "mlp", 1e-3, 120]


def test_the_playground_endpoints_are_named(client):
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/playground_preset", "/playground_train", "/playground_stop", "/playground_compare"} <= names


def test_a_run_through_the_api_ends_with_its_figures_and_joins_only_this_visitors_pickers(app, client, tmp_path):
    from gradio_client import Client, handle_file
    from PIL import Image

    from tests.test_app_api import unexpected_tracebacks

    out = client.predict("mnist", *SMALL_VAE, *SMALL_AE, api_name="/playground_train")
    status, view_a, view_b, verdict_a, verdict_b, zip_a, zip_b, figures = out
    for key, kind in (("run_a", "vae"), ("run_b", "ae")):
        f = figures[key]
        assert f["state"] == "done" and f["steps"] == 120 and f["settings"]["bottleneck"] == kind
        assert math.isfinite(f["val_loss"]) and f["frames"] >= 2 and f["steps_per_s"] > 0
    assert 'data-state="done"' in view_a and "<svg" in view_a and "python -m training.train" in verdict_a
    assert Path(zip_a).is_file() and Path(zip_b).is_file()
    ua, ub, text = client.predict("mnist", api_name="/playground_compare")
    names = ua["value"], ub["value"]
    assert all(n.startswith("playground-") for n in names) and "now Model A and Model B" in text
    assert {n for _, n in ua["choices"]} >= set(names)
    # every other tab takes the pair, as it takes the shipped models
    img = tmp_path / "digit.png"
    with np.load(MNIST / "atlas.npz") as f:
        Image.fromarray(f["images"][7]).save(img)
    rec_a, rec_b, *_ = client.predict("mnist", handle_file(str(img)), 0, *names, 0, api_name="/reconstruct")
    assert np.asarray(Image.open(rec_a)).std() > 0 and np.asarray(Image.open(rec_b)).std() > 0
    client.predict("mnist", 3, 1.0, *names, 0, api_name="/sample")
    client.predict("mnist", handle_file(str(img)), *names, 0, api_name="/place_on_map")
    # another visitor: not listed, not comparable, nothing to stop
    other = Client(app.url, verbose=False)
    listed = str(other.predict("mnist", api_name="/set_dataset"))
    assert "playground-" not in listed
    assert "Nothing is training" in other.predict(api_name="/playground_stop")
    with pytest.raises(Exception, match="Train two runs first"):
        other.predict("mnist", api_name="/playground_compare")
    assert unexpected_tracebacks(app.log()) == []


def test_bad_settings_and_a_second_train_get_a_message(app, client):
    from gradio_client import Client

    from tests.test_app_api import unexpected_tracebacks

    with pytest.raises(Exception, match="β must be 0 to 50"):
        client.predict("mnist", *SMALL_VAE[:2], -1, *SMALL_VAE[3:], *SMALL_AE, api_name="/playground_train")
    with pytest.raises(Exception, match="greater than maximum value 32"):  # the slider's own check
        client.predict("mnist", *SMALL_VAE, "ae", 1000, *SMALL_AE[2:], api_name="/playground_train")
    with pytest.raises(Exception, match="not in the list of choices"):
        client.predict("no-such-data", *SMALL_VAE, *SMALL_AE, api_name="/playground_train")
    visitor = Client(app.url, verbose=False)
    long = [*SMALL_VAE[:-1], 20000]
    job = visitor.submit("mnist", *long, *long, api_name="/playground_train")
    deadline = time.monotonic() + 60
    while "Training" not in str(job.outputs()[-1:]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(Exception, match="still training"):
        visitor.predict("mnist", *long, *long, api_name="/playground_train")
    assert "Stopped" in visitor.predict(api_name="/playground_stop")
    final = job.result(timeout=30)
    assert final[-1]["run_a"]["state"] == "stopped" and final[-1]["run_b"]["state"] == "stopped"
    assert unexpected_tracebacks(app.log()) == []


def test_the_page_pulls_the_live_frames_with_its_jobs_token_only(app):
    """The live view (ui/playground.LIVE_JS) asks Gradio's component server for newer panels with its job's token:
    the answer has a panel only when it is newer than the key the page holds, and a wrong token gets nothing."""
    import json
    import re
    import urllib.request

    from gradio_client import Client

    from tests.test_app_api import unexpected_tracebacks

    with urllib.request.urlopen(app.url + "config") as r:
        config = json.load(r)
    view_a = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "pg-view-a")
    assert "playground_frames" in next(c for c in config["components"] if c["id"] == view_a)["props"]["server_fns"]

    def frames(ask):
        body = json.dumps({"session_hash": "any", "component_id": view_a, "fn_name": "playground_frames",
                           "data": ask}).encode()
        req = urllib.request.Request(app.url + "gradio_api/component_server", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    visitor = Client(app.url, verbose=False)
    long = [*SMALL_VAE[:-1], 20000]
    job = visitor.submit("mnist", *long, *long, api_name="/playground_train")
    try:
        deadline = time.monotonic() + 60
        while 'data-step="0"' in str(job.outputs()[-1:]) or "pg-plane" not in str(job.outputs()[-1:]):
            assert time.monotonic() < deadline, job.outputs()[-1:]
            time.sleep(0.1)
        view = job.outputs()[-1][1]
        token, key = re.search(r'data-live="([^"]+)" data-key="([^"]+)"', view).groups()
        assert frames({"token": "not-" + token, "keys": {}}) == {} and frames({"bad": 1}) == {} == frames(["x"])
        got = frames({"token": token, "keys": {}})
        assert set(got) == {"A", "B"} and all("pg-plane" in v and f'data-live="{token}"' in v for v in got.values())
        key_a = re.search(r'data-key="([^"]+)"', got["A"]).group(1)
        newer = frames({"token": token, "keys": {"A": key_a, "B": "old"}})
        assert "B" in newer and (newer.get("A") is None or newer["A"] != got["A"])  # A only once it has moved on
        deadline = time.monotonic() + 30
        while "A" not in frames({"token": token, "keys": {"A": key_a}}):  # the next frame of A arrives
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        visitor.predict(api_name="/playground_stop")
    final = job.result(timeout=30)
    assert 'data-live' not in final[1] and 'data-state="stopped"' in final[1]  # an ended run's panel is not live
    assert unexpected_tracebacks(app.log()) == []
