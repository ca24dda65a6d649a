"""The training loop on tiny synthetic data: learning, determinism, crash + resume, NaN, atomic writes."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import models.checkpoint as checkpoint
from models import Autoencoder, CheckpointError, ModelConfig
from tests.fake_data import make_images, write_fake_mnist
from training.data import binarize_batch, prepare_batch
from training.train import (KILL_AT_STEP_ENV, NAN_AT_STEP_ENV, RESUME_NAME, Data, TrainConfig, TrainingDiverged, beta_at, epoch_order,
                            load_data, lr_at, train)

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = dict(family="mlp", latent_dim=2, hidden_dim=32)


def tiny_data(n_train=160, n_val=40, seed=0) -> Data:
    images, labels = (torch.from_numpy(a) for a in make_images(n_train + n_val, seed))
    labels = labels.long()
    return Data(train=images[n_val:], val=images[:n_val], train_labels=labels[n_val:], val_labels=labels[:n_val])


def tiny_cfg(out: Path, **kw) -> TrainConfig:
    base = dict(out=str(out), data_root=str(out), epochs=1, batch_size=32, lr=3e-3, device="cpu", threads=1, seed=0)
    return TrainConfig(**{**base, **kw})


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ: {different}"


# ---- learning and determinism -------------------------------------------------------------------
def test_loss_goes_down(tmp_path):
    _, history = train(tiny_cfg(tmp_path, epochs=4, lr=5e-3), ModelConfig(bottleneck="vae", **TINY_MODEL),
                       tiny_data(), progress=False)
    losses = [h["train_loss"] for h in history]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.8 * losses[0], losses
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert Autoencoder.from_pretrained(tmp_path).config.bottleneck == "vae"


@pytest.mark.parametrize("variant", [{"prior": "mog", "prior_components": 5}, {"prior": "vamp", "prior_components": 5},
                                     {"flow": "iaf", "flow_hidden": 16, "flow_context": 4}, {"conditional": True},
                                     {"conditional": True, "flow": "iaf", "prior": "mog"}],
                         ids=["mog", "vamp", "iaf", "cvae", "cvae-iaf-mog"])
def test_variants_train_save_and_evaluate(tmp_path, variant):
    """The trainer never asks which variant it holds: the loss goes down, the prior / flow learns, and the
    checkpoint's IWAE bound uses the learned log p(z), the flow's log q(z|x) and the labels."""
    from training.evaluate import evaluate_images, iwae_log_px

    model_cfg = ModelConfig(bottleneck="vae", **variant, **TINY_MODEL)
    torch.manual_seed(0)
    learned = lambda m: {**m.prior.state_dict(), **(m.flow.state_dict() if m.flow is not None else {})}  # noqa: E731
    start = {k: v.clone() for k, v in learned(Autoencoder(model_cfg)).items()}
    data = tiny_data()
    model, history = train(tiny_cfg(tmp_path, epochs=4, lr=5e-3), model_cfg, data, progress=False)
    losses = [h["train_loss"] for h in history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < 0.8 * losses[0], losses
    assert all(math.isfinite(h["val_loss"]) for h in history)
    if start:  # the prior or the flow was trained
        assert any(not torch.equal(start[k], v) for k, v in learned(model).items())
    loaded = Autoencoder.from_pretrained(tmp_path)
    assert loaded.config == model_cfg
    x = data.val[:8].float().div(255).unsqueeze(1)
    y = data.val_labels[:8] if model_cfg.conditional else None
    with torch.no_grad():
        log_px = iwae_log_px(loaded, x, 50, generator=torch.Generator().manual_seed(0), labels=y)
        elbo = -loaded.loss(x, generator=torch.Generator().manual_seed(0), labels=y)["loss"]
    assert torch.isfinite(log_px).all() and log_px.mean() > elbo - 1.0  # the IWAE bound is not below the ELBO
    figures = evaluate_images(loaded, data.val[:20], binarize=False, k=5, labels=data.val_labels[:20])
    assert figures["conditional"] == model_cfg.conditional
    assert math.isfinite(figures["is_nll"]) and len(figures["marginal_kl_per_dim"]) == model_cfg.latent_dim


def test_a_conditional_model_refuses_data_without_labels(tmp_path):
    data = tiny_data()
    with pytest.raises(ValueError, match="class labels"):
        train(tiny_cfg(tmp_path), ModelConfig(bottleneck="vae", conditional=True, **TINY_MODEL),
              Data(train=data.train, val=data.val), progress=False)


def test_same_seed_gives_bitwise_identical_weights(tmp_path):
    model_cfg, data = ModelConfig(bottleneck="vae", **TINY_MODEL), tiny_data()
    a, _ = train(tiny_cfg(tmp_path / "a", epochs=2), model_cfg, data, progress=False)
    b, _ = train(tiny_cfg(tmp_path / "b", epochs=2), model_cfg, data, progress=False)
    c, _ = train(tiny_cfg(tmp_path / "c", epochs=2, seed=1), model_cfg, data, progress=False)
    assert_same_weights(weights(a), weights(b))
    assert not torch.equal(a.decoder.net[-2].weight, c.decoder.net[-2].weight)
    # The saved file holds exactly the returned weights.
    assert_same_weights(weights(a), weights(Autoencoder.from_pretrained(tmp_path / "a")))


def test_provenance_in_metrics(tmp_path):
    train(tiny_cfg(tmp_path), ModelConfig(bottleneck="ae", **TINY_MODEL), tiny_data(), progress=False)
    metrics = checkpoint.read_metrics(tmp_path)
    assert metrics["seed"] == 0 and metrics["train_config"]["batch_size"] == 32
    assert metrics["model_config"]["bottleneck"] == "ae"
    assert metrics["versions"]["torch"] == torch.__version__
    assert len(metrics["history"]) == 1 and metrics["train_seconds"] >= 0
    assert metrics["dataset_files_sha256"] == {}  # in-memory data: no files to vouch for


# ---- schedules and binarization -----------------------------------------------------------------
def test_kl_warmup_is_linear_then_flat():
    cfg = TrainConfig(beta=2.0, kl_warmup_steps=4)
    assert [beta_at(s, cfg) for s in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert beta_at(0, TrainConfig(beta=0.3)) == 0.3


def test_lr_schedule_values():
    cfg = TrainConfig(lr=1e-2, lr_final_ratio=0.1)
    total = 11
    assert lr_at(0, total, cfg) == pytest.approx(1e-2)
    assert lr_at(5, total, cfg) == pytest.approx((1e-2 + 1e-3) / 2)  # cosine midpoint
    assert lr_at(10, total, cfg) == pytest.approx(1e-3)
    values = [lr_at(s, total, cfg) for s in range(total)]
    assert all(x > y for x, y in zip(values, values[1:]))
    assert lr_at(7, total, TrainConfig(lr=1e-2, lr_schedule="constant")) == 1e-2


def test_lr_used_in_training_ends_at_final_ratio(tmp_path):
    _, history = train(tiny_cfg(tmp_path, epochs=2, lr=1e-2, lr_final_ratio=0.25), ModelConfig(**TINY_MODEL),
                       tiny_data(), progress=False)
    assert history[0]["lr"] > history[-1]["lr"] == pytest.approx(2.5e-3)


def test_binarization_choice_per_dataset():
    assert TrainConfig(dataset="mnist").dynamic_binarization
    assert not TrainConfig(dataset="fashion-mnist").dynamic_binarization
    assert TrainConfig(dataset="fashion-mnist", binarize="dynamic").dynamic_binarization
    assert not TrainConfig(dataset="mnist", binarize="none").dynamic_binarization


def test_dynamic_binarization_is_binary_and_fresh_each_step(tmp_path, monkeypatch):
    seen = []
    original = Autoencoder.loss

    def spy(self, x, **kw):
        if self.training:
            seen.append(x.clone())
        return original(self, x, **kw)

    monkeypatch.setattr(Autoencoder, "loss", spy)
    gray = torch.full((16, 28, 28), 128, dtype=torch.uint8)  # every image the same: only the draw differs
    train(tiny_cfg(tmp_path, dataset="mnist", epochs=3, batch_size=16), ModelConfig(**TINY_MODEL),
          Data(train=gray, val=gray[:4]), progress=False)
    assert len(seen) == 3
    for x in seen:
        assert set(x.unique().tolist()) == {0.0, 1.0}
        assert abs(x.mean().item() - 128 / 255) < 0.05  # Bernoulli(intensity)
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    # Without binarization the same images give the same input.
    g = torch.Generator().manual_seed(0)
    torch.testing.assert_close(prepare_batch(gray[:2], False, g), torch.full((2, 1, 28, 28), 128 / 255))


def test_training_binarization_has_the_bernoulli_distribution_of_the_evaluators():
    """binarize_batch (the fast training path: 15-bit integer draws for uint8 pixels, uniform < p for float
    ones) and prepare_batch (torch.bernoulli, the evaluator's) draw from the same Bernoulli(intensity):
    per-pixel frequencies over 4000 draws agree within 4 standard errors, and 0 and 255 are exact."""
    levels = torch.arange(0, 256, 17, dtype=torch.uint8)  # 16 intensities, 0 and 255 included
    images = levels.repeat(4000, 1).reshape(4000, 4, 4)
    g = torch.Generator().manual_seed(0)
    fast_u8 = binarize_batch(images, g)
    fast_float = binarize_batch(images.unsqueeze(1).float() / 255, g)
    ref = prepare_batch(images, True, torch.Generator().manual_seed(1))
    p = levels.double() / 255
    se = (p * (1 - p) / 4000).sqrt().clamp_min(1e-9)
    for x in (fast_u8, fast_float, ref):
        assert x.shape == (4000, 1, 4, 4) and x.dtype == torch.float32
        assert set(x.unique().tolist()) <= {0.0, 1.0}
        freq = x.double().mean(0).flatten()
        assert ((freq - p).abs() <= 4 * se + 1e-12).all(), (freq, p)
        assert torch.equal(x.mean(0).flatten()[[0, -1]], torch.tensor([0.0, 1.0]))  # 0 and 255 are exact
    assert not torch.equal(fast_u8[:2000], fast_u8[2000:])  # fresh bits for every pixel, no repeats


def test_training_binarization_uses_every_random_lane():
    """All 256 uint8 levels: P(x=1) within 1/32768 + 5 standard errors of v/255, so no 16-bit lane of the
    int64 draw is a constant (a lane that is always 0 would give P = 1 for every v > 0)."""
    n = 2000
    images = torch.arange(256, dtype=torch.uint8).repeat(n, 1).reshape(n, 16, 16)
    freq = binarize_batch(images, torch.Generator().manual_seed(3)).double().mean(0).flatten()
    p = torch.arange(256).double() / 255
    se = (p * (1 - p) / n).sqrt()
    assert ((freq - p).abs() <= 5 * se + 1 / 32768).all()
    for lane in range(4):  # pixels k, k+4, ...: the k-th int16 of each int64 draw
        lane_freq = binarize_batch(images, torch.Generator().manual_seed(4)).flatten()[lane::4].mean()
        assert abs(lane_freq.item() - 0.5) < 0.01


def test_epoch_order_depends_only_on_seed_and_epoch():
    a = torch.cat(epoch_order(50, 8, seed=3, epoch=2))
    assert torch.equal(a, torch.cat(epoch_order(50, 8, seed=3, epoch=2)))
    assert sorted(a.tolist()) == list(range(50))
    assert not torch.equal(a, torch.cat(epoch_order(50, 8, seed=3, epoch=1)))


# ---- failure handling ---------------------------------------------------------------------------
@pytest.mark.parametrize("save_every", [1, 0], ids=["save-every-step", "save-per-epoch"])
def test_nan_stops_cleanly_and_keeps_last_checkpoint(tmp_path, save_every):
    """Loss terms are synced to the host only at check points; the error still names the first bad step."""
    model_cfg = ModelConfig(**TINY_MODEL)
    train(tiny_cfg(tmp_path, dataset="fashion-mnist"), model_cfg, tiny_data(), progress=False)
    before = weights(Autoencoder.from_pretrained(tmp_path))
    files_before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    data = tiny_data()
    bad = data.train.unsqueeze(1).float() / 255  # float input (N, 1, H, W)
    bad[7] = float("nan")
    first_bad = next(i for i, batch in enumerate(epoch_order(len(bad), 32, seed=0, epoch=0)) if 7 in batch)
    with pytest.raises(TrainingDiverged, match=rf"loss became nan at step {first_bad} .*last good checkpoint"):
        train(tiny_cfg(tmp_path, dataset="fashion-mnist", save_every=save_every), model_cfg,
              Data(train=bad, val=bad[:8]), progress=False)
    assert_same_weights(before, weights(Autoencoder.from_pretrained(tmp_path)))
    for name in ("model.safetensors", "config.json", "metrics.json"):
        assert (tmp_path / name).read_bytes() == files_before[name], name


def test_resume_with_other_settings_is_refused(tmp_path):
    train(tiny_cfg(tmp_path), ModelConfig(**TINY_MODEL), tiny_data(), progress=False)
    with pytest.raises(CheckpointError, match="different settings.*lr"):
        train(tiny_cfg(tmp_path, lr=1e-4, resume=True), ModelConfig(**TINY_MODEL), tiny_data(), progress=False)
    with pytest.raises(CheckpointError, match="no saved state"):
        train(tiny_cfg(tmp_path / "empty", resume=True), ModelConfig(**TINY_MODEL), tiny_data(), progress=False)


def test_resume_accepts_state_saved_before_hidden_layers_existed(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    model_cfg = ModelConfig(**TINY_MODEL)
    train(tiny_cfg(tmp_path), model_cfg, tiny_data(), progress=False)
    path = tmp_path / RESUME_NAME
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = json.loads(f.metadata()["json"]), {k: f.get_tensor(k) for k in f.keys()}
    del meta["model_config"]["hidden_layers"]  # as written by the code before the field
    save_file(tensors, str(path), metadata={"json": json.dumps(meta)})
    _, history = train(tiny_cfg(tmp_path, epochs=2, resume=True), model_cfg, tiny_data(), progress=False)
    assert [h["epoch"] for h in history] == [1, 2]
    with pytest.raises(CheckpointError, match="different settings.*model config"):
        train(tiny_cfg(tmp_path, epochs=3, resume=True), ModelConfig(**TINY_MODEL, hidden_layers=1), tiny_data(),
              progress=False)


def _half_then_fail(tensors, path, metadata=None):
    from safetensors.torch import save_file as real_save_file

    real_save_file(tensors, path, metadata=metadata)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    raise OSError("disk full (simulated)")


def test_atomic_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    old = Autoencoder(ModelConfig(**TINY_MODEL))
    old.save_pretrained(tmp_path)
    old_bytes = (tmp_path / "model.safetensors").read_bytes()
    monkeypatch.setattr(checkpoint, "save_file", _half_then_fail)
    torch.manual_seed(1)
    with pytest.raises(OSError, match="simulated"):
        Autoencoder(ModelConfig(**TINY_MODEL)).save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == old_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    assert_same_weights(weights(old), weights(Autoencoder.from_pretrained(tmp_path)))


# ---- a hard crash (SIGKILL) mid-epoch, then --resume, matches the uninterrupted run -------------------
CLI_FLAGS = ["--dataset", "mnist", "--val-size", "40", "--epochs", "2", "--batch-size", "32", "--family", "mlp",
             "--hidden-dim", "32", "--latent-dim", "2", "--bottleneck", "vae", "--kl-warmup-steps", "4",
             "--lr", "3e-3", "--seed", "0", "--threads", "1", "--device", "cpu", "--save-every", "3"]


def run_cli(args: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != KILL_AT_STEP_ENV}
    env.update(OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "training.train", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_kill_then_resume_matches_uninterrupted_run(tmp_path):
    root = write_fake_mnist(tmp_path / "data", n_train=200, n_test=20)
    out = tmp_path / "run"
    flags = [*CLI_FLAGS, "--data-root", str(root), "--out", str(out)]
    # 160 training images / 32 = 5 steps per epoch. Saves at steps 3, 5 (epoch end), 6; killed after step 7.
    killed = run_cli(flags, {KILL_AT_STEP_ENV: "7"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    after_kill = Autoencoder.from_pretrained(out)  # the epoch-1 checkpoint left behind loads fine
    assert all(torch.isfinite(v).all() for v in after_kill.state_dict().values())
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    from safetensors import safe_open

    with safe_open(str(out / RESUME_NAME), framework="pt") as f:
        assert '"step": 6' in f.metadata()["json"]

    resumed = run_cli([*flags, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert "saved" in resumed.stdout

    # The uninterrupted reference, in process, on the same files.
    cfg = TrainConfig(dataset="mnist", data_root=str(root), out=str(tmp_path / "ref"), val_size=40, epochs=2,
                      batch_size=32, kl_warmup_steps=4, lr=3e-3, seed=0, threads=1, device="cpu", save_every=3)
    model_cfg = ModelConfig(family="mlp", hidden_dim=32, latent_dim=2, bottleneck="vae")
    reference, history = train(cfg, model_cfg, load_data(cfg, torch.device("cpu")), progress=False)
    assert history[-1]["step"] == 10
    assert_same_weights(weights(reference), load_file(str(out / "model.safetensors")))


# ---- torchrun (DDP, gloo on the CPU): two ranks = one process; one rank's NaN stops every rank -------
DDP_FLAGS = ["--dataset", "fashion-mnist", "--val-size", "40", "--batch-size", "32", "--family", "mlp",
             "--hidden-dim", "32", "--latent-dim", "2", "--bottleneck", "ae", "--lr", "3e-3", "--seed", "0",
             "--threads", "1", "--device", "cpu"]


def run_torchrun(args: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in (KILL_AT_STEP_ENV, NAN_AT_STEP_ENV)}
    env.update(OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "training.train", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=180)


@pytest.fixture(scope="module")
def fashion_root(tmp_path_factory):
    return write_fake_mnist(tmp_path_factory.mktemp("ddp") / "data", n_train=200, n_test=20, folders=("FashionMNIST",))


def test_torchrun_two_ranks_match_one_process(tmp_path, fashion_root):
    """Each rank trains on its half of every global batch and DDP averages the gradients, so 2 ranks give
    one process's weights up to float rounding (an AE on intensities: no per-rank random draws)."""
    out = tmp_path / "ddp"
    done = run_torchrun([*DDP_FLAGS, "--epochs", "2", "--data-root", str(fashion_root), "--out", str(out)])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("saved ") == 1  # rank 0 alone reports (and writes)
    cfg = TrainConfig(dataset="fashion-mnist", data_root=str(fashion_root), out=str(tmp_path / "one"), val_size=40,
                      epochs=2, batch_size=32, lr=3e-3, seed=0, threads=1, device="cpu")
    model_cfg = ModelConfig(family="mlp", hidden_dim=32, latent_dim=2, bottleneck="ae")
    one, history = train(cfg, model_cfg, load_data(cfg, torch.device("cpu")), progress=False)
    ddp = load_file(str(out / "model.safetensors"))
    assert history[-1]["step"] == 10 and ddp.keys() == weights(one).keys()
    torch.manual_seed(0)
    init = weights(Autoencoder(model_cfg))
    for k, v in weights(one).items():
        torch.testing.assert_close(ddp[k], v, rtol=1e-4, atol=1e-5)
        assert not torch.allclose(v, init[k])  # it trained


def test_torchrun_nan_on_one_rank_stops_every_rank_before_a_save(tmp_path, fashion_root):
    """Rank 1's loss is NaN at step 3 (0-based), after which a save is due. Rank 0's own losses are finite
    there, but the all-reduce has already put NaN into its weights: every rank must stop before that save."""
    from safetensors import safe_open

    out = tmp_path / "ddp"
    done = run_torchrun([*DDP_FLAGS, "--epochs", "1", "--save-every", "2", "--data-root", str(fashion_root),
                         "--out", str(out)], {NAN_AT_STEP_ENV: "1:3"})
    assert done.returncode != 0
    assert "loss became nan at step 3 " in done.stderr  # rank 1
    assert "loss became non-finite on another rank at step 3 or earlier " in done.stderr  # rank 0
    with safe_open(str(out / RESUME_NAME), framework="pt") as f:
        assert json.loads(f.metadata()["json"])["step"] == 2  # the last good state, not step 4's
        assert all(torch.isfinite(f.get_tensor(k)).all() for k in f.keys())
    assert not (out / "model.safetensors").exists()  # the epoch never ended


def test_torchrun_kill_then_resume_matches_uninterrupted_run(tmp_path):
    """Each rank's RNG (binarization, reparameterization) goes into the saved state and comes back to that
    rank: a killed 2-rank VAE run on dynamically binarized MNIST resumes to the uninterrupted run's weights."""
    root = write_fake_mnist(tmp_path / "data", n_train=200, n_test=20)
    flags = [*CLI_FLAGS, "--data-root", str(root)]  # 5 steps per epoch, saves at steps 3, 5, 6, 8, 10
    killed = run_torchrun([*flags, "--out", str(tmp_path / "run")], {KILL_AT_STEP_ENV: "7"})
    assert killed.returncode != 0
    from safetensors import safe_open

    with safe_open(str(tmp_path / "run" / RESUME_NAME), framework="pt") as f:
        meta = json.loads(f.metadata()["json"])
        assert meta["step"] == 6 and meta["world_size"] == 2
        assert not torch.equal(f.get_tensor("rng"), f.get_tensor("rng.rank1"))  # the ranks draw different noise
    resumed = run_torchrun([*flags, "--out", str(tmp_path / "run"), "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    whole = run_torchrun([*flags, "--out", str(tmp_path / "whole")])
    assert whole.returncode == 0, whole.stderr[-3000:]
    assert_same_weights(load_file(str(tmp_path / "whole" / "model.safetensors")),
                        load_file(str(tmp_path / "run" / "model.safetensors")))


def test_tc_beta_trains_a_beta_tcvae_and_refuses_models_without_a_gaussian_posterior(tmp_path):
    seen = []
    model, history = train(tiny_cfg(tmp_path / "tc", epochs=2, tc_beta=6.0), ModelConfig(bottleneck="vae", **TINY_MODEL),
                           tiny_data(), progress=False, on_step=lambda info: seen.append(info.terms))
    assert all("tc" in t and math.isfinite(float(t["tc"])) for t in seen)
    # the penalty is in the optimized loss: loss = recon + kl + (6 - 1) * tc at every step
    for t in seen[:3]:
        torch.testing.assert_close(t["loss"], t["recon"] + t["kl"] + 5.0 * t["tc"])
    assert json.loads((tmp_path / "tc" / "metrics.json").read_text())["train_config"]["tc_beta"] == 6.0
    for bad in (ModelConfig(bottleneck="ae", **TINY_MODEL), ModelConfig(bottleneck="vae", flow="iaf", **TINY_MODEL)):
        with pytest.raises(ValueError, match="--tc-beta"):
            train(tiny_cfg(tmp_path / "bad", tc_beta=6.0), bad, tiny_data(), progress=False)
    r = run_cli(["--tc-beta", "-1", "--out", str(tmp_path / "x")])
    assert r.returncode != 0 and "--tc-beta has an invalid value" in r.stderr and "Traceback" not in r.stderr
