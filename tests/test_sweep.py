"""The latent-size sweep (training/sweep.py) end to end on tiny data: sweep.json's figures are the evaluator's,
the scorecard's probe's and OOD code's for the same checkpoints, and the budget check compares two budgets."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_data import write_fake_mnist

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    data = write_fake_mnist(tmp / "data", n_train=300, n_test=60)
    (tmp / "ck" / "mnist").mkdir(parents=True)
    (tmp / "ck" / "mnist" / "classifier").symlink_to(ROOT / "checkpoints" / "mnist" / "classifier")
    cmd = [sys.executable, "-m", "training.sweep", "--dataset", "mnist", "--data-root", str(data),
           "--checkpoints", str(tmp / "ck"), "--runs", str(tmp / "runs"), "--dims", "2,4", "--epochs", "2",
           "--check-dims", "2,4", "--check-epochs", "3", "--k", "5", "--samples", "200", "--labels-per-class", "5",
           "--ood-images", "40", "--eval-images", "50", "--threads", "1"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return {"tmp": tmp, "data": data, "cmd": cmd, "stdout": run.stdout,
            "sweep": json.loads((tmp / "ck" / "mnist" / "sweep.json").read_text())}


def test_sweep_writes_every_figure_for_every_model(sweep):
    s = sweep["sweep"]
    assert s["dims"] == [2, 4] and {(r["kind"], r["latent_dim"]) for r in s["rows"]} == {
        (k, d) for k in ("ae", "vae") for d in (2, 4)}
    for r in s["rows"]:
        assert r["epochs"] == 2
        for fig, meta in s["figures"].items():
            if r["kind"] in meta["kinds"]:
                assert isinstance(r[fig], (int, float)), (r["folder"], fig)
        if r["kind"] == "ae":
            assert r["is_nll"] is None and r["neg_elbo"] is None
        else:
            assert 0 <= r["active_units"] <= r["latent_dim"] and r["is_nll"] > 0
        assert 0 <= r["few_labels_logreg"] <= 1 and 0 <= r["ood_auroc"] <= 1
    # the second budget: the check d's at 3 epochs, for both kinds
    assert {(r["kind"], r["latent_dim"], r["epochs"]) for r in s["check_rows"]} == {
        (k, d, 3) for k in ("ae", "vae") for d in (2, 4)}
    check = s["budget_check"]
    assert check["epochs"] == [2, 3] and check["latent_dims"] == [2, 4]
    assert set(check["stable_figures"]) | set(check["unstable_figures"]) == set(check["figures"])
    mse = check["figures"]["mse_per_pixel"]
    for kind in ("ae", "vae"):
        short = {r["latent_dim"]: r["mse_per_pixel"] for r in s["rows"] if r["kind"] == kind}
        long = {r["latent_dim"]: r["mse_per_pixel"] for r in s["check_rows"] if r["kind"] == kind}
        assert mse[kind]["short"] == [short[2], short[4]] and mse[kind]["long"] == [long[2], long[4]]
        # each ranking compares models of one budget: lower MSE first
        assert mse[kind]["ranking_short"] == sorted((2, 4), key=short.get)
        assert mse[kind]["ranking_long"] == sorted((2, 4), key=long.get)
        assert mse[kind]["rank_same"] == (mse[kind]["ranking_short"] == mse[kind]["ranking_long"])
    ae, vae = mse["ae"], mse["vae"]
    assert mse["kind_order_same"] == [(ae["short"][i] < vae["short"][i]) == (ae["long"][i] < vae["long"][i])
                                      for i in range(2)]
    assert mse["stable"] == (ae["rank_same"] and vae["rank_same"] and all(mse["kind_order_same"]))


def test_sweep_figures_equal_the_evaluators(sweep):
    """`python -m training.evaluate` on a sweep checkpoint writes the same figures that sweep.json holds."""
    runs = sweep["tmp"] / "runs" / "mnist"
    for row in sweep["sweep"]["rows"]:
        if row["latent_dim"] != 4:
            continue
        folder = runs / row["folder"]
        run = subprocess.run([sys.executable, "-m", "training.evaluate", str(folder), "--data-root",
                              str(sweep["data"]), "--k", "5", "--max-images", "50"], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        ev = json.loads((folder / "metrics.json").read_text())["eval"]
        for key in ("mse_per_pixel", "recon_per_image") + (("neg_elbo", "is_nll", "active_units", "kl")
                                                           if row["kind"] == "vae" else ()):
            assert row[key] == pytest.approx(ev[key], rel=1e-9, abs=1e-12), (row["folder"], key)
        assert row["val_loss"] == json.loads((folder / "metrics.json").read_text())["history"][-1]["val_loss"]


def test_sweep_reuses_trained_models_and_refuses_bad_flags(sweep):
    from training.sweep import kept_rows

    path = sweep["tmp"] / "ck" / "mnist" / "sweep.json"
    # a second run keeps every row that sweep.json holds under the same protocol: nothing trained or measured
    run = subprocess.run(sweep["cmd"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.count("kept from sweep.json") == 8, run.stdout[-1500:]
    assert "already trained" not in run.stdout
    again = json.loads(path.read_text())
    assert again["rows"] == sweep["sweep"]["rows"] and again["check_rows"] == sweep["sweep"]["check_rows"]
    # under another protocol no row is kept
    protocol = {k: again["protocol"][k] for k in ("recipe", "train", "epochs", "k", "eval_images", "samples",
                                                  "labels_per_class", "label_draws", "ood_images", "ood_pair",
                                                  "train_size")}
    assert len(kept_rows(path, protocol)) == 8 and kept_rows(path, {**protocol, "k": 6}) == {}
    for bad, says in ((["--dims", "2,x"], "comma-separated"), (["--dims", "0"], ">= 1"),
                      (["--check-dims", "2,8"], "not all among --dims"), (["--check-dims", "2"], "at least two"),
                      (["--check-epochs", "2"], "must differ")):
        run = subprocess.run(sweep["cmd"] + bad, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert run.returncode == 2 and says in run.stderr and "Traceback" not in run.stderr, run.stderr
    # --fresh measures a trained model again (it is not retrained) and finds the same figures
    run = subprocess.run(sweep["cmd"] + ["--fresh", "--dims", "4", "--check-dims", "none"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.count("already trained") == 2, run.stdout[-1500:]
    fresh = json.loads(path.read_text())
    assert fresh["budget_check"] is None and [r["mse_per_pixel"] for r in fresh["rows"]] == [
        r["mse_per_pixel"] for r in sweep["sweep"]["rows"] if r["latent_dim"] == 4]


def test_the_scorecards_latent_size_view_shows_the_sweeps_figures(sweep):
    """The Scorecard tab's "Latent size" plot and table carry sweep.json's figures, by value."""
    from explorer import scorecard

    s = sweep["sweep"]
    frame = scorecard.sweep_frame(s, "mse_per_pixel")
    assert sorted(frame["model"].unique()) == ["AE", "VAE"]
    for r in s["rows"]:
        got = frame[(frame["model"] == r["kind"].upper()) & (frame["d"] == r["latent_dim"])]
        assert got["value"].tolist() == [r["mse_per_pixel"]] and got["log2_d"].tolist() == [math.log2(r["latent_dim"])]
    nll = scorecard.sweep_frame(s, "is_nll")
    assert nll["model"].unique().tolist() == ["VAE"] and len(nll) == 2  # an AE has no likelihood
    text = scorecard.sweep_markdown(s)
    vae4 = next(r for r in s["rows"] if r["kind"] == "vae" and r["latent_dim"] == 4)
    assert f"| VAE | 4 | {scorecard._fmt(vae4['val_loss'])} |" in text
    assert "Budget check" in text and "2 and 3 epochs" in text
    with pytest.raises(ValueError, match="figure must be one of"):
        scorecard.sweep_frame(s, "beauty")
    assert ("active units", "active_units") in scorecard.sweep_figures(s)
