"""The Scorecard, Anomaly and Impute tabs through the API of the launched app (tests/conftest.py): values, not shapes."""
from __future__ import annotations

import json

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from explorer.bundle import checkpoint_root


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def frame(plot: dict) -> list[dict]:
    """A native plot's value (columns + rows) as a list of row dicts."""
    return [dict(zip(plot["columns"], row)) for row in plot["data"]]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, str]:
    """A digit and a piece of clothing, from the shipped atlases, as PNG files."""
    out = {}
    for key, index in (("mnist", 7), ("fashion-mnist", 3)):
        with np.load(checkpoint_root() / key / "atlas.npz") as f:
            p = tmp_path_factory.mktemp("img") / f"{key}.png"
            Image.fromarray(f["images"][index]).save(p)
            out[key] = str(p)
    return out


def test_new_endpoints_are_named(client):
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {"/scorecard", "/scorecard_task", "/scorecard_roc", "/anomaly", "/other_dataset_image", "/impute",
            "/impute_on_change", "/editor_background"} <= names


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_scorecard_answers_what_do_you_want_to_do(client, dataset):
    """Each goal names the best model of the largest latent size, computed here from the card's own figures (the
    lowest or highest value, not its stored winner), the runner-up's figure, and the plain AE against the VAE."""
    from explorer.scorecard import GOALS

    card = json.loads((checkpoint_root() / dataset / "scorecard.json").read_text())
    for goal, (task, _, _) in GOALS.items():
        by_dim = card["verdicts"][task]
        dim = max(by_dim, key=int)
        v = by_dim[dim]
        values = dict(v["ranking"])
        order = sorted(values, key=lambda n: values[n], reverse=v["better"] == "higher")
        text, picture = client.predict(dataset, goal, api_name="/scorecard_decision")
        titles = [json.loads((checkpoint_root() / dataset / n / "config.json").read_text()).get("title") or n.upper()
                  for n in order[:2]]
        assert ("<img" in picture or "<svg" in picture) and all(t in picture for t in titles), (goal, picture[:300])
        if v.get("tie"):
            assert text.startswith("**A tie between"), (goal, text)
        else:
            assert text.startswith("**Recommended: "), (goal, text)
            assert f"**{values[order[0]]:.4g}** against {values[order[1]]:.4g}" in text, (goal, text)
        ae, vae = values[f"ae-{dim}"], values[f"vae-{dim}"]
        assert f"{ae:.4g}" in text and f"{vae:.4g}" in text
        vae_better = vae < ae if v["better"] == "lower" else vae > ae
        assert text.split("AE or VAE?")[1].split("**")[1].lower().startswith("vae" if vae_better else "ae"), text
    with pytest.raises(AppError, match="not in the list of choices"):  # the Radio checks it
        client.predict(dataset, "juggle", api_name="/scorecard_decision")


def test_the_answer_follows_the_figures_of_the_json():
    """Change a figure in a copy of scorecard.json: the recommended model, its figure and the sentence follow."""
    import copy

    from explorer.scorecard import contenders, decision

    card = json.loads((checkpoint_root() / "mnist" / "scorecard.json").read_text())
    goal = "denoise"
    v = card["verdicts"]["denoising"]["16"]
    (w, vw), (r, vr) = sorted(v["ranking"], key=lambda nx: nx[1])[:2]
    before = decision(card, goal)
    assert contenders(card, goal) == (w, r) and f"**Recommended: {w.upper()}**" in before
    changed = copy.deepcopy(card)
    changed_v = changed["verdicts"]["denoising"]["16"]
    changed_v["ranking"] = [[n, vw / 2 if n == r else x] for n, x in changed_v["ranking"]]  # the runner-up now wins
    after = decision(changed, goal)
    assert contenders(changed, goal) == (r, w)
    assert f"**Recommended: {r.upper()}**" in after and f"**{vw / 2:.4g}** against {vw:.4g}" in after


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_scorecard_tab_shows_the_shipped_figures(client, dataset):
    card = json.loads((checkpoint_root() / dataset / "scorecard.json").read_text())
    text, task, task_plot, roc, imputation = client.predict(dataset, api_name="/scorecard")
    for verdict, by_dim in card["verdicts"].items():
        assert verdict in text and all(f"**{v['winner']}**" in text for v in by_dim.values() if not v.get("tie"))
    rows = frame(task_plot)
    shown = {r["model"]: r["value"] for r in rows}
    expected = {n: v for d in card["verdicts"][task["value"]].values() for n, v in d["ranking"]}
    assert shown == pytest.approx(expected, rel=1e-9)  # gradio sends plot values to 10 decimals
    other = {"mnist": "fashion-mnist", "fashion-mnist": "mnist"}[dataset]
    curves = {r["curve"] for r in frame(roc)}
    vae = card["models"]["vae-16"]["tasks"]["ood"]["pairs"][other]["nll"]
    assert f"vae-16: nll ({vae['auroc']:.3f})" in curves
    nll = [r for r in frame(roc) if r["curve"].startswith("vae-16: nll")]
    assert [r["tpr"] for r in nll] == pytest.approx(vae["roc"]["tpr"]) and nll[0]["fpr"] == 0 and nll[-1]["tpr"] == 1
    imp = frame(imputation)
    assert {r["mask"] for r in imp} == set(card["models"]["vae-16"]["tasks"]["imputation"]["masks"])
    zero = [r for r in imp if r["fill"] == "zero fill" and r["mask"] == "top_half"]
    assert zero and zero[0]["mse"] == pytest.approx(card["models"]["vae-16"]["tasks"]["imputation"]["masks"]["top_half"]["mse_missing"]["zero_fill"])
    plot = client.predict(dataset, "reconstruction", api_name="/scorecard_task")
    assert {r["model"] for r in frame(plot)} == set(card["models"])
    plot = client.predict(dataset, "inverted", api_name="/scorecard_roc")
    inverted = card["models"]["vae-16"]["tasks"]["ood"]["pairs"]["inverted"]["nll"]["auroc"]
    assert f"vae-16: nll ({inverted:.3f})" in {r["curve"] for r in frame(plot)}
    with pytest.raises(AppError, match="task must be one of"):  # any task name reaches the handler, which checks it
        client.predict(dataset, "juggling", api_name="/scorecard_task")
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(dataset, "cats", api_name="/scorecard_roc")


def anomaly_rows(text: str) -> dict[tuple[str, str], list[str]]:
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ae-16") or line.startswith("| vae-16")]
    return {(r[0].strip(), r[1].strip()): [c.strip() for c in r[2:]] for r in rows}


@pytest.mark.parametrize("dataset,other", [("mnist", "fashion-mnist"), ("fashion-mnist", "mnist")])
def test_the_other_datasets_images_score_as_anomalies(client, images, dataset, other):
    """An image of the other dataset scores above the in-distribution median under both models (and is called
    an outlier by the reconstruction error); an image of the dataset itself does not look like an outlier."""
    text, ae_plot, vae_plot = client.predict(dataset, handle_file(images[other]), "other_dataset", "nll",
                                             api_name="/anomaly")
    rows = anomaly_rows(text)
    assert len(rows) == 5  # the AE's recon error; the VAE's recon error, -ELBO, NLL, complexity
    for (model, score), cells in rows.items():
        if score.startswith("reconstruction"):
            assert float(cells[1]) > 50 and "outlier" in cells[4], (model, cells)
    inside, _, _ = client.predict(dataset, handle_file(images[dataset]), "other_dataset", "nll", api_name="/anomaly")
    for (model, score), cells in anomaly_rows(inside).items():
        if score.startswith("reconstruction"):
            assert float(cells[1]) < 95 and "outlier" not in cells[4], (model, cells)
    for plot in (ae_plot, vae_plot):
        sets = {r["set"] for r in frame(plot)}
        assert sets == {"test images", other, "this input"}
        for s in ("test images", other):
            assert abs(sum(r["share"] for r in frame(plot) if r["set"] == s) - 1) < 0.05  # histograms of shares
    line = [r["score"] for r in frame(vae_plot) if r["set"] == "this input"]
    assert len(line) == 2 and line[0] == line[1] and f"{line[0]:.4g}" in text


def test_anomaly_bad_input(app, client, images):
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict("mnist", handle_file(images["mnist"]), "cats", "nll", api_name="/anomaly")
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict("mnist", handle_file(images["mnist"]), "inverted", "loudness", api_name="/anomaly")
    with pytest.raises(AppError, match="No input image"):
        client.predict("mnist", None, "top_half", None, 2, "pseudo_gibbs", 0, api_name="/impute")


def test_other_dataset_image(client):
    with np.load(checkpoint_root() / "fashion-mnist" / "atlas.npz") as f:
        fashion = f["images"]
    img = read(client.predict("mnist", api_name="/other_dataset_image"))
    assert any(np.array_equal(img, f) for f in fashion)


def hidden(masked: np.ndarray) -> np.ndarray:
    """The masked picture's dark-red pixels (the hidden ones), at 28x28."""
    small = masked[::4, ::4].astype(np.int16)
    return small[..., 0] > small[..., 1] + 40


@pytest.mark.parametrize("mask,share", [("top_half", 0.5), ("centre", 0.25), ("random_50", 0.5), ("random_80", 0.8)])
def test_impute_presets(client, images, mask, share):
    masked, ae, vae, samples, text = client.predict("mnist", handle_file(images["mnist"]), mask, None, 4,
                                                    "pseudo_gibbs", 0, api_name="/impute")
    masked, ae, vae, samples = read(masked), read(ae), read(vae), read(samples)
    truth = read(images["mnist"])
    missing = hidden(masked)
    assert abs(missing.mean() - share) < 0.05
    errors = {line.split("|")[1].strip(" *"): float(line.split("|")[2]) for line in text.splitlines()
              if line.startswith("| ") and not line.startswith("| fill")}
    assert len(errors) == 6 and "never changed" in text
    for out, key in ((ae, "AE-16 iterative fill"), (vae, "VAE-16 pseudo-Gibbs, mean of 4")):
        assert out.shape == (112, 112)
        small = out[::4, ::4]
        np.testing.assert_array_equal(small[~missing], truth[~missing])  # observed pixels: exactly the input's
        mse = float((((small.astype(float) - truth) / 255) ** 2)[missing].mean())
        assert abs(mse - errors[key]) < 0.002, (key, mse, errors[key])  # the table is the pictures' error
    zero = float(((truth / 255) ** 2)[missing].mean())
    assert abs(zero - errors["zero fill"]) < 1e-3
    if mask != "top_half":  # on half a digit, black (the zero fill) is hard to beat; elsewhere both models beat it
        assert max(errors["AE-16 iterative fill"], errors["VAE-16 pseudo-Gibbs, mean of 4"]) < errors["zero fill"]
    assert samples.shape[1] > 3 * samples.shape[0]  # a strip of 4 imputations


def test_impute_is_seeded_and_samples_differ(client, images):
    args = ("mnist", handle_file(images["mnist"]), "bottom_half", None, 6, "pseudo_gibbs")
    a = client.predict(*args, 1, api_name="/impute")
    b = client.predict(*args, 1, api_name="/impute")
    c = client.predict(*args, 2, api_name="/impute")
    np.testing.assert_array_equal(read(a[3]), read(b[3]))
    assert not np.array_equal(read(a[3]), read(c[3]))
    np.testing.assert_array_equal(read(a[1]), read(c[1]))  # the AE fill is deterministic
    strip = read(a[3])
    cells = [strip[:, i * strip.shape[1] // 6: (i + 1) * strip.shape[1] // 6] for i in range(6)]
    assert len({c.tobytes() for c in cells}) > 1  # the imputations differ: the VAE shows its uncertainty


def editor_value(tmp_path, alpha: np.ndarray | None) -> dict:
    """What the image editor sends: the painted strokes as an RGBA layer (red, with the painted alpha)."""
    if alpha is None:
        return {"background": None, "layers": [], "composite": None}
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, alpha
    path = tmp_path / f"layer-{alpha.shape[0]}x{alpha.shape[1]}-{int(alpha.sum())}.png"
    Image.fromarray(rgba, "RGBA").save(path)
    return {"background": None, "layers": [handle_file(str(path))], "composite": None}


def test_impute_painted_mask(client, images, tmp_path):
    painted = np.zeros((280, 280), np.uint8)
    painted[:, :140] = 255  # the left half, painted
    out = client.predict("mnist", handle_file(images["mnist"]), "painted", editor_value(tmp_path, painted), 2,
                         "metropolis_within_gibbs", 0, api_name="/impute")
    missing = hidden(read(out[0]))
    assert missing[:, :14].all() and not missing[:, 14:].any()


@pytest.mark.parametrize("painted,message", [
    (None, "painted mask is empty"),
    (np.full((280, 280), 255, np.uint8), "hides every pixel"),
    (np.full((100, 60), 255, np.uint8), "must be square"),
    (np.full((20, 20), 255, np.uint8), "at least 28x28"),
])
def test_impute_bad_masks(app, client, images, tmp_path, painted, message):
    with pytest.raises(AppError, match=message):
        client.predict("mnist", handle_file(images["mnist"]), "painted", editor_value(tmp_path, painted), 2,
                       "pseudo_gibbs", 0, api_name="/impute")


@pytest.mark.parametrize("args,message", [
    (("spiral", None, 2, "pseudo_gibbs", 0), "not in the list of choices"),  # gradio's checks of its components
    (("top_half", None, 0, "pseudo_gibbs", 0), "less than minimum value"),
    (("top_half", None, 2.5, "pseudo_gibbs", 0), "whole number"),  # ours
    (("top_half", None, 2, "hmc", 0), "not in the list of choices"),
])
def test_impute_bad_arguments(client, images, args, message):
    with pytest.raises(AppError, match=message):
        client.predict("mnist", handle_file(images["mnist"]), *args, api_name="/impute")


def test_impute_on_change_and_the_editor_background(client, images):
    """A new input or preset refills at once (the same answer as /impute); the editor gets the input, 10x."""
    args = ("mnist", handle_file(images["mnist"]), "centre", None, 3, "pseudo_gibbs", 5)
    now = client.predict(*args, api_name="/impute_on_change")
    same = client.predict(*args, api_name="/impute")
    for a, b in zip(now[:4], same[:4]):
        np.testing.assert_array_equal(read(a), read(b))
    assert now[4] == same[4]
    editor = client.predict(handle_file(images["mnist"]), api_name="/editor_background")
    background = read(editor["background"])
    truth = read(images["mnist"])
    assert background.shape[:2] == (280, 280)
    np.testing.assert_array_equal(background[::10, ::10, 0] if background.ndim == 3 else background[::10, ::10], truth)
    assert editor["layers"] == []


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_latent_size_section_shows_the_shipped_sweep(client, dataset):
    """The Scorecard tab's "Latent size" section: its table and plots carry sweep.json's figures, by value."""
    from explorer.scorecard import SWEEP_DEFAULT, _fmt

    sweep = json.loads((checkpoint_root() / dataset / "sweep.json").read_text())
    text, figure, plot = client.predict(dataset, api_name="/latent_size")
    for r in sweep["rows"]:  # one table row per model: its kind, d and every figure, formatted as the table does
        cells = [r["kind"].upper(), str(r["latent_dim"])] + [_fmt(r.get(f)) for f in sweep["figure_order"]]
        assert "| " + " | ".join(cells) + " |" in text, cells
    check = sweep["budget_check"]
    assert f"stay the same for {len(check['stable_figures'])} of {len(check['figures'])} figures" in text
    assert figure["value"] == SWEEP_DEFAULT  # the dropdown's update: every figure, by label and key
    assert [key for _, key in figure["choices"]] == sweep["figure_order"]

    def values(plot):
        return {(row["model"], row["d"]): row["value"] for row in frame(plot)}

    for name in ("fd_prior", "active_units"):
        shown = values(client.predict(dataset, name, api_name="/latent_size_plot"))
        expected = {(r["kind"].upper(), r["latent_dim"]): r[name] for r in sweep["rows"] if r.get(name) is not None}
        assert shown == pytest.approx(expected, rel=1e-9)
    assert values(plot) == pytest.approx({(r["kind"].upper(), r["latent_dim"]): r[SWEEP_DEFAULT]
                                          for r in sweep["rows"] if r.get(SWEEP_DEFAULT) is not None}, rel=1e-9)
    with pytest.raises(AppError, match="figure must be one of"):
        client.predict(dataset, "shoe size", api_name="/latent_size_plot")


def test_few_labels_section_shows_the_shipped_comparison(client):
    """The Scorecard tab's few-label section: every method's test error of semisupervised.json, and the published
    figures; a dataset without the file says how to compute it."""
    result = json.loads((checkpoint_root() / "mnist" / "semisupervised.json").read_text())
    text = client.predict("mnist", api_name="/semi_supervised")
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| method")}
    from explorer.scorecard import SEMISUP_NAMES

    for method, err in result["test_error"].items():
        assert rows[SEMISUP_NAMES.get(method, method)] == f"{err:.2%}", method
    assert "11.97%" in text and "3.33%" in text and f"{result['labelled']} labels" in text
    assert "No few-label comparison" in client.predict("fashion-mnist", api_name="/semi_supervised")
