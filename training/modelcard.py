"""Model cards: `python -m training.modelcard CHECKPOINT_DIR...` writes README.md into each model folder.

A Hugging Face model card (huggingface_hub's ModelCard and ModelCardData: YAML metadata with library, tags,
dataset, metrics and a model-index of the evaluator's figures; then what the model is, how it was trained and its
figures), generated from config.json and metrics.json only, so a folder can be pushed to the Hub as it stands.
training.evaluate and training.explore write it after every evaluation; a folder given here that holds models
(a dataset folder, or the checkpoint root) gets a card in every model folder below it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from training.cli import OneLineParser, fail

CARD_NAME = "README.md"
TEMPLATE = """---
{{ card_data }}
---

# {{ title }}

{{ summary }}

{{ description }}

## How it was trained

{{ training }}

## Figures

{{ figures }}

## Use

```python
from models import Autoencoder  # Latent Explorer's models/ package
model = Autoencoder.from_pretrained("{{ folder }}")
posterior = model.encode(x)      # x: (B, {{ channels }}, {{ size }}, {{ size }}) in [0, 1]
images = model.decode_image(posterior.mean)
```

Files: `config.json` (the architecture), `model.safetensors` (the weights; no pickle), `metrics.json` (training
history, provenance and the evaluator's figures). Made with Latent Explorer's training CLI.
"""


def card(folder: Path) -> str:
    """The README.md text of one model folder (config.json + metrics.json)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    config = json.loads((folder / "config.json").read_text())
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        metrics = {}
    info = metrics.get("dataset_info") or {}
    dataset_id = str(info.get("name") or metrics.get("dataset") or folder.parent.name)  # mnist, fashion-mnist, a folder's name
    dataset = info.get("title") or {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}.get(dataset_id, dataset_id)
    vae = config.get("bottleneck") == "vae"
    kind = ("class-conditional VAE" if config.get("conditional") else "VAE") if vae else "deterministic autoencoder"
    title = config.get("title") or folder.name.upper()
    ev = metrics.get("eval", {})
    results, rows = [], []
    figures = [("mse_per_pixel", "reconstruction MSE per pixel", "mse"),
               ("pca_mse_per_pixel", "PCA of the same dimension, MSE per pixel", "mse"),
               ("neg_elbo", "negative ELBO (nats per image)", "neg_elbo"),
               ("kl", "KL(q(z|x) ‖ p(z)), the ELBO's term (nats per image)", "kl"),
               ("is_nll", f"importance-sampled NLL, k = {ev.get('is_k')} (nats per image)", "nll"),
               ("active_units", "active units", "active_units")]
    for key, label, metric_type in figures:
        if key in ev and ev[key] is not None and (vae or key != "kl"):  # an AE's KL is 0 by definition
            rows.append(f"| {label} | {ev[key]:.4g} |")
            results.append(EvalResult(task_type="image-to-image", task_name="reconstruction", dataset_type=dataset_id,
                                      dataset_name=str(dataset), dataset_split="test", metric_type=metric_type,
                                      metric_name=label, metric_value=float(ev[key])))
    data = ModelCardData(library_name="pytorch", tags=["autoencoder", "vae" if vae else "ae", "latent-explorer",
                                                      *(["cvae"] if config.get("conditional") else [])],
                         datasets=[dataset_id], metrics=sorted({r.metric_type for r in results}) or None,
                         model_name=title, eval_results=results or None)
    tc = metrics.get("train_config", {})
    history = metrics.get("history", [])
    training = (f"{len(history)} epochs of `python -m training.train` (batch {tc.get('batch_size')}, Adam "
                f"lr {tc.get('lr')}, {tc.get('lr_schedule', 'cosine')} schedule, β {tc.get('beta', 1)}, KL warm-up "
                f"{tc.get('kl_warmup_steps', 0)} steps, seed {tc.get('seed')}) on {dataset}, "
                f"{metrics.get('train_seconds', '?')} s on {metrics.get('device', '?')}."
                + (" The run stopped early: " + str(metrics["stopped_early"]).rstrip(".") + "."
                   if metrics.get("stopped_early") else "")
                if tc else "No training record (metrics.json has none).")
    if history:
        last = history[-1]
        training += f" Last epoch: validation loss {last.get('val_loss', float('nan')):.2f} nats per image."
    summary = (f"A {config.get('latent_dim')}-D {kind} ({config.get('family')} encoder and decoder, "
               f"{config.get('likelihood')} likelihood, {config.get('prior', 'standard')} prior"
               + (f", {config.get('flow_steps')}-step IAF posterior" if config.get("flow") == "iaf" else "")
               + f") for {config.get('image_size')}x{config.get('image_size')} "
               + ("grayscale" if config.get("image_channels") == 1 else "RGB") + f" images of {dataset}.")
    table = ("| figure (test split) | value |\n|---|---|\n" + "\n".join(rows)) if rows else \
        "Not evaluated yet: `python -m training.evaluate FOLDER`."
    return str(ModelCard.from_template(data, template_str=TEMPLATE, title=title, summary=summary,
                                       description=config.get("description", ""), training=training,
                                       figures=table, folder=folder.as_posix(), channels=config.get("image_channels"),
                                       size=config.get("image_size")))


def write_card(folder: Path) -> Path:
    from models.checkpoint import atomic_write

    path = Path(folder) / CARD_NAME
    text = card(Path(folder))
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path


def model_folders(path: Path) -> list[Path]:
    """The folder itself if it is a model folder, else every model folder below it (classifiers left out)."""
    path = Path(path)
    found = [p.parent for p in sorted(path.rglob("config.json")) if (p.parent / "model.safetensors").is_file()]
    out = []
    for f in found:
        try:
            if json.loads((f / "config.json").read_text()).get("kind") == "classifier":
                continue
        except (OSError, ValueError):
            continue
        out.append(f)
    return out


def main(argv: list[str] | None = None) -> None:
    p = OneLineParser(prog="python -m training.modelcard", description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="+", help="model folders, dataset folders or the checkpoint root")
    args = p.parse_args(argv)
    folders = [f for path in args.paths for f in model_folders(Path(path))]
    if not folders:
        fail(p.prog, f"no model folder (config.json + model.safetensors) in {', '.join(args.paths)}")
    for f in folders:
        print(write_card(f))


if __name__ == "__main__":
    main(sys.argv[1:])
