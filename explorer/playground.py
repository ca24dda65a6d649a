"""The Playground: two small models trained side by side in the app, watched while their latent spaces form.

A run is `training.train.train` on a `models.Autoencoder` (the CLI's loop and model, nothing written again), with a
step hook that sends the app a snapshot at most SNAPSHOT_HZ times a second: loss terms, the validation codes, the KL
of each dimension, reconstructions and prior samples. Data: the dataset folder's playground.npz, a seeded subset of
its *training* split (training/export.py), the first VAL_IMAGES (val_count) for validation.

Why a process per run (a worker started with `python -m explorer.playground`, talking over a socket pair):
- Stop, a closed page or a cap kills it: its CPU and memory are back at once (a Python thread cannot be killed,
  and torch's thread pool is per process);
- a crash or a NaN ends that run only; the server and the other runs keep going;
- each run trains on one CPU thread, so at most MAX_RUNS (env LATENT_EXPLORER_PLAYGROUND_RUNS, default 2: one
  visitor's pair on a 2-core CPU Space) train at once, and the app's other requests keep a core.
Workers import torch before they are needed (SPARES warm ones wait for a run), so a run's first picture arrives
in a fraction of a second; an idle spare exits after SPARE_IDLE_S. Not multiprocessing's spawn or forkserver: both
import the parent's main module (app.py, the whole page) into every child.

No gradio here: ui/playground.py is the tab.
"""
from __future__ import annotations

import dataclasses
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

DATA_NAME = "playground.npz"
VAL_IMAGES = 1000  # the validation split: its codes are the live map, its loss the validation curve


def val_count(n_images: int) -> int:
    """Validation images of a Playground data file of n_images: VAL_IMAGES, at most a fifth of a small one."""
    return min(VAL_IMAGES, max(1, n_images // 5))
SHOWN = 8  # reconstructions of these first validation images
PRIOR_SHOWN = 16  # prior samples, from fixed noise
SNAPSHOT_HZ = 6.0  # snapshots a second, at most (the page shows >= 4)
HIDDEN = 256  # the small MLP: 2 hidden layers of 256 units per side (conv: 16 channels)
BETAS = (0, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 20, 32, 50)  # the β choices: a log-like scale that includes 0
MAX_LATENT, MIN_LATENT = 32, 2
MAX_BETA = 50.0
MAX_FREE_BITS = 5.0
MAX_LR = 0.1
SPARE_IDLE_S = 600.0
FULL_EPOCHS = 20  # the printed full-length command: the training CLI's default epochs over the whole dataset


def env_int(name: str, default: int, low: int) -> int:
    try:
        return max(low, int(os.environ.get(name, default)))
    except ValueError:
        return default


MAX_RUNS = env_int("LATENT_EXPLORER_PLAYGROUND_RUNS", 2, 2)  # >= 2: a visitor's two runs train together
MAX_STEPS = env_int("LATENT_EXPLORER_PLAYGROUND_MAX_STEPS", 20_000, 1)
MAX_SECONDS = env_int("LATENT_EXPLORER_PLAYGROUND_MAX_SECONDS", 300, 1)
SPARES = env_int("LATENT_EXPLORER_PLAYGROUND_SPARES", 2, 0)


class SettingsError(ValueError):
    """A run's settings are outside what the Playground allows; the message says what is allowed."""


@dataclass(frozen=True)
class RunSettings:
    """One run's settings, as the tab shows them."""

    bottleneck: str = "vae"
    latent_dim: int = 2
    beta: float = 1.0
    kl_warmup_steps: int = 0
    free_bits: float = 0.0
    prior: str = "standard"
    family: str = "mlp"
    lr: float = 1e-3
    steps: int = 1500

    @classmethod
    def parse(cls, slot: str, values: dict) -> "RunSettings":
        """Settings from what a form or an API call gives (numbers may come as text); SettingsError names the run
        and what is allowed."""
        def number(key, kind):
            v = values.get(key, getattr(cls, key))
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise SettingsError(f"Run {slot}: {key.replace('_', ' ')} must be a number, got {v!r}.") from None
            if kind is int:
                if not math.isfinite(x) or x != int(x):
                    raise SettingsError(f"Run {slot}: {key.replace('_', ' ')} must be a whole number, got {v!r}.")
                return int(x)
            return x

        s = cls(bottleneck=str(values.get("bottleneck", cls.bottleneck)).lower(),
                latent_dim=number("latent_dim", int), beta=number("beta", float),
                kl_warmup_steps=number("kl_warmup_steps", int), free_bits=number("free_bits", float),
                prior=str(values.get("prior", cls.prior)).lower(), family=str(values.get("family", cls.family)).lower(),
                lr=number("lr", float), steps=number("steps", int))
        s.check(slot)
        return s

    def check(self, slot: str = "") -> None:
        run = f"Run {slot}: " if slot else ""
        problems = []
        if self.bottleneck not in ("ae", "vae"):
            problems.append(f"model must be ae or vae, got {self.bottleneck!r}")
        if not MIN_LATENT <= self.latent_dim <= MAX_LATENT:
            problems.append(f"latent size must be {MIN_LATENT} to {MAX_LATENT}, got {self.latent_dim}")
        if not 0 <= self.beta <= MAX_BETA:  # also NaN
            problems.append(f"β must be 0 to {MAX_BETA:g}, got {self.beta:g}")
        if not 1 <= self.steps <= MAX_STEPS:
            problems.append(f"the step budget must be 1 to {MAX_STEPS} steps, got {self.steps}")
        if not 0 <= self.kl_warmup_steps <= MAX_STEPS:
            problems.append(f"KL warm-up must be 0 to {MAX_STEPS} steps, got {self.kl_warmup_steps}")
        if not 0 <= self.free_bits <= MAX_FREE_BITS:
            problems.append(f"free bits must be 0 to {MAX_FREE_BITS:g} nats, got {self.free_bits:g}")
        if not 0 < self.lr <= MAX_LR:
            problems.append(f"the learning rate must be > 0 and at most {MAX_LR:g}, got {self.lr:g}")
        if self.prior not in ("standard", "mog"):
            problems.append(f"prior must be standard or mog, got {self.prior!r}")
        elif self.prior == "mog" and self.bottleneck != "vae":
            problems.append("a mog prior needs a VAE (an AE has no prior)")
        elif self.prior == "mog" and self.free_bits > 0:
            problems.append("free bits need the standard prior (they floor each dimension's closed-form KL, which a "
                            "mog prior does not have): set free bits to 0 or the prior to standard")
        if self.family not in ("mlp", "conv"):
            problems.append(f"backbone must be mlp or conv, got {self.family!r}")
        if problems:
            raise SettingsError(run + "; ".join(problems) + ".")

    @property
    def title(self) -> str:
        if self.bottleneck == "ae":
            return f"AE-{self.latent_dim}"
        extras = [f"β = {self.beta:g}"] + ([f"warm-up {self.kl_warmup_steps}"] if self.kl_warmup_steps else []) \
            + ([f"free bits {self.free_bits:g}"] if self.free_bits else []) + (["MoG prior"] if self.prior == "mog" else [])
        return f"VAE-{self.latent_dim} ({', '.join(extras)})"

    def model_config(self, fmt: dict, slot: str):
        from models import ModelConfig

        return ModelConfig(family=self.family, bottleneck=self.bottleneck, latent_dim=self.latent_dim,
                           likelihood=fmt["likelihood"], image_size=fmt["image_size"],
                           image_channels=fmt["image_channels"], hidden_dim=HIDDEN, hidden_layers=2, channels=16,
                           prior=self.prior, prior_components=10,
                           title=f"Playground {slot}: {self.title}",
                           description=f"Trained in the app's Playground for {self.steps} steps on "
                                       f"{fmt['train_images']} training images.")

    def train_config(self, fmt: dict, out: str, full_length: bool = False):
        """training.train's TrainConfig: the Playground's (a step budget, one thread) or the full-length run's."""
        from training.train import TrainConfig

        common = dict(dataset=fmt["dataset"], batch_size=128, lr=self.lr, beta=self.beta if self.bottleneck == "vae" else 1.0,
                      kl_warmup_steps=self.kl_warmup_steps if self.bottleneck == "vae" else 0,
                      free_bits=self.free_bits if self.bottleneck == "vae" else 0.0, binarize=fmt["binarize"], seed=0)
        if full_length:
            return TrainConfig(**common, data_root="./data", out=out, epochs=FULL_EPOCHS)
        return TrainConfig(**common, data_root=".", out=out, epochs=1_000_000, max_steps=self.steps, val_size=0,
                           device="cpu", threads=1)


# (label, what to watch, run A, run B)
PRESETS = {
    "AE vs VAE in 2-D": (
        "The AE's codes spread anywhere and leave gaps between classes; the VAE packs them into the prior's disc, so "
        "its prior samples look like digits and the AE's (drawn from the same N(0, I)) often do not.",
        RunSettings(bottleneck="ae", latent_dim=2), RunSettings(bottleneck="vae", latent_dim=2)),
    "KL dominates (β = 1 vs β = 20)": (
        "At β = 20 the KL term wins: most dimensions carry < 0.01 nats, the codes collapse onto the prior and the "
        "reconstructions turn into the mean image. β = 1 keeps them.",
        RunSettings(latent_dim=8, beta=1), RunSettings(latent_dim=8, beta=20)),
    "KL vanishes (β = 1 vs β = 0)": (
        "With β = 0 nothing pulls the codes to the prior: the VAE becomes an AE with noise, its KL climbs and its "
        "prior samples stop looking like data.",
        RunSettings(latent_dim=8, beta=1), RunSettings(latent_dim=8, beta=0)),
    "Warm-up vs none at β = 4": (
        "KL warm-up starts the KL weight at 0: the codes spread first, then the KL term comes in; without it the "
        "KL term shuts dimensions early. Compare the number of active units at the end.",
        RunSettings(latent_dim=8, beta=4, kl_warmup_steps=1000), RunSettings(latent_dim=8, beta=4)),
    "Free bits vs none at β = 8": (
        "Free bits stop the KL penalty below 0.5 nats per dimension, so no dimension is pushed to 0: watch the KL bars "
        "stay above the floor on the left and fall to 0 on the right.",
        RunSettings(latent_dim=8, beta=8, free_bits=0.5), RunSettings(latent_dim=8, beta=8)),
    "Latent size 2 vs 32": (
        "32 dimensions reconstruct better, but a VAE uses only as many as the data needs: count the active units and "
        "the dimensions under 0.01 nats.",
        RunSettings(latent_dim=2), RunSettings(latent_dim=32)),
}


def dataset_format(folder: Path) -> dict:
    """What a run needs to know about a dataset folder (from its VAE-16's config and metrics, else from the data):
    the data file, the image format, the likelihood, the binarization and the training CLI's --dataset value."""
    import json

    folder = Path(folder)
    path = folder / DATA_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the Playground trains on it. Write it with "
                                f"`python -m training.export --dataset {folder.name} ...` or `make explore`.")
    with np.load(path, allow_pickle=False) as f:
        shape = f["images"].shape
    cfg, tc = {}, {}
    for name in ("vae-16", "vae-2", "ae-16"):
        try:
            cfg = json.loads((folder / name / "config.json").read_text())
            tc = json.loads((folder / name / "metrics.json").read_text()).get("train_config", {})
            break
        except (OSError, ValueError):
            continue
    likelihood = cfg.get("likelihood", "bernoulli")
    dataset = tc.get("dataset") or folder.name
    binarize = tc.get("binarize", "auto")
    dynamic = binarize == "dynamic" or (binarize == "auto" and dataset == "mnist")
    return {"path": str(path), "dataset": dataset, "image_size": int(shape[1]),
            "image_channels": int(shape[3]) if len(shape) == 4 else 1, "likelihood": likelihood,
            "binarize": "dynamic" if dynamic else "none", "train_images": int(shape[0]) - val_count(int(shape[0])), "val_images": val_count(int(shape[0]))}


# ---- the worker process: one run --------------------------------------------------------------------------------
class StopRun(Exception):
    """A run ends early with its last good state: Stop was pressed, or a cap was reached."""


class Snapshots:
    """train()'s step hook in a run's process: checks for NaN, Stop and the time cap at every step; at most SNAPSHOT_HZ
    times a second, measures the model on the validation images and sends the snapshot over `conn`."""

    def __init__(self, conn: Connection, model_cfg, val_x, val_labels, max_seconds: float):
        import torch

        self.torch = torch
        self.conn, self.val_x, self.val_labels, self.max_seconds = conn, val_x, val_labels, max_seconds
        self.t0 = self.last = time.perf_counter()
        self.acc, self.n, self.good = torch.zeros(3, dtype=torch.float64), 0, None
        g = torch.Generator().manual_seed(1)
        self.eps = torch.randn((len(val_x), model_cfg.latent_dim), generator=g)  # fixed posterior noise: curves compare
        self.prior_g_seed = 2
        self.axes = None  # the PCA axes of the previous snapshot (their signs kept, so the map does not flip)
        self.busy = 0.0  # seconds spent on snapshots
        self.last_step, self.last_time = 0, self.t0
        self.frame = None

    def __call__(self, info) -> None:
        torch = self.torch
        terms = info.terms
        row = torch.stack([terms["loss"], terms["recon"], terms["kl"]]).double()
        loss = float(row[0])  # one host read a step: nothing to wait for on a CPU
        if not math.isfinite(loss):
            raise TrainingStopped("diverged", f"the loss became {loss} at step {info.step}; the run stopped and kept its "
                                              "state from the last picture. Try a lower learning rate or β.")
        self.acc += row
        self.n += 1
        if self.conn.poll():
            msg = self.conn.recv()
            if msg == "stop":
                raise StopRun("stopped")
        now = time.perf_counter()
        if now - self.t0 > self.max_seconds:
            raise StopRun(f"reached the {self.max_seconds:g} s time cap")
        if info.step == 1 or info.step >= info.total_steps or now - self.last >= 1.0 / SNAPSHOT_HZ:
            self.send(info.model, info.step, info.total_steps, info.beta)

    def measure(self, model, step: int, total: int, beta: float) -> dict:
        torch = self.torch
        t = time.perf_counter()
        was_training = model.training
        model.eval()
        with torch.no_grad():
            posterior = model.encode(self.val_x)
            is_vae = model.config.is_variational
            if is_vae:
                std = posterior.std
                z = posterior.mean + std * self.eps
                kl_img = model.kl(posterior, z)
                kl_dims = model.marginal_kl_per_dim(posterior).mean(0)
            else:
                z = posterior.mean
                kl_img = torch.zeros(len(z))
                kl_dims = torch.zeros(z.shape[1])
            recon_img = -model.log_likelihood(model.decode(z), self.val_x)
            mean = posterior.mean
            shown = model.decode_image(mean[:SHOWN])
            g = torch.Generator().manual_seed(self.prior_g_seed)
            prior = (model.sample_prior(PRIOR_SHOWN, generator=g) if is_vae
                     else torch.randn((PRIOR_SHOWN, mean.shape[1]), generator=g))
            samples = model.decode_image(prior)
        model.train(was_training)
        xy = self.project(mean)
        now = time.perf_counter()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-6)
        self.last_step, self.last_time = step, now
        train = (self.acc / max(self.n, 1)).tolist()
        self.acc.zero_()
        self.n = 0
        recon, kl = float(recon_img.mean()), float(kl_img.mean())
        self.busy += time.perf_counter() - t
        to_u8 = lambda x: (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).squeeze(-1).numpy()  # noqa: E731
        return {"kind": "frame", "step": step, "total": total, "seconds": now - self.t0, "steps_per_s": rate,
                "beta": beta, "train": train, "val": [recon + kl, recon, kl], "kl_dims": kl_dims.tolist(),
                "active": int((mean.var(0) > 0.01).sum()), "code_var": mean.var(0).tolist(), "xy": xy, "codes": mean.numpy().astype(np.float32),
                "shown": to_u8(shown), "samples": to_u8(samples), "busy": self.busy}

    def send(self, model, step, total, beta) -> None:
        frame = self.measure(model, step, total, beta)
        if not math.isfinite(frame["val"][0]):
            raise TrainingStopped("diverged", f"the validation loss became {frame['val'][0]} at step {step}; the run "
                                              "stopped and kept its state from the last picture. Try a lower learning rate.")
        self.good = {k: v.detach().clone() for k, v in model.state_dict().items()}  # the last good state
        self.frame = frame
        self.last = time.perf_counter()
        out = dict(frame)
        out.pop("codes")
        self.conn.send(out)

    def project(self, codes) -> np.ndarray:
        """(N, D) codes -> (N, 2): the codes themselves in 2-D, else their first two principal components, each axis's
        sign chosen to agree with the previous snapshot's."""
        torch = self.torch
        if codes.shape[1] == 2:
            return codes.numpy().astype(np.float32)
        centred = codes - codes.mean(0)
        _, _, v = torch.linalg.svd(centred.double(), full_matrices=False)
        axes = v[:2].T  # (D, 2)
        if self.axes is not None:
            signs = torch.sign((axes * self.axes).sum(0))
            axes = axes * torch.where(signs == 0, torch.ones_like(signs), signs)
        self.axes = axes
        return (centred.double() @ axes).float().numpy()


class TrainingStopped(Exception):
    def __init__(self, state: str, reason: str):
        super().__init__(reason)
        self.state, self.reason = state, reason


def run_in_worker(conn: Connection, job: dict) -> None:
    """One run, in a worker process: train, then save the checkpoint folder and send the final message."""
    import torch

    from explorer import diagnostics
    from models.checkpoint import save_pretrained
    from training.modelcard import write_card
    from training.train import RESUME_NAME, Data, provenance, train

    torch.set_num_threads(1)
    fmt, slot, out = job["format"], job["slot"], Path(job["out"])
    settings = RunSettings(**job["settings"])
    model_cfg = settings.model_config(fmt, slot)
    cfg = settings.train_config(fmt, str(out))
    with np.load(fmt["path"], allow_pickle=False) as f:
        images, labels = torch.from_numpy(f["images"]), torch.from_numpy(f["labels"]).long()
    v = fmt["val_images"]
    data = Data(images[v:], images[:v], labels[v:], labels[:v])
    from training.data import prepare_batch

    g = torch.Generator().manual_seed(10_000)
    val_x = prepare_batch(data.val, cfg.dynamic_binarization, g)  # binarized once: a fixed validation set
    conn.send({"kind": "labels", "labels": data.val_labels.numpy().astype(np.int16),
               "originals": data.val[:SHOWN].numpy()})
    hook = Snapshots(conn, model_cfg, val_x, data.val_labels, float(job["max_seconds"]))
    state, reason = "done", f"finished its {settings.steps} steps"
    t0 = time.perf_counter()
    model = None
    try:
        model, history = train(cfg, model_cfg, data=data, progress=False, on_step=hook)
    except StopRun as e:
        state, reason = ("stopped", "stopped by you") if str(e) == "stopped" else ("capped", str(e))
    except TrainingStopped as e:
        state, reason = e.state, e.reason
    seconds = time.perf_counter() - t0
    if model is None:  # ended early: the last good state (its last picture) is the run's model
        from models import Autoencoder

        model = Autoencoder(model_cfg)
        if hook.good is None:
            conn.send({"kind": "end", "state": state, "reason": reason + " (before its first picture: nothing saved)"})
            return
        model.load_state_dict(hook.good)
        history = []
    elif hook.frame is None or hook.frame["step"] != hook.last_step:
        hook.send(model, hook.last_step, hook.last_step, cfg.beta)
    frame = hook.frame
    metrics = provenance(cfg, model_cfg, seconds, torch.device("cpu"), history, from_disk=False)
    full = dataclasses.asdict(settings.train_config(fmt, f"runs/playground-{slot.lower()}", full_length=True))
    kl_dims = np.asarray(frame["kl_dims"]) if model_cfg.is_variational else None
    verdict = diagnostics.verdict(f"playground-{slot.lower()}", f"Run {slot}", model_cfg.is_variational, kl_dims,
                                  frame["codes"], {"train_config": full, "model_config": dataclasses.asdict(model_cfg)},
                                  kl_total=frame["val"][2] if model_cfg.is_variational else None)
    metrics["playground"] = {"state": state, "reason": reason, "steps": frame["step"], "seconds": round(seconds, 1),
                             "steps_per_s": frame["step"] / max(seconds, 1e-9),
                             "snapshot_seconds": round(frame["busy"], 2),
                             "val_loss": frame["val"][0], "val_recon": frame["val"][1], "val_kl": frame["val"][2],
                             "marginal_kl_per_dim": frame["kl_dims"], "active_units": frame["active"],
                             "verdict": verdict["state"], "n_collapsed": verdict["n_collapsed"]}
    save_pretrained(model, out, metrics=metrics)
    (out / RESUME_NAME).unlink(missing_ok=True)
    write_card(out)
    from models import ModelConfig
    from training.train import TrainConfig

    defaults = {**dataclasses.asdict(TrainConfig()), **dataclasses.asdict(ModelConfig())}
    keep = {"dataset", "out", "epochs", "family", "bottleneck", "latent_dim", "beta"}
    tc, mc = ({k: v for k, v in d.items() if k in keep or defaults.get(k) != v or k not in defaults}
              for d in (full, dataclasses.asdict(model_cfg)))
    drop = {"title", "description"} | ({"channels"} if settings.family == "mlp" else {"hidden_layers"})
    command = diagnostics.command_line(tc, {k: v for k, v in mc.items() if k not in drop})
    conn.send({"kind": "end", "state": state, "reason": reason, "metrics": metrics["playground"],
               "verdict": verdict["text"].split("\n\nRemedies")[0], "verdict_state": verdict["state"],
               "command": command, "out": str(out)})


def warm_up() -> None:
    """The slow first calls, done before a job arrives: importing torch and the trainer (~1.5 s), then one tiny
    training step (Adam's first use imports torch._dynamo, ~1.5 s; the first kernels set themselves up)."""
    import huggingface_hub  # noqa: F401  (the model card, written when a run ends)
    import torch
    import torchvision  # noqa: F401  (training.train.provenance records its version)

    import training.train  # noqa: F401
    from explorer import diagnostics  # noqa: F401
    from models import Autoencoder, ModelConfig
    from training import modelcard  # noqa: F401

    torch.set_num_threads(1)
    for family in ("mlp", "conv"):
        model = Autoencoder(ModelConfig(family=family, latent_dim=2, hidden_dim=8, channels=2))
        opt = torch.optim.Adam(model.parameters(), fused=True)
        model.loss(torch.rand(2, 1, 28, 28))["loss"].backward()
        opt.step()


def worker_main(fd: int) -> None:
    """`python -m explorer.playground FD`: import torch and the trainer, say ready, run the one job it is given."""
    conn = Connection(fd)
    sys.stdout = open(os.devnull, "w")  # training.train prints one JSON line an epoch
    warm_up()
    conn.send({"kind": "ready"})
    if not conn.poll(SPARE_IDLE_S):
        return  # an idle spare gives its memory back
    try:
        job = conn.recv()
    except (EOFError, OSError):  # the app went away
        return
    if job == "stop":
        return
    try:
        run_in_worker(conn, job)
    except Exception as e:  # a fault of this run only: say it, then exit
        import traceback

        traceback.print_exc()
        try:
            conn.send({"kind": "end", "state": "failed", "reason": f"the run failed ({type(e).__name__}: {e})"})
        except OSError:
            pass
    conn.close()
    sys.stderr.flush()
    os._exit(0)  # the run's files are written and closed: skip the interpreter's slow teardown of torch


# ---- the app's side: workers, runs, jobs, the line ---------------------------------------------------------------
class Worker:
    """A worker process and its end of the socket pair."""

    def __init__(self):
        parent, child = socket.socketpair()
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        root = Path(__file__).resolve().parent.parent
        env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        self.proc = subprocess.Popen([sys.executable, "-m", "explorer.playground", str(child.fileno())],
                                     pass_fds=(child.fileno(),), cwd=root, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL)
        child.close()
        self.conn = Connection(parent.detach())
        self.ready = threading.Event()
        self.started = time.perf_counter()

    def wait_ready(self, timeout: float | None = None) -> bool:
        if not self.ready.is_set():
            if self.conn.poll(timeout):
                try:
                    msg = self.conn.recv()
                except (EOFError, OSError):
                    return False
                if msg.get("kind") == "ready":
                    self.ready.set()
        return self.ready.is_set()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.conn.close()


@dataclass
class Run:
    """One training run as the app sees it: its settings, its worker and what it has sent."""

    slot: str
    settings: RunSettings
    out: Path
    state: str = "waiting"  # waiting, starting, running, done, stopped, capped, diverged, failed
    reason: str = ""
    frame: dict | None = None
    labels: np.ndarray | None = None
    originals: np.ndarray | None = None  # the validation images whose reconstructions are shown
    curves: list = field(default_factory=list)  # (step, train loss, recon, kl, val loss, recon, kl)
    kl_history: list = field(default_factory=list)
    end: dict | None = None
    frames: int = 0
    started: float = 0.0
    first_frame_s: float | None = None
    worker: Worker | None = None
    reader: threading.Thread | None = None

    @property
    def ended(self) -> bool:
        return self.end is not None

    def read(self, on_end) -> None:
        """The reader thread: every message from the worker, until its end message or its exit."""
        try:
            while True:
                msg = self.worker.conn.recv()
                kind = msg.get("kind")
                if kind == "labels":
                    self.labels, self.originals = msg["labels"], msg["originals"]
                elif kind == "frame":
                    self.state = "running"
                    self.curves.append((msg["step"], *msg["train"], *msg["val"]))
                    if self.first_frame_s is None:
                        self.first_frame_s = time.perf_counter() - self.started
                    self.frame, self.frames = msg, self.frames + 1
                elif kind == "end":
                    self.state, self.reason, self.end = msg["state"], msg["reason"], msg
                    break
        except (EOFError, OSError):
            pass
        if self.end is None:
            code = self.worker.proc.poll() if self.worker else None
            if self.state == "killed":  # Stop (it did not end within the grace time) or a closed page
                self.state, self.reason = "stopped", "stopped"
            else:
                self.state, self.reason = "failed", f"its process ended unexpectedly (exit code {code})"
            self.end = {"kind": "end", "state": self.state, "reason": self.reason}
        try:
            self.worker.proc.wait(5)  # it exits right after its end message
        except subprocess.TimeoutExpired:
            self.worker.kill()
        on_end(self)


@dataclass
class Job:
    """One visitor's pair of runs."""

    session: str
    runs: list[Run]
    folder: Path
    format: dict = field(default_factory=dict)  # dataset_format(folder)
    created: float = field(default_factory=time.perf_counter)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(18))  # its live view's key: only its page has it

    @property
    def state(self) -> str:
        if all(r.ended for r in self.runs):
            return "ended"
        return "waiting" if all(r.state == "waiting" for r in self.runs) else "running"


class Playground:
    """Every visitor's runs: at most max_runs train at once, the others wait in line (first come, first served).
    A visitor (a session id) has one job at a time, and sees and stops only its own."""

    def __init__(self, max_runs: int = MAX_RUNS, max_seconds: float = MAX_SECONDS, spares: int = SPARES,
                 root: Path | None = None):
        self.max_runs, self.max_seconds, self.spares_wanted = max(2, max_runs), max_seconds, spares
        self.root = Path(root or tempfile.mkdtemp(prefix="latent-explorer-playground-"))
        self.jobs: dict[str, Job] = {}
        self.line: list[Job] = []
        self.active = 0
        self.spares: list[Worker] = []
        self._lock = threading.RLock()

    # -- workers ----------------------------------------------------------------------------------------------
    def warm(self) -> None:
        """Start spare workers (in the background of a request: they import torch, ~1-2 s)."""
        with self._lock:
            self.spares = [w for w in self.spares if w.alive]
            for _ in range(self.spares_wanted - len(self.spares)):
                self.spares.append(Worker())

    def _worker(self) -> Worker:
        with self._lock:
            while self.spares:
                w = self.spares.pop(0)
                if w.alive:
                    return w
                w.kill()
        return Worker()

    # -- jobs ---------------------------------------------------------------------------------------------------
    def start(self, session: str, folder: Path, settings: tuple[RunSettings, RunSettings]) -> Job:
        """Queue a visitor's pair; SettingsError if this visitor already has one waiting or training."""
        fmt = dataset_format(folder)  # FileNotFoundError when the dataset has no playground data
        with self._lock:
            old = self.jobs.get(session)
            if old is not None and old.state != "ended":
                raise SettingsError("Your runs are still training: press Stop first, or wait for them to end.")
            if old is not None:
                self._forget(old)
            token = secrets.token_hex(8)
            runs = [Run(slot, s, self.root / f"{token}-{slot.lower()}") for slot, s in zip("AB", settings)]
            job = Job(session, runs, Path(folder), fmt)
            self.jobs[session] = job
            self.line.append(job)
            self._advance()
        return job

    def position(self, job: Job) -> int:
        """1 for the first in line; 0 when it is not waiting."""
        with self._lock:
            return self.line.index(job) + 1 if job in self.line else 0

    def _advance(self) -> None:
        with self._lock:
            while self.line and self.active + len(self.line[0].runs) <= self.max_runs:
                job = self.line.pop(0)
                self.active += len(job.runs)
                for run in job.runs:
                    self._launch(job, run)

    def _launch(self, job: Job, run: Run) -> None:
        run.state, run.started = "starting", time.perf_counter()
        run.worker = self._worker()
        spec = {"slot": run.slot, "settings": dataclasses.asdict(run.settings), "format": job.format,
                "out": str(run.out), "max_seconds": self.max_seconds}
        try:
            run.worker.conn.send(spec)
        except OSError:
            pass  # the reader sees the worker gone and says so
        run.reader = threading.Thread(target=self._read, args=(run,), name=f"playground-{run.slot}", daemon=True)
        run.reader.start()

    def _read(self, run: Run) -> None:
        run.worker.wait_ready()
        run.read(self._ended)

    def _ended(self, run: Run) -> None:
        with self._lock:
            self.active -= 1
            self._advance()
            idle = self.active == 0
        if idle:  # refill the spares for the next Train while nothing trains (each one imports torch: ~2 s of CPU)
            threading.Thread(target=self.warm, daemon=True).start()

    def job(self, session: str) -> Job | None:
        return self.jobs.get(session)

    def by_token(self, token: str) -> Job | None:
        """The job whose live-view token this is (the page that started it has it; no other page can guess it)."""
        with self._lock:
            jobs = list(self.jobs.values())
        return next((j for j in jobs if secrets.compare_digest(j.token.encode(), token.encode())), None)

    def stop(self, session: str, grace: float = 1.5) -> bool:
        """Stop this visitor's runs (each keeps its last good state); waiting ones leave the line. Within `grace`
        seconds a run that has not ended is killed. True if there was anything to stop."""
        with self._lock:
            job = self.jobs.get(session)
            if job is None or job.state == "ended":
                return False
            if job in self.line:
                self.line.remove(job)
                for run in job.runs:
                    run.state, run.reason, run.end = "stopped", "stopped before it started", {"state": "stopped"}
                return True
        for run in job.runs:
            if not run.ended and run.worker is not None:
                try:
                    run.worker.conn.send("stop")
                except OSError:
                    pass
        deadline = time.perf_counter() + grace
        for run in job.runs:
            if run.reader is not None:
                run.reader.join(max(0.0, deadline - time.perf_counter()))
            if not run.ended and run.worker is not None:
                run.state, run.reason = "killed", "stopped"
                run.worker.kill()
                if run.reader is not None:
                    run.reader.join(2)
        return True

    def close(self, session: str) -> None:
        """The visitor left: kill its runs at once and delete their files."""
        with self._lock:
            job = self.jobs.pop(session, None)
            if job is None:
                return
            if job in self.line:
                self.line.remove(job)
        for run in job.runs:
            if run.worker is not None and not run.ended:
                run.state = "killed"
                run.worker.kill()
        for run in job.runs:
            if run.reader is not None:
                run.reader.join(2)
        self._forget(job)

    def _forget(self, job: Job) -> None:
        for run in job.runs:
            shutil.rmtree(run.out, ignore_errors=True)

    def shutdown(self) -> None:
        for session in list(self.jobs):
            self.close(session)
        with self._lock:
            for w in self.spares:
                w.kill()
            self.spares = []


if __name__ == "__main__":
    worker_main(int(sys.argv[1]))
