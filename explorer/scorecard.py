"""Reading a scorecard.json (written by training/scorecard.py): the tables of docs/scorecard.md and the app's Scorecard tab.

Plain Python and numpy (pandas for the plots' frames, which Gradio brings): nothing here computes a figure.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TIE = 0.01  # a relative margin below this is called a tie


# ---- docs/scorecard.md's tables (tests check that it shows these) ---------------------------------
def fmt(v, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows]


def total_minutes(card: dict) -> float:
    """The compute time of every figure in the card: each model's tasks plus the baselines (seconds -> min)."""
    seconds = sum(sum(m.get("seconds", {}).values()) for m in card["models"].values())
    return (seconds + sum(card["seconds"].get("baselines", {}).values())) / 60


def verdict_rows(card: dict) -> list[list[str]]:
    """One row per task and latent size: the figure compared, every model's value, the winner and its margin."""
    rows = []
    for task, by_dim in card["verdicts"].items():
        for dim, v in sorted(by_dim.items(), key=lambda kv: -int(kv[0])):
            values = ", ".join(f"{n} {x:.4g}" for n, x in v["ranking"])
            if v.get("tie"):
                within = v.get("spread", 0.0) > TIE * max(abs(x) for _, x in v["ranking"][:2])
                verdict = f"tie (within the draws' spread, {v['spread']:.3g})" if within else f"tie (within {TIE:.0%})"
            else:
                verdict = f"**{v['winner']}**" + (f" by {v['margin']:.3g}" if "margin" in v else "") + (
                    f" ({v['ratio']:.2f}x)" if v.get("ratio") else "")
            rows.append([task, f"{dim}-D", f"{v['figure']} ({v['better']} is better)", values, verdict])
    return rows


def markdown(card: dict) -> str:
    """The scorecard of one dataset as markdown tables: verdicts first, then each task's figures."""
    models = card["models"]
    names = sorted(models, key=lambda n: (-models[n]["latent_dim"], n))
    judge = (f"classifier test accuracy {fmt(card['classifier'].get('test_accuracy'), 4)}" if card.get("classifier")
             else "no classifier: known factors instead")
    lines = [f"Scorecard of `{card['dataset']}` ({card['protocol']['test_images']} test images, seed "
             f"{card['protocol']['seed']}; {judge}; "
             f"computing every figure took {total_minutes(card):.1f} min, task by task, on "
             f"{card['seconds'].get('threads', '?')} thread(s)). Winner per task and latent size, from the figures:", ""]
    lines += table(["task", "latent", "figure", "values", "winner"], verdict_rows(card))
    if card["protocol"].get("tie_rule"):
        lines += ["", f"Ties: {card['protocol']['tie_rule']}."]
    have = lambda task: [n for n in names if task in models[n]["tasks"]]  # noqa: E731
    if have("generation"):
        base = card.get("baselines", {}).get("generation", {})
        rows = [[n, s, fmt(f["fd"], 2) + (f" ± {f['fd_std']:.2f}" if "fd_std" in f else ""), fmt(f["precision"]),
                 fmt(f["recall"])]
                for n in have("generation") for s, f in models[n]["tasks"]["generation"].items() if s != "best"]
        rows += [[f"*{k}*", "–", fmt(f["fd"], 2), fmt(f.get("precision")), fmt(f.get("recall"))] for k, f in base.items()]
        draws = card["protocol"].get("generation_draws", 1)
        lines += ["", "Generation (Fréchet distance and precision/recall, k = 3, in the classifier's features"
                      + (f"; mean ± std over {draws} sample draws" if draws > 1 else "") + "):", ""]
        lines += table(["model", "sampler", "FD", "precision", "recall"], rows)
    if have("ood"):
        pairs = sorted({p for n in have("ood") for p in models[n]["tasks"]["ood"]["pairs"]})
        rows = [[n, s] + [fmt(models[n]["tasks"]["ood"]["pairs"][p][s]["auroc"]) + " / "
                          + fmt(models[n]["tasks"]["ood"]["pairs"][p][s]["fpr_at_95_tpr"], 2) for p in pairs]
                for n in have("ood") for s in models[n]["tasks"]["ood"]["scores"]]
        lines += ["", f"Out-of-distribution detection, AUROC / FPR at 95 % TPR (a random "
                      f"{card['protocol'].get('ood_images')} images of each set, IS-NLL with k = {card['protocol'].get('ood_k')}):", ""]
        lines += table(["model", "score"] + pairs, rows)
        nal = [(n, models[n]["tasks"]["ood"].get("other_dataset_nll_below_test_median")) for n in have("ood")]
        nal = [(n, v) for n, v in nal if v is not None]
        if nal:
            lines += ["", "Share of the other dataset's images that get a *lower* NLL (look more likely) than the median "
                      "test image: " + ", ".join(f"{n} {v:.1%}" for n, v in nal) + "."]
    if have("denoising"):
        noises = list(models[have("denoising")[0]]["tasks"]["denoising"])
        rows = [[n] + [fmt(models[n]["tasks"]["denoising"][k]["mse_to_clean"], 4) for k in noises] for n in have("denoising")]
        rows.append(["*noisy input*"] + [fmt(models[have("denoising")[0]]["tasks"]["denoising"][k]["noisy_input_mse"], 4)
                                         for k in noises])
        lines += ["", "Denoising, MSE per pixel of the reconstruction to the clean image:", ""]
        lines += table(["model"] + noises, rows)
    if have("representation"):
        reps = {n: models[n]["tasks"]["representation"] for n in have("representation")}
        reps.update({f"*{k}*": v for k, v in card.get("baselines", {}).get("representation", {}).items()})
        per = card["protocol"].get("labels_per_class")
        rows = [[n] + [f"{fmt(r[c]['few_labels_mean'])} ± {fmt(r[c]['few_labels_std'])}" for c in ("knn5", "logreg")]
                + [fmt(r[c]["all_labels"]) for c in ("knn5", "logreg")] for n, r in reps.items()]
        lines += ["", f"Representation, test accuracy from the latent means ({per} labels per class: mean ± std over "
                      f"{card['protocol'].get('label_draws')} draws; and all labels):", ""]
        lines += table(["features", f"kNN-5, {per}/class", f"logreg, {per}/class", "kNN-5, all", "logreg, all"], rows)
    if have("imputation"):
        masks = list(models[have("imputation")[0]]["tasks"]["imputation"]["masks"])
        first = models[have("imputation")[0]]["tasks"]["imputation"]
        rows = [[f"*{k.replace('_', ' ')}*"] + [fmt(first["masks"][mk]["mse_missing"][k], 4) for mk in masks]
                + [fmt(first["mean_over_masks"][k], 4),
                   fmt(float(np.mean([first["masks"][mk]["accuracy"][k] for mk in masks])))]
                for k in ("zero_fill", "mean_fill")]
        for n in have("imputation"):
            imp = models[n]["tasks"]["imputation"]
            for k in imp["mean_over_masks"]:
                if k in ("zero_fill", "mean_fill"):
                    continue
                acc = np.mean([imp["masks"][mk]["accuracy"][k] for mk in masks])
                rows.append([f"{n} {k.replace('_', ' ')}"] + [fmt(imp["masks"][mk]["mse_missing"][k], 4) for mk in masks]
                            + [fmt(imp["mean_over_masks"][k], 4), fmt(float(acc))])
        lines += ["", f"Imputation, MSE per missing pixel ({first['n_images']} test images, {first['steps']} steps, "
                      f"{first['chains']} chains per VAE sampler; *single*: one chain, *mean*: the mean of the chains). "
                      f"Last column: the classifier's accuracy on the filled images, averaged over masks (clean images: "
                      f"{fmt(first['clean_accuracy'])}):", ""]
        lines += table(["fill"] + masks + ["mean", "accuracy"], rows)
    if have("interpolation"):
        rows = [[n] + [fmt(models[n]["tasks"]["interpolation"].get(k)) for k in
                       ("mean_distance", "mean_max_distance", "max_distance", "off_class_fraction",
                        "paths_with_off_class_point", "unsure_fraction")] for n in have("interpolation")]
        first = models[have("interpolation")[0]]["tasks"]["interpolation"]
        lines += ["", f"Interpolation on linear paths ({first['pairs']} random test pairs, {first['points_per_path']} "
                      "interior points each): normalized distance to the nearest atlas code (1 = the median gap between "
                      "atlas codes), the share of points the classifier calls, p > 0.9, a class neither endpoint is, and the "
                      "share it cannot call (no class above 0.5):", ""]
        lines += table(["model", "mean distance", "mean of path max", "max", "off-class points", "paths with one",
                        "unsure points"], rows)
    if have("disentanglement"):
        from training.disentanglement import METRIC_NAMES

        def minutes(s):
            return "–" if s is None else f"{s / 60:.1f}"

        rows = []
        for n in have("disentanglement"):
            d, r = models[n]["tasks"]["disentanglement"], models[n]["tasks"].get("reconstruction", {})
            rows.append([n] + [fmt(d[k]) for k in METRIC_NAMES] + [
                fmt(r.get("mse_per_pixel"), 4), fmt(d.get("kl"), 2), minutes(d.get("train_seconds")),
                minutes(sum(d.get("metric_seconds", {}).values()) or None)])
        p = card["protocol"].get("disentanglement", {})
        lines += ["", "Disentanglement against the known factors (higher is better; disentanglement_lib's protocol: "
                      f"MIG on {p.get('mig', {}).get('points', '?')} points with {p.get('mig', {}).get('bins', '?')}-bin "
                      "histograms, SAP, DCI (gradient-boosted trees), the β-VAE and FactorVAE metrics on 10,000 "
                      "training and 5,000 test points; the posterior mean as the representation). MSE per pixel "
                      "and KL (nats) on the test split; minutes to train (one CPU thread) and to compute the metrics:", ""]
        lines += table(["model", *METRIC_NAMES.values(), "MSE/pixel", "KL", "train min", "metrics min"], rows)
    if have("reconstruction"):
        rows = [[n, fmt(models[n]["tasks"]["reconstruction"]["mse_per_pixel"], 4),
                 fmt(models[n]["tasks"]["reconstruction"]["nats_per_image"], 2)] for n in have("reconstruction")]
        lines += ["", "Reconstruction (the evaluator's figures):", ""] + table(["model", "MSE/pixel", "nats/image"], rows)
    return "\n".join(lines) + "\n"


def readme_block(dataset: str) -> tuple[str, str]:
    return f"<!-- SCORECARD:{dataset} -->", f"<!-- /SCORECARD:{dataset} -->"




# ---- the app's Scorecard tab: frames for Gradio's native plots ----------------------------------------
def load(path: Path) -> dict | None:
    """The scorecard.json at `path`, or None if there is none (or it cannot be read)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def verdict_markdown(card: dict) -> str:
    head = (f"Computed by `python -m training.scorecard --dataset {card['dataset']}` on {card.get('created', '?')} "
            f"({total_minutes(card):.1f} min on {card['seconds'].get('threads', '?')} thread(s)); nothing here is "
            "computed at request time. **Bold**: the winner of each task and latent size, from the figures.\n\n")
    return head + "\n".join(table(["task", "latent", "figure", "values", "winner"], verdict_rows(card)))


def task_frame(card: dict, verdict: str):
    """The figure behind one verdict, for every model: columns model, value, latent."""
    import pandas as pd

    rows = [{"model": name, "value": float(value), "latent": f"{dim}-D"}
            for dim, v in card["verdicts"].get(verdict, {}).items() for name, value in v["ranking"]]
    return pd.DataFrame(rows, columns=["model", "value", "latent"])


# The OOD sets as the app offers them: the same choices for every dataset ("other_dataset" is whichever real
# dataset the scorecard paired with this one; the others are made from the test images).
OOD_CHOICES = {"other_dataset": "the other dataset", "inverted": "inverted test images",
               "rotated_90": "test images rotated by 90°", "uniform_noise": "uniform noise"}


def ood_pairs(card: dict) -> list[str]:
    return sorted({p for m in card["models"].values() for p in m["tasks"].get("ood", {}).get("pairs", {})})


def pair_key(card: dict, choice: str) -> str:
    """The scorecard's name of an OOD set chosen in the app (one of OOD_CHOICES, or a pair's own name)."""
    pairs = ood_pairs(card)
    if choice == "other_dataset":
        others = [p for p in pairs if p not in OOD_CHOICES]
        if others:
            return others[0]
    elif choice in pairs:
        return choice
    raise ValueError(f"the scorecard of {card.get('dataset')} has no OOD set {choice!r}; it has {pairs}.")


def roc_frame(card: dict, choice: str):
    """ROC curves of every model and score against one OOD set: columns fpr, tpr, curve ('model: score, AUROC')."""
    import pandas as pd

    pair = pair_key(card, choice)
    rows = []
    for name, m in card["models"].items():
        for score, f in m["tasks"].get("ood", {}).get("pairs", {}).get(pair, {}).items():
            if "roc" in f:
                curve = f"{name}: {score} ({f['auroc']:.3f})"
                rows += [{"fpr": x, "tpr": y, "curve": curve} for x, y in zip(f["roc"]["fpr"], f["roc"]["tpr"])]
    return pd.DataFrame(rows, columns=["fpr", "tpr", "curve"])


def imputation_frame(card: dict):
    """Missing-pixel MSE per mask of the baselines and each model's best fills: columns mask, mse, fill."""
    import pandas as pd

    rows, baselines_done = [], False
    for name, m in sorted(card["models"].items(), key=lambda kv: (-kv[1]["latent_dim"], kv[0])):
        imp = m["tasks"].get("imputation")
        if not imp:
            continue
        for mask, f in imp["masks"].items():
            for method, mse in f["mse_missing"].items():
                if method in ("zero_fill", "mean_fill"):
                    if not baselines_done:
                        rows.append({"mask": mask, "mse": mse, "fill": method.replace("_", " ")})
                elif not method.endswith("_single"):
                    rows.append({"mask": mask, "mse": mse, "fill": f"{name} {method.replace('_', ' ')}"})
        baselines_done = True
    return pd.DataFrame(rows, columns=["mask", "mse", "fill"])


# ---- "What do you want to do?": the Scorecard tab's answer first ---------------------------------------
# goal -> (its verdict, what the winner does best, the figure in words)
GOALS = {
    "generate": ("generation (prior)", "its prior samples are the closest to real images",
                 "Fréchet distance of prior samples to the test images"),
    "interpolate": ("interpolation (holes)", "the fewest of its interpolation midpoints look like no class",
                    "share of midpoints off every class"),
    "detect anomalies": ("ood (other dataset)", "it tells test images from the other dataset's best",
                         "AUROC, test images vs the other dataset"),
    "fill in missing pixels": ("imputation (best method)", "its fills of hidden pixels are the closest",
                               "MSE on the hidden pixels"),
    "denoise": ("denoising", "its reconstructions of noisy images are the closest to the clean ones",
                "MSE to the clean image (Gaussian noise, σ 0.5)"),
    "classify with few labels": ("representation (few labels)", "a classifier on its codes is the most accurate",
                                 "accuracy of logistic regression on the codes, few labels"),
    "reconstruct": ("reconstruction", "its reconstructions are the closest", "MSE per pixel"),
}


def contenders(card: dict, goal: str) -> tuple[str, str] | None:
    """The recommended model and the runner-up for a goal (the largest latent size measured), as decision() names
    them; None when the card has no figures for it or only one model."""
    by_dim = card["verdicts"].get(GOALS[goal][0]) if goal in GOALS else None
    if not by_dim:
        return None
    ranking = ranked(by_dim[max(by_dim, key=int)])
    return (ranking[0][0], ranking[1][0]) if len(ranking) > 1 else None


def ranked(verdict: dict) -> list[tuple[str, float]]:
    """A verdict's (model, figure) pairs, best first, sorted here from the figures themselves."""
    return sorted(((n, float(x)) for n, x in verdict["ranking"]), key=lambda nx: nx[1],
                  reverse=verdict["better"] == "higher")


def decision(card: dict, goal: str, titles: dict[str, str] | None = None) -> str:
    """The answer for one goal, in words: the recommended model and the runner-up with the deciding figure (the
    largest latent size the card measured), then the plain AE against the plain VAE of that size."""
    if goal not in GOALS:
        raise ValueError(f"goal must be one of {list(GOALS)}, got {goal!r}.")
    task, best_at, figure = GOALS[goal]
    by_dim = card["verdicts"].get(task)
    if not by_dim:
        return f"The scorecard has no {task!r} figures."
    dim = max(by_dim, key=int)
    v = by_dim[dim]
    title = lambda n: (titles or {}).get(n) or n.upper()  # noqa: E731
    lower = v["better"] == "lower"
    ranking = ranked(v)
    (w, vw), (r, vr) = ranking[0], ranking[min(1, len(ranking) - 1)]

    def compare(a: float, b: float) -> str:
        """How much better the winner's figure a is than b, in words."""
        if lower:
            x, what = (b / a if a > 0 else float("inf")), "lower"
        elif 0 <= b <= a <= 1:  # a share of right answers (AUROC, accuracy): compare the errors
            x, what = ((1 - b) / (1 - a) if a < 1 else float("inf")), "fewer errors"
        else:
            x, what = (a / b if b > 0 else float("inf")), "higher"
        return f"{x:.1f}× {what}" if x >= 1.1 else f"slightly {'lower' if lower else 'higher'}"

    if v.get("tie"):
        lines = [f"**A tie between {title(w)} and {title(r)}**: {figure} {vw:.4g} and {vr:.4g}, within "
                 f"the figures' own spread (the scorecard's tie rule). Either will do."]
    else:
        lines = [f"**Recommended: {title(w)}**: {best_at}. {figure[0].upper() + figure[1:]}: **{vw:.4g}** against {vr:.4g} for "
                 f"the runner-up, {title(r)} ({compare(vw, vr)})."]
    values = dict(ranking)
    ae, vae = f"ae-{dim}", f"vae-{dim}"
    if ae in values and vae in values:
        a, b = values[ae], values[vae]
        better = vae if (b < a if lower else b > a) else ae
        lines.append(f"AE or VAE? At {dim}-D, {title(ae)} {a:.4g} and {title(vae)} {b:.4g} ({v['better']} is "
                     f"better): **{title(better)}**.")
    lines.append(f"{len(values)} models of {dim}-D measured; every figure is in the table below.")
    return "\n\n".join(lines)


# ---- the latent-size sweep (training/sweep.py, sweep.json) ---------------------------------------
SWEEP_DEFAULT = "val_loss"


def sweep_figures(sweep: dict) -> list[tuple[str, str]]:
    """(label, key) of each figure of a sweep, for a dropdown."""
    return [(sweep["figures"][key]["label"], key) for key in figure_order(sweep)]


def figure_order(sweep: dict) -> list[str]:
    return sweep.get("figure_order") or list(sweep["figures"])


def sweep_frame(sweep: dict, figure: str):
    """One figure of the sweep against the latent size: columns log2_d, d, value, model (one line per kind)."""
    import math

    import pandas as pd

    if figure not in sweep["figures"]:
        raise ValueError(f"figure must be one of {list(sweep['figures'])}, got {figure!r}.")
    rows = [{"log2_d": math.log2(r["latent_dim"]), "d": r["latent_dim"], "value": float(r[figure]),
             "model": r["kind"].upper()}
            for r in sorted(sweep["rows"], key=lambda r: (r["kind"], r["latent_dim"])) if r.get(figure) is not None]
    return pd.DataFrame(rows, columns=["log2_d", "d", "value", "model"])


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, int):
        return str(v)
    return f"{v:.4f}" if abs(v) < 1 else f"{v:.1f}"


def sweep_markdown(sweep: dict) -> str:
    """The sweep's table (one row per kind and d) and the budget check, as markdown."""
    p = sweep["protocol"]
    figs = figure_order(sweep)
    head = (f"Computed by `python -m training.sweep --dataset {sweep['dataset']}` ({sweep['seconds'] / 60:.0f} min on "
            f"{p['threads']} thread(s)): one AE and one VAE per latent size d, the same MLP backbone "
            f"({p['recipe']['hidden_layers']} × {p['recipe']['hidden_dim']} hidden units) and recipe, {p['epochs']} "
            f"epochs each. Test figures on {p['eval_images']:,} test images; the held-out loss is on the validation "
            f"split of the training set, the seed's cross-validation.\n\n")
    lines = ["| model | d | " + " | ".join(sweep["figures"][f]["label"] for f in figs) + " |",
             "|" + "---|" * (len(figs) + 2)]
    for r in sorted(sweep["rows"], key=lambda r: (r["kind"], r["latent_dim"])):
        lines.append(f"| {r['kind'].upper()} | {r['latent_dim']} | " + " | ".join(_fmt(r.get(f)) for f in figs) + " |")
    text = head + "\n".join(lines)
    check = sweep.get("budget_check")
    if check:
        dims = ", ".join(map(str, check["latent_dims"]))
        stable = [sweep["figures"][f]["label"] for f in figs if f in check["stable_figures"]]
        unstable = [sweep["figures"][f]["label"] for f in figs if f in check["unstable_figures"]]
        text += (f"\n\n**Budget check** (d = {dims} trained for {check['epochs'][0]} and {check['epochs'][-1]} epochs): "
                 f"each kind's ranking of those d's and the AE–VAE order at each stay the same for {len(stable)} of "
                 f"{len(stable) + len(unstable)} figures" + (f"; they change for: {', '.join(unstable)}." if unstable
                                                             else "."))
    return text


# ---- few labels (training/semisupervised.py, semisupervised.json) ----------------------------------
def semisupervised_rows(result: dict) -> list[tuple[str, float]]:
    """(method, test error) of every method of a semisupervised.json, best first, with the published figures."""
    rows = sorted(result["test_error"].items(), key=lambda kv: kv[1])
    pub = result.get("published", {})
    rows += [(f"published: {k.upper().replace('M1M2', 'M1+M2')} (Kingma et al. 2014)", pub[k])
             for k in ("m2", "m1m2") if k in pub]
    return rows


SEMISUP_NAMES = {"m1m2": "M1+M2: M2 on draws of the VAE-16's posterior", "m2": "M2 on pixels"}


def semisupervised_markdown(result: dict) -> str:
    best = result["best"]
    lines = [f"Test error with **{result['labelled']} labels** ({result['labels_per_class']} per class, a seeded draw; "
             "every other training image unlabelled), computed by `python -m training.semisupervised`. The "
             f"best: {SEMISUP_NAMES.get(best['model'], best['model'])} at {best['test_error']:.2%} "
             f"(the goal, the paper's M1+M2: {best['goal']:.1%}).\n",
             "| method | test error |", "|---|---|"]
    for name, err in semisupervised_rows(result):
        lines.append(f"| {SEMISUP_NAMES.get(name, name)} | {err:.2%} |")
    return "\n".join(lines)
