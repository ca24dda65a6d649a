"""The scorecard's metrics, as plain functions over numpy arrays (features, scores), each with its source.

- Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017, "GANs trained by a
  two time-scale update rule...", eq. 6; FID when the features are Inception's).
- Improved precision and recall (Kynkäänniemi et al. 2019, "Improved precision and recall metric for
  assessing generative models", sec. 2, k-NN balls with k = 3).
- AUROC and FPR at 95 % TPR for out-of-distribution detection, the OOD set as the positive class
  (scikit-learn's roc_curve / roc_auc_score).
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features -> mean (D,), covariance (D, D) (unbiased, as in the FID reference code)."""
    f = np.asarray(features, np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)).

    Tr((cov1 cov2)^(1/2)) = Tr((A cov2 A)^(1/2)) with A = cov1^(1/2): the eigenvalues of cov1 cov2 are
    those of the symmetric PSD matrix A cov2 A, so no complex square root of a non-symmetric matrix
    is needed (scipy.linalg.sqrtm's route, which the tests use as the reference)."""
    a = _psd_sqrt(np.asarray(cov1, np.float64))
    m = a @ np.asarray(cov2, np.float64) @ a
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt)


def frechet_distance_features(f1: np.ndarray, f2: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(f1), *gaussian_stats(f2))


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0)


def knn_radii(features: np.ndarray, k: int = 3, chunk: int = 2048) -> np.ndarray:
    """Distance of each point to its k-th nearest other point of the same set."""
    f = np.asarray(features, np.float64)
    out = np.empty(len(f))
    for i in range(0, len(f), chunk):
        d = _sq_dists(f[i: i + chunk], f)
        d[np.arange(len(d)), np.arange(i, i + len(d))] = np.inf  # not itself
        out[i: i + chunk] = np.sqrt(np.partition(d, k - 1, axis=1)[:, k - 1])
    return out


def manifold_coverage(points: np.ndarray, reference: np.ndarray, radii: np.ndarray, chunk: int = 2048) -> float:
    """Fraction of `points` inside at least one ball (reference[j], radii[j])."""
    p, r = np.asarray(points, np.float64), np.asarray(reference, np.float64)
    inside = 0
    for i in range(0, len(p), chunk):
        d = np.sqrt(_sq_dists(p[i: i + chunk], r))
        inside += int((d <= radii[None, :]).any(1).sum())
    return inside / len(p)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Precision: share of generated samples on the real manifold; recall: share of real samples on the
    generated manifold. Each manifold is the union of k-NN balls around its points."""
    precision = manifold_coverage(fake, real, knn_radii(real, k))
    recall = manifold_coverage(real, fake, knn_radii(fake, k))
    return precision, recall


def ood_metrics(scores_in: np.ndarray, scores_out: np.ndarray) -> dict[str, float]:
    """AUROC and FPR at 95 % TPR for a score that should be higher on the OOD (positive) set."""
    y = np.r_[np.zeros(len(scores_in)), np.ones(len(scores_out))]
    s = np.r_[np.asarray(scores_in, np.float64), np.asarray(scores_out, np.float64)]
    fpr, tpr, _ = roc_curve(y, s)
    return {"auroc": float(roc_auc_score(y, s)), "fpr_at_95_tpr": float(fpr[np.searchsorted(tpr, 0.95)])}


def roc_points(scores_in: np.ndarray, scores_out: np.ndarray, n: int = 51) -> dict[str, list[float]]:
    """The ROC curve (OOD = positive) at n evenly spaced false-positive rates: the best TPR at each FPR."""
    y = np.r_[np.zeros(len(scores_in)), np.ones(len(scores_out))]
    s = np.r_[np.asarray(scores_in, np.float64), np.asarray(scores_out, np.float64)]
    fpr, tpr, _ = roc_curve(y, s)
    grid = np.linspace(0, 1, n)
    best = tpr[np.searchsorted(fpr, grid, side="right") - 1]  # roc_curve's fpr is sorted; fpr[0] = 0
    return {"fpr": grid.round(4).tolist(), "tpr": best.round(4).tolist()}
