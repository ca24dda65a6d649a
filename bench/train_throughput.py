"""Training throughput: our loop (training.train.train) vs a pytorch/examples vae/main.py-style loop.

    python bench/train_throughput.py [--data-root ./data] [--steps 300] [--rounds 3] [--threads 0] [--device auto]

Both train an MLP VAE with batch 128, Adam 1e-3, on MNIST, in one process on the same machine:
  ours       training.train.train(): uint8 data on the device, batches gathered by indexing, dynamic
             binarization, fused Adam, our mlp family with hidden_layers=1, hidden_dim=400, latent_dim=20,
             activation=relu: 784-400-(2x20) / 20-400-784 with ReLU, the reference's network exactly (same
             matmul FLOPs per example). Differences that cost next to nothing: BCE on logits, the loss
             averaged over the batch instead of summed; loss terms synced to the host every 50 steps.
  reference  pytorch/examples vae/main.py: torchvision MNIST + transforms.ToTensor + DataLoader
             (shuffle, batch 128), its VAE 784-400-(2x20) / 20-400-784 (ReLU), BCE(sum) + KL, .item()
             per step like the example.
Timed by wall clock and by process CPU time (all threads), in --rounds rounds of (ours, reference)
back to back: this shared machine's speed drifts by +-20% over seconds, so each round's ratio compares
neighbours and the medians are the figures to quote. Also prints our loop's achieved matmul FLOP/s as
a fraction of a 4096x4096 fp32 torch.mm measured in the same run, and the ceiling for any loop at
batch 128: the step's own eleven matrix products alone, back to back, as the same fraction. FLOPs counted analytically for the Linear layers only (per example, per step):
  forward 2*in*out, backward 2*in*out (weight grad) + 2*in*out (input grad, skipped for the first
  encoder layer, whose input needs no grad). Elementwise ops, the loss and Adam are not counted.
If MNIST is not under --data-root, synthetic idx files (random images) are written to a temp dir.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import struct
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import ModelConfig  # noqa: E402
from training.data import _writable_root, load_split  # noqa: E402
from training.train import Data, TrainConfig, train  # noqa: E402

BATCH = 128


# ---- the reference: pytorch/examples vae/main.py ----------------------------------------------------
class ReferenceVAE(nn.Module):
    """pytorch/examples vae/main.py's VAE: 784-400-20 (mu, logvar), 20-400-784."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def reference_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())  # Appendix B from VAE paper
    return bce + kld


def run_reference(data_root: Path, steps: int, warmup: int, device: torch.device) -> tuple[float, float]:
    """(images per wall second, per CPU second) of the example's loop over `steps` batches after `warmup`."""
    from torchvision import datasets, transforms

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        ds = datasets.MNIST(str(_writable_root("mnist", data_root)), train=True, download=True,
                            transform=transforms.ToTensor())
    kwargs = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, **kwargs)
    torch.manual_seed(0)
    model = ReferenceVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    train_loss, n, t0 = 0.0, 0, None
    while True:
        for i, (data, _) in enumerate(loader):
            if n == warmup:
                _sync(device)
                t0, c0 = time.perf_counter(), time.process_time()
            data = data.to(device)
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = reference_loss(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
            n += 1
            if n == warmup + steps:
                _sync(device)
                return steps * BATCH / (time.perf_counter() - t0), steps * BATCH / (time.process_time() - c0)


# ---- ours --------------------------------------------------------------------------------------------
def our_config() -> ModelConfig:
    return ModelConfig(family="mlp", bottleneck="vae", latent_dim=20, hidden_dim=400, hidden_layers=1, activation="relu")


def run_ours(images: torch.Tensor, steps: int, warmup: int, device: torch.device, out: Path) -> tuple[float, float]:
    """(images per wall second, per CPU second) of training.train.train's steady state.

    train() always ends an epoch with a checkpoint save; to time only the loop, it runs twice, one
    epoch of `warmup` steps and one of `warmup + steps` steps, and the rate is steps*128 / difference.
    """
    def one_run(n_steps: int) -> tuple[float, float]:
        cfg = TrainConfig(dataset="mnist", out=str(out), epochs=1, batch_size=BATCH, lr=1e-3, val_size=0,
                          lr_schedule="constant", device=str(device), seed=0)
        data = Data(train=images[: n_steps * BATCH].to(device), val=images[:0].to(device))
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):  # train() prints one JSON line per epoch
            train(cfg, our_config(), data=data, progress=False)
        _sync(device)
        return time.perf_counter() - t0, time.process_time() - c0

    one_run(max(warmup, 1))  # first call: allocator, kernels, imports
    wall_a, cpu_a = one_run(max(warmup, 1))
    wall_b, cpu_b = one_run(max(warmup, 1) + steps)
    return steps * BATCH / (wall_b - wall_a), steps * BATCH / (cpu_b - cpu_a)


def linear_flops_per_example(model: nn.Module, first: nn.Linear) -> int:
    """Matmul FLOPs of one training step per example: fwd 2*in*out, bwd 4*in*out (2*in*out for `first`)."""
    total = 0
    for m in model.modules():
        if isinstance(m, nn.Linear):
            mac = m.in_features * m.out_features
            total += 2 * mac + (2 * mac if m is first else 4 * mac)
    return total


def matmul_flops(device: torch.device, n: int = 4096, reps: int = 5) -> tuple[float, float]:
    """(FLOP per wall second, per CPU second) of an n x n fp32 torch.mm (2 n^3 per product), best of `reps`."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    torch.mm(a, b)
    best, best_cpu = float("inf"), float("inf")
    for _ in range(reps):
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        torch.mm(a, b)
        _sync(device)
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    return 2 * n**3 / best, 2 * n**3 / best_cpu


def step_matmul_flops(device: torch.device, reps: int = 200) -> tuple[float, float]:
    """(FLOP per wall second, per CPU second) of one 784-400-20 training step's matrix products alone:
    the 4 forward products and the 7 backward ones (weight grads, and input grads except the first
    layer's), with batch 128, back to back with nothing else. No loop at this batch size can beat it."""
    g = torch.Generator(device=device).manual_seed(0)

    def r(*shape):
        return torch.randn(shape, generator=g, device=device)

    layers = [(784, 400), (400, 40), (20, 400), (400, 784)]  # (in, out), as in ReferenceVAE
    w = [r(o, i) for i, o in layers]
    x_in = [r(BATCH, i) for i, _ in layers]
    g_out = [r(BATCH, o) for _, o in layers]
    products = [lambda k=k: x_in[k] @ w[k].t() for k in range(4)]  # forward
    products += [lambda k=k: g_out[k].t() @ x_in[k] for k in range(4)]  # weight grads
    products += [lambda k=k: g_out[k] @ w[k] for k in range(1, 4)]  # input grads (none for the data)
    flops = sum(2 * BATCH * i * o * (2 if k == 0 else 3) for k, (i, o) in enumerate(layers))
    for _ in range(20):
        for f in products:
            f()
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        for f in products:
            f()
    _sync(device)
    return flops * reps / (time.perf_counter() - t0), flops * reps / (time.process_time() - c0)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- data --------------------------------------------------------------------------------------------
def ensure_mnist(root: Path, tmp: Path) -> tuple[Path, bool]:
    """(root holding MNIST/raw, synthetic?): writes random 60k/10k idx files if MNIST is absent."""
    raw = root / "MNIST" / "raw"
    if all((raw / f).is_file() or (raw / (f + ".gz")).is_file()
           for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                     "t10k-labels-idx1-ubyte")):
        return root, False
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for prefix, n in (("train", 60000), ("t10k", 10000)):
        images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
        labels = torch.randint(0, 10, (n,), generator=g, dtype=torch.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x0803, n, 28, 28) + images.numpy().tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x0801, n) + labels.numpy().tobytes())
    return tmp, True


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", default="./data")
    p.add_argument("--steps", type=int, default=300, help="timed optimizer steps per loop (default 300)")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first (default 20)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of (ours, reference); medians are reported (default 3)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 1 or (args.steps + args.warmup) * BATCH > 60000:
        p.error("--steps and --warmup must be >= 1, with (steps + warmup) * 128 <= 60000 (one epoch)")
    if args.rounds < 1:
        p.error("--rounds must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)

    from models import Autoencoder

    ours_model, ref_model = Autoencoder(our_config()), ReferenceVAE()
    ours_flops = linear_flops_per_example(ours_model, ours_model.encoder.net[1])
    ref_flops = linear_flops_per_example(ref_model, ref_model.fc1)
    assert ours_flops == ref_flops, "ours must be the reference's 784-400-20 architecture"

    rounds = []  # (ours (wall, cpu), reference (wall, cpu), 4096^2 mm peak, step-matmul ceiling)
    with tempfile.TemporaryDirectory() as tmp:
        root, synthetic = ensure_mnist(Path(args.data_root), Path(tmp) / "data")
        images, _ = load_split("mnist", root, train=True)
        print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"batch {BATCH}, {args.steps} timed steps x {args.rounds} rounds, "
              f"data: {'SYNTHETIC random' if synthetic else root}")
        print(f"FLOPs per example (Linear matmuls, fwd+bwd): {ours_flops / 1e6:.2f} M for both (784-400-20)")
        for r in range(args.rounds):
            ours = run_ours(images, args.steps, args.warmup, device, Path(tmp) / "ckpt")
            ref = run_reference(root, args.steps, args.warmup, device)
            rounds.append((ours, ref, matmul_flops(device), step_matmul_flops(device)))
            print(f"round {r + 1}: ours {ours[0]:.0f} images/s, reference {ref[0]:.0f} images/s: "
                  f"{ours[0] / ref[0]:.2f}x; ours {ours[0] * ours_flops / rounds[-1][2][0]:.0%} of the 4096^2 mm")

    for label, j in (("per wall second", 0), ("per CPU second (all threads; robust to other load)", 1)):
        ours, ref = median([o[j] for o, _, _, _ in rounds]), median([f[j] for _, f, _, _ in rounds])
        ratio = median([o[j] / f[j] for o, f, _, _ in rounds])
        peak, ceiling = median([p[j] for _, _, p, _ in rounds]), median([c[j] for _, _, _, c in rounds])
        frac = median([o[j] * ours_flops / p[j] for o, _, p, _ in rounds])
        print(f"[{label}, medians of {args.rounds} rounds]")
        print(f"  ours {ours:.0f} images/s, reference {ref:.0f} images/s: {ratio:.2f}x (goal >= 3x)")
        print(f"  ours {ours * ours_flops / 1e9:.1f} GFLOP/s = {frac:.0%} of a 4096x4096 fp32 torch.mm "
              f"({peak / 1e9:.1f} GFLOP/s) (goal >= 60%)")
        print(f"  ceiling: the step's 11 matrix products alone reach {ceiling / 1e9:.1f} GFLOP/s = "
              f"{ceiling / peak:.0%} of it; ours is {ours * ours_flops / ceiling:.0%} of that ceiling")


if __name__ == "__main__":
    main()
