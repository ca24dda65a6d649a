"""The Diagnostics tab: is a model healthy? Training curves, KL per latent dimension, active units and a
posterior-collapse verdict with the numbers behind it, from metrics.json and the atlas codes (numpy and pandas
only: no torch, no model call).

Definitions (the evaluator's, training/evaluate.py):
- KL: the model's own KL(q(z|x) || p(z)), the one in its ELBO (metrics.json eval.kl).
- KL per dimension: E_x KL(q(z_d|x) || p(z_d)) in nats, the d-th marginals of the posterior and of the model's own
  prior (metrics.json eval.marginal_kl_per_dim; without it, the closed form on the atlas posteriors where one
  exists: a Gaussian posterior with the N(0, I) prior). A dimension with less than COLLAPSED_KL = 0.01 nats stays
  where the prior puts it whatever x is: it carries (almost) no information about x, collapsed. For N(0, I) and a
  Gaussian posterior the dimensions add up to the KL; for a learned prior or a flow they need not.
- Active units (Burda et al. 2016): dimensions whose posterior mean varies over the data, Var_x(E[z_d|x]) > 0.01.
Verdict: *collapsed* when at least half of the dimensions are collapsed (or the whole KL is under 0.1 nats);
*partly collapsed* when some are (a VAE often leaves a few dimensions unused: worth knowing, not always a fault);
*healthy* otherwise. An AE has no KL: its verdict reads the spread of its codes instead.
"""
from __future__ import annotations

import shlex

import numpy as np

COLLAPSED_KL = 0.01  # nats
ACTIVE_VARIANCE = 0.01
CURVES = {"train_loss": "train loss", "val_loss": "validation loss", "train_recon": "train reconstruction",
          "val_recon": "validation reconstruction", "train_kl": "train KL", "val_kl": "validation KL"}


def curves_frame(metrics: dict):
    """Per-epoch loss terms of metrics.json's history: columns epoch, value, series (long format for a LinePlot)."""
    import pandas as pd

    rows = [{"epoch": int(h["epoch"]), "value": float(h[k]), "series": label}
            for h in metrics.get("history", []) for k, label in CURVES.items()
            if k in h and h[k] is not None and np.isfinite(h[k])]
    return pd.DataFrame(rows, columns=["epoch", "value", "series"])


def factorized(config: dict) -> bool:
    """A Gaussian posterior with the N(0, I) prior: the KL splits into its dimensions, in closed form."""
    return config.get("prior", "standard") == "standard" and config.get("flow", "none") == "none"


def dimension_kl(config: dict, metrics: dict, mean: np.ndarray, std: np.ndarray | None) -> np.ndarray | None:
    """A VAE's KL per dimension (D,): the evaluator's marginal KL, else the closed form on the atlas posteriors
    (mean, std (N, D)) where one exists, else None (then run `python -m training.evaluate` on the model)."""
    values = metrics.get("eval", {}).get("marginal_kl_per_dim")
    if values is not None and len(values) == mean.shape[1]:
        return np.asarray(values, np.float64)
    if std is None or not factorized(config):
        return None
    mean, std = mean.astype(np.float64), std.astype(np.float64)
    return (0.5 * (mean**2 + std**2 - 1.0 - 2 * np.log(std))).mean(0)  # Kingma & Welling 2014, Appendix B


def model_kl(config: dict, metrics: dict, kl_per_dim) -> float | None:
    """The model's own KL (the ELBO's term, metrics.json eval.kl), else the sum of its dimensions where they add up."""
    kl = metrics.get("eval", {}).get("kl")
    if kl is not None:
        return float(kl)
    return float(np.sum(kl_per_dim)) if kl_per_dim is not None and factorized(config) else None


def kl_frame(kl_per_dim, codes: np.ndarray):
    """One bar per latent dimension: its KL (a VAE) or its code variance (an AE); columns dim, value, status."""
    import pandas as pd

    if kl_per_dim is not None:
        values = np.asarray(kl_per_dim, np.float64)
        status = np.where(values < COLLAPSED_KL, "collapsed (< 0.01 nats)", "carries information")
    else:
        values = np.var(codes.astype(np.float64), axis=0)
        status = np.where(values <= ACTIVE_VARIANCE, "unused (variance ≤ 0.01)", "used")
    width = len(str(len(values) - 1))  # z00..z15: the plot sorts its x labels as text
    return pd.DataFrame({"dim": [f"z{d:0{width}d}" for d in range(len(values))], "value": values, "status": status})


def verdict(name: str, title: str, is_vae: bool, kl_per_dim, codes: np.ndarray, metrics: dict,
            kl_total: float | None = None) -> dict:
    """The collapse verdict of one model and the numbers behind it: `kl_per_dim` (dimension_kl) and the model's
    own KL `kl_total` (model_kl; None: the sum of the dimensions)."""
    d = codes.shape[1]
    active = int((np.var(codes.astype(np.float64), axis=0) > ACTIVE_VARIANCE).sum())
    out = {"name": name, "title": title, "dims": d, "active_units": active, "remedies": []}
    if not is_vae:
        out.update(state="not applicable (deterministic AE)", collapsed=False, n_collapsed=0, kl_total=None,
                   text=f"{title} is a deterministic AE: no KL, no posterior to collapse. {active} of {d} code "
                        f"dimensions vary over the data (variance > {ACTIVE_VARIANCE}).")
        return out
    if kl_per_dim is None:
        out.update(state="not measured", collapsed=False, n_collapsed=0, kl_total=kl_total,
                   text=f"**{title}:** its KL per dimension is not in metrics.json; measure it with "
                        f"`python -m training.evaluate checkpoints/<dataset>/{name}`. {active} of {d} units are "
                        f"active (Var_x E[z|x] > {ACTIVE_VARIANCE}).")
        return out
    kl = np.asarray(kl_per_dim, np.float64)
    n_collapsed = int((kl < COLLAPSED_KL).sum())
    total = float(kl.sum()) if kl_total is None else float(kl_total)
    if n_collapsed * 2 >= d or total < 0.1:
        state = "collapsed"
    elif n_collapsed:
        state = "partly collapsed"
    else:
        state = "healthy"
    out.update(state=state, collapsed=state == "collapsed", n_collapsed=n_collapsed, kl_total=total)
    text = (f"**{title}: {state}.** {n_collapsed} of {d} dimensions carry < {COLLAPSED_KL} nats "
            f"(KL(q(z_d|x) ‖ p(z_d)) of each dimension's marginals, {kl.min():.3f}..{kl.max():.3f}); the model's KL "
            f"is {total:.2f} nats; {active} of {d} units are active (Var_x E[z|x] > {ACTIVE_VARIANCE}).")
    if state == "partly collapsed":
        text += (" A few unused dimensions are common (the VAE needs no more to explain the data); many mean the "
                 "decoder ignores z.")
    if state != "healthy":
        out["remedies"] = remedies(metrics)
        text += "\n\nRemedies, and the training command that applies them:\n" + "\n".join(
            f"- {r}" for r in out["remedies"]) + f"\n\n```bash\n{retrain_command(metrics, name)}\n```"
    out["text"] = text
    return out


def remedies(metrics: dict) -> list[str]:
    tc, mc = metrics.get("train_config", {}), metrics.get("model_config", {})
    out = []
    beta = float(tc.get("beta", 1.0))
    if beta > 1:
        out.append(f"a smaller β (trained with β = {beta:g}; β = 1 is the ELBO): `--beta 1`")
    warm = int(tc.get("kl_warmup_steps", 0))
    out.append(f"KL warm-up: anneal the KL weight from 0 over the first steps (now {warm}): "
               f"`--kl-warmup-steps {max(2 * warm, 2000)}`")
    if mc.get("prior", "standard") == "standard" and mc.get("flow", "none") == "none":
        out.append(f"free bits (Kingma et al. 2016): no KL penalty below a floor per dimension (now "
                   f"{float(tc.get('free_bits', 0.0)):g}): `--free-bits 0.1`")
    return out


def retrain_command(metrics: dict, name: str) -> str:
    """`python -m training.train ...` with the model's own settings (metrics.json) and the remedies applied."""
    tc, mc = dict(metrics.get("train_config", {})), dict(metrics.get("model_config", {}))
    if not tc or not mc:
        return f"# {name}: metrics.json has no training settings to rebuild the command from"
    if float(tc.get("beta", 1.0)) > 1:
        tc["beta"] = 1.0
    tc["kl_warmup_steps"] = max(2 * int(tc.get("kl_warmup_steps", 0)), 2000)
    if mc.get("prior", "standard") == "standard" and mc.get("flow", "none") == "none":
        tc["free_bits"] = 0.1
    tc["out"] = f"{tc.get('out', name)}-retrained"
    return command_line(tc, mc)


def command_line(tc: dict, mc: dict) -> str:
    """`python -m training.train ...` with these train and model settings (dataclasses.asdict of TrainConfig and
    ModelConfig, or metrics.json's train_config and model_config)."""
    skip = {"resume", "device", "threads"}
    flags = []
    for key, value in [*tc.items(), *mc.items()]:
        if key in skip or value in ("", None):
            continue
        flags += [f"--{key.replace('_', '-')}", str(value).lower() if isinstance(value, bool) else str(value)]
    return "python -m training.train " + " ".join(shlex.quote(f) for f in flags)


def summary_markdown(verdicts: list[dict]) -> str:
    lines = ["| model | verdict | dimensions < 0.01 nats | KL (nats) | active units |", "|---|---|---|---|---|"]
    for v in verdicts:
        kl = f"{v['kl_total']:.2f}" if v["kl_total"] is not None else "—"
        n = f"{v['n_collapsed']} of {v['dims']}" if v["kl_total"] is not None else "—"
        lines.append(f"| {v['title']} | {v['state']} | {n} | {kl} | {v['active_units']} of {v['dims']} |")
    return "\n".join(lines)
