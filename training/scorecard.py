"""The scorecard: every model of a dataset, measured on the tasks where an AE and a VAE differ.

    python -m training.scorecard --dataset mnist --data-root ../shared/data [--models ae-16,vae-16] [--tasks generation]

Scores every model folder of checkpoints/<dataset>/ (config.json + model.safetensors of an autoencoder;
models added later included) and writes checkpoints/<dataset>/scorecard.json: each figure, the protocol,
seeds, library versions and the time taken. With --models or --tasks, only those entries are recomputed
and the rest of an existing scorecard.json is kept. Verdicts (which model wins each task, by how much)
are computed from the figures, per latent size, never written by hand. A verdict is a tie when the margin
between the best two is within TIE_RULE below (1 %, or the figures' own sampling spread where they have one).

Tasks (TASKS below), on the full 10,000-image test set:
  reconstruction  the evaluator's MSE per pixel and nats per image (training.evaluate.evaluate_images)
  generation      10,000 samples from each model's own prior at temperature 1 (N(0, I), its learned mixture or
                  its VampPrior; an AE has none, so N(0, I); and, for an AE, from the Gaussian mixture
                  fitted to its training codes, stored in the atlas): Fréchet distance to the test set and
                  precision/recall (k = 3), in the penultimate features of the shipped classifier; each the mean
                  over 3 independent sample draws (seeds 0, 1, 2; --generation-draws), with their std
  denoising       Gaussian noise (sigma 0.2, 0.5) and 20 % salt-and-pepper, clipped to [0, 1]: MSE of the
                  reconstruction of the noisy image to the clean one
  representation  kNN (k = 5) and logistic-regression accuracy from the latent means, with 100 labels per
                  class (10 random draws: mean and std) and with all 60,000 labels; PCA of the same size and
                  raw pixels as baselines
  ood             AUROC and FPR at 95 % TPR (OOD = positive) of each anomaly score against the other dataset's
                  test set, uniform noise, inverted and 90-degree-rotated test images; trimmed to a random
                  1,000 images of each set (--ood-images), since the VAE's IS-NLL (k = 100) costs 100 decodes
                  an image
  imputation      masks (top, bottom, left half; centre square; 50 % and 80 % random pixels) on a random 250 test
                  images (--impute-images): MSE on the missing pixels and the classifier's accuracy, for the zero
                  and mean-image fills, every model's iterative fill, and a VAE's pseudo-Gibbs and
                  Metropolis-within-Gibbs samplers (Mattei & Frellsen 2018; 4 chains, 20 steps: one imputation
                  and the mean of the chains)
  disentanglement (datasets with known factors of variation: dSprites) the five metrics of
                  training/disentanglement.py (MIG, SAP, DCI, the β-VAE and FactorVAE metrics) at
                  disentanglement_lib's protocol, on the posterior means of every image of the factor grid; also
                  written into each model's metrics.json. A dataset with factors has no classifier: its card
                  holds reconstruction and disentanglement only
  interpolation   linear paths between the latent means of 1,000 random test pairs (9 interior points):
                  normalized distance to the nearest atlas code (mean, and the mean of each path's maximum)
                  and the share of points the classifier assigns, p > 0.9, to neither endpoint's class (and the
                  share it cannot call: no class above 0.5)
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from models import Autoencoder, CheckpointError
from models.checkpoint import atomic_write_text, read_metrics
from explorer.anomaly import anomaly_scores
from explorer.catalog import find_models, read_atlas
from explorer.scorecard import TIE, markdown, readme_block
from models.classifier import Classifier

from . import disentanglement as dm
from .cli import OneLineParser, fail
from .data import DATASETS, DataError, load_split, prepare_batch, to_float
from .evaluate import checkpoint_dataset, evaluate_images, pca_fit
from .metrics import frechet_distance_features, ood_metrics, precision_recall, roc_points

SEED = 0
N_SAMPLES = 10_000
LABELS_PER_CLASS, LABEL_DRAWS = 100, 10
INTERPOLATION_POINTS = 9  # interior points of each linear path
GENERATION_DRAWS = 3  # independent sample sets per sampler: the FD of one set of 10,000 moves by ~±0.7 (VampPrior)
TIE_RULE = (f"a tie when the margin between the best two figures is at most {TIE:.0%} of the larger one or, where "
            "both figures are means over random draws (generation: sample draws; few labels: label draws), at most "
            "sqrt(std_1^2 + std_2^2), the spread of the difference of two draws")
NOISES = {"gaussian_0.2": ("gaussian", 0.2), "gaussian_0.5": ("gaussian", 0.5), "salt_pepper_0.2": ("salt_pepper", 0.2)}


@dataclass
class Context:
    """What every task needs, loaded once per dataset."""

    dataset: str
    test_x: torch.Tensor  # uint8 (N, H, W)
    test_y: np.ndarray
    train_x: torch.Tensor
    train_y: np.ndarray
    classifier: Classifier
    atlas: dict
    folders: dict[str, Path]  # model name -> checkpoint folder
    samples: int = N_SAMPLES  # generated images per sampler
    labels_per_class: int = LABELS_PER_CLASS
    ood_images: int = 1000  # images per set for the OOD task (IS-NLL with k samples each)
    ood_k: int = 100
    impute_images: int = 250  # images per mask for the imputation task
    impute_steps: int = 20
    impute_chains: int = 4
    pairs: int = 1000  # interpolation pairs
    generation_draws: int = GENERATION_DRAWS
    other_test_x: torch.Tensor | None = None  # the other dataset's test images (cross-dataset OOD)
    grid: tuple | None = None  # a dataset with factors: (every image uint8, factor counts, factor names)
    cache: dict = field(default_factory=dict)

    def features(self, images: torch.Tensor) -> np.ndarray:
        """Classifier features of float (N, 1, H, W) images in [0, 1]."""
        with torch.inference_mode():
            return torch.cat([self.classifier.features(b) for b in images.split(1000)]).numpy()

    def binarize(self, name: str) -> bool:
        """Whether the model's test images are binarized, as the evaluator decides it (from its provenance)."""
        return checkpoint_dataset(self.folders[name], read_metrics(self.folders[name]))[1]

    def test_features(self) -> np.ndarray:
        if "test_features" not in self.cache:
            self.cache["test_features"] = self.features(to_float(self.test_x))
        return self.cache["test_features"]


# ---- the tasks: (context, name, model) -> figures ------------------------------------------------
def reconstruction(ctx: Context, name: str, model: Autoencoder) -> dict:
    r = evaluate_images(model, ctx.test_x, binarize=ctx.binarize(name), k=1, seed=SEED)
    return {"mse_per_pixel": r["mse_per_pixel"], "nats_per_image": r["recon_per_image"], "binarized": r["binarized"]}


@torch.inference_mode()
def decode(model: Autoencoder, z: np.ndarray) -> torch.Tensor:
    return torch.cat([model.decode_image(b) for b in torch.from_numpy(np.asarray(z, np.float32)).split(1000)])


@torch.inference_mode()
def prior_codes(model: Autoencoder, n: int, seed: int = SEED) -> np.ndarray:
    """n codes z ~ p(z) from the model's own prior (N(0, I), a learned mixture or a VampPrior; an AE's is
    N(0, I)), seeded: the same codes at every run."""
    return model.sample_prior(n, generator=torch.Generator().manual_seed(seed)).numpy()


def mean_and_std(draws: list[dict]) -> dict:
    """Figures of independent draws -> each one's mean, its std over the draws (ddof 1) and the draws themselves."""
    out = {"draws": len(draws)}
    for key in draws[0]:
        values = np.array([d[key] for d in draws], np.float64)
        out.update({key: float(values.mean()), f"{key}_std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                    f"{key}_draws": values.tolist()})
    return out


def generation(ctx: Context, name: str, model: Autoencoder) -> dict:
    from explorer.latent import gmm_sample

    gmm = {k: ctx.atlas.get(f"{name}__gmm_{k}") for k in ("weights", "means", "covariances")}
    samplers = {"prior": lambda seed: prior_codes(model, ctx.samples, seed)}
    if all(v is not None for v in gmm.values()):
        samplers["gmm"] = lambda seed: gmm_sample(gmm["weights"], gmm["means"], gmm["covariances"], ctx.samples,
                                                  np.random.default_rng(seed))
    real = ctx.test_features()
    out = {}
    for sampler, codes in samplers.items():
        draws = []
        for seed in range(SEED, SEED + ctx.generation_draws):  # draw 0: the seed every earlier card used
            fake = ctx.features(decode(model, codes(seed)))
            precision, recall = precision_recall(real, fake, k=3)
            draws.append({"fd": frechet_distance_features(real, fake), "precision": precision, "recall": recall})
        out[sampler] = mean_and_std(draws)
    best = min(samplers, key=lambda k: out[k]["fd"])
    out["best"] = {"sampler": best, **out[best]}  # an AE's GMM may beat its prior (and a VAE's)
    return out


def corrupt(x: torch.Tensor, kind: str, level: float, generator: torch.Generator) -> torch.Tensor:
    """float (N, 1, H, W) in [0, 1] -> a noisy copy, clipped to [0, 1]."""
    if kind == "gaussian":
        return (x + level * torch.randn(x.shape, generator=generator)).clamp(0, 1)
    u = torch.rand(x.shape, generator=generator)
    salt = (torch.rand(x.shape, generator=generator) < 0.5).float()
    return torch.where(u < level, salt, x)  # a share `level` of pixels set to 0 or 1


def denoising(ctx: Context, name: str, model: Autoencoder) -> dict:
    clean = to_float(ctx.test_x)
    out = {}
    for key, (kind, level) in NOISES.items():
        noisy = corrupt(clean, kind, level, torch.Generator().manual_seed(SEED))
        with torch.inference_mode():
            recon = torch.cat([model.decode_image(model.encode(b).mode()) for b in noisy.split(1000)])
        out[key] = {"mse_to_clean": float((recon - clean).pow(2).mean()),
                    "noisy_input_mse": float((noisy - clean).pow(2).mean())}
    return out


OTHER = {"mnist": "fashion-mnist", "fashion-mnist": "mnist"}  # the cross-dataset OOD pairs


def ood_inputs(ctx: Context) -> dict[str, torch.Tensor]:
    """uint8 (n, H, W) image sets: the in-distribution test images first, then the OOD sets. Random subsets
    (seeded): MNIST's test set is ordered by writer group, so its first images are not a fair sample."""
    n = ctx.ood_images
    g = torch.Generator().manual_seed(SEED)
    test = ctx.test_x[torch.randperm(len(ctx.test_x), generator=g)[:n]]
    sets = {"test": test}
    if ctx.other_test_x is not None:
        sets[OTHER[ctx.dataset]] = ctx.other_test_x[torch.randperm(len(ctx.other_test_x), generator=g)[:n]]
    sets["uniform_noise"] = torch.randint(0, 256, test.shape, generator=g, dtype=torch.uint8)
    sets["inverted"] = 255 - test
    sets["rotated_90"] = torch.rot90(test, 1, (1, 2)).contiguous()
    return sets


def ood_scores(ctx: Context, name: str, model: Autoencoder, images: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-image anomaly scores (explorer/anomaly.py) of uint8 images, preprocessed as the model's test set."""
    x_all = prepare_batch(images, ctx.binarize(name), torch.Generator().manual_seed(SEED))
    g_elbo, g_iwae = torch.Generator().manual_seed(SEED + 1), torch.Generator().manual_seed(SEED + 2)
    return anomaly_scores(model, x_all, ctx.ood_k, g_elbo, g_iwae)


def ood(ctx: Context, name: str, model: Autoencoder) -> dict:
    sets = ood_inputs(ctx)
    scores = {key: ood_scores(ctx, name, model, images) for key, images in sets.items()}
    inside = scores.pop("test")
    pairs = {key: {s: {**ood_metrics(inside[s], v[s]), "roc": roc_points(inside[s], v[s])} for s in v}
             for key, v in scores.items()}
    qs = np.linspace(0, 1, 101)
    out = {"n_images": len(sets["test"]), "binarized": ctx.binarize(name), "k": ctx.ood_k if model.config.is_variational else None,
           "scores": list(inside), "pairs": pairs,
           "mean_scores": {key: {s: float(v.mean()) for s, v in sc.items()} for key, sc in {"test": inside, **scores}.items()},
           "quantiles": {key: {s: np.quantile(v, qs).tolist() for s, v in sc.items()}
                         for key, sc in {"test": inside, **scores}.items()}}
    other = OTHER[ctx.dataset]
    if other in pairs:
        best = max(pairs[other], key=lambda s: pairs[other][s]["auroc"])
        out["best_cross_dataset"] = {"score": best, **pairs[other][best]}
        if "nll" in inside:  # Nalisnick et al. 2019: can the other dataset look *more* likely than our own?
            out["other_dataset_nll_below_test_median"] = float((scores[other]["nll"] < np.median(inside["nll"])).mean())
    return out


def subset(ctx: Context, n: int, salt: int = 0) -> np.ndarray:
    """A seeded random subset of test indices (MNIST's test set is ordered by writer group, so never the first n)."""
    return np.random.default_rng([SEED, salt]).permutation(len(ctx.test_x))[:n]


@torch.inference_mode()
def predict(ctx: Context, images: torch.Tensor) -> np.ndarray:
    """Class probabilities (N, classes) of float (N, 1, H, W) images from the shipped classifier."""
    return torch.cat([ctx.classifier(b).softmax(1) for b in images.split(1000)]).numpy()


def imputation(ctx: Context, name: str, model: Autoencoder) -> dict:
    """Missing-pixel MSE and classifier accuracy of each fill, per mask, on a random subset of test images.

    Every model gets the deterministic iterative fill (encode the current fill, decode, replace the missing
    pixels); a VAE also gets pseudo-Gibbs and Metropolis-within-Gibbs, `impute_chains` chains each (the
    first chain's imputation, and the mean of all of them). Chains start from the mean-image fill."""
    from explorer import impute

    idx = subset(ctx, ctx.impute_images, salt=1)
    x, y = to_float(ctx.test_x[idx]), ctx.test_y[idx]
    start = to_float(ctx.train_x).mean(0)  # (1, H, W): the mean training image
    out = {"n_images": len(idx), "steps": ctx.impute_steps, "chains": ctx.impute_chains, "masks": {}}
    accuracy = lambda images: float((predict(ctx, images).argmax(1) == y).mean())  # noqa: E731
    out["clean_accuracy"] = accuracy(x)
    for mask_i, mask in enumerate(impute.MASKS):
        g = torch.Generator().manual_seed(SEED + mask_i)
        missing = impute.preset_mask(mask, len(x), *x.shape[1:], generator=g)
        fills = {"zero_fill": impute.fill(x, missing, 0.0), "mean_fill": impute.fill(x, missing, start),
                 "iterative": torch.cat([impute.ae_fill(model, xb, mb, start, ctx.impute_steps)
                                         for xb, mb in zip(x.split(250), missing.split(250))])}
        acceptance = {}
        if model.config.is_variational:
            for method, sampler in (("pseudo_gibbs", impute.pseudo_gibbs),
                                    ("metropolis_within_gibbs", impute.metropolis_within_gibbs)):
                runs = [sampler(model, xb, mb, start, ctx.impute_steps, ctx.impute_chains, g)
                        for xb, mb in zip(x.split(250), missing.split(250))]
                fills[f"{method}_single"] = torch.cat([r.means[0] for r in runs])
                fills[f"{method}_mean"] = torch.cat([r.mean for r in runs])
                acceptance[method] = float(np.mean([r.acceptance for r in runs]))
        out["masks"][mask] = {
            "missing_share": float(missing.float().mean()),
            "mse_missing": {k: float(impute.missing_mse(v, x, missing).mean()) for k, v in fills.items()},
            "accuracy": {k: accuracy(v) for k, v in fills.items()},
            "acceptance": acceptance,
        }
    methods = [m for m in out["masks"][next(iter(impute.MASKS))]["mse_missing"] if m not in ("zero_fill", "mean_fill")]
    out["mean_over_masks"] = {m: float(np.mean([v["mse_missing"][m] for v in out["masks"].values()]))
                              for m in ["zero_fill", "mean_fill", *methods]}
    best = min(methods, key=out["mean_over_masks"].get)
    out["best"] = {"method": best, "mse_missing": out["mean_over_masks"][best]}
    return out


def interpolation(ctx: Context, name: str, model: Autoencoder) -> dict:
    """Linear paths between the latent means of random test pairs: how far the path strays from the atlas
    codes (the app's normalized distance: 1 = the median gap between atlas codes), and how often the
    classifier is sure (p > 0.9) that a path point is a class neither endpoint belongs to (a hole)."""
    from explorer import latent

    rng = np.random.default_rng([SEED, 2])
    a, b = rng.integers(0, len(ctx.test_x), (2, ctx.pairs))
    za, zb = latent_means(model, ctx.test_x[a]), latent_means(model, ctx.test_x[b])
    t = np.linspace(0, 1, INTERPOLATION_POINTS + 2)[1:-1]  # the interior points of each path
    z = (za[:, None] * (1 - t[None, :, None]) + zb[:, None] * t[None, :, None]).reshape(-1, za.shape[1])
    probs = predict(ctx, decode(model, z)).reshape(ctx.pairs, len(t), -1)
    sure, cls = probs.max(-1) > 0.9, probs.argmax(-1)
    elsewhere = sure & (cls != ctx.test_y[a][:, None]) & (cls != ctx.test_y[b][:, None])
    out = {"pairs": ctx.pairs, "points_per_path": len(t), "off_class_fraction": float(elsewhere.mean()),
           "paths_with_off_class_point": float(elsewhere.any(1).mean()),
           "unsure_fraction": float((probs.max(-1) < 0.5).mean())}  # points the judge cannot call: no class > 0.5
    codes = ctx.atlas.get(f"{name}__mean")
    if codes is not None:
        dist = (latent.nearest_distance(z, codes) / latent.median_nn_distance(codes)).reshape(ctx.pairs, len(t))
        out.update(mean_distance=float(dist.mean()), mean_max_distance=float(dist.max(1).mean()),
                   max_distance=float(dist.max()))
    return out


def disentanglement(ctx: Context, name: str, model: Autoencoder) -> dict:
    """The five metrics on every grid image's posterior mean (training.disentanglement.score), written into the
    model's metrics.json too, with the model's KL and training time from that file."""
    from models.checkpoint import write_metrics

    if ctx.grid is None:
        raise ValueError(f"{ctx.dataset} has no known factors of variation")
    images, counts, names = ctx.grid
    t = time.perf_counter()
    with torch.inference_mode():
        codes = dm.grid_codes(model, images)
    encode_seconds = time.perf_counter() - t
    result = dm.score(codes, counts, SEED)
    result["seconds"]["encode"] = round(encode_seconds, 1)
    result.update(factor_names=names, factor_counts=list(counts), points_encoded=len(images),
                  total_seconds=round(time.perf_counter() - t, 1))
    metrics = read_metrics(ctx.folders[name])
    metrics["disentanglement"] = result
    write_metrics(ctx.folders[name], metrics)
    out = {k: result[k] for k in (*dm.METRIC_NAMES, "mig_per_factor", "mutual_info", "factor_vae_active_dims")}
    return {**out, "kl": metrics.get("eval", {}).get("kl"), "train_seconds": metrics.get("train_seconds"),
            "eval_seconds": metrics.get("eval", {}).get("eval_seconds"), "metric_seconds": result["seconds"]}


def probe(train: np.ndarray, train_y: np.ndarray, test: np.ndarray, test_y: np.ndarray, per_class: int,
          all_labels: bool = True) -> dict:
    """Test accuracy of kNN (k = 5) and logistic regression on standardized features; few labels and (unless
    all_labels is False) all."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit_score(clf, idx) -> float:
        return float(make_pipeline(StandardScaler(), clf).fit(train[idx], train_y[idx]).score(test, test_y))

    rng = np.random.default_rng(SEED)
    classes = np.unique(train_y)
    draws = [np.concatenate([rng.choice(np.nonzero(train_y == c)[0], per_class, replace=False) for c in classes])
             for _ in range(LABEL_DRAWS)]
    everything = np.arange(len(train))
    out = {}
    for key, make in (("knn5", lambda: KNeighborsClassifier(5)), ("logreg", lambda: LogisticRegression(max_iter=2000))):
        few = [fit_score(make(), idx) for idx in draws]
        out[key] = {"few_labels_mean": float(np.mean(few)), "few_labels_std": float(np.std(few))}
        if all_labels:
            out[key]["all_labels"] = fit_score(make(), everything)
    return out


@torch.inference_mode()
def latent_means(model: Autoencoder, images: torch.Tensor) -> np.ndarray:
    return torch.cat([model.encode(to_float(b)).mean for b in images.split(1000)]).numpy()


def representation(ctx: Context, name: str, model: Autoencoder) -> dict:
    return probe(latent_means(model, ctx.train_x), ctx.train_y, latent_means(model, ctx.test_x), ctx.test_y,
                 ctx.labels_per_class)


def representation_baselines(ctx: Context, dims: list[int]) -> dict:
    """The same probes on PCA codes of each latent size and on raw pixels."""
    train = to_float(ctx.train_x).flatten(1).double()
    test = to_float(ctx.test_x).flatten(1).double()
    out = {}
    for d in sorted(set(dims)):
        mu, v = pca_fit(train, d)
        out[f"pca-{d}"] = probe(((train - mu) @ v).numpy(), ctx.train_y, ((test - mu) @ v).numpy(), ctx.test_y,
                                ctx.labels_per_class)
    out["pixels"] = probe(train.float().numpy(), ctx.train_y, test.float().numpy(), ctx.test_y, ctx.labels_per_class)
    return out


TASKS: dict[str, Callable[[Context, str, Autoencoder], dict]] = {
    "reconstruction": reconstruction, "generation": generation, "denoising": denoising,
    "representation": representation, "ood": ood, "imputation": imputation, "interpolation": interpolation,
    "disentanglement": disentanglement,
}
FACTOR_DATASETS = {"dsprites": "dsprites"}  # --dataset name -> its source spec (training/sources.py)
FACTOR_TASKS = ("reconstruction", "disentanglement")  # the tasks that need no classifier and no OOD pair
LABEL_TASKS = tuple(t for t in TASKS if t != "disentanglement")  # a labelled dataset without factors (MNIST)
# verdict -> (task, figure path in the task's output, "lower"/"higher" is better): the figure it compares
PRIMARY = {
    "reconstruction": ("reconstruction", ("mse_per_pixel",), "lower"),
    "generation (prior)": ("generation", ("prior", "fd"), "lower"),
    "generation (best sampler)": ("generation", ("best", "fd"), "lower"),
    "denoising": ("denoising", ("gaussian_0.5", "mse_to_clean"), "lower"),
    "representation (few labels)": ("representation", ("logreg", "few_labels_mean"), "higher"),
    "ood (other dataset)": ("ood", ("best_cross_dataset", "auroc"), "higher"),
    "imputation (best method)": ("imputation", ("best", "mse_missing"), "lower"),
    "interpolation (holes)": ("interpolation", ("off_class_fraction",), "lower"),
    "interpolation (distance)": ("interpolation", ("mean_max_distance",), "lower"),
    **{f"disentanglement ({label})": ("disentanglement", (key,), "higher") for key, label in dm.METRIC_NAMES.items()},
}


# ---- models, verdicts, the file ------------------------------------------------------------------
def dig(d: dict, path: tuple[str, ...]):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def spread_of(model: dict, task: str, path: tuple[str, ...]) -> float | None:
    """The std over random draws of a model's figure (its `<figure>_std` sibling: fd -> fd_std, few_labels_mean ->
    few_labels_std), or None when the figure has no sampling spread."""
    key = path[-1][: -len("_mean")] if path[-1].endswith("_mean") else path[-1]
    value = dig(model.get("tasks", {}).get(task, {}), (*path[:-1], f"{key}_std"))
    return None if value is None else float(value)


def verdicts(models: dict) -> dict:
    """Per task and latent size: every model's primary figure, the winner, and its margin over the runner-up."""
    out: dict = {}
    for verdict, (task, path, better) in PRIMARY.items():
        groups: dict[str, list] = {}
        for name, m in models.items():
            value = dig(m.get("tasks", {}).get(task, {}), path)
            if value is not None:
                groups.setdefault(str(m["latent_dim"]), []).append((name, value))
        for dim, rows in groups.items():
            rows.sort(key=lambda r: r[1], reverse=better == "higher")
            v = {"figure": ".".join(path), "better": better, "ranking": rows, "winner": rows[0][0]}
            if len(rows) > 1:
                best, second = rows[0][1], rows[1][1]
                v["margin"] = abs(best - second)
                v["ratio"] = (second / best) if better == "lower" and best else (best / second if second else None)
                stds = [spread_of(models[n], task, path) for n, _ in rows[:2]]
                if None not in stds:
                    v["spread"] = float(np.hypot(*stds))  # the std of the difference of two independent draws
                v["tie"] = v["margin"] <= max(TIE * max(abs(best), abs(second), 1e-12), v.get("spread", 0.0))
            out.setdefault(verdict, {})[dim] = v
    return out


def update_readme(readme: Path, dataset: str, text: str) -> None:
    """Replace the generated block (docs/scorecard.md's) for `dataset` (between its two markers) by `text`."""
    start, end = readme_block(dataset)
    s = readme.read_text()
    if start not in s or end not in s:
        raise ValueError(f"{readme} has no {start} ... {end} block")
    a, b = s.index(start) + len(start), s.index(end)
    atomic_write_text(readme, s[:a] + "\n" + text + s[b:])


def versions() -> dict:
    import scipy
    import sklearn

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "scikit-learn": sklearn.__version__}


def parse_list(text: str | None, allowed, what: str, p: argparse.ArgumentParser) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in allowed]
    if bad or not items:
        p.error(f"--{what}: unknown {bad or text!r}; choose from {sorted(allowed)}")
    return items


def main(argv: list[str] | None = None) -> None:
    prog = "python -m training.scorecard"
    p = OneLineParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=sorted(DATASETS) + sorted(FACTOR_DATASETS), required=True)
    p.add_argument("--data-root", default="./data", help="folder holding MNIST/raw or FashionMNIST/raw")
    p.add_argument("--checkpoints", default=str(Path(__file__).resolve().parent.parent / "checkpoints"))
    p.add_argument("--models", help="comma-separated model folder names (default: every model)")
    p.add_argument("--tasks", help=f"comma-separated, from {', '.join(TASKS)} (default: all)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--samples", type=int, default=N_SAMPLES, help="generated images per sampler")
    p.add_argument("--labels-per-class", type=int, default=LABELS_PER_CLASS, help="the few-labels probes")
    p.add_argument("--ood-images", type=int, default=1000, help="images per OOD set (the IS-NLL is the cost)")
    p.add_argument("--ood-k", type=int, default=100, help="importance samples for the OOD task's NLL")
    p.add_argument("--impute-images", type=int, default=250, help="test images per mask for the imputation task")
    p.add_argument("--impute-steps", type=int, default=20, help="iterations of every fill and sampler")
    p.add_argument("--impute-chains", type=int, default=4, help="chains per image of each VAE sampler")
    p.add_argument("--pairs", type=int, default=1000, help="test pairs for the interpolation task")
    p.add_argument("--generation-draws", type=int, default=GENERATION_DRAWS,
                   help=f"independent sample sets per sampler in the generation task (default {GENERATION_DRAWS})")
    p.add_argument("--markdown", action="store_true", help="print the existing scorecard.json as markdown; compute nothing")
    p.add_argument("--update-readme", metavar="README", help="also write the markdown into that file's block for the dataset (the shipped tables: docs/scorecard.md)")
    args = p.parse_args(argv)
    if args.markdown or args.update_readme:
        path = Path(args.checkpoints) / args.dataset / "scorecard.json"
        if not path.is_file():
            fail(prog, f"{path} does not exist: run `{prog} --dataset {args.dataset}` first.")
        text = markdown(json.loads(path.read_text()))
        print(text, end="")
        if args.update_readme:
            try:
                update_readme(Path(args.update_readme), args.dataset, text)
            except (OSError, ValueError) as e:
                fail(prog, str(e))
        return
    for flag in ("samples", "labels_per_class", "ood_images", "ood_k", "impute_images", "impute_steps",
                 "impute_chains", "pairs"):
        if getattr(args, flag) < 2:
            p.error(f"--{flag.replace('_', '-')} must be >= 2, got {getattr(args, flag)}")
    if args.generation_draws < 1:
        p.error(f"--generation-draws must be >= 1, got {args.generation_draws}")
    folder = Path(args.checkpoints) / args.dataset
    if not folder.is_dir():
        fail(prog, f"{folder} does not exist: train the models first (`make checkpoints`).")
    found = {name: folder / name for name in find_models(folder)}
    names = parse_list(args.models, found, "models", p) or list(found)
    factor_spec = FACTOR_DATASETS.get(args.dataset)
    if factor_spec:  # no classifier, no OOD pair: the tasks that need neither
        tasks = parse_list(args.tasks, FACTOR_TASKS, "tasks", p) or list(FACTOR_TASKS)
    else:
        tasks = parse_list(args.tasks, LABEL_TASKS, "tasks", p) or list(LABEL_TASKS)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not names:
        fail(prog, f"no model folders (config.json + model.safetensors) in {folder}.")
    try:
        classifier = None if factor_spec else Classifier.from_pretrained(folder / "classifier")
        models = {n: Autoencoder.from_pretrained(found[n]) for n in names}
    except CheckpointError as e:
        fail(prog, str(e))
    # The tasks score what a model does with an unlabeled image (reconstruct, denoise, flag, fill in); a
    # class-conditional model needs the label at every encode and decode, so it has no entry on that card.
    conditional = [n for n, m in models.items() if m.config.conditional]
    if conditional and args.models:
        fail(prog, f"{', '.join(conditional)} is class-conditional: the scorecard's tasks give a model no labels")
    if conditional:
        print(f"not scored (class-conditional, the tasks give no labels): {', '.join(conditional)}", flush=True)
        models = {n: m for n, m in models.items() if n not in conditional}
    spec = factor_spec or args.dataset
    grid = None
    try:
        train_x, train_y = load_split(spec, args.data_root, train=True)
        test_x, test_y = load_split(spec, args.data_root, train=False)
        if factor_spec:
            from .data import user_data

            d = user_data(spec)
            grid = (d.images, tuple(int(c) for c in d.factors.max(0) + 1), d.factor_names)
    except DataError as e:
        fail(prog, str(e))
    atlas_path = folder / "atlas.npz"
    atlas = read_atlas(atlas_path) if atlas_path.is_file() else {}
    smallest = int(np.bincount(train_y.numpy()).min())
    if args.labels_per_class > smallest:
        fail(prog, f"--labels-per-class {args.labels_per_class} is more than the smallest class has ({smallest}).")
    other_x = None
    if "ood" in tasks:
        try:
            other_x = load_split(OTHER[args.dataset], args.data_root, train=False)[0]
        except DataError as e:
            print(f"no cross-dataset OOD pair: {e}", flush=True)
    ctx = Context(args.dataset, test_x, test_y.numpy(), train_x, train_y.numpy(), classifier, atlas, found,
                  samples=args.samples, labels_per_class=args.labels_per_class, ood_images=args.ood_images,
                  ood_k=args.ood_k, impute_images=args.impute_images, impute_steps=args.impute_steps,
                  impute_chains=args.impute_chains, pairs=args.pairs, other_test_x=other_x,
                  generation_draws=args.generation_draws, grid=grid)

    out_path = folder / "scorecard.json"
    card = json.loads(out_path.read_text()) if out_path.is_file() else {}
    card.setdefault("models", {})
    t_all = time.perf_counter()
    for name, model in models.items():
        entry = card["models"].setdefault(name, {})
        entry.update(latent_dim=model.config.latent_dim, variational=model.config.is_variational)
        entry.setdefault("tasks", {})
        entry.setdefault("seconds", {})
        for task in tasks:
            t = time.perf_counter()
            entry["tasks"][task] = TASKS[task](ctx, name, model)
            entry["seconds"][task] = round(time.perf_counter() - t, 1)
            print(f"{args.dataset} {name} {task}: {entry['seconds'][task]:.0f} s", flush=True)
    baselines = card.setdefault("baselines", {})
    if "representation" in tasks:
        t = time.perf_counter()
        baselines["representation"] = representation_baselines(
            ctx, [m["latent_dim"] for m in card["models"].values()])
        card.setdefault("seconds", {}).setdefault("baselines", {})["representation"] = round(time.perf_counter() - t, 1)
        print(f"{args.dataset} baselines (PCA, pixels): {time.perf_counter() - t:.0f} s", flush=True)
    if "generation" in tasks:  # the scale of the Fréchet distance: real data against real data, and against noise
        t = time.perf_counter()
        real = ctx.test_features()
        g = torch.Generator().manual_seed(SEED)
        halves = torch.randperm(len(real), generator=g).numpy()  # random: MNIST's test set is ordered by writer group
        half = len(real) // 2
        noise = ctx.features(torch.rand((args.samples, 1, *test_x.shape[1:]), generator=g))
        train_sub = ctx.features(to_float(train_x[torch.randperm(len(train_x), generator=g)[:args.samples]]))
        baselines["generation"] = {
            "train_subset": dict(zip(("precision", "recall"), precision_recall(real, train_sub)),
                                 fd=frechet_distance_features(real, train_sub)),
            "test_half_vs_other_half": {"fd": frechet_distance_features(real[halves[:half]], real[halves[half:]])},
            "uniform_noise": dict(zip(("precision", "recall"), precision_recall(real, noise)),
                                  fd=frechet_distance_features(real, noise)),
        }
        card.setdefault("seconds", {}).setdefault("baselines", {})["generation"] = round(time.perf_counter() - t, 1)
    card.update(
        dataset=args.dataset,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        versions=versions(),
        classifier=None if factor_spec else {"folder": "classifier",
                                              "test_accuracy": read_metrics(folder / "classifier").get("test_accuracy")},
        protocol={"seed": SEED, "test_images": len(test_x), "train_images": len(train_x), "samples": args.samples,
                  "precision_recall_k": 3, "labels_per_class": args.labels_per_class, "label_draws": LABEL_DRAWS,
                  "noises": {k: list(v) for k, v in NOISES.items()}, "ood_images": args.ood_images,
                  "ood_k": args.ood_k, "impute_images": args.impute_images, "impute_steps": args.impute_steps,
                  "impute_chains": args.impute_chains, "interpolation_pairs": args.pairs,
                  "interpolation_points": INTERPOLATION_POINTS, "generation_draws": args.generation_draws,
                  "tie_rule": TIE_RULE, "tasks": __doc__.split("Tasks (TASKS below)")[1],
                  **({"disentanglement": {**dm.PROTOCOL, "seed": SEED, "representation": "posterior mean",
                                          "dci_n_estimators": 50}} if factor_spec else {})},
        verdicts=verdicts(card["models"]),
    )
    card.setdefault("seconds", {})["last_run"] = round(time.perf_counter() - t_all, 1)
    card["seconds"]["last_run_tasks"] = tasks
    card["seconds"]["threads"] = torch.get_num_threads()
    atomic_write_text(out_path, json.dumps(card, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out_path} in {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
