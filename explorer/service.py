"""What each tab of the app computes, as plain functions over a DatasetBundle: numpy in, numpy + text out."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import latent
from .catalog import APP_MODELS, DEFAULT_PAIR
from .images import MNIST, Format, InputError, to_format, tile, upscale

SHOW = 4  # display upscale factor for single 28x28 images (show_factor: about 112 pixels a side at any size)
N_POSTERIOR = 6

if TYPE_CHECKING:  # annotations only: this module does not import torch (the app imports it before the models)
    from .bundle import DatasetBundle, ModelView


def show_factor(fmt: Format) -> int:
    """Display upscale of a single image: about 112 pixels a side (4x at 28x28 and 32x32, 2x at 64x64)."""
    return max(1, round(112 / fmt.size))


def as_input(image, fmt: Format = MNIST) -> np.ndarray:
    """Any image array (the current input, or a user image) -> uint8 image of the dataset's format (fmt.shape):
    an image of the right size passes as is (grayscale <-> RGB converted); any other is prepared as an upload."""
    if image is None:
        raise InputError("No input image yet: pick a test image, upload a file or draw something.")
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if a.ndim not in (2, 3) or min(a.shape[:2]) < 1 or (a.ndim == 3 and a.shape[2] not in (1, 3)):
        raise InputError(f"Expected a 2-D grayscale or RGB image, got an array of shape {np.asarray(image).shape}.")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.shape[:2] == (fmt.size, fmt.size):
        a = np.clip(a, 0, 255).astype(np.uint8) if a.max() > 1 or a.dtype == np.uint8 else (a * 255 + 0.5).astype(np.uint8)
        if fmt.channels == 1:
            return a if a.ndim == 2 else (a.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) + 0.5).astype(np.uint8)
        return a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2)
    f = a.astype(np.float32) / (255.0 if a.max() > 1 else 1.0)
    return to_format(f, fmt)


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


PAIR = DEFAULT_PAIR  # the default Model A and Model B (a dataset.json may name its own: DatasetBundle.pair)
SLOTS = ("a", "b")


def pair(b: DatasetBundle, names=None) -> list[ModelView]:
    """The two models being compared (Model A, Model B), by folder name; the dataset's default pair when not given."""
    names = tuple(names) if names else b.pair
    if len(names) != 2 or not all(isinstance(n, str) and n for n in names):
        raise InputError(f"compare two models by name, got {names!r}.")
    # A name that is neither loaded nor expected (the app's four) nor a folder on disk is a typo; a missing or
    # unusable checkpoint gets require()'s message, which says how to regenerate it.
    unknown = [n for n in names if n not in b.models and n not in APP_MODELS + b.pair and not (b.root / n).is_dir()]
    if unknown and b.images is not None:
        raise InputError(f"{b.title} has no model {unknown[0]!r}; choose one of {sorted(b.models)}.")
    return b.require(*names)


def torch_seed(seed: int) -> int:
    """A torch.Generator seed from any integer seed (negative, huge): distinct seeds give distinct draws."""
    return int(seeded_rng(seed).integers(2**62))


def as_label(view: ModelView, label) -> int | None:
    """The class a conditional model uses (a whole number 0..K-1); None for the other models."""
    if not view.conditional:
        return None
    if label is None or isinstance(label, bool) or not float(label).is_integer() or not 0 <= int(label) < view.num_classes:
        raise InputError(f"{view.title} is class-conditional: choose its class, a whole number "
                         f"0..{view.num_classes - 1} (got {label!r}).")
    return int(label)


def every_class(view: ModelView, z: np.ndarray) -> np.ndarray:
    """A conditional model's decodes of each code with every class: (len(z) * K, H, W[, C]), code-major."""
    k = view.num_classes
    return view.decode(np.repeat(z, k, axis=0), np.tile(np.arange(k), len(z)))


def reconstruct(b: DatasetBundle, image, seed=0, n_samples: int = N_POSTERIOR, names=None, label=None) -> dict:
    """Each model's reconstruction (the posterior mean's decode) and, for a VAE, decodes of z ~ q(z|x); for a
    class-conditional model, the posterior mean decoded with every class (its own label and wrong ones)."""
    views = pair(b, names)
    img = as_input(image, b.format)
    x = img.astype(np.float32) / 255.0
    seed = as_seed(seed)
    show = show_factor(b.format)
    out = {"input": upscale(img, show), "errors": {}, "names": [v.name for v in views]}
    lines = ["| model | MSE / pixel of the reconstruction | of each z ~ q(z\\|x) decode (seed "
             f"{int(seed)}) | posterior std (mean over dims) |", "|---|---|---|---|"]
    out["classes"] = {}
    for slot, view in zip(SLOTS, views):
        if view.semi_supervised:  # M2 labels the image itself, with its classifier q(y|x)
            out["classes"][view.name] = view.classify(img[None])[0]
        # no class given: M2 uses its own q(y|x)'s likeliest class
        y = int(np.argmax(out["classes"][view.name])) if view.semi_supervised and label is None else as_label(view, label)
        mean, std = view.encode(img[None], y)
        rec = view.decode(mean, y)[0]
        out[slot] = upscale(rec, show)
        extra, errs = None, []
        if view.is_vae:
            samples = view.posterior_samples(img, n_samples, torch_seed(seed), y)
            decoded = view.decode(samples, y)
            errs = [mse(s, x) for s in decoded]
            extra = tile(decoded, ncols=n_samples, factor=3)
        if view.conditional:  # the same posterior mean, every class: the style kept, the class changed
            extra = tile(every_class(view, mean), ncols=view.num_classes, factor=3)
        out[f"{slot}_samples"] = extra
        out["errors"][view.name] = errs
        spread = f"{float(std.mean()):.3f}" if view.is_vae else "none (one code per image)"
        lines.append(f"| {view.title}{f' (class {y})' if y is not None else ''} | {mse(rec, x):.4f} | "
                     + (", ".join(f"{e:.4f}" for e in errs) or "deterministic: no posterior") + f" | {spread} |")
    cond = [v for v in views if v.conditional]
    used = {v.name: int(np.argmax(out["classes"][v.name])) if v.name in out["classes"] and label is None
            else as_label(v, label) for v in cond}
    note = "".join(f"\n\n{v.title} is class-conditional: its lower picture decodes the same code with class 0, 1, …, "
                   f"{v.num_classes - 1} (the reconstruction used class {used[v.name]})." for v in cond)
    for name, p in out["classes"].items():
        note += f"\n\n{classify_line(b, next(v for v in views if v.name == name), p)}"
        out["classes"][name] = p.tolist()
    out["text"] = "\n".join(lines) + note
    return out


def classify_line(b: DatasetBundle, view: ModelView, p: np.ndarray, top: int = 3) -> str:
    """One sentence: what M2's q(y|x) calls an image, with the probabilities of its likeliest classes."""
    names = b.class_names or [str(c) for c in range(len(p))]
    best = np.argsort(-p)[:top]
    probs = ", ".join(f"{names[c]} {p[c]:.2f}" for c in best)
    return f"{view.title}'s classifier q(y|x) calls this image **{names[best[0]]}** (probabilities: {probs}, …)."


def distance_report(view: ModelView, z: np.ndarray) -> np.ndarray:
    """Normalized distance of each code to its nearest atlas code (1 = a typical gap between data codes)."""
    return latent.nearest_distance(z, view.codes) / view.nn_scale


def sample(b: DatasetBundle, seed, temperature: float, n: int = 36, names=None, label=None) -> dict:
    """Decodes of z ~ p(z) for each model (its own prior: N(0, I), a learned mixture or a VampPrior; an AE has
    none, so N(0, I) is tried), with T scaling the spread; the extra picture: an AE's codes drawn from a GMM
    fitted to its training codes, a conditional model's codes decoded with every class. Distances to the data."""
    if temperature is None or not (0.0 < float(temperature) <= 3.0):
        raise InputError(f"temperature must be in (0, 3], got {temperature}.")
    if not (1 <= int(n) <= 100):
        raise InputError(f"number of samples must be 1..100, got {n}.")
    views = pair(b, names)
    seed = as_seed(seed)
    rng = seeded_rng(seed)
    t = float(temperature)
    ncols = int(np.ceil(np.sqrt(n)))
    out, sets = {"names": [v.name for v in views]}, {}
    for i, (slot, view) in enumerate(zip(SLOTS, views)):
        z = view.prior_samples(int(n), torch_seed(seed) + i, t)
        prior = ({"standard": "N(0, I)", "mog": "its learned mixture of Gaussians", "vamp": "its VampPrior"}
                 [view.model.config.prior] if view.is_vae else "N(0, I) (an AE has no prior)")
        y = as_label(view, label) if view.conditional and label is not None else None
        labels = (np.full(len(z), y) if y is not None else np.arange(len(z)) % view.num_classes) if view.conditional else None
        out[slot] = tile(view.decode(z, labels), ncols)
        sets[f"{view.title}, z ~ {prior}"] = (view, z)
        extra = None
        if view.gmm is not None:
            z_gmm = latent.gmm_sample(view.gmm["weights"], view.gmm["means"], view.gmm["covariances"], int(n), rng, t)
            sets[f"{view.title}, z ~ GMM fitted to its training codes"] = (view, z_gmm)
            extra = tile(view.decode(z_gmm), ncols)
        if view.conditional:  # same z, every class: rows are codes, columns classes
            extra = tile(every_class(view, z[:6]), ncols=view.num_classes)
        out[f"{slot}_extra"] = extra
    rows = {k: distance_report(view, z) for k, (view, z) in sets.items()}
    far = {k: float((rows[k] * view.nn_scale > view.far).mean()) for k, (view, _) in sets.items()}
    text = "| samples | mean distance to nearest atlas code | far from every data code |\n|---|---|---|\n"
    text += "".join(f"| {k} | {v.mean():.2f} | {far[k]:.0%} |\n" for k, v in rows.items())
    text += ("\nDistances are divided by the median nearest-neighbour distance among that model's atlas codes "
             "(1.0 = a typical gap between data codes). *Far*: farther from every atlas code than 95% of the "
             "atlas codes are from their nearest neighbour, so codes that look like data are far 5% of the time. "
             f"Seed {int(seed)}, temperature {t:g}.")
    for view in views:
        if view.conditional:
            y = "class " + str(as_label(view, label)) if label is not None else "classes 0, 1, … in turn"
            text += (f"\n\n{view.title} is class-conditional: its samples use {y}; the picture below them decodes "
                     f"the first 6 codes with every class (rows: codes; columns: class 0..{view.num_classes - 1}).")
        if view.gmm is not None:
            text += (f"\n\n{view.title} is an AE: the picture below its samples decodes codes drawn from a GMM "
                     "fitted to its training codes (the fix for its missing prior).")
    out.update(text=text, distances={k: v.tolist() for k, v in rows.items()}, far=far)
    return out


def interpolation_paths(b: DatasetBundle, image_a, image_b, steps: int, mode: str, names=None, label=None):
    """[(view, its label, its codes from A to B (steps, D))] for Model A and Model B: the Interpolate tab's paths
    (the strips, their distances, their GIFs)."""
    if not (2 <= int(steps) <= 20):
        raise InputError(f"steps must be 2..20, got {steps}.")
    if mode not in ("linear", "spherical"):
        raise InputError(f"mode must be 'linear' or 'spherical', got {mode!r}.")
    a, c = as_input(image_a, b.format), as_input(image_b, b.format)
    fn = latent.lerp if mode == "linear" else latent.slerp
    out = []
    for view in pair(b, names):
        y = as_label(view, label)
        out.append((view, y, fn(view.encode(a[None], y)[0][0], view.encode(c[None], y)[0][0], int(steps))))
    return out


def interpolate(b: DatasetBundle, image_a, image_b, steps: int, mode: str, names=None, label=None) -> dict:
    """One strip of decodes per model from A to B, and the normalized atlas distance at every step."""
    paths = interpolation_paths(b, image_a, image_b, steps, mode, names, label)
    out, dists = {"names": [view.name for view, _, _ in paths]}, {}
    for slot, (view, y, z) in zip(SLOTS, paths):
        out[slot] = tile(view.decode(z, y), ncols=int(steps), factor=3)
        dists[view.title] = distance_report(view, z)
    head = "| step | " + " | ".join(str(i) for i in range(int(steps))) + " |\n"
    head += "|---" * (int(steps) + 1) + "|\n"
    body = "".join(f"| {name} | " + " | ".join(f"{d:.2f}" for d in dists[name]) + " |\n" for name in dists)
    peak = ", ".join(f"{k} {float(v.max()):.2f}" for k, v in dists.items())
    text = (head + body + f"\nDistance from each interpolated code to the nearest atlas code, divided by the model's "
            f"median atlas nearest-neighbour distance. Largest: {peak}.")
    out.update(text=text, distances={k: v.tolist() for k, v in dists.items()})
    return out


MAX_SLIDERS = 16  # sliders per model on the page: a model with more dimensions shows its first 16 (by KL)


def slider_start(b: DatasetBundle, image=None, names=None, label=None) -> dict[str, np.ndarray]:
    """Slider values (in each model's display order) from an encoded input, or the origin; clipped to range.
    Keyed by slot ('a', 'b')."""
    out = {}
    for slot, view in zip(SLOTS, pair(b, names)):
        y = as_label(view, label) if image is not None else None
        z = view.encode(as_input(image, b.format)[None], y)[0][0] if image is not None else np.zeros(view.latent_dim, np.float32)
        z = np.clip(np.round(z, 2), view.ranges[:, 0], view.ranges[:, 1])  # 2 decimals: the sliders' step
        out[slot] = z[view.order]
    return out


def slider_labels(view: ModelView) -> list[str]:
    """'z3' for the AE; 'z3 · KL 1.52' (+ ' · collapsed') for the VAE, in display order."""
    labels = []
    for d in view.order:
        if view.kl_per_dim is None:
            labels.append(f"{view.title} z{d}")
        else:
            tag = " · collapsed (KL ≈ 0)" if view.collapsed()[d] else ""
            labels.append(f"{view.title} z{d} · KL {view.kl_per_dim[d]:.2f} nats{tag}")
    return labels


def decode_sliders(b: DatasetBundle, a_values, b_values, names=None, label=None) -> tuple[np.ndarray, np.ndarray]:
    """Slider values (display order) -> upscaled decodes of both models; out-of-range values are refused."""
    images = []
    for view, values in zip(pair(b, names), (a_values, b_values)):
        try:
            v = np.asarray(values, np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{view.title} slider values must be numbers.") from None
        if v.shape != (view.latent_dim,) or not np.isfinite(v).all():
            raise InputError(f"{view.title} needs {view.latent_dim} finite slider values, got {v.shape[0] if v.ndim else 0}.")
        z = np.empty(view.latent_dim, np.float32)
        z[view.order] = v
        lo, hi = view.ranges[:, 0], view.ranges[:, 1]
        tol = 1e-3 * (hi - lo) + 1e-6
        bad = np.nonzero((z < lo - tol) | (z > hi + tol))[0]
        if len(bad):
            d = int(bad[0])
            raise InputError(f"{view.title} z{d} = {z[d]:.3g} is outside its range "
                             f"[{lo[d]:.3g}, {hi[d]:.3g}] (0.5%..99.5% quantiles of the atlas codes).")
        images.append(upscale(view.decode(z[None], as_label(view, label))[0], show_factor(b.format)))
    return images[0], images[1]


def place(b: DatasetBundle, image, names=None, label=None) -> dict:
    """Encode the input with both models and mark it on each model's 2-D atlas map (kNN, no UMAP): the UMAP of a
    model's codes, or for a 2-D model its latent plane itself."""
    out = {}
    img = as_input(image, b.format)
    for slot, view in zip(SLOTS, pair(b, names)):
        z, _ = view.encode(img[None], as_label(view, label))
        xy = latent.knn_place(z, view.codes, view.map_xy)[0] if view.latent_dim > 2 else z[0]
        out[slot] = view.scatter.render([(xy, "red")])
        out[slot + "_xy"] = xy
    return out


def point(b: DatasetBundle, index: int, image=None, names=None, label=None) -> dict:
    """An atlas image (by index), its decodes by both models, and its place on both maps (black), next to the
    current input's place (red) when one is given. A conditional model uses the image's own class."""
    views = pair(b, names)
    if not (0 <= int(index) < len(b.images)):
        raise InputError(f"atlas index must be 0..{len(b.images) - 1}, got {index}.")
    i = int(index)
    img = b.images[i]
    show = show_factor(b.format)
    out = {"image": upscale(img, show), "index": i,
           "text": f"Atlas image {i}: **{b.class_names[int(b.labels[i])]}**"}
    for slot, view in zip(SLOTS, views):
        own = int(b.labels[i]) if view.conditional else None
        z, _ = view.encode(img[None], own)
        out[slot] = upscale(view.decode(z, own)[0], show)
        marks = [(view.map_xy[i], "black")]
        if image is not None:
            zc = view.encode(as_input(image, b.format)[None], as_label(view, label))[0]
            marks.append((latent.knn_place(zc, view.codes, view.map_xy)[0] if view.latent_dim > 2 else zc[0], "red"))
        out[slot + "_map"] = view.scatter.render(marks)
    return out


def click(b: DatasetBundle, model: str, col: float, row: float) -> int:
    """The atlas index drawn nearest to a pixel clicked on `model`'s map."""
    (view,) = b.require(model)
    return view.scatter.nearest_point(col, row)


MAP_COLOURS = {"recon_error": "reconstruction error (sum of squares over pixels, at the posterior mode)",
               "anomaly": "anomaly score (the scorecard's: an AE's reconstruction error, a VAE's −ELBO in nats)",
               "spread": "posterior spread (mean std of q(z|x) over the dimensions)"}


def map_colours(b: DatasetBundle, name: str, kind: str) -> np.ndarray:
    """One value per atlas image for colouring `name`'s map, (N,) float64: its reconstruction error, its anomaly
    score as the scorecard scores it (explorer.anomaly / training.evaluate.per_image_terms, binarized as the model's
    evaluation, the same generator seeds as the Anomaly tab), or its posterior spread."""
    import torch

    from training.evaluate import per_image_terms

    if kind not in MAP_COLOURS:
        raise InputError(f"colour must be one of {list(MAP_COLOURS)}, got {kind!r}.")
    (view,) = b.require(name)
    if kind == "spread":
        if not view.is_vae:
            raise InputError(f"{view.title} is deterministic: it has no posterior spread.")
        std = b.atlas_array(f"{name}__std")
        if std is None:
            raise LookupError(f"{b.title}: atlas.npz has no posterior spread of {name}.")
        return std.mean(1).astype(np.float64)
    entry = (b.scorecard or {}).get("models", {}).get(name, {}).get("tasks", {}).get("ood", {})
    binarize = entry.get("binarized", view.model.config.likelihood == "bernoulli")
    out = []
    for lo in range(0, len(b.images), 500):
        x = view.to_tensor(b.images[lo:lo + 500])
        if binarize:
            x = torch.bernoulli(x, generator=torch.Generator(x.device).manual_seed(lo))
        y = torch.as_tensor(b.labels[lo:lo + 500], device=x.device) if view.conditional else None
        with torch.inference_mode():
            t = per_image_terms(view.model, x, 0, torch.Generator(x.device).manual_seed(1 + lo), labels=y)
        out.append((t["neg_elbo"] if kind == "anomaly" and view.is_vae else t["sq_err"]).double().cpu().numpy())
    return np.concatenate(out)


def decode_at(b: DatasetBundle, name: str, x: float, y: float, label=None) -> dict:
    """The decode of the code that a map position (x, y, the map's own units: /export_codes' map_x, map_y) stands
    for (explorer.mapdata.code_at), and that code's distance to the nearest atlas code (1 = a typical gap)."""
    from .mapdata import code_at

    (view,) = pair(b, (name, name))[:1]
    try:
        p = np.array([[float(x), float(y)]], np.float32)
    except (TypeError, ValueError):
        raise InputError(f"a map position is two numbers, got {x!r}, {y!r}.") from None
    if not np.isfinite(p).all():
        raise InputError(f"a map position is two finite numbers, got {x!r}, {y!r}.")
    z = code_at(p, view.map_xy, view.codes, view.latent_dim == 2)
    dist = float(distance_report(view, z)[0])
    image = view.decode(z, as_label(view, label))[0]
    return {"z": z[0].tolist(), "distance": dist, "image": image,
            "text": f"{view.title} at map ({float(x):.3g}, {float(y):.3g}): distance to the nearest atlas code "
                    f"{dist:.2f} (1 = a typical gap between data codes)."}


def select_points(b: DatasetBundle, indices, max_images: int = 120) -> dict:
    """A selection of atlas points (indices): its class histogram and a gallery of its first max_images images."""
    from .mapdata import selection

    if b.images is None:
        raise LookupError(f"{b.title}: atlas.npz is missing.")
    sel = selection(b.labels, b.class_names, indices)
    idx = sel["indices"]
    shown = idx[:max_images]
    sel["images"] = [upscale(b.images[i], show_factor(b.format) // 2 or 1) for i in shown]
    sel["captions"] = [f"#{i} · {b.class_names[int(b.labels[i])]}" for i in shown]
    counts = ", ".join(f"{k}: {v}" for k, v in sel["histogram"].items() if v)
    sel["text"] = (f"**{len(idx)} atlas images selected**" + (f" (the first {len(shown)} shown)" if len(idx) > len(shown)
                                                             else "") + (f". Classes: {counts}." if idx else "."))
    return sel


def manifold(b: DatasetBundle, n: int = 15, image=None, names=("ae-2", "vae-2"), label=None) -> dict:
    """Decoded grid over each 2-D model's latent plane (its atlas codes' 0.5%..99.5% box), and its scatter."""
    if not (3 <= int(n) <= 30):
        raise InputError(f"grid size must be 3..30, got {n}.")
    out = {}
    for slot, view in zip(SLOTS, pair(b, names)):
        if view.latent_dim != 2:
            raise InputError(f"{view.title} has {view.latent_dim} latent dimensions: the plane view needs 2.")
        lo, hi = view.ranges[:, 0], view.ranges[:, 1]
        z = latent.grid_codes((lo[0], hi[0]), (lo[1], hi[1]), int(n))
        y = as_label(view, label)
        out[slot] = tile(view.decode(z, None if y is None else np.full(len(z), y)), ncols=int(n), pad=0, factor=1)
        marks = []
        if image is not None:
            marks.append((view.encode(as_input(image, b.format)[None], y)[0][0], "red"))
        out[slot + "_scatter"] = view.scatter.render(marks)
    return out


# ---- Anomaly tab ---------------------------------------------------------------------------------
# The app's labels (this module does not import torch, so the app can build its page before the models load);
# tests check that they name exactly explorer.anomaly.SCORES and explorer.impute.MASKS.
SCORE_LABELS = {"recon_error": "reconstruction error", "neg_elbo": "−ELBO", "nll": "IS-NLL (k = 100)",
                "complexity": "NLL − PNG bits (complexity-corrected)"}
MASK_LABELS = {"top_half": "top half", "bottom_half": "bottom half", "left_half": "left half",
               "centre": "centre square", "random_50": "50 % random", "random_80": "80 % random"}


def _scorecard(b: DatasetBundle) -> dict:
    if not b.scorecard or not any("ood" in m.get("tasks", {}) for m in b.scorecard.get("models", {}).values()):
        raise LookupError(f"{b.title}: no scorecard with the OOD task (scorecard.json). Compute it with "
                          f"`python -m training.scorecard --dataset {b.key} --tasks ood`.")
    return b.scorecard


def input_scores(view: ModelView, image: np.ndarray, entry: dict) -> dict[str, float]:
    """The anomaly scores of one uint8 image (the model's format) under a model, preprocessed as its scorecard's
    test set (binarized with seed 0 where the model's evaluation binarizes; the same generators as the scorecard)."""
    import torch

    from .anomaly import anomaly_scores

    x = view.to_tensor(np.asarray(image)[None]).cpu()
    if entry.get("binarized"):
        x = torch.bernoulli(x, generator=torch.Generator().manual_seed(0))
    g1, g2 = (torch.Generator(view.device).manual_seed(s) for s in (1, 2))
    scores = anomaly_scores(view.model, x.to(view.device), int(entry.get("k") or 0), g1, g2)
    return {k: float(v[0]) for k, v in scores.items()}


def anomaly(b: DatasetBundle, image, ood_set: str | None = None, vae_score: str = "nll", bins: int = 40) -> dict:
    """The input's anomaly scores under the AE-16 and the VAE-16, each placed among the scorecard's test and
    OOD scores (percentile), and each model's call at the threshold that flags 95 % of that OOD set."""
    from .anomaly import SCORES, percentile
    from .scorecard import pair_key

    card = _scorecard(b)
    try:
        ood_set = pair_key(card, ood_set or "other_dataset")
    except ValueError as e:
        raise InputError(str(e)) from None
    if vae_score not in SCORES:
        raise InputError(f"VAE score must be one of {list(SCORES)}, got {vae_score!r}.")
    img = as_input(image, b.format)
    rows, plots, calls = [], {}, {}
    for view in b.require("ae-16", "vae-16"):
        entry = card["models"].get(view.name, {}).get("tasks", {}).get("ood")
        if entry is None:
            raise LookupError(f"{b.title}: the scorecard has no OOD figures for {view.name}.")
        values = input_scores(view, img, entry)
        q_test, q_ood = entry["quantiles"]["test"], entry["quantiles"][ood_set]
        for score, value in values.items():
            threshold = q_ood[score][5]  # 95 % of the OOD set's scores lie above it: TPR 95 %
            rows.append({"model": view.name, "score": score, "value": value,
                         "percentile_test": percentile(value, q_test[score]),
                         "percentile_ood": percentile(value, q_ood[score]), "threshold": threshold,
                         "outlier": bool(value >= threshold),
                         "fpr_at_95_tpr": entry["pairs"][ood_set][score]["fpr_at_95_tpr"],
                         "auroc": entry["pairs"][ood_set][score]["auroc"]})
        shown = vae_score if view.is_vae else "recon_error"
        plots[view.name] = _score_frame(values[shown], q_test[shown], q_ood[shown], ood_set, bins)
        calls[view.name] = shown
    lines = ["| model | score | this input | percentile among test images | percentile among "
             f"{ood_set} | threshold (TPR 95 %) | call | FPR there | AUROC |", "|---" * 9 + "|"]
    for r in rows:
        call = "**outlier**" if r["outlier"] else "in-distribution"
        lines.append(f"| {r['model']} | {SCORES[r['score']]} | {r['value']:.4g} | {r['percentile_test']:.0f} | "
                     f"{r['percentile_ood']:.0f} | {r['threshold']:.4g} | {call} | {r['fpr_at_95_tpr']:.2f} | "
                     f"{r['auroc']:.3f} |")
    n = card["models"]["vae-16"]["tasks"]["ood"]["n_images"]
    text = ("\n".join(lines) + f"\n\nPercentiles and thresholds come from the scorecard's scores of {n} random test "
            f"images and {n} images of *{ood_set}* (quantiles stored in scorecard.json). The threshold flags 95 % of "
            f"that OOD set; *FPR there*: the share of test images it flags too. Higher scores are more anomalous.")
    nal = card["models"]["vae-16"]["tasks"]["ood"].get("other_dataset_nll_below_test_median")
    if nal is not None:
        text += (f" Likelihood check (Nalisnick et al. 2019): {nal:.1%} of the other dataset's images get a lower "
                 f"VAE-16 NLL than the median test image.")
    return {"rows": rows, "text": text, "ae_plot": plots["ae-16"], "vae_plot": plots["vae-16"], "shown": calls,
            "ood_set": ood_set}


def _score_frame(value: float, q_test, q_ood, ood_set: str, bins: int):
    """Histograms (share of images per bin, from the stored quantiles) of the test and OOD scores, and the
    input's score as a vertical line: columns score, share, set."""
    import pandas as pd

    from .anomaly import histogram

    lo = min(q_test[1], q_ood[1], value)
    hi = max(q_test[99], q_ood[99], value)
    pad = 0.02 * (hi - lo or 1.0)
    edges = np.linspace(lo - pad, hi + pad, bins + 1)
    mids = (edges[:-1] + edges[1:]) / 2
    rows = [{"score": float(x), "share": float(s), "set": "test images"} for x, s in zip(mids, histogram(q_test, edges))]
    rows += [{"score": float(x), "share": float(s), "set": ood_set} for x, s in zip(mids, histogram(q_ood, edges))]
    top = max(r["share"] for r in rows)
    rows += [{"score": float(value), "share": 0.0, "set": "this input"},
             {"score": float(value), "share": float(top), "set": "this input"}]
    return pd.DataFrame(rows, columns=["score", "share", "set"])


# ---- Impute tab ----------------------------------------------------------------------------------
IMPUTE_STEPS = 30
SAMPLERS = {"metropolis_within_gibbs": "Metropolis-within-Gibbs", "pseudo_gibbs": "pseudo-Gibbs"}


def as_mask(mask: str, painted, seed: int, size: int = 28) -> np.ndarray:
    """A preset name (explorer.impute.MASKS; random ones drawn from `seed`) or 'painted' with a painted
    (H, W) square array of at least `size` a side (non-zero = missing) -> bool (size, size), True = missing."""
    import torch

    from .impute import MASKS, preset_mask

    if mask in MASKS:
        g = torch.Generator().manual_seed(int(seeded_rng(seed).integers(2**62)))
        return preset_mask(mask, 1, 1, size, size, generator=g)[0, 0].numpy()
    if mask != "painted":
        raise InputError(f"mask must be one of {[*MASKS, 'painted']}, got {mask!r}.")
    if painted is None:
        raise InputError("The painted mask is empty: paint over the pixels to hide, or choose a preset mask.")
    a = np.asarray(painted, np.float64)
    if a.ndim == 3:
        a = a.max(2)
    h, w = a.shape[:2] if a.ndim >= 2 else (0, 0)
    if a.ndim != 2 or h != w or h < size:
        raise InputError(f"The painted mask is {'x'.join(map(str, a.shape))}; it must be square and at least "
                         f"{size}x{size} (the image's size).")
    from PIL import Image

    # the painted share of each image pixel's area (a box filter: the block mean when h is a multiple of size)
    covered = np.asarray(Image.fromarray((a > 0).astype(np.float32), "F").resize((size, size), Image.BOX))
    return covered >= 0.3  # a pixel counts as painted when 30 % of its area is


def masked_picture(img: np.ndarray, missing: np.ndarray, factor: int = SHOW) -> np.ndarray:
    """The observed pixels as they are (grey or colour), the missing ones in dark red: uint8 (H*f, W*f, 3)."""
    g = np.asarray(img, np.float64) / 255.0 if img.dtype == np.uint8 else np.asarray(img, np.float64)
    rgb = np.stack([g, g, g], -1) if g.ndim == 2 else g[..., :3].copy()
    rgb[missing] = (0.45, 0.05, 0.05)
    return np.repeat(np.repeat((rgb * 255 + 0.5).astype(np.uint8), factor, 0), factor, 1)


def as_images(x) -> np.ndarray:
    """float tensor (B, C, H, W) -> numpy (B, H, W) grayscale or (B, H, W, C) colour, as the app shows images."""
    x = x.float().cpu()
    return (x[:, 0] if x.shape[1] == 1 else x.permute(0, 2, 3, 1)).numpy()


def impute(b: DatasetBundle, image, mask: str = "bottom_half", painted=None, n_samples: int = 6,
           sampler: str = "metropolis_within_gibbs", seed=0, steps: int = IMPUTE_STEPS) -> dict:
    """Hide the masked pixels of the input, then fill them: the AE-16's iterative fill, and the VAE-16's
    sampler (n_samples chains: each chain's imputation, and their mean). Observed pixels are never changed."""
    import torch

    from . import impute as imp

    if not (1 <= int(n_samples) <= 16):
        raise InputError(f"number of VAE imputations must be 1..16, got {n_samples}.")
    if not (1 <= int(steps) <= 200):
        raise InputError(f"steps must be 1..200, got {steps}.")
    if sampler not in SAMPLERS:
        raise InputError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}.")
    seed = as_seed(seed)
    fmt = b.format
    img = as_input(image, fmt)
    missing = as_mask(mask, painted, seed, fmt.size)
    if not missing.any():
        raise InputError("The mask hides no pixel: nothing to fill in. Choose a preset, or paint over the image.")
    if missing.all():
        raise InputError("The mask hides every pixel: nothing is observed to fill in from. Leave some pixels visible.")
    ae, vae = b.require("ae-16", "vae-16")
    device = vae.device
    truth = vae.to_tensor(img[None])  # (1, C, H, W)
    m = torch.as_tensor(missing, device=device)[None, None].expand_as(truth)  # every channel of a hidden pixel
    start = vae.to_tensor((b.mean_image * 255)[None])[0]  # (C, H, W)
    g = torch.Generator(device).manual_seed(int(seeded_rng(seed).integers(2**62)))
    ae_fill = imp.ae_fill(ae.model, truth, m, start, int(steps))
    vae_fill = imp.ae_fill(vae.model, truth, m, start, int(steps))
    fn = imp.metropolis_within_gibbs if sampler == "metropolis_within_gibbs" else imp.pseudo_gibbs
    r = fn(vae.model, truth, m, start, int(steps), chains=int(n_samples), generator=g)
    fills = {"zero fill": imp.fill(truth, m, 0.0), "mean-image fill": imp.fill(truth, m, start),
             "AE-16 iterative fill": ae_fill, "VAE-16 iterative fill": vae_fill,
             f"VAE-16 {SAMPLERS[sampler]}, one imputation": r.means[0],
             f"VAE-16 {SAMPLERS[sampler]}, mean of {int(n_samples)}": r.mean}
    errors = {k: float(imp.missing_mse(v, truth, m)[0]) for k, v in fills.items()}
    observed = ~m
    changed = max(float((v - truth)[observed.expand_as(v)].abs().max()) for v in [*fills.values(), *r.means])
    spread = float(r.means[:, 0].std(0)[m[0]].mean()) if int(n_samples) > 1 else 0.0
    show = show_factor(fmt)
    lines = ["| fill | MSE on the missing pixels |", "|---|---|"]
    best = min(errors, key=errors.get)
    lines += [f"| {'**' + k + '**' if k == best else k} | {v:.4f} |" for k, v in errors.items()]
    text = ("\n".join(lines) + f"\n\n{int(missing.sum())} of {missing.size} pixels hidden ({missing.mean():.0%}); "
            f"{int(steps)} steps from the mean-image fill, seed {seed}. Spread of the VAE's imputations (mean standard "
            f"deviation over the missing pixels): {spread:.3f}." + (
                f" Proposals accepted: {r.acceptance:.0%}." if sampler == "metropolis_within_gibbs" else "")
            + f" Observed pixels changed by at most {changed:.1g} (never changed).")
    return {"masked": masked_picture(img, missing, show), "ae": upscale(as_images(ae_fill)[0], show),
            "vae_mean": upscale(as_images(r.mean)[0], show),
            "vae_samples": tile(as_images(r.means[:, 0]), ncols=min(int(n_samples), 8), factor=3),
            "text": text, "errors": errors, "missing": missing, "observed_change": changed, "spread": spread,
            "acceptance": r.acceptance}


# ---- Diagnostics tab -------------------------------------------------------------------------------
def model_files(b: DatasetBundle, name: str) -> tuple[dict, dict]:
    """(config.json, metrics.json) of a model folder, read as JSON (no model loaded); InputError if unusable."""
    import json

    from .catalog import find_models

    if name not in find_models(b.root):
        raise InputError(f"{b.title} has no model {name!r}; choose one of {find_models(b.root)}.")
    try:
        config = json.loads((b.root / name / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise LookupError(f"{b.title}/{name}: config.json is unreadable ({type(e).__name__}).") from None
    try:
        metrics = json.loads((b.root / name / "metrics.json").read_text())
    except (OSError, ValueError):
        metrics = {}
    return config, metrics


def model_health(b: DatasetBundle, name: str) -> tuple[dict, dict, np.ndarray, np.ndarray | None]:
    """(verdict, metrics, atlas codes, KL per dimension or None) of one model, from its files and the atlas."""
    from . import diagnostics as dg

    config, metrics = model_files(b, name)
    atlas = b._atlas or {}
    if f"{name}__mean" not in atlas:
        raise LookupError(f"{b.title}/{name}: the atlas has no codes of this model; rebuild it with "
                          f"`python -m training.export --dataset {b.info.get('spec', b.key)}`.")
    codes = atlas[f"{name}__mean"].astype(np.float64)
    is_vae = config.get("bottleneck") == "vae"
    kl = dg.dimension_kl(config, metrics, codes, atlas.get(f"{name}__std")) if is_vae else None
    title = config.get("title") or name.upper()
    v = dg.verdict(name, title, is_vae, kl, codes, metrics, dg.model_kl(config, metrics, kl) if is_vae else None)
    return v, metrics, codes, kl


def diagnostics(b: DatasetBundle, name: str | None = None) -> dict:
    """The Diagnostics tab: every model's verdict (a table), and for `name` (default the VAE-16) its training
    curves, its KL (or code variance) per dimension and its verdict with remedies."""
    from . import diagnostics as dg
    from .catalog import find_models

    if b.images is None:
        raise LookupError(f"{b.title}: atlas.npz is missing; regenerate it (`training.export`).")
    names = [n for n in find_models(b.root) if f"{n}__mean" in (b._atlas or {})]
    if not names:
        raise LookupError(f"{b.title}: no model with atlas codes to diagnose.")
    name = name or ("vae-16" if "vae-16" in names else names[0])
    verdicts = [model_health(b, n)[0] for n in names]
    v, metrics, codes, kl = model_health(b, name)
    return {"names": names, "name": name, "verdicts": verdicts, "verdict": v,
            "summary": dg.summary_markdown(verdicts), "curves": dg.curves_frame(metrics),
            "kl": dg.kl_frame(kl, codes), "text": v["text"]}


# ---- Downloads -------------------------------------------------------------------------------------
def interpolation_gifs(b: DatasetBundle, image_a, image_b, steps: int, mode: str, folder, names=None,
                       label=None) -> list:
    """The interpolation strip of each model as an animated GIF (one frame per step): [Model A's, Model B's]."""
    from . import exports

    out = []
    for view, y, z in interpolation_paths(b, image_a, image_b, steps, mode, names, label):
        frames = view.decode(z, y)
        out.append(exports.gif_file(folder, f"interpolation-{b.key}-{view.name}-{mode}-{int(steps)}", frames,
                                    show_factor(b.format)))
    return out


def codes_csv(b: DatasetBundle, name: str, folder, image=None, label=None) -> list:
    """A model's atlas codes as CSV (one row per atlas image: index, label, class, map x/y, z), and, given an image,
    that image's code and map position as a second CSV (its row's index reads 'input')."""
    from . import exports

    (view,) = pair(b, (name, name))[:1]
    atlas = exports.codes_csv(view.codes, view.map_xy, b.labels, b.class_names)
    files = [exports.csv_file(folder, f"codes-{b.key}-{view.name}-atlas", atlas)]
    if image is not None:
        img = as_input(image, b.format)
        z = view.encode(img[None], as_label(view, label))[0]
        xy = latent.knn_place(z, view.codes, view.map_xy) if view.latent_dim > 2 else z
        files.append(exports.csv_file(folder, f"codes-{b.key}-{view.name}-input",
                                      exports.codes_csv(z, xy, None, [], index=np.array([-1]))))
    return files


# ---- the Scorecard's answer, made visible ---------------------------------------------------------------------
PICTURE_IMAGES = 8  # atlas images 0..7 (or 8 prior samples) in every row of a decision picture


def _u8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def decision_picture(b: DatasetBundle, goal: str, names: tuple[str, str], card: dict) -> str:
    """A small picture of the difference the Scorecard's answer names, for the winner and the runner-up (`names`),
    as HTML: rows of images with a caption each (samples, fills, denoised or reconstructed test images, paths, latent
    maps), or the two models' ROC curves against the other dataset. Fixed seeds and images: the same picture each time."""
    import html

    import torch

    from . import impute as imp
    from .liveplot import images_png, roc_svg
    from .scorecard import GOALS, pair_key

    if goal not in GOALS:
        raise InputError(f"goal must be one of {list(GOALS)}, got {goal!r}.")
    views = b.require(*names)
    n = min(PICTURE_IMAGES, len(b.images))
    images, labels = b.images[:n], b.labels[:n]
    rows: list[tuple[str, np.ndarray]] = []
    if goal == "detect anomalies":
        pair = pair_key(card, "other_dataset")
        curves = []
        for v in views:
            scores = card["models"].get(v.name, {}).get("tasks", {}).get("ood", {}).get("pairs", {}).get(pair, {})
            best = max(((s, f) for s, f in scores.items() if "roc" in f), key=lambda sf: sf[1]["auroc"], default=None)
            if best is not None:
                curves.append((f"{v.title}: {best[0]} (AUROC {best[1]['auroc']:.3f})", best[1]["roc"]))
        dim = max(int(k) for k in card["verdicts"][GOALS[goal][0]])
        for name, score in ((f"vae-{dim}", "nll"), (f"ae-{dim}", "recon_error")):  # the plain pair, for contrast
            f = card["models"].get(name, {}).get("tasks", {}).get("ood", {}).get("pairs", {}).get(pair, {}).get(score)
            if f and "roc" in f and not any(c.startswith(f"{b.models[name].title if name in b.models else name.upper()}: {score} ")
                                            for c, _ in curves):
                curves.append((f"{name.upper()}: {score} (AUROC {f['auroc']:.3f})", f["roc"]))
        return roc_svg(curves, f"ROC curves, {b.title} test images vs the other dataset")
    if goal == "classify with few labels":
        cells = []
        for v in views:
            png = np.asarray(v.scatter.base().convert("RGB").resize((220, 220)))
            cells.append(f'<figure><img alt="latent map" src="{images_png([png[None]], cols=1)}"/>'
                         f'<figcaption>{html.escape(v.title)}: its codes, coloured by class</figcaption></figure>')
        return f'<div class="sc-picture sc-maps">{"".join(cells)}</div>'
    if goal in ("denoise", "reconstruct", "fill in missing pixels"):
        g = np.random.default_rng(0)
        x = images.astype(np.float64) / 255.0
        if goal == "denoise":
            x = np.clip(x + g.normal(0, 0.5, x.shape), 0, 1)
            rows.append(("test images with Gaussian noise (σ 0.5)", _u8(x)))
        elif goal == "fill in missing pixels":
            hidden = np.zeros(x.shape, bool)
            hidden[:, x.shape[1] // 2:] = True  # axis 1 is the rows, grayscale (N, H, W) or RGB (N, H, W, C)
            rows.append(("test images, bottom half hidden", _u8(np.where(hidden, 0.5, x))))
        else:
            rows.append(("test images", images))
        for v in views:
            if goal == "fill in missing pixels":
                xt = v.to_tensor(images)
                missing = torch.zeros_like(xt, dtype=torch.bool)
                missing[:, :, xt.shape[2] // 2:] = True
                start = 0.5  # hidden pixels start grey
                g_t = torch.Generator(v.device).manual_seed(0)
                if v.is_vae:
                    fill = imp.pseudo_gibbs(v.model, xt, missing, start, 20, 4, g_t).means.mean(0)
                    what = "the mean of 4 pseudo-Gibbs chains"
                else:
                    fill = imp.ae_fill(v.model, xt, missing, start, 20)
                    what = "its iterative fill"
                out = fill.float().cpu().numpy()
                out = out[:, 0] if out.shape[1] == 1 else out.transpose(0, 2, 3, 1)
                rows.append((f"{v.title}: {what}", _u8(out)))
            else:
                z = v.encode(_u8(x), labels)[0]
                rows.append((f"{v.title}: reconstructions", _u8(v.decode(z, labels))))
    elif goal == "generate":
        for v in views:
            rows.append((f"{v.title}: samples of its prior", _u8(v.decode(v.prior_samples(n, seed=0), labels[:1]))))
    elif goal == "interpolate":
        ends = [0, int(np.flatnonzero(b.labels != b.labels[0])[0])] if (b.labels != b.labels[0]).any() else [0, 1]
        rows.append(("the two end images", b.images[ends]))
        for v in views:
            za, zb = v.encode(b.images[ends], b.labels[ends])[0]
            t = np.linspace(0, 1, n)[:, None]
            rows.append((f"{v.title}: the straight path between their codes", _u8(v.decode((1 - t) * za + t * zb,
                                                                                            b.labels[ends[0]]))))
    parts = [f'<div class="sc-row"><div class="sc-cap">{html.escape(cap)}</div>'
             f'<img alt="{html.escape(cap)}" src="{images_png([imgs], cols=len(imgs))}"/></div>' for cap, imgs in rows]
    return f'<div class="sc-picture">{"".join(parts)}</div>'
