"""Checkpoint folders: config.json + model.safetensors (+ metrics.json). No pickle anywhere.

Writes are atomic (temporary file in the same folder, fsync, rename), so a killed process
leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import ModelConfig

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
METRICS_NAME = "metrics.json"
REGENERATE_HINT = "regenerate it with `make checkpoints` (or `python -m training.train --help` for one model)"


class CheckpointError(RuntimeError):
    """A checkpoint folder that is missing, incomplete, corrupt or does not match its config."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call write(tmp_path), then rename tmp_path over `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp (and safetensors) make 0600 files; use the usual mode
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_save_tensors(path: str | os.PathLike, tensors: dict, metadata: dict | None = None) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DDP (`.module`) and torch.compile (`._orig_mod`) wrappers."""
    while True:
        if hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def save_pretrained(
    model: torch.nn.Module, directory: str | os.PathLike, metrics: dict | None = None, dtype: torch.dtype | None = None
) -> None:
    """Write config.json + model.safetensors (+ metrics.json); `dtype` (e.g. float16) casts the stored
    weights to keep files small; from_pretrained casts them back to the model's float32."""
    model = unwrap(model)
    directory = Path(directory)
    state = model.state_dict()
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    atomic_save_tensors(directory / WEIGHTS_NAME, state)
    atomic_write_text(directory / CONFIG_NAME, model.config.to_json() + "\n")
    if metrics is not None:
        write_metrics(directory, metrics)


def write_metrics(directory: str | os.PathLike, metrics: dict) -> None:
    atomic_write_text(Path(directory) / METRICS_NAME, json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def read_config(directory: str | os.PathLike, config_class=ModelConfig):
    path = Path(directory) / CONFIG_NAME
    if not Path(directory).is_dir():
        raise CheckpointError(f"checkpoint folder {directory} does not exist; {REGENERATE_HINT}")
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; {REGENERATE_HINT}")
    try:
        return config_class.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path} is not a valid model config ({e}); {REGENERATE_HINT}") from None


def load_pretrained(cls, directory: str | os.PathLike, device: str | torch.device = "cpu", config_class=ModelConfig):
    """Strict load: every weight present, every shape matching the config, or CheckpointError."""
    config = read_config(directory, config_class)
    path = Path(directory) / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; {REGENERATE_HINT}")
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is corrupt or truncated ({e}); {REGENERATE_HINT}") from None
    with torch.device("meta"):  # no random init of weights we are about to replace (faster app start-up)
        model = cls(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = [f"missing {missing[:3]}" if missing else "", f"unexpected {unexpected[:3]}" if unexpected else "",
                 f"wrong shape {wrong[:3]}" if wrong else ""]
        detail = "; ".join(p for p in parts if p)
        raise CheckpointError(f"{path} does not match {Path(directory) / CONFIG_NAME} ({detail}); {REGENERATE_HINT}")
    # float16-stored weights come back as the model's float32; assign=True adopts the loaded tensors.
    state = {k: v.to(expected[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device).eval()


def read_metrics(directory: str | os.PathLike) -> dict:
    path = Path(directory) / METRICS_NAME
    return json.loads(path.read_text()) if path.is_file() else {}
