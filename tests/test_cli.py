"""The training CLI: --help lists every config field; every user error is one clear line, no traceback."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models import ModelConfig
from tests.fake_data import write_fake_mnist
from training.train import TrainConfig, main

REPO = Path(__file__).resolve().parents[1]
PROG = "python -m training.train"


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def assert_one_clear_line(stderr: str, *needles: str, prog: str = PROG) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert "Traceback" not in stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err


def test_help_lists_every_field_with_its_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines; compare with whitespace normalized
    for cls in (TrainConfig, ModelConfig):
        for f in dataclasses.fields(cls):
            flag = "--" + f.name.replace("_", "-")
            assert flag in text, flag
            assert " ".join(f.metadata["help"].split()) in text, (flag, f.metadata["help"])


def test_bad_flag_in_a_real_process_is_one_line():
    """End to end once (`python -m`, interpreter start-up included); the cases below run main() in process."""
    result = run_module("training.train", "--lr", "-1")
    assert result.returncode != 0
    assert_one_clear_line(result.stderr, "--lr")


@pytest.mark.parametrize("argv, needle", [
    (["--lr", "-1"], "--lr"),
    (["--lr", "0"], "--lr"),
    (["--bottleneck", "foo"], "--bottleneck"),
    (["--epochs", "abc"], "--epochs"),
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "1.5"], "--batch-size"),
    (["--no-such-flag"], "--no-such-flag"),
    (["--latent-dim", "0"], "latent_dim"),
    (["--family", "resnet"], "--family"),
    (["--resume", "maybe"], "--resume"),
    (["--free-bits", "-0.5"], "--free-bits"),
])
def test_bad_flag_value_is_one_clear_line(argv, needle, capsys):
    code, err = run_main(argv, capsys)
    assert code != 0
    assert_one_clear_line(err, needle)


def test_missing_data_says_where_to_put_it(tmp_path, capfd, monkeypatch):
    """An empty --data-root: torchvision tries to download and fails, then one line says what to do.

    The download goes through a proxy on a closed local port, so it fails at once whether or not the
    machine has a network. capfd captures at the file-descriptor level, so torchvision's own prints
    would show up here too.
    """
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # port 9 (discard): nothing listens, connection refused
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    started = time.monotonic()
    with pytest.raises(SystemExit) as info:
        main(["--data-root", str(tmp_path), "--out", str(tmp_path / "out"), "--epochs", "1", "--threads", "1"])
    assert info.value.code != 0
    captured = capfd.readouterr()
    assert captured.out == ""
    assert_one_clear_line(captured.err, str(tmp_path / "MNIST" / "raw"), "--data-root")
    assert time.monotonic() - started < 60


def test_resume_without_saved_state_is_one_clear_line(tmp_path, capsys):
    root = write_fake_mnist(tmp_path / "data", n_train=40, n_test=10)
    out = tmp_path / "never-trained"
    code, err = run_main(["--data-root", str(root), "--val-size", "8", "--out", str(out), "--resume",
                          "--family", "mlp", "--hidden-dim", "8", "--threads", "1", "--device", "cpu"], capsys)
    assert code != 0
    assert_one_clear_line(err, "--resume", str(out), "without --resume")


def test_cli_trains_on_fake_idx_files(tmp_path, capsys):
    root = write_fake_mnist(tmp_path / "data", n_train=40, n_test=10, folders=("FashionMNIST",))
    out = tmp_path / "out"
    main(["--dataset", "fashion-mnist", "--data-root", str(root), "--val-size", "8", "--out", str(out),
          "--epochs", "1", "--batch-size", "16", "--family", "mlp", "--hidden-dim", "8", "--latent-dim", "2",
          "--threads", "1", "--device", "cpu"])
    captured = capsys.readouterr()
    assert f"saved {out}" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.json", "model.safetensors",
                                                     "resume.safetensors"]
    import json

    hashes = json.loads((out / "metrics.json").read_text())["dataset_files_sha256"]
    assert set(hashes) == {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"}


# ---- the evaluator's CLI: same conventions ----------------------------------------------------------
EVAL_PROG = "python -m training.evaluate"


def test_evaluate_help(capsys):
    from training import evaluate

    with pytest.raises(SystemExit) as info:
        evaluate.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--data-root", "--k", "--seed", "--atlas"):
        assert flag in out


@pytest.mark.parametrize("argv, needle", [
    (["ckpt", "--k", "0"], "--k"),
    (["ckpt", "--k", "abc"], "--k"),
    (["ckpt", "--no-such-flag"], "--no-such-flag"),
    ([], "checkpoint"),
])
def test_evaluate_bad_flag_is_one_clear_line(argv, needle, capsys):
    from training import evaluate

    with pytest.raises(SystemExit) as info:
        evaluate.main(argv)
    assert info.value.code != 0
    assert_one_clear_line(capsys.readouterr().err, needle, prog=EVAL_PROG)


def test_evaluate_missing_checkpoint_is_one_clear_line(tmp_path, capsys):
    from training import evaluate

    with pytest.raises(SystemExit) as info:
        evaluate.main([str(tmp_path / "nowhere"), "--data-root", str(tmp_path)])
    assert info.value.code != 0
    assert_one_clear_line(capsys.readouterr().err, str(tmp_path / "nowhere"), "make checkpoints", prog=EVAL_PROG)
