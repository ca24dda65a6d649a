"""The Disentanglement tab's computations: a latent traversal per model, the mutual information between latent
dimensions and known factors of variation, and the metric table (training/disentanglement.py's figures).

Numpy in, HTML and numbers out; no torch import (the views decode). A dataset without known factors (MNIST) still
gets the traversal; it has no heatmap and no metric, and says so.
"""
from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING

import numpy as np

from training import disentanglement as dm

from .images import InputError, upscale
from .service import SLOTS, as_input, as_label, pair

if TYPE_CHECKING:
    from .bundle import DatasetBundle, ModelView

SPAN = 3.0  # a row sweeps its dimension over +-SPAN standard deviations of the atlas codes
STEPS = 9
MEASURE = "python -m training.disentanglement"


def mutual_info(b: DatasetBundle, view: ModelView) -> tuple[np.ndarray | None, str]:
    """MI(z_d; factor k) in nats, (D, K), and where it comes from: the model's metrics.json block (10,000 points of
    the full factor grid, training.disentanglement) when it has one, else the metric code on the atlas codes and
    factors. (None, reason) for a dataset without factors."""
    if b.factors is None:
        return None, f"{b.title} has no known factors of variation, so no disentanglement metric applies."
    block = view.metrics.get("disentanglement") or {}
    m = block.get("mutual_info")
    if m is not None and np.shape(m) == (view.latent_dim, b.factors.shape[1]):
        points = block.get("protocol", {}).get("mig", {}).get("points", "?")
        return np.asarray(m, np.float64), f"{points} points of the factor grid (metrics.json)"
    return (dm.mutual_info_matrix(view.codes.astype(np.float64), b.factors),
            f"the {len(b.factors)} atlas images (no metrics.json block: run `{MEASURE}`)")


def traversal_codes(view: ModelView, z0: np.ndarray, steps: int, span: float) -> np.ndarray:
    """(D, steps, D): row d holds z0 with dimension d swept over z0_d + t * std_d, t from -span to +span, std_d the
    atlas codes' standard deviation; every other coordinate stays at z0's."""
    std = view.codes.std(0).astype(np.float64)
    t = np.linspace(-span, span, steps)
    d = view.latent_dim
    codes = np.repeat(np.repeat(np.asarray(z0, np.float64)[None, None], d, 0), steps, 1)  # (D, steps, D)
    for k in range(d):
        codes[k, :, k] = z0[k] + t * std[k]
    return codes


def _png(a: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _strip(images: np.ndarray, factor: int) -> np.ndarray:
    """(steps, H, W[, C]) in [0, 1] -> one uint8 row, a 1-pixel grey gap between images, upscaled."""
    gap = np.full((images.shape[1], 1, *images.shape[3:]), 0.35, np.float32)
    parts = [p for im in images for p in (im, gap)][:-1]
    return upscale(np.concatenate(parts, axis=1), factor)


def row_label(d: int, mi: np.ndarray | None, names: list[str]) -> tuple[str, str | None, float | None]:
    """('z3 · position_x · 1.21 nats', factor, MI) for latent dimension d: the factor it informs most."""
    if mi is None:
        return f"z{d}", None, None
    k = int(np.argmax(mi[d]))
    return f"z{d} · {names[k]} · {mi[d, k]:.2f} nats", names[k], float(mi[d, k])


def traversal(b: DatasetBundle, image, names=None, steps: int = STEPS, span: float = SPAN, label=None) -> dict:
    """Each model's traversal grid around the current input's code (one row per latent dimension, in the sliders'
    order), its mutual-information heatmap and the metric table."""
    try:
        steps, span = int(steps), float(span)
    except (TypeError, ValueError):
        raise InputError("steps must be a whole number and the span a number.") from None
    if not 3 <= steps <= 15:
        raise InputError(f"steps must be 3..15, got {steps}.")
    if not 0.5 <= span <= 5:
        raise InputError(f"the span must be 0.5..5 standard deviations, got {span}.")
    views = pair(b, names)
    img = as_input(image, b.format)
    factor = max(1, round(48 / b.format.size))
    out: dict = {"names": [v.name for v in views], "steps": steps, "span": span, "factor_names": b.factor_names}
    for slot, view in zip(SLOTS, views):
        y = as_label(view, label)
        z0 = view.encode(img[None], y)[0][0].astype(np.float64)
        codes = traversal_codes(view, z0, steps, span)
        d = view.latent_dim
        decoded = view.decode(codes.reshape(d * steps, d), None if y is None else np.full(d * steps, y))
        decoded = decoded.reshape(d, steps, *decoded.shape[1:])
        mi, source = mutual_info(b, view)
        rows = []
        for k in view.order:
            text, fac, value = row_label(int(k), mi, b.factor_names)
            rows.append({"dim": int(k), "label": text, "factor": fac, "mutual_info": value,
                         "image": _strip(decoded[k], factor)})
        out[slot] = {"z": z0.tolist(), "codes": codes.tolist(), "rows": rows, "std": view.codes.std(0).tolist(),
                     "mutual_info": None if mi is None else mi.tolist(), "mi_source": source,
                     "html": grid_html(view, rows, steps, span),
                     "heatmap": heatmap_html(view, mi, b.factor_names, source)}
    out["table"] = metric_table(b, views)
    return out


def grid_html(view: ModelView, rows: list[dict], steps: int, span: float) -> str:
    head = (f'<div class="tv-head">{html.escape(view.title)}: each row sweeps one latent dimension from '
            f'−{span:g}σ to +{span:g}σ of the atlas codes ({steps} steps) around the input\'s code</div>')
    body = "".join(f'<div class="tv-row" data-dim="{r["dim"]}"><span class="tv-label">{html.escape(r["label"])}</span>'
                   f'<img alt="traversal of z{r["dim"]}" src="{_png(r["image"])}"></div>' for r in rows)
    return f'<div class="traversal">{head}{body}</div>'


def heatmap_html(view: ModelView, mi: np.ndarray | None, names: list[str], source: str) -> str:
    """An SVG heatmap, latent dimensions (rows) x factors (columns), MI in nats written in each cell."""
    if mi is None:
        return f'<div class="mi-none">{html.escape(source)}</div>'
    d, k = mi.shape
    cw, ch, left, top = 74, 20, 40, 34
    top_value = max(float(mi.max()), 1e-9)
    parts = [f'<svg class="mi-map" viewBox="0 0 {left + k * cw + 4} {top + d * ch + 22}" '
             f'width="{left + k * cw + 4}" role="img" aria-label="mutual information of {html.escape(view.title)}">']
    for j, name in enumerate(names):
        parts.append(f'<text x="{left + j * cw + cw / 2}" y="{top - 8}" text-anchor="middle" font-size="11">'
                     f'{html.escape(name)}</text>')
    for i in range(d):
        parts.append(f'<text x="{left - 6}" y="{top + i * ch + 14}" text-anchor="end" font-size="11">z{i}</text>')
        for j in range(k):
            v = float(mi[i, j])
            shade = int(255 - 200 * v / top_value)
            ink = "#fff" if v / top_value > 0.55 else "#111"
            parts.append(f'<rect x="{left + j * cw}" y="{top + i * ch}" width="{cw - 1}" height="{ch - 1}" '
                         f'fill="rgb({shade},{shade},255)" data-dim="{i}" data-factor="{j}" data-mi="{v:.6f}"/>'
                         f'<text x="{left + j * cw + cw / 2}" y="{top + i * ch + 14}" text-anchor="middle" '
                         f'font-size="10" fill="{ink}">{v:.2f}</text>')
    parts.append(f'<text x="{left}" y="{top + d * ch + 16}" font-size="10">{html.escape(view.title)}: MI(z_d; factor) '
                 f'in nats, 20-bin histograms, from {html.escape(source)}</text></svg>')
    return "".join(parts)


def metric_table(b: DatasetBundle, views) -> str:
    """Markdown: the five metrics of each model (metrics.json's disentanglement block), with its reconstruction
    error and KL (the evaluator's), or why there is none."""
    if b.factors is None:
        return (f"{b.title} has no known factors of variation, so no disentanglement metric applies; the traversal "
                "still shows what each dimension does. dSprites (`--dataset dsprites`) has five known factors.")
    cols = list(dm.METRIC_NAMES)
    lines = ["| model | " + " | ".join(dm.METRIC_NAMES[c] for c in cols) + " | MSE / pixel | KL (nats) |",
             "|---" * (len(cols) + 3) + "|"]
    missing = []
    for view in views:
        block = view.metrics.get("disentanglement")
        ev = view.metrics.get("eval", {})
        mse = f"{ev['mse_per_pixel']:.4f}" if "mse_per_pixel" in ev else "–"
        kl = f"{ev['kl']:.2f}" if "kl" in ev else "–"
        if not block:
            missing.append(view.name)
            lines.append(f"| {view.title} | " + " | ".join("–" for _ in cols) + f" | {mse} | {kl} |")
            continue
        lines.append(f"| {view.title} | " + " | ".join(f"{block[c]:.3f}" for c in cols) + f" | {mse} | {kl} |")
    note = ("\n\nHigher is better for every metric (1 = each factor in one dimension of its own). Protocol: "
            "disentanglement_lib's defaults (MIG on 10,000 points with 20-bin histograms; SAP, DCI, β-VAE and "
            "FactorVAE metrics on 10,000 training and 5,000 test points), the posterior mean as the representation.")
    if missing:
        note += f"\n\nNot measured yet: {', '.join(missing)}; run `{MEASURE} checkpoints/{b.key}/NAME`."
    return "\n".join(lines) + note
