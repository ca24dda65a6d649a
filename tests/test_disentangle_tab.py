"""The Disentanglement tab (explorer/disentangle.py, ui/disentangle.py) on the shipped dSprites models, by value: a
traversal row moves only its own dimension, the heatmap is the metric code's matrix, MNIST says no metric applies."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from explorer import disentangle
from explorer.bundle import checkpoint_root, load_dataset
from explorer.images import InputError
from training import disentanglement as dm
from training import dsprites

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def sprites():
    b = load_dataset("dsprites", checkpoint_root(), torch.device("cpu"))
    assert b.problems == [] and b.pair == ("ae-10", "vae-10") and b.factor_names == list(dsprites.FACTORS)
    return b


def test_each_traversal_row_moves_only_its_dimension(sprites):
    image = sprites.images[3]
    r = disentangle.traversal(sprites, image, ("vae-10", "vae-10-beta4"), steps=7, span=3.0)
    for slot, name in zip("ab", ("vae-10", "vae-10-beta4")):
        view = sprites.models[name]
        z0 = view.encode(image[None])[0][0]
        codes = np.array(r[slot]["codes"])  # (D, steps, D)
        std = view.codes.std(0)
        assert codes.shape == (10, 7, 10)
        for d in range(10):
            moved = np.abs(codes[d] - z0[None]) > 1e-6  # (steps, D)
            assert not moved[:, np.arange(10) != d].any()  # every other coordinate stays at the input's code
            np.testing.assert_allclose(codes[d, :, d], z0[d] + np.linspace(-3, 3, 7) * std[d], rtol=1e-5, atol=1e-5)
        rows = r[slot]["rows"]
        assert [row["dim"] for row in rows] == list(view.order)
        row = rows[0]  # its picture is the server's decode of its codes, upscaled
        decoded = view.decode(codes[row["dim"]].astype(np.float32))
        factor = row["image"].shape[0] // 32
        first = row["image"][::factor, ::factor][:, :32]
        np.testing.assert_allclose(first / 255, decoded[0], atol=1 / 255 + 1e-6)
        centre = row["image"][::factor, ::factor][:, 3 * 33:3 * 33 + 32]  # the middle step is the input's code
        np.testing.assert_allclose(centre / 255, view.decode(z0[None])[0], atol=1 / 255 + 1e-6)


def test_the_heatmap_is_the_metric_codes_matrix(sprites, tmp_path):
    view = sprites.models["vae-10"]
    block = view.metrics["disentanglement"]
    r = disentangle.traversal(sprites, sprites.images[0], ("ae-10", "vae-10"))
    mi = np.array(r["b"]["mutual_info"])
    np.testing.assert_allclose(mi, block["mutual_info"])
    # recomputed from scratch with the metric code: the same draws (seed 0) of the full grid, the model's codes
    grid = dsprites.render_all(32)
    counts = dsprites.counts(32)
    rng = np.random.default_rng(block["protocol"]["seed"])
    f = dm.grid_truth(counts).sample(block["protocol"]["mig"]["points"], rng)
    codes = dm.grid_codes(view.model, grid)[np.ravel_multi_index(tuple(f.T), counts)]
    np.testing.assert_allclose(mi, dm.mig(codes, f)["mutual_info"], rtol=1e-9)
    cells = re.findall(r'data-dim="(\d+)" data-factor="(\d+)" data-mi="([0-9.e-]+)"', r["b"]["heatmap"])
    assert len(cells) == 50
    for d, k, v in cells:
        assert abs(float(v) - mi[int(d), int(k)]) < 1e-6
    # each row is labelled with the factor it informs most and that MI
    for row in r["b"]["rows"]:
        k = int(np.argmax(mi[row["dim"]]))
        assert row["factor"] == dsprites.FACTORS[k] and abs(row["mutual_info"] - mi[row["dim"], k]) < 1e-12
        assert row["label"] == f"z{row['dim']} · {dsprites.FACTORS[k]} · {mi[row['dim'], k]:.2f} nats"
    # a model without a metrics.json block: the metric code on the atlas codes and factors
    root = tmp_path / "root"
    shutil.copytree(checkpoint_root() / "dsprites", root / "dsprites",
                    ignore=shutil.ignore_patterns("vae-10-*"))
    m = json.loads((root / "dsprites" / "vae-10" / "metrics.json").read_text())
    del m["disentanglement"]
    (root / "dsprites" / "vae-10" / "metrics.json").write_text(json.dumps(m))
    b = load_dataset("dsprites", root, torch.device("cpu"))
    bare = disentangle.traversal(b, b.images[0])
    np.testing.assert_allclose(bare["b"]["mutual_info"], dm.mutual_info_matrix(b.models["vae-10"].codes.astype(
        np.float64), b.factors))
    assert "atlas images" in bare["b"]["mi_source"] and "Not measured yet: vae-10" in bare["table"]


def test_the_metric_table_shows_each_models_figures(sprites):
    r = disentangle.traversal(sprites, sprites.images[0], ("vae-10-beta16", "vae-10-tc6"))
    for name in ("vae-10-beta16", "vae-10-tc6"):
        block = sprites.models[name].metrics["disentanglement"]
        line = next(ln for ln in r["table"].splitlines() if ln.startswith(f"| {sprites.models[name].title} |"))
        assert f"{block['mig']:.3f}" in line and f"{block['factor_vae']:.3f}" in line


def test_mnist_has_a_traversal_and_no_metric():
    b = load_dataset("mnist", checkpoint_root(), torch.device("cpu"), names=("ae-16", "vae-16"))
    r = disentangle.traversal(b, b.images[0], steps=5)
    assert np.shape(r["a"]["codes"]) == (16, 5, 16) and r["a"]["mutual_info"] is None
    assert "no known factors" in r["table"] and "no known factors" in r["b"]["heatmap"]
    assert all(row["label"] == f"z{row['dim']}" for row in r["b"]["rows"])
    for bad, msg in (({"steps": 2}, "steps must be 3..15"), ({"span": 9}, "span must be"),
                     ({"steps": "x"}, "whole number")):
        with pytest.raises(InputError, match=msg):
            disentangle.traversal(b, b.images[0], **bad)


def test_traverse_endpoint(client):
    from gradio_client import handle_file
    from PIL import Image

    with np.load(checkpoint_root() / "dsprites" / "atlas.npz") as f:
        img = f["images"][11]
    path = checkpoint_root().parent / "tests" / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path / "sprite.png")
    out = client.predict("dsprites", handle_file(str(path / "sprite.png")), 5, 2.0, "ae-10", "vae-10-tc6", None,
                         api_name="/traverse")
    html_a, html_b, heat_a, heat_b, table, figures = out
    assert figures["names"] == ["ae-10", "vae-10-tc6"] and figures["steps"] == 5
    assert html_a.count('class="tv-row"') == 10 and "β-TCVAE" in table and "<svg" in heat_b
    codes = np.array(figures["b"]["codes"])
    z = np.array(figures["b"]["z"])
    assert np.allclose(codes[4, :, np.arange(10) != 4], z[np.arange(10) != 4][:, None])
    _, _, _, _, table, figures = client.predict("mnist", handle_file(str(path / "sprite.png")), 5, 2.0, "ae-16",
                                                   "vae-16", None, api_name="/traverse")
    assert figures["b"]["mutual_info"] is None and "no known factors" in table
