"""Anomaly scores of images under a model (higher = more anomalous), shared by the scorecard and the app.

  recon_error  squared error of the reconstruction at the posterior mode, summed over pixels (every model)
  neg_elbo     -ELBO with one posterior sample (VAE)
  nll          -log p(x), the IWAE estimate with k importance samples (VAE; Burda et al. 2015, eq. 8)
  complexity   NLL in bits minus the image's PNG length in bits (Serrà et al. 2020, "Input complexity and
               out-of-distribution detection with likelihood-based generative models", eq. 2:
               S(x) = -log2 p(x) - L(x)): a likelihood corrected for how simple the image is
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image

SCORES = {"recon_error": "reconstruction error (sum of squares)", "neg_elbo": "−ELBO (nats)",
          "nll": "IS-NLL (nats)", "complexity": "NLL − PNG length (bits)"}


def png_bits(x: torch.Tensor) -> np.ndarray:
    """Losslessly compressed length (PNG, zlib level 9) of each image (B, C, H, W) in [0, 1], in bits: a grey
    image (C = 1) as an L PNG, a colour one (C = 3) as RGB, every channel counted."""
    pixels = (x * 255).round().to(torch.uint8).cpu().numpy()  # (B, C, H, W)
    pixels = pixels[:, 0] if pixels.shape[1] == 1 else pixels.transpose(0, 2, 3, 1)  # (B, H, W) or (B, H, W, C)
    out = []
    for img in pixels:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG", optimize=True)
        out.append(8 * buf.tell())
    return np.asarray(out, np.float64)


def anomaly_scores(model, x: torch.Tensor, k: int, g_elbo: torch.Generator | None = None,
                   g_iwae: torch.Generator | None = None, batch: int = 100) -> dict[str, np.ndarray]:
    """Each score of SCORES that the model has, per image of x (B, C, H, W), preprocessed as the model's test
    set (binarized where the model's evaluation binarizes). An AE has only recon_error."""
    from training.evaluate import per_image_terms  # the evaluator's own figures, not a copy of them

    variational = model.config.is_variational
    terms = [per_image_terms(model, b, k if variational else 0, g_elbo, g_iwae, chunk=max(1, 10_000 // len(b)))
             for b in x.split(batch)]
    out = {"recon_error": torch.cat([t["sq_err"] for t in terms]).double().cpu().numpy()}
    if variational:
        out["neg_elbo"] = torch.cat([t["neg_elbo"] for t in terms]).double().cpu().numpy()
        out["nll"] = -torch.cat([t["log_px"] for t in terms]).double().cpu().numpy()
        out["complexity"] = out["nll"] / math.log(2) - png_bits(x)
    return out


def percentile(value: float, quantiles) -> float:
    """Where `value` falls (0..100) among scores summarized by their quantiles at 0, 1, ..., 100 %."""
    q = np.asarray(quantiles, np.float64)
    levels = np.linspace(0, 100, len(q))
    lo, hi = np.searchsorted(q, value, "left"), np.searchsorted(q, value, "right")
    if hi > lo:  # the value equals some quantiles (a flat stretch): the middle of their levels
        return float((levels[lo] + levels[hi - 1]) / 2)
    if value < q[0]:
        return 0.0
    if value > q[-1]:
        return 100.0
    return float(np.interp(value, q, levels))


def histogram(quantiles, edges: np.ndarray) -> np.ndarray:
    """The share of scores in each bin of `edges`, from the scores' quantiles (linear between quantiles)."""
    q = np.asarray(quantiles, np.float64)
    levels = np.linspace(0, 1, len(q))
    q = q + np.arange(len(q)) * 1e-12 * max(1.0, abs(q).max())  # strictly increasing for np.interp
    cdf = np.interp(edges, q, levels, left=0.0, right=1.0)
    return np.diff(cdf)
