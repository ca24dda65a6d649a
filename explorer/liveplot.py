"""The Playground's live view of one run, as HTML with inline SVG (no plotting library): a few milliseconds to draw,
~15 KB a frame, fetched by the page itself as fast as it draws them (ui/playground.py, LIVE_JS).

One panel per run: a header (settings, step, speed, time left), the latent plane (the validation codes by class; a
2-D model's own plane with the prior's 1σ and 2σ circles for a VAE, else the first two principal components), the
loss curves (train solid, validation dashed), the KL of each dimension as bars with the 0.01-nat line, and
reconstructions of 8 fixed validation images with 16 prior samples.
"""
from __future__ import annotations

import base64
import html
import io

import numpy as np
from PIL import Image

from .diagnostics import COLLAPSED_KL

# Tableau 10, the class colours of the app's other maps (matplotlib's tab10)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
PLANE = 230
CURVE_W, CURVE_H = 230, 74
BARS_W, BARS_H = 470, 60
STATES = {"waiting": "waiting in line", "starting": "starting", "running": "training", "done": "finished",
          "stopped": "stopped", "capped": "stopped at a cap", "diverged": "diverged", "failed": "failed"}
CSS = """
.pg-run { font-size: 12px; line-height: 1.3; }
.pg-run .pg-head { font-weight: 600; margin-bottom: 4px; }
.pg-run .pg-row { display: flex; gap: 6px; align-items: flex-start; }
.pg-run .pg-row > svg, .pg-run .pg-row > div { flex: 1 1 0; min-width: 0; }
.pg-run svg { background: var(--background-fill-secondary); border-radius: 4px; width: 100%; height: auto; display: block; }
.pg-run .pg-curves svg + svg { margin-top: 3px; }
.pg-run svg text { fill: var(--body-text-color); font-size: 10px; }
.pg-run .pg-imgs img { image-rendering: pixelated; width: 448px; max-width: 100%; }
.pg-run .pg-cap { color: var(--body-text-color-subdued); font-size: 11px; }
.sc-picture { font-size: 12px; }
.sc-picture img { image-rendering: pixelated; height: 56px; }
.sc-picture .sc-cap { color: var(--body-text-color-subdued); margin-top: 4px; }
.sc-picture.sc-maps { display: flex; gap: 12px; }
.sc-picture.sc-maps img { height: 220px; }
.sc-picture svg { width: 440px; max-width: 100%; height: auto; }
.sc-picture svg text { fill: var(--body-text-color); font-size: 10px; }
"""


def _f(x: float) -> str:
    return f"{x:.1f}"


def plane_svg(xy: np.ndarray, labels: np.ndarray | None, prior_circles: bool, caption: str) -> str:
    """The codes as dots coloured by class, scaled to fit (the same scale on both axes)."""
    pad = 10
    xy = np.asarray(xy, np.float64)
    ok = np.isfinite(xy).all(1)
    xy = xy[ok]
    labels = np.zeros(len(ok), int) if labels is None else np.asarray(labels)[: len(ok)][ok]
    lo, hi = (np.percentile(xy, [0.5, 99.5], axis=0) if len(xy) else (np.array([-1.0, -1]), np.array([1.0, 1])))
    if prior_circles:  # the prior's 2σ disc always in view, so codes that leave it show it
        lo, hi = np.minimum(lo, -2.2), np.maximum(hi, 2.2)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-6)
    scale = (PLANE / 2 - pad) / half

    def px(p):
        return (p[..., 0] - centre[0]) * scale + PLANE / 2, PLANE / 2 - (p[..., 1] - centre[1]) * scale

    parts = [f'<svg class="pg-plane" viewBox="0 0 {PLANE} {PLANE}">']
    if prior_circles:
        cx, cy = px(np.zeros(2))
        for r in (1, 2):
            parts.append(f'<circle cx="{_f(cx)}" cy="{_f(cy)}" r="{_f(r * scale)}" fill="none" stroke="#888" '
                         f'stroke-dasharray="3 3" stroke-width="1"/>')
    x, y = px(xy)
    x, y = np.clip(x, 1, PLANE - 1), np.clip(y, 1, PLANE - 1)
    for c in np.unique(labels):
        m = labels == c
        d = "".join(f"M{a:.0f} {b:.0f}h0" for a, b in zip(x[m], y[m]))
        parts.append(f'<path d="{d}" stroke="{PALETTE[int(c) % len(PALETTE)]}" stroke-width="3.2" '
                     f'stroke-linecap="round" opacity="0.75"/>')
    parts.append(f'<text x="4" y="{PLANE - 4}">{html.escape(caption)}</text></svg>')
    return "".join(parts)


def curve_svg(steps, series: list[tuple[np.ndarray, str, bool]], title: str) -> str:
    """Curves over the steps: (values, colour, dashed) each; the y range leaves out the first fifth of the run."""
    steps = np.asarray(steps, np.float64)
    parts = [f'<svg class="pg-curve" viewBox="0 0 {CURVE_W} {CURVE_H}">']
    vals = [np.asarray(v, np.float64) for v, _, _ in series]
    if len(steps) >= 2:
        start = len(steps) // 5 if len(steps) >= 10 else 0  # the first fifth's steep fall would flatten the rest
        body = np.concatenate([v[start:] for v in vals])
        body = body[np.isfinite(body)]
        lo, hi = (float(body.min()), float(body.max())) if len(body) else (0.0, 1.0)
        hi = hi if hi > lo else lo + 1.0
        x0, x1 = float(steps[0]), max(float(steps[-1]), float(steps[0]) + 1)
        for v, (_, colour, dashed) in zip(vals, series):
            xs = 4 + (steps - x0) / (x1 - x0) * (CURVE_W - 8)
            ys = CURVE_H - 14 - (np.clip(v, lo, hi) - lo) / (hi - lo) * (CURVE_H - 26)
            pts = " ".join(f"{a:.1f},{b:.1f}" for a, b, ok in zip(xs, ys, np.isfinite(v)) if ok)
            dash = ' stroke-dasharray="4 2"' if dashed else ""
            parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}/>')
        last = [v[-1] for v in vals]
        label = f"{title}: " + " / ".join(f"{x:.2f}" for x in last)
        parts.append(f'<text x="4" y="10">{html.escape(label)}</text><text x="4" y="{CURVE_H - 3}">'
                     f'{lo:.1f}..{hi:.1f} over steps {x0:.0f}..{x1:.0f}</text>')
    else:
        parts.append(f'<text x="4" y="10">{html.escape(title)}</text>')
    return "".join(parts) + "</svg>"


def bars_svg(kl: np.ndarray | None, codes_var: np.ndarray | None, floor: float) -> str:
    """One bar per latent dimension: its KL (a VAE, red under 0.01 nats) or its code variance (an AE)."""
    values = np.asarray(kl if kl is not None else codes_var, np.float64)
    d = len(values)
    parts = [f'<svg class="pg-bars" viewBox="0 0 {BARS_W} {BARS_H}">']
    top = max(float(np.nanmax(values)) if d else 1.0, floor * 1.2, 1e-6)
    w = (BARS_W - 8) / max(d, 1)
    base = BARS_H - 12
    for i, v in enumerate(values):
        h = max(0.0, min(v, top)) / top * (base - 14)
        low = kl is not None and v < COLLAPSED_KL
        parts.append(f'<rect x="{4 + i * w + 1:.1f}" y="{base - h:.1f}" width="{max(w - 2, 1):.1f}" height="{max(h, 0.5):.1f}" '
                     f'fill="{"#d62728" if low else "#1f77b4"}"/>')
    if floor > 0:
        y = base - floor / top * (base - 14)
        parts.append(f'<line x1="4" x2="{BARS_W - 4}" y1="{y:.1f}" y2="{y:.1f}" stroke="#2ca02c" stroke-dasharray="4 2"/>')
    what = "KL per dimension (nats; red: < 0.01)" if kl is not None else "code variance per dimension (an AE has no KL)"
    parts.append(f'<text x="4" y="10">{what}, max {top:.2f}{"; green: the free-bits floor" if floor > 0 else ""}</text>'
                 f'<text x="4" y="{BARS_H - 2}">z0 … z{d - 1}</text></svg>')
    return "".join(parts)


def images_png(rows: list[np.ndarray], cols: int = 8) -> str:
    """uint8 images (N, H, W[, C]) per row, `cols` a row (longer rows wrap) -> a PNG data URL."""
    tiles = [t for r in rows for t in _padded(r, cols)]
    h, w = tiles[0].shape[:2]
    colour = tiles[0].ndim == 3
    grid = np.zeros((len(tiles) // cols * h, cols * w, 3) if colour else (len(tiles) // cols * h, cols * w), np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _padded(images: np.ndarray, cols: int) -> list[np.ndarray]:
    images = list(images)
    while len(images) % cols:
        images.append(np.zeros_like(images[0]))
    return images


def run_html(run, originals: np.ndarray | None = None, position: int = 0, live: tuple[str, str] | None = None) -> str:
    """The whole panel of one run (a playground.Run), as one HTML string. `live` (token, key): the page's live view
    (ui/playground.py) asks with the token for newer panels than the one with that key."""
    s = run.settings
    tag = (f'<div class="pg-run" data-slot="{run.slot}" data-live="{html.escape(live[0])}" data-key="{html.escape(live[1])}"'
           if live else f'<div class="pg-run" data-slot="{run.slot}"')
    state = STATES.get(run.state, run.state)
    f = run.frame
    head = f"Run {run.slot} · {s.title} · {s.family.upper()}, lr {s.lr:g}"
    if position:
        return (f'{tag} data-state="waiting" data-step="0"><div class="pg-head">{html.escape(head)}</div>'
                f'Waiting for a free trainer: number {position} in line.</div>')
    if f is None:
        note = f": {html.escape(run.reason)}" if run.reason else ""
        return (f'{tag} data-state="{run.state}" data-step="0"><div class="pg-head">{html.escape(head)}</div>'
                f'{html.escape(state)}{note}…</div>')
    left = (f["total"] - f["step"]) / f["steps_per_s"] if f["steps_per_s"] > 0 and run.state == "running" else 0.0
    speed = (f" · {f['steps_per_s']:.0f} steps/s · {left:.0f} s left" if run.state == "running" else "")
    status = f"step {f['step']} / {f['total']}{speed} · {state}" + (f": {run.reason}" if run.ended and run.reason else "")
    d = len(f["kl_dims"])
    is_vae = s.bottleneck == "vae"
    caption = "latent plane (z0, z1)" if d == 2 else f"first 2 principal components of the {d}-D codes"
    plane = plane_svg(f["xy"], run.labels, is_vae and d == 2, caption)
    curves = np.asarray(run.curves, np.float64)
    steps = curves[:, 0]
    colours = ("#1f77b4", "#ff7f0e")
    charts = "".join(curve_svg(steps, [(curves[:, 1 + k], colours[0], False), (curves[:, 4 + k], colours[1], True)],
                               name) for k, name in enumerate(("loss (train / val)", "reconstruction", "KL")))
    kl = np.asarray(f["kl_dims"]) if is_vae else None
    var = None if is_vae else np.asarray(f.get("code_var", np.zeros(d)))
    active = f"{f['active']} of {d} units active (Var_x E[z|x] > 0.01)"
    if is_vae:
        active += f" · {int((kl < COLLAPSED_KL).sum())} of {d} dimensions < {COLLAPSED_KL} nats · β now {f['beta']:.2g}"
    rows = ([originals[:8]] if originals is not None else []) + [f["shown"], f["samples"]]
    pictures = images_png(rows)
    what = ("top: validation images; then their reconstructions; then 16 prior samples" if originals is not None
            else "reconstructions of 8 validation images, then 16 prior samples")
    if not is_vae:
        what += " (an AE has no prior: its codes are drawn from N(0, I), the naive guess)"
    return (f'{tag} data-state="{run.state}" data-step="{f["step"]}" data-frames="{run.frames}">'
            f'<div class="pg-head">{html.escape(head)}</div><div class="pg-cap">{html.escape(status)}</div>'
            f'<div class="pg-row">{plane}<div class="pg-curves">{charts}</div></div>'
            f'{bars_svg(kl, var, s.free_bits if is_vae else 0.0)}<div class="pg-cap">{html.escape(active)}</div>'
            f'<div class="pg-imgs"><img alt="reconstructions and prior samples" src="{pictures}"/></div>'
            f'<div class="pg-cap">{html.escape(what)}</div></div>')


def roc_svg(curves: list[tuple[str, dict]], title: str) -> str:
    """ROC curves [(label, {"fpr": [...], "tpr": [...]})] on one square plot, the chance line dashed."""
    size, pad = 240, 28
    span = size - 2 * pad

    def pt(f, t):
        return f"{pad + f * span:.1f},{size - pad - t * span:.1f}"

    parts = [f'<svg class="sc-roc" viewBox="0 0 {size + 200} {size}">',
             f'<rect x="{pad}" y="{pad}" width="{span}" height="{span}" fill="none" stroke="#999"/>',
             f'<polyline points="{pt(0, 0)} {pt(1, 1)}" stroke="#999" stroke-dasharray="3 3" fill="none"/>']
    for i, (label, roc) in enumerate(curves):
        colour = PALETTE[i % len(PALETTE)]
        pts = " ".join(pt(f, t) for f, t in zip(roc["fpr"], roc["tpr"]))
        parts.append(f'<polyline points="{pts}" stroke="{colour}" stroke-width="2" fill="none"/>')
        parts.append(f'<text x="{size - 10}" y="{pad + 14 + 16 * i}" fill="{colour}">{html.escape(label)}</text>')
    parts.append(f'<text x="{pad}" y="{pad - 8}">{html.escape(title)}</text>'
                 f'<text x="{pad}" y="{size - 8}">false-positive rate → (y: true-positive rate)</text></svg>')
    return f'<div class="sc-picture">{"".join(parts)}</div>'
