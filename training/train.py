"""Train an AE or a VAE: `python -m training.train --dataset mnist --bottleneck vae --out DIR`.

Reads top to bottom: config -> data on the device -> model/optimizer (or resume state) ->
one loop over epochs and batches -> atomic checkpoint at every save point.
The dataset lives on the device as a uint8 tensor; batches are gathered by indexing, so there
is no per-sample Python, PIL or DataLoader work in the hot loop.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from models import Autoencoder, ModelConfig
from models.checkpoint import CheckpointError, atomic_save_tensors, save_pretrained, unwrap
from training.cli import OneLineParser, add_dataclass_flags, build_dataclass, fail
from training.data import (DataError, binarize_batch, check_spec, dataset_info, load_split, prepare_batch,
                           raw_file_hashes, sources)

RESUME_NAME = "resume.safetensors"
# Test hook (tests/test_training.py): with this set to N, train() SIGKILLs its own process right
# after optimizer step N (and after any save at that step), to test --resume after a hard crash.
KILL_AT_STEP_ENV = "LATENT_EXPLORER_KILL_AT_STEP"
# Test hook: with this set to "R:N", rank R's loss is NaN at step N (0-based, as in the loss messages), to test
# that every rank of a torchrun job stops before a save when one rank diverges.
NAN_AT_STEP_ENV = "LATENT_EXPLORER_NAN_AT_STEP"


@dataclass
class TrainConfig:
    """How to train; the model's architecture is a separate ModelConfig."""

    dataset: str = field(default="mnist", metadata={
        "help": "mnist, fashion-mnist (torchvision), folder:PATH (an image folder, class subfolders = labels), "
                "npz:FILE (arrays images, labels) or idx:PREFIX (MNIST-format files)"})
    data_root: str = field(default="./data", metadata={"help": "folder holding MNIST/raw or FashionMNIST/raw"})
    out: str = field(default="runs/model", metadata={"help": "checkpoint folder to write"})
    epochs: int = field(default=20, metadata={"help": "passes over the training split"})
    max_steps: int = field(default=0, metadata={"help": "stop after N optimizer steps, mid-epoch if need be (0 = "
                                                        "run every epoch); the lr schedule spans the shorter run"})
    batch_size: int = field(default=128, metadata={"help": "examples per optimizer step (global, across ranks)"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    lr_schedule: Literal["cosine", "constant"] = field(
        default="cosine", metadata={"help": "cosine: decay from lr to lr*lr_final_ratio over the run"}
    )
    lr_final_ratio: float = field(default=0.1, metadata={"help": "final lr / lr for the cosine schedule"})
    beta: float = field(default=1.0, metadata={"help": "weight of the KL term (beta-VAE); 1 gives the ELBO"})
    kl_warmup_steps: int = field(default=0, metadata={"help": "linear KL annealing from 0 to beta over N steps"})
    free_bits: float = field(default=0.0, metadata={"help": "minimum KL per latent dim in nats (0 = off)"})
    tc_beta: float = field(default=0.0, metadata={"help": "beta-TCVAE: weight of the total correlation of q(z), "
                                                         "estimated on each batch (0 = off; e.g. 6)"})
    binarize: Literal["auto", "dynamic", "none"] = field(
        default="auto", metadata={"help": "dynamic: resample binary pixels each time; auto: dynamic for mnist "
                                          "(and for near-binary data of your own with a bernoulli likelihood)"}
    )
    val_size: int = field(default=-1, metadata={"help": "training images held out for validation (-1: 10 % "
                                                        "of the training split, at most 5000)"})
    train_size: int = field(default=0, metadata={"help": "use only the first N training images (0 = all)"})
    seed: int = field(default=0, metadata={"help": "seed for init, batch order, binarization and z samples"})
    device: str = field(default="auto", metadata={"help": "auto (cuda if available), cpu, cuda, cuda:N"})
    save_every: int = field(default=0, metadata={"help": "also save resume state every N steps (0 = per epoch)"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0 = torch default)"})
    resume: bool = field(
        default=False, metadata={"help": "continue the run saved in --out (--epochs may differ: the lr schedule follows)"}
    )
    labels_per_class: int = field(default=0, metadata={
        "help": "semi-supervised (M2): keep the labels of N training images per class, a seeded draw recorded in "
                "metrics.json; every other training image is used without its label (0 = off)"})
    class_weight: float = field(default=10.0, metadata={
        "help": "semi-supervised: weight of the labelled images' -log q(y|x) (Kingma et al. 2014's alpha)"})
    weights_dtype: Literal["float32", "float16"] = field(
        default="float32", metadata={"help": "dtype of model.safetensors (float16 halves the file; resume state stays float32)"}
    )

    def __post_init__(self) -> None:
        check_spec(self.dataset)
        checks = {
            "epochs": self.epochs >= 1, "max_steps": self.max_steps >= 0, "batch_size": self.batch_size >= 1, "lr": self.lr > 0,
            "lr_final_ratio": 0 < self.lr_final_ratio <= 1, "beta": self.beta >= 0,
            "kl_warmup_steps": self.kl_warmup_steps >= 0, "free_bits": self.free_bits >= 0, "tc_beta": self.tc_beta >= 0,
            "val_size": self.val_size >= -1, "train_size": self.train_size >= 0,
            "save_every": self.save_every >= 0, "threads": self.threads >= 0,
            "labels_per_class": self.labels_per_class >= 0, "class_weight": self.class_weight >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"--{name.replace('_', '-')} has an invalid value: {getattr(self, name)}")

    @property
    def dynamic_binarization(self) -> bool:
        return self.binarize == "dynamic" or (self.binarize == "auto" and self.dataset == "mnist")


def labelled_subset(labels: Tensor, per_class: int, seed: int) -> Tensor:
    """Indices (sorted) of `per_class` images of every class, drawn without replacement, seeded: the same draw for
    the same labels and seed. Refused when a class has fewer images."""
    import numpy as np

    y = labels.cpu().numpy()
    rng = np.random.default_rng([seed, 24])
    picked = []
    for c in np.unique(y):
        where = np.flatnonzero(y == c)
        if len(where) < per_class:
            raise ValueError(f"--labels-per-class {per_class}: class {c} has only {len(where)} training images")
        picked.append(rng.choice(where, per_class, replace=False))
    return torch.from_numpy(np.sort(np.concatenate(picked)))


def default_val_size(n_images: int) -> int:
    """Validation images held out of a training split of n_images: 10 %, at least 1, at most 5,000 (MNIST's 60,000
    give 5,000; a folder of 600 gives 60)."""
    return min(5000, max(1, n_images // 10)) if n_images > 1 else 0


class TrainingDiverged(RuntimeError):
    """The loss stopped being finite."""


@dataclass
class StepInfo:
    """What train() passes to its `on_step` hook after every optimizer step: the step count (1-based), the run's
    length in steps, the model being trained (unwrapped from DDP) and this step's loss terms (0-d tensors,
    detached; reading one is a host sync, so a hook reads them only when it reports)."""

    step: int
    total_steps: int
    model: Autoencoder
    terms: dict[str, Tensor]
    beta: float


class EpochLosses:
    """One epoch's loss terms: kept on the device at each step, moved to the host in one go by flush().

    Replaces an isfinite() test and three .item() calls per step, each a host sync (on a GPU, the CPU
    would wait for every step to finish before it could queue the next).
    """

    NAMES = ("loss", "recon", "kl")

    def __init__(self, names: tuple[str, ...] = NAMES) -> None:
        self.names = names
        self.sums, self.count = dict.fromkeys(names, 0.0), 0
        self._steps: list[int] = []
        self._pending: list[Tensor] = []  # one (3,) tensor per step since the last flush

    def add(self, step: int, terms: dict[str, Tensor]) -> None:
        self._steps.append(step)
        self._pending.append(torch.stack([terms[k].detach() for k in self.names]))

    def flush(self) -> tuple[int, float] | None:
        """Add the pending steps to the sums; (step, loss) of the first non-finite loss among them, if any."""
        if not self._pending:
            return None
        rows = torch.stack(self._pending).double().cpu()  # (steps, 3): the one host sync
        steps, self._steps, self._pending = self._steps, [], []
        bad = (~rows[:, 0].isfinite()).nonzero()
        if len(bad):
            i = bad[0].item()
            return steps[i], rows[i, 0].item()
        for k, v in zip(self.names, rows.sum(0).tolist()):
            self.sums[k] += v
        self.count += len(rows)
        return None

    def means(self) -> dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}


class _LossModule(nn.Module):
    """Routes Autoencoder.loss through forward() so a DDP wrapper syncs its gradients."""

    def __init__(self, model: Autoencoder, tc_beta: float = 0.0, dataset_size: int = 0):
        super().__init__()
        self.model, self.tc_beta, self.dataset_size = model, tc_beta, dataset_size

    def forward(self, x: Tensor, beta: float, free_bits: float, generator: torch.Generator,
                labels: Tensor | None = None, x_unlabelled: Tensor | None = None,
                class_weight: float = 0.0) -> dict[str, Tensor]:
        if x_unlabelled is not None:  # M2: x and labels are the labelled batch
            return self.model.semi_supervised_loss(x, labels, x_unlabelled, class_weight=class_weight, beta=beta,
                                                   generator=generator)
        return self.model.loss(x, beta=beta, free_bits=free_bits, generator=generator, labels=labels,
                               tc_beta=self.tc_beta, dataset_size=self.dataset_size)


@dataclass
class Data:
    """Training and validation images (uint8 (N, H, W) or float (N, 1, H, W)) and their class labels ((N,) int64;
    a conditional model needs them, the others ignore them), on the device."""

    train: Tensor
    val: Tensor
    train_labels: Tensor | None = None
    val_labels: Tensor | None = None
    train_std: Tensor | None = None  # float like train: each batch becomes train + train_std * N(0, 1), drawn anew
    # (M1+M2 reads z ~ q(z|x) of the M1 model rather than its mean, as Kingma et al. 2014 do)

    def to(self, device: torch.device) -> "Data":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Data(move(self.train), move(self.val), move(self.train_labels), move(self.val_labels),
                    move(self.train_std))

    def draw(self, idx: Tensor, x: Tensor, gen: torch.Generator) -> Tensor:
        """The batch x of rows idx, with its noise when train_std is set."""
        if self.train_std is None:
            return x
        std = self.train_std.index_select(0, idx)
        return x + std * torch.randn(std.shape, generator=gen, device=std.device, dtype=std.dtype)


# ---- helpers --------------------------------------------------------------------------------
def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    if cfg.lr_schedule == "constant" or total <= 1:
        return cfg.lr
    t = min(step / (total - 1), 1.0)
    low = cfg.lr * cfg.lr_final_ratio
    return low + 0.5 * (cfg.lr - low) * (1 + math.cos(math.pi * t))


def beta_at(step: int, cfg: TrainConfig) -> float:
    """Linear KL warm-up (Bowman et al. 2016; Sønderby et al. 2016)."""
    if cfg.kl_warmup_steps == 0:
        return cfg.beta
    return cfg.beta * min(1.0, (step + 1) / cfg.kl_warmup_steps)


def epoch_order(n: int, batch_size: int, seed: int, epoch: int) -> list[Tensor]:
    """The batches of one epoch: a permutation that depends only on (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return list(torch.randperm(n, generator=g).split(batch_size))


def load_data(cfg: TrainConfig, device: torch.device, model_cfg: ModelConfig | None = None) -> Data:
    size, channels = (model_cfg.image_size, model_cfg.image_channels) if model_cfg else (0, 0)
    images, labels = load_split(cfg.dataset, cfg.data_root, train=True, image_size=size, channels=channels)
    shape = (images.shape[1], images.shape[3] if images.ndim == 4 else 1)
    if model_cfg is not None and shape != (model_cfg.image_size, model_cfg.image_channels):
        raise ValueError(f"{cfg.dataset} has {shape[0]}x{shape[0]} images with {shape[1]} channel(s); the model "
                         f"config says {model_cfg.image_size}x{model_cfg.image_size} with {model_cfg.image_channels}")
    n_val = cfg.val_size if cfg.val_size >= 0 else default_val_size(len(images))
    if cfg.train_size:
        images, labels = images[: cfg.train_size + n_val], labels[: cfg.train_size + n_val]
    if n_val >= len(images):
        raise ValueError(f"--val-size {n_val} leaves no training images (dataset has {len(images)})")
    return Data(images[n_val:], images[:n_val], labels[n_val:], labels[:n_val]).to(device)


@torch.no_grad()
def validate(model: Autoencoder, images: Tensor, cfg: TrainConfig, device: torch.device,
             labels: Tensor | None = None) -> dict[str, float]:
    """Negative ELBO (beta = 1) on the held-out split, with a fixed seed so epochs compare."""
    if len(images) == 0:
        return {}
    model.eval()
    g = torch.Generator(device=device).manual_seed(10_000 + cfg.seed)
    sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
    for idx in torch.arange(len(images), device=device).split(1000):
        x = prepare_batch(images[idx], cfg.dynamic_binarization, g)
        terms = model.loss(x, beta=1.0, generator=g, labels=None if labels is None else labels[idx])
        for k in ("loss", "recon", "kl"):
            sums[k] += terms[k].item() * len(idx)
        if model.config.semi_supervised:  # q(y|x) against the held-out labels (a figure to watch, not to select by)
            sums["class_error"] = sums.get("class_error", 0.0) + float((model.classify(x).argmax(1) != labels[idx]).sum())
    model.train()
    return {f"val_{k}": v / len(images) for k, v in sums.items()}


def provenance(cfg: TrainConfig, model_cfg: ModelConfig, seconds: float, device: torch.device, history: list,
               from_disk: bool = True) -> dict:
    import numpy
    import safetensors
    import torchvision

    return {
        "model_config": dataclasses.asdict(model_cfg),
        "train_config": dataclasses.asdict(cfg),
        "seed": cfg.seed,
        "dataset": cfg.dataset,
        "dataset_info": dataset_info(cfg.dataset, model_cfg.image_size, model_cfg.image_channels) if from_disk else {},
        # Data passed to train() in memory has no files: hashing whatever lies in --data-root would mislead.
        "dataset_files_sha256": raw_file_hashes(cfg.dataset, cfg.data_root) if from_disk else {},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "numpy": numpy.__version__,
                     "safetensors": safetensors.__version__},
        "device": str(device),
        "train_seconds": round(seconds, 1),
        "history": history,
    }


# ---- resume state: one safetensors file, JSON in its metadata, no pickle -----------------------
def save_state(path: Path, model: nn.Module, opt: torch.optim.Optimizer, rng_states: list[Tensor], meta: dict) -> None:
    tensors = {f"model.{k}": v for k, v in unwrap(model).state_dict().items()}
    opt_sd = opt.state_dict()
    for idx, state in opt_sd["state"].items():
        for k, v in state.items():
            tensors[f"optim.{idx}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    tensors["rng"] = rng_states[0]  # rank 0's (the only one without torchrun)
    tensors.update({f"rng.rank{r}": state for r, state in enumerate(rng_states) if r})
    meta = dict(meta, param_groups=opt_sd["param_groups"], world_size=len(rng_states))
    atomic_save_tensors(path, tensors, metadata={"json": json.dumps(meta)})


def load_state(path: Path, model: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
               cfg: TrainConfig, model_cfg: ModelConfig, rank: int = 0) -> dict:
    """Restore the run saved at `path`, after checking it was saved with the same settings.

    Each torchrun rank restores its own RNG. A rank the saved run did not have (it ran with fewer
    processes) gets a fresh seed of its own, so no two ranks ever draw the same noise.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["json"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise CheckpointError(f"{path} is corrupt ({type(e).__name__}); delete it and train without --resume") from None
    _check_same_run(meta, cfg, model_cfg, path)  # before loading weights of what may be another architecture
    unwrap(model).load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, name = k.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta.pop("param_groups")})
    key = f"rng.rank{rank}" if rank else "rng"
    if key in tensors:
        gen.set_state(tensors[key])
    else:
        gen.manual_seed(cfg.seed + 7919 * rank + 104729 * (meta["step"] + 1))
    return meta


# ---- the loop ---------------------------------------------------------------------------------
def train(cfg: TrainConfig, model_cfg: ModelConfig, data: Data | None = None, progress: bool = True,
          on_step=None) -> tuple[Autoencoder, list]:
    """Train (or resume) and write the checkpoint folder cfg.out; returns (model, history). `on_step(StepInfo)` is
    called after every optimizer step (training.explore's progress bar over a whole job, the app's Playground view);
    an exception it raises ends the run there, with no save."""
    if cfg.tc_beta and (not model_cfg.is_variational or model_cfg.flow != "none" or cfg.free_bits):
        raise ValueError("--tc-beta (beta-TCVAE) needs --bottleneck vae with no flow and --free-bits 0")
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = pick_device(cfg.device)
    if world > 1:  # launched by torchrun: one process per GPU (or per CPU slot with gloo)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    from_disk = data is None
    data = (data or load_data(cfg, device, model_cfg)).to(device)
    if model_cfg.conditional and (data.train_labels is None or (len(data.val) and data.val_labels is None)):
        raise ValueError("a conditional model needs the class labels of the training and validation images")
    if model_cfg.semi_supervised != bool(cfg.labels_per_class):
        raise ValueError("--labels-per-class N and --semi-supervised true go together: an M2 model trains on N "
                         "labelled images per class and the rest unlabelled")
    labelled = unlabelled = None
    if model_cfg.semi_supervised:  # the labelled few, and every other training image without its label
        labelled = labelled_subset(data.train_labels, cfg.labels_per_class, cfg.seed).to(device)
        keep = torch.ones(len(data.train), dtype=torch.bool, device=device)
        keep[labelled] = False
        unlabelled = keep.nonzero().squeeze(1)

    torch.manual_seed(cfg.seed)  # parameter init
    model = Autoencoder(model_cfg).to(device)
    # fused: one kernel for all parameters instead of about ten small ops per parameter (on CPU the default
    # took ~15% of a step of the 784-400-20 MLP VAE, fused ~6%). Same update up to float rounding.
    fused = True if device.type in ("cpu", "cuda") else None
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=fused)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 7919 * rank)
    step, start_epoch, start_batch, history, elapsed = 0, 0, 0, [], 0.0
    if cfg.resume:
        path = out / RESUME_NAME
        if not path.is_file():
            raise CheckpointError(f"--resume: no saved state at {path}; start the run without --resume")
        meta = load_state(path, model, opt, gen, cfg, model_cfg, rank)
        step, start_epoch, start_batch = meta["step"], meta["epoch"], meta["batch"]
        history, elapsed = meta["history"], meta["elapsed"]
    loss_module: nn.Module = _LossModule(model, cfg.tc_beta, len(data.train))
    if world > 1:
        loss_module = nn.parallel.DistributedDataParallel(loss_module)

    n = len(data.train) if unlabelled is None else len(unlabelled)  # an M2 epoch: one pass over the unlabelled
    # Under torchrun a last batch smaller than the world size would leave some rank an empty shard
    # (NaN loss, then a hung all-reduce): such a batch is dropped. One process: math.ceil(n / batch_size).
    batches_per_epoch = n // cfg.batch_size + (n % cfg.batch_size >= world)
    total_steps = cfg.epochs * batches_per_epoch
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    t0 = time.perf_counter() - elapsed
    kill_at_step = int(os.environ.get(KILL_AT_STEP_ENV, "0"))
    nan_rank, nan_step = (int(v) for v in os.environ.get(NAN_AT_STEP_ENV, "-1:-1").split(":"))

    def save(epoch: int, batch: int, final_model: bool) -> None:
        rng_states = [gen.get_state()]
        if world > 1:  # every rank's RNG goes into rank 0's file, so --resume restores each rank's own
            local = gen.get_state().to(device)
            rng_states = [torch.empty_like(local) for _ in range(world)]
            torch.distributed.all_gather(rng_states, local)
            rng_states = [state.cpu() for state in rng_states]
        if rank != 0:
            return
        meta = {"step": step, "epoch": epoch, "batch": batch, "history": history,
                "elapsed": time.perf_counter() - t0, "train_config": dataclasses.asdict(cfg),
                "model_config": dataclasses.asdict(model_cfg)}
        if final_model:  # weights first, then the state that points past them
            record = provenance(cfg, model_cfg, time.perf_counter() - t0, device, history, from_disk)
            if labelled is not None:  # positions in the training images after the validation split is held out
                record["labelled_indices"] = labelled.cpu().tolist()
                record["labelled_indices_note"] = (f"{cfg.labels_per_class} per class, training.train.labelled_subset"
                                                   f"(labels, {cfg.labels_per_class}, seed={cfg.seed}), positions "
                                                   "in the training split after its first val_size images")
            save_pretrained(model, out, dtype=getattr(torch, cfg.weights_dtype), metrics=record)
        save_state(out / RESUME_NAME, model, opt, rng_states, meta)

    def check(losses: EpochLosses, epoch: int) -> None:
        """Stop on a non-finite loss; called before every save, so a saved checkpoint never follows one.

        Under torchrun every rank stops at the same check: a NaN on one rank reaches the others' weights
        through the gradient all-reduce while their own losses so far look fine, so rank 0 would save
        those weights, and a rank that stopped alone would leave the others waiting in the next all-reduce.
        """
        bad = losses.flush()
        if world > 1:
            flag = torch.tensor([0.0 if bad is None else 1.0], device=device)
            torch.distributed.all_reduce(flag)
            if flag.item() and bad is None:
                bad = (f"{step - 1} or earlier", "non-finite on another rank")
        if bad is not None:
            raise TrainingDiverged(
                f"loss became {bad[1]} at step {bad[0]} (epoch {epoch + 1}); stopped. "
                f"The last good checkpoint in {out} is kept. Try a lower --lr or check the data."
            )

    from tqdm.auto import tqdm

    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        if step >= total_steps:
            break
        batches = epoch_order(n, cfg.batch_size, cfg.seed, epoch)[:batches_per_epoch]
        losses = EpochLosses(EpochLosses.NAMES + (("class_loss", "class_error") if labelled is not None else ()))
        bar = tqdm(range(start_batch, len(batches)), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not progress or rank != 0, leave=False, file=sys.stderr)
        for b in bar:
            idx = batches[b].to(device)
            idx = idx[rank::world]  # this rank's share of the global batch
            extra = {}
            if unlabelled is not None:  # M2: idx is into the unlabelled pool; a labelled batch drawn beside it
                rows = unlabelled.index_select(0, idx)
                x_u = data.train.index_select(0, rows)
                x_u = binarize_batch(x_u, gen) if cfg.dynamic_binarization else prepare_batch(x_u, False, None)
                x_u = data.draw(rows, x_u, gen)
                pick = torch.randint(len(labelled), (min(cfg.batch_size, len(labelled)),), generator=gen,
                                     device=device)
                idx = labelled.index_select(0, pick)
                extra = {"x_unlabelled": x_u, "class_weight": cfg.class_weight}
            # index_select: the same rows as data.train[idx], gathered ~15x faster on CPU (advanced indexing is generic)
            images = data.train.index_select(0, idx)
            labels = data.train_labels.index_select(0, idx) if model_cfg.conditional else None
            x = binarize_batch(images, gen) if cfg.dynamic_binarization else prepare_batch(images, False, None)
            x = data.draw(idx, x, gen)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total_steps, cfg)
            if rank == nan_rank and step == nan_step:  # test hook, see NAN_AT_STEP_ENV
                x = x * float("nan")
            beta = beta_at(step, cfg)
            terms = loss_module(x, beta, cfg.free_bits, gen, labels, **extra)
            losses.add(step, terms)  # checked for NaN/inf at the next check(): every 50 steps and before a save
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
            step += 1
            if on_step is not None:
                on_step(StepInfo(step, total_steps, unwrap(model), {k: v.detach() for k, v in terms.items()}, beta))
            last_batch = b + 1 == len(batches) or step >= total_steps
            save_now = cfg.save_every and step % cfg.save_every == 0 and not last_batch
            if step % 50 == 0 or save_now:
                check(losses, epoch)
                bar.set_postfix({k: f"{v:.2f}" for k, v in losses.means().items()})
            if save_now:
                save(epoch, b + 1, final_model=False)
            if step == kill_at_step:  # test hook, see KILL_AT_STEP_ENV
                os.kill(os.getpid(), signal.SIGKILL)
            if step >= total_steps:  # --max-steps: the run ends mid-epoch; the record below is the partial epoch's
                break
        start_batch = 0
        check(losses, epoch)
        record = {"epoch": epoch + 1, "step": step, "lr": lr_at(step - 1, total_steps, cfg),
                  **{f"train_{k}": v for k, v in losses.means().items()},
                  **validate(unwrap(model), data.val, cfg, device, data.val_labels if model_cfg.conditional else None),
                  "seconds": round(time.perf_counter() - t0, 1)}
        history.append(record)
        if rank == 0:
            print(json.dumps(record), flush=True)
        save(epoch + 1, 0, final_model=True)
    if world > 1:
        # every rank waits here for rank 0's save: a rank that tore its group down while another still held it
        # aborted now and then in gloo ("terminate called without an active exception", SIGABRT)
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return model.eval(), history


def _check_same_run(meta: dict, cfg: TrainConfig, model_cfg: ModelConfig, path: Path) -> None:
    # epochs may change (extend or shorten a run); the others define the run.
    ignore = {"resume", "device", "threads", "data_root", "epochs", "weights_dtype"}
    saved = {k: v for k, v in meta["train_config"].items() if k not in ignore}
    now = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ignore}
    diff = sorted(k for k in now if k in saved and saved[k] != now[k])
    # from_dict: a state saved before a ModelConfig field existed compares with that field's default.
    if ModelConfig.from_dict(meta["model_config"]) != model_cfg:
        diff.append("model config")
    if diff:
        raise CheckpointError(f"--resume: {path} was saved with different settings ({', '.join(diff)}); pass the same flags")


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, ModelConfig]:
    parser = OneLineParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    add_dataclass_flags(parser, TrainConfig)
    add_dataclass_flags(parser, ModelConfig)
    auto_data_flags(parser)
    args = parser.parse_args(argv)
    try:
        args = resolve_data_flags(args)
        return build_dataclass(TrainConfig, args), build_dataclass(ModelConfig, args)
    except DataError as e:
        fail(parser.prog, str(e))
    except ValueError as e:
        parser.error(str(e))


def auto_data_flags(parser) -> None:
    """--image-size / --image-channels default to 0 and --likelihood to auto: read from the data."""
    for action in parser._actions:
        if action.dest == "likelihood":
            action.choices = ("auto", *action.choices)
            action.help = action.help.split(" (default")[0] + "; auto: bernoulli for near-binary data (MNIST), " \
                                                               "else gaussian (default: auto)"
        if action.dest in ("image_size", "image_channels"):
            action.help = action.help.split(" (default")[0] + " (default: 0 = from the data)"
    parser.set_defaults(image_size=0, image_channels=0, likelihood="auto")


def resolve_data_flags(args, say=print):
    """Fill the automatic data flags from the dataset: the size and channels of its images, the likelihood
    (Bernoulli for near-binary pixels, as MNIST's; a Gaussian with fixed std for photos and grey levels, whose
    Bernoulli log-likelihood would reward blur) and the binarization. Says what it chose."""
    name = check_spec(args.dataset)
    if name in ("mnist", "fashion-mnist"):
        if args.image_size not in (0, 28) or args.image_channels not in (0, 1):
            raise ValueError(f"{name} images are 28x28 grayscale: leave out --image-size / --image-channels")
        args.image_size, args.image_channels = 28, 1
        if args.likelihood == "auto":
            args.likelihood = "bernoulli"  # the shipped models' choice for both datasets
        return args
    info = dataset_info(name, args.image_size, args.image_channels)
    args.image_size, args.image_channels = info["image_size"], info["image_channels"]
    binary = sources.near_binary(load_split(name, args.data_root, True, args.image_size, args.image_channels)[0].numpy())
    if args.likelihood == "auto":
        args.likelihood = "bernoulli" if binary else "gaussian"
        why = "near-binary pixels" if binary else "grey levels or colour, not near-binary"
        say(f"likelihood: auto chose {args.likelihood} ({why})")
    if args.binarize == "auto":
        args.binarize = "dynamic" if binary and args.likelihood == "bernoulli" else "none"
    for note in info["notes"]:
        say(f"data: {note}")
    say(f"data: {name}: {info['image_size']}x{info['image_size']}, {info['image_channels']} channel(s), "
        f"{len(info['class_names'])} class(es){'' if info['labelled'] else ' (no labels)'}")
    return args


def main(argv: list[str] | None = None) -> None:
    cfg, model_cfg = parse_args(argv)
    prog = "python -m training.train"
    try:
        _, history = train(cfg, model_cfg, progress=sys.stderr.isatty())
    except (DataError, CheckpointError, TrainingDiverged, ValueError) as e:
        fail(prog, str(e))
    except KeyboardInterrupt:
        fail(prog, f"interrupted; continue with the same flags plus --resume (state in {cfg.out})", 130)
    last = history[-1] if history else {}
    if int(os.environ.get("RANK", 0)) == 0:  # torchrun: one line, not one per process
        print(f"saved {cfg.out} ({len(history)} epochs, val_loss {last.get('val_loss', float('nan')):.2f})")


if __name__ == "__main__":
    main()
