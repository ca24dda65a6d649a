"""What each tab of the app computes, as plain functions over a DatasetBundle: numpy in, numpy + text out."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import latent
from .images import InputError, to_dataset_format, tile, upscale

SHOW = 4  # display upscale factor for single 28x28 images
N_POSTERIOR = 6

if TYPE_CHECKING:  # annotations only: this module does not import torch (the app imports it before the models)
    from .bundle import DatasetBundle, ModelView


def as_input(image) -> np.ndarray:
    """Any image array (the 28x28 current input, or a user image) -> uint8 (28, 28) dataset format."""
    if image is None:
        raise InputError("No input image yet: pick a test image, upload a file or draw something.")
    a = np.asarray(image)
    if a.ndim == 3:
        a = a[..., :3].mean(2) if a.shape[2] >= 3 else a[..., 0]
    if a.shape == (28, 28):
        return np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim != 2 or min(a.shape) < 1:
        raise InputError(f"Expected a 2-D grayscale or RGB image, got an array of shape {np.asarray(image).shape}.")
    g = a.astype(np.float32) / (255.0 if a.max() > 1 else 1.0)
    return to_dataset_format(g)


def as_seed(value) -> int:
    """Any whole number a person can type (negative, or far beyond 2**64) -> an int seed; else a clear message."""
    if isinstance(value, bool):
        raise InputError(f"The seed must be a whole number, got {value!r}.")
    if isinstance(value, (int, np.integer)):
        return int(value)
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        f = float("nan")
    if not np.isfinite(f) or not f.is_integer():
        raise InputError(f"The seed must be a whole number (negative and very large ones are fine), got {value!r}.")
    return int(f)


def seeded_rng(seed: int) -> np.random.Generator:
    """numpy's generator for any integer seed. SeedSequence takes non-negative integers of any size; a
    negative seed uses |seed| with its own spawn key, so -5 and 5 (or any other seed) give different draws."""
    return np.random.default_rng(np.random.SeedSequence(abs(seed), spawn_key=(1,) if seed < 0 else ()))


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error per pixel between images in [0, 1]."""
    return float(((np.asarray(a, np.float64) - b) ** 2).mean())


def reconstruct(b: DatasetBundle, image, seed=0, n_samples: int = N_POSTERIOR) -> dict:
    """AE reconstruction, VAE posterior-mean reconstruction and VAE decodes of z ~ q(z|x)."""
    ae, vae = b.require("ae-16", "vae-16")
    img = as_input(image)
    x = img.astype(np.float32) / 255.0
    z_ae, _ = ae.encode(img[None])
    mean, std = vae.encode(img[None])
    seed = as_seed(seed)
    rng = seeded_rng(seed)
    z_samples = mean + std * rng.standard_normal((n_samples, mean.shape[1])).astype(np.float32)
    ae_rec, vae_rec = ae.decode(z_ae)[0], vae.decode(mean)[0]
    samples = vae.decode(z_samples)
    errs = [mse(s, x) for s in samples]
    text = (
        "| | MSE / pixel |\n|---|---|\n"
        f"| AE reconstruction | {mse(ae_rec, x):.4f} |\n"
        f"| VAE reconstruction (posterior mean) | {mse(vae_rec, x):.4f} |\n"
        f"| VAE, z ~ q(z\\|x), {n_samples} draws (seed {int(seed)}) | "
        + ", ".join(f"{e:.4f}" for e in errs) + " |\n\n"
        f"VAE posterior std, mean over dimensions: {float(std.mean()):.3f} "
        f"(the AE has none: one code per image)."
    )
    return {"input": upscale(img, SHOW), "ae": upscale(ae_rec, SHOW), "vae": upscale(vae_rec, SHOW),
            "vae_samples": tile(samples, ncols=n_samples, factor=3), "text": text, "errors": errs}


def distance_report(view: ModelView, z: np.ndarray) -> np.ndarray:
    """Normalized distance of each code to its nearest atlas code (1 = a typical gap between data codes)."""
    return latent.nearest_distance(z, view.codes) / view.nn_scale


def sample(b: DatasetBundle, seed, temperature: float, n: int = 36) -> dict:
    """Decodes of z ~ N(0, T^2 I) for both models, and of the AE's GMM; how far the codes are from the data."""
    if not (0.0 < float(temperature) <= 3.0):
        raise InputError(f"temperature must be in (0, 3], got {temperature}.")
    if not (1 <= int(n) <= 100):
        raise InputError(f"number of samples must be 1..100, got {n}.")
    ae, vae = b.require("ae-16", "vae-16")
    seed = as_seed(seed)
    rng = seeded_rng(seed)
    z_prior = (float(temperature) * rng.standard_normal((int(n), ae.latent_dim))).astype(np.float32)
    z_vae = (float(temperature) * rng.standard_normal((int(n), vae.latent_dim))).astype(np.float32)
    z_gmm = latent.gmm_sample(ae.gmm["weights"], ae.gmm["means"], ae.gmm["covariances"], int(n), rng,
                              float(temperature))
    sets = {"AE, z ~ N(0, I)": (ae, z_prior), "VAE, z ~ N(0, I)": (vae, z_vae),
            "AE, z ~ GMM fitted to its training codes": (ae, z_gmm)}
    rows = {k: distance_report(view, z) for k, (view, z) in sets.items()}
    far = {k: float((rows[k] * view.nn_scale > view.far).mean()) for k, (view, _) in sets.items()}
    text = "| samples | mean distance to nearest atlas code | far from every data code |\n|---|---|---|\n"
    text += "".join(f"| {k} | {v.mean():.2f} | {far[k]:.0%} |\n" for k, v in rows.items())
    text += ("\nDistances are divided by the median nearest-neighbour distance among that model's atlas codes "
             "(1.0 = a typical gap between data codes). *Far*: farther from every atlas code than 95% of the "
             "atlas codes are from their nearest neighbour, so codes that look like data are far 5% of the time. "
             f"Seed {int(seed)}, temperature {float(temperature):g}.")
    ncols = int(np.ceil(np.sqrt(n)))
    return {"ae_prior": tile(ae.decode(z_prior), ncols), "vae_prior": tile(vae.decode(z_vae), ncols),
            "ae_gmm": tile(ae.decode(z_gmm), ncols), "text": text,
            "distances": {k: v.tolist() for k, v in rows.items()}, "far": far}


def interpolate(b: DatasetBundle, image_a, image_b, steps: int, mode: str) -> dict:
    """One strip of decodes per model from A to B, and the normalized atlas distance at every step."""
    if not (2 <= int(steps) <= 20):
        raise InputError(f"steps must be 2..20, got {steps}.")
    if mode not in ("linear", "spherical"):
        raise InputError(f"mode must be 'linear' or 'spherical', got {mode!r}.")
    a, c = as_input(image_a), as_input(image_b)
    fn = latent.lerp if mode == "linear" else latent.slerp
    out, dists = {}, {}
    for view in b.require("ae-16", "vae-16"):
        za, _ = view.encode(a[None])
        zb, _ = view.encode(c[None])
        z = fn(za[0], zb[0], int(steps))
        out[view.name] = tile(view.decode(z), ncols=int(steps), factor=3)
        dists[view.name] = distance_report(view, z)
    head = "| step | " + " | ".join(str(i) for i in range(int(steps))) + " |\n"
    head += "|---" * (int(steps) + 1) + "|\n"
    body = "".join(f"| {name.upper()} | " + " | ".join(f"{d:.2f}" for d in dists[name]) + " |\n" for name in dists)
    peak = {k: float(v.max()) for k, v in dists.items()}
    text = (head + body + f"\nDistance from each interpolated code to the nearest atlas code, divided by the model's "
            f"median atlas nearest-neighbour distance. Largest: AE {peak['ae-16']:.2f}, VAE {peak['vae-16']:.2f}.")
    return {"ae": out["ae-16"], "vae": out["vae-16"], "text": text,
            "distances": {k: v.tolist() for k, v in dists.items()}}


def slider_start(b: DatasetBundle, image=None) -> dict[str, np.ndarray]:
    """Slider values (in each model's display order) from an encoded input, or the origin; clipped to range."""
    out = {}
    for view in b.require("ae-16", "vae-16"):
        z = view.encode(as_input(image)[None])[0][0] if image is not None else np.zeros(view.latent_dim, np.float32)
        z = np.clip(np.round(z, 2), view.ranges[:, 0], view.ranges[:, 1])  # 2 decimals: the sliders' step
        out[view.name] = z[view.order]
    return out


def slider_labels(view: ModelView) -> list[str]:
    """'z3' for the AE; 'z3 · KL 1.52' (+ ' · collapsed') for the VAE, in display order."""
    labels = []
    for d in view.order:
        if view.kl_per_dim is None:
            labels.append(f"{view.name.upper()} z{d}")
        else:
            tag = " · collapsed (KL ≈ 0)" if view.collapsed()[d] else ""
            labels.append(f"{view.name.upper()} z{d} · KL {view.kl_per_dim[d]:.2f} nats{tag}")
    return labels


def decode_sliders(b: DatasetBundle, ae_values, vae_values) -> tuple[np.ndarray, np.ndarray]:
    """Slider values (display order) -> upscaled decodes of both models; out-of-range values are refused."""
    images = []
    for view, values in zip(b.require("ae-16", "vae-16"), (ae_values, vae_values)):
        try:
            v = np.asarray(values, np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{view.name} slider values must be numbers.") from None
        if v.shape != (view.latent_dim,) or not np.isfinite(v).all():
            raise InputError(f"{view.name} needs {view.latent_dim} finite slider values, got {v.shape[0] if v.ndim else 0}.")
        z = np.empty(view.latent_dim, np.float32)
        z[view.order] = v
        lo, hi = view.ranges[:, 0], view.ranges[:, 1]
        tol = 1e-3 * (hi - lo) + 1e-6
        bad = np.nonzero((z < lo - tol) | (z > hi + tol))[0]
        if len(bad):
            d = int(bad[0])
            raise InputError(f"{view.name.upper()} z{d} = {z[d]:.3g} is outside its range "
                             f"[{lo[d]:.3g}, {hi[d]:.3g}] (0.5%..99.5% quantiles of the atlas codes).")
        images.append(upscale(view.decode(z[None])[0], SHOW))
    return images[0], images[1]


def place(b: DatasetBundle, image) -> dict:
    """Encode the input with both 16-D models and mark it on each model's 2-D atlas map (kNN, no UMAP)."""
    out = {}
    img = as_input(image)
    for view in b.require("ae-16", "vae-16"):
        z, _ = view.encode(img[None])
        xy = latent.knn_place(z, view.codes, view.map_xy)[0]
        out[view.name] = view.scatter.render([(xy, "red")])
        out[view.name + "_xy"] = xy
    return out


def point(b: DatasetBundle, index: int, image=None) -> dict:
    """An atlas image (by index), its decodes by both 16-D models, and its place on both maps (black),
    next to the current input's place (red) when one is given."""
    views = b.require("ae-16", "vae-16")
    if not (0 <= int(index) < len(b.images)):
        raise InputError(f"atlas index must be 0..{len(b.images) - 1}, got {index}.")
    i = int(index)
    img = b.images[i]
    out = {"image": upscale(img, SHOW), "index": i,
           "text": f"Atlas image {i}: **{b.class_names[int(b.labels[i])]}**"}
    for view in views:
        z, _ = view.encode(img[None])
        out[view.name] = upscale(view.decode(z)[0], SHOW)
        marks = [(view.map_xy[i], "black")]
        if image is not None:
            marks.append((latent.knn_place(view.encode(as_input(image)[None])[0], view.codes, view.map_xy)[0], "red"))
        out[view.name + "_map"] = view.scatter.render(marks)
    return out


def click(b: DatasetBundle, model: str, col: float, row: float) -> int:
    """The atlas index drawn nearest to a pixel clicked on `model`'s map."""
    (view,) = b.require(model)
    return view.scatter.nearest_point(col, row)


def manifold(b: DatasetBundle, n: int = 15, image=None) -> dict:
    """Decoded grid over each 2-D model's latent plane (its atlas codes' 0.5%..99.5% box), and its scatter."""
    if not (3 <= int(n) <= 30):
        raise InputError(f"grid size must be 3..30, got {n}.")
    out = {}
    for view in b.require("ae-2", "vae-2"):
        lo, hi = view.ranges[:, 0], view.ranges[:, 1]
        z = latent.grid_codes((lo[0], hi[0]), (lo[1], hi[1]), int(n))
        out[view.name] = tile(view.decode(z), ncols=int(n), pad=0, factor=1)
        marks = []
        if image is not None:
            marks.append((view.encode(as_input(image)[None])[0][0], "red"))
        out[view.name + "_scatter"] = view.scatter.render(marks)
    return out
