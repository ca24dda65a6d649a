"""Disentanglement metrics of a representation against known factors of variation, on numpy and scikit-learn.

Protocols follow disentanglement_lib's defaults (Locatello et al. 2019), each written into the result:
- MIG (Chen et al. 2018): codes and factors on N points; each code dimension discretized into 20 equal-width bins;
  the gap between the two largest mutual informations of each factor with a code dimension, over the factor's
  entropy, averaged over factors.
- SAP (Kumar et al. 2018): for each factor and code dimension, the test accuracy of a classifier (a linear SVM) on
  that one dimension; the gap between the two best dimensions, averaged over factors.
- DCI (Eastwood & Williams 2018): importances from gradient-boosted trees predicting each factor from the codes.
  Disentanglement: 1 - entropy (base #factors) of each dimension's importances, weighted by the dimension's share;
  completeness: 1 - entropy (base #dimensions) of each factor's importances, averaged; informativeness: the trees'
  mean test accuracy.
- β-VAE metric (Higgins et al. 2017) and FactorVAE metric (Kim & Mnih 2018) need new samples with one factor held
  fixed: `GroundTruth` draws factors and their observations, `represent` maps observations to codes. β-VAE: the
  mean absolute difference of the codes of 64 pairs that share one factor, fed to a logistic regression that names
  the factor (test accuracy). FactorVAE: codes divided by their std over 10,000 points (dimensions with variance
  < 0.05 dropped); for 64 points sharing one factor, the dimension of least variance votes for it; the accuracy of
  the majority vote per dimension on held-out votes.
Run on a checkpoint of a dataset with factors: `python -m training.disentanglement CHECKPOINT_DIR [...]` encodes every
image of the dataset once (the posterior mean, as disentanglement_lib's representation), draws each metric's points
from the full factor grid with seed 0, and writes a "disentanglement" block (figures, protocol, the mutual-information
matrix, seconds per metric) into each checkpoint's metrics.json.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

BINS = 20
BATCH = 64
PROTOCOL = {"mig": {"points": 10_000, "bins": BINS}, "sap": {"train": 10_000, "test": 5_000},
            "dci": {"train": 10_000, "test": 5_000, "model": "GradientBoostingClassifier"},
            "beta_vae": {"train": 10_000, "test": 5_000, "batch": BATCH},
            "factor_vae": {"train": 10_000, "test": 5_000, "batch": BATCH, "variance_points": 10_000,
                           "prune_below": 0.05}}


@dataclass
class GroundTruth:
    """A generative process with known factors: `sample(n, rng)` -> factor indices (n, K); `observe(factors)` ->
    what the representation reads (images, or anything `represent` takes); `counts` (K,): values per factor."""

    counts: tuple[int, ...]
    observe: Callable[[np.ndarray], np.ndarray]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(0, c, n) for c in self.counts], axis=1)


def discretize(codes: np.ndarray, bins: int = BINS) -> np.ndarray:
    """(N, D) -> (N, D) bin indices: `bins` equal-width bins per dimension (disentanglement_lib's histogram)."""
    out = np.zeros(codes.shape, np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram(codes[:, d], bins)[1]
        out[:, d] = np.digitize(codes[:, d], edges[:-1])
    return out


def mutual_info_matrix(codes: np.ndarray, factors: np.ndarray, bins: int = BINS) -> np.ndarray:
    """MI(code dim d; factor k) in nats, (D, K), codes discretized."""
    from sklearn.metrics import mutual_info_score

    z = discretize(codes, bins)
    return np.array([[mutual_info_score(factors[:, k], z[:, d]) for k in range(factors.shape[1])]
                     for d in range(z.shape[1])])


def entropies(factors: np.ndarray) -> np.ndarray:
    from sklearn.metrics import mutual_info_score

    return np.array([mutual_info_score(f, f) for f in factors.T])


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = BINS) -> dict:
    m = mutual_info_matrix(codes, factors, bins)
    top = np.sort(m, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros_like(top[0])
    gaps = (top[0] - second) / entropies(factors)
    return {"mig": float(gaps.mean()), "per_factor": gaps.tolist(), "mutual_info": m.tolist()}


def sap(codes: np.ndarray, factors: np.ndarray, test_codes: np.ndarray, test_factors: np.ndarray) -> dict:
    from sklearn.svm import LinearSVC

    d, k = codes.shape[1], factors.shape[1]
    score = np.zeros((d, k))
    for i in range(d):
        for j in range(k):
            clf = LinearSVC(C=0.01, dual=False).fit(codes[:, i:i + 1], factors[:, j])
            score[i, j] = (clf.predict(test_codes[:, i:i + 1]) == test_factors[:, j]).mean()
    top = np.sort(score, axis=0)[::-1]
    return {"sap": float((top[0] - top[1]).mean()) if d > 1 else float(top[0].mean()), "matrix": score.tolist()}


def _entropy(p: np.ndarray, base: int) -> np.ndarray:
    p = np.clip(p, 1e-11, None)
    return -(p * np.log(p)).sum(-1) / np.log(base)


def dci(codes: np.ndarray, factors: np.ndarray, test_codes: np.ndarray, test_factors: np.ndarray,
        n_estimators: int = 50) -> dict:
    from sklearn.ensemble import GradientBoostingClassifier

    d, k = codes.shape[1], factors.shape[1]
    importance, accuracy = np.zeros((d, k)), []
    for j in range(k):
        model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=0).fit(codes, factors[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        accuracy.append(float((model.predict(test_codes) == test_factors[:, j]).mean()))
    per_code = 1 - _entropy(importance / np.maximum(importance.sum(1, keepdims=True), 1e-11), k) if k > 1 \
        else np.ones(d)
    weight = importance.sum(1) / max(importance.sum(), 1e-11)
    per_factor = 1 - _entropy((importance / np.maximum(importance.sum(0, keepdims=True), 1e-11)).T, d) if d > 1 \
        else np.ones(k)
    return {"disentanglement": float((per_code * weight).sum()), "completeness": float(per_factor.mean()),
            "informativeness": float(np.mean(accuracy)), "importance": importance.tolist()}


def beta_vae(truth: GroundTruth, represent, rng: np.random.Generator, train: int = 10_000, test: int = 5_000,
             batch: int = BATCH) -> dict:
    from sklearn.linear_model import LogisticRegression

    def points(n: int) -> tuple[np.ndarray, np.ndarray]:
        x, y = [], []
        for _ in range(n):
            k = rng.integers(len(truth.counts))
            f1, f2 = truth.sample(batch, rng), truth.sample(batch, rng)
            f2[:, k] = f1[:, k]
            x.append(np.abs(represent(truth.observe(f1)) - represent(truth.observe(f2))).mean(0))
            y.append(k)
        return np.array(x), np.array(y)

    xtr, ytr = points(train)
    xte, yte = points(test)
    clf = LogisticRegression(max_iter=2000).fit(xtr, ytr)
    return {"beta_vae": float(clf.score(xte, yte)), "train_accuracy": float(clf.score(xtr, ytr))}


def factor_vae(truth: GroundTruth, represent, rng: np.random.Generator, train: int = 10_000, test: int = 5_000,
               batch: int = BATCH, variance_points: int = 10_000, prune_below: float = 0.05) -> dict:
    codes = represent(truth.observe(truth.sample(variance_points, rng)))
    scale = codes.std(0)
    active = codes.var(0) >= prune_below
    if not active.any():
        return {"factor_vae": 0.0, "active_dims": 0}
    k_factors = len(truth.counts)

    def votes(n: int) -> np.ndarray:
        out = np.zeros((codes.shape[1], k_factors), np.int64)
        for _ in range(n):
            k = rng.integers(k_factors)
            f = truth.sample(batch, rng)
            f[:, k] = f[0, k]
            z = represent(truth.observe(f)) / np.where(scale > 0, scale, 1)
            var = np.where(active, z.var(0), np.inf)
            out[int(np.argmin(var)), k] += 1
        return out

    tr, te = votes(train), votes(test)
    best = tr.argmax(1)  # each dimension's majority factor
    accuracy = te[np.arange(len(best)), best].sum() / max(te.sum(), 1)
    return {"factor_vae": float(accuracy), "active_dims": int(active.sum())}


# ---- scoring a representation of a whole factor grid -----------------------------------------------------------
def grid_truth(counts: tuple[int, ...]) -> GroundTruth:
    """Every combination of the factors once, in flat (C) order: an observation is the combination's index."""
    counts = tuple(int(c) for c in counts)
    return GroundTruth(counts, observe=lambda f: np.ravel_multi_index(tuple(np.asarray(f).T), counts))


def score(codes: np.ndarray, counts: tuple[int, ...], seed: int = 0, protocol: dict = PROTOCOL,
          dci_estimators: int = 50) -> dict:
    """The five metrics of a representation given as the codes of every grid image, (prod(counts), D), in flat
    order (dsprites.index_to_factors's). Each metric draws its own points from `seed`; returns figures, the
    mutual-information matrix (D, K, nats), the protocol and the seconds each metric took."""
    truth = grid_truth(counts)
    rng = np.random.default_rng(seed)

    def represent(index: np.ndarray) -> np.ndarray:
        return codes[index]

    def points(n: int) -> tuple[np.ndarray, np.ndarray]:
        f = truth.sample(n, rng)
        return represent(truth.observe(f)), f

    seconds, out = {}, {}
    t = time.perf_counter()
    z, f = points(protocol["mig"]["points"])
    m = mig(z, f, protocol["mig"]["bins"])
    out["mig"], out["mutual_info"], seconds["mig"] = m["mig"], m["mutual_info"], time.perf_counter() - t
    out["mig_per_factor"] = m["per_factor"]
    t = time.perf_counter()
    (z, f), (zt, ft) = points(protocol["sap"]["train"]), points(protocol["sap"]["test"])
    out["sap"], seconds["sap"] = sap(z, f, zt, ft)["sap"], time.perf_counter() - t
    t = time.perf_counter()
    (z, f), (zt, ft) = points(protocol["dci"]["train"]), points(protocol["dci"]["test"])
    d = dci(z, f, zt, ft, n_estimators=dci_estimators)
    out.update({f"dci_{k}": d[k] for k in ("disentanglement", "completeness", "informativeness")})
    seconds["dci"] = time.perf_counter() - t
    t = time.perf_counter()
    p = protocol["beta_vae"]
    out["beta_vae"] = beta_vae(truth, represent, rng, p["train"], p["test"], p["batch"])["beta_vae"]
    seconds["beta_vae"] = time.perf_counter() - t
    t = time.perf_counter()
    p = protocol["factor_vae"]
    fv = factor_vae(truth, represent, rng, p["train"], p["test"], p["batch"], p["variance_points"], p["prune_below"])
    out["factor_vae"], out["factor_vae_active_dims"] = fv["factor_vae"], fv.get("active_dims", 0)
    seconds["factor_vae"] = time.perf_counter() - t
    protocol = {**protocol, "dci": {**protocol["dci"], "n_estimators": dci_estimators}, "seed": seed,
                "representation": "posterior mean"}
    return {**out, "protocol": protocol, "seconds": {k: round(v, 1) for k, v in seconds.items()}}


METRIC_NAMES = {"mig": "MIG", "sap": "SAP", "dci_disentanglement": "DCI disentanglement",
                "dci_completeness": "DCI completeness", "dci_informativeness": "DCI informativeness",
                "beta_vae": "β-VAE metric", "factor_vae": "FactorVAE metric"}


def grid_codes(model, images: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Posterior means of every grid image (uint8 (N, S, S)), (N, D) float64."""
    import torch

    from training.data import to_float

    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = to_float(torch.from_numpy(images[i:i + batch]))
            out.append(model.encode(x).mean.double().numpy())
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> None:
    from training.cli import OneLineParser, fail

    prog = "python -m training.disentanglement"
    p = OneLineParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", nargs="+", help="checkpoint folders of a dataset with known factors (dSprites)")
    p.add_argument("--seed", type=int, default=0, help="seed of every metric's draws (default 0)")
    p.add_argument("--dci-estimators", type=int, default=50, help="boosting rounds of DCI's trees (default 50)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = p.parse_args(argv)
    if args.dci_estimators < 1:
        p.error("--dci-estimators must be >= 1")
    import torch

    from models import Autoencoder
    from models.checkpoint import CheckpointError, read_metrics, write_metrics
    from training.data import DataError, sources

    if args.threads:
        torch.set_num_threads(args.threads)
    grids: dict[str, tuple[np.ndarray, tuple[int, ...], list[str]]] = {}
    for folder in map(Path, args.checkpoints):
        t0 = time.perf_counter()
        try:
            model = Autoencoder.from_pretrained(folder).eval()
            metrics = read_metrics(folder)
            spec = metrics.get("dataset_info", {}).get("spec") or metrics.get("dataset", "")
            if spec not in grids:
                data = sources.read(spec) if sources.is_user_spec(spec) else None
                if data is None or data.factors is None:
                    raise DataError(f"{folder}: its dataset {spec or '(unknown)'} has no known factors of variation "
                                    "(dSprites has: train on --dataset dsprites)")
                counts = tuple(int(c) for c in data.factors.max(0) + 1)
                if len(data.images) != int(np.prod(counts)) or not (
                        np.ravel_multi_index(tuple(data.factors.T), counts) == np.arange(len(data.images))).all():
                    raise DataError(f"{spec}: the metrics need every combination of the factors once, in order")
                grids[spec] = (data.images, counts, data.factor_names)
        except (CheckpointError, DataError, sources.SourceError, ValueError) as e:
            fail(prog, str(e))
        images, counts, names = grids[spec]
        t1 = time.perf_counter()
        codes = grid_codes(model, images)
        encode_seconds = time.perf_counter() - t1
        result = score(codes, counts, args.seed, dci_estimators=args.dci_estimators)
        result["seconds"]["encode"] = round(encode_seconds, 1)
        result.update({"factor_names": names, "factor_counts": list(counts), "points_encoded": len(images),
                       "total_seconds": round(time.perf_counter() - t0, 1)})
        metrics["disentanglement"] = result
        write_metrics(folder, metrics)
        print(f"{folder}: " + ", ".join(f"{METRIC_NAMES[k]} {result[k]:.3f}" for k in METRIC_NAMES)
              + f" ({result['total_seconds']:.0f}s: " + ", ".join(f"{k} {v:.0f}s" for k, v in result["seconds"].items())
              + ")")


if __name__ == "__main__":
    main()
