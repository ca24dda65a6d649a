"""Issue 11's Diagnostics tab, downloads and model cards: the verdict on trained models (a collapsed one and a
healthy one), the exported GIF and CSV files, and the generated Hugging Face model cards."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image

from explorer import diagnostics as dg
from explorer import exports
from explorer.bundle import checkpoint_root, load_dataset
from tests.fake_data import write_fake_mnist
from training.train import TrainConfig, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two tiny VAEs on the same fake digits: beta = 1 and beta = 200 (the KL penalty wins: posterior collapse)."""
    from models import ModelConfig

    tmp = tmp_path_factory.mktemp("diag")
    root = write_fake_mnist(tmp / "data", n_train=600, n_test=50)
    out = {}
    for name, beta in (("healthy", 1.0), ("collapsed", 200.0)):
        cfg = TrainConfig(dataset="mnist", data_root=str(root), out=str(tmp / name), epochs=6, batch_size=50,
                          val_size=50, beta=beta, device="cpu", seed=0)
        model, _ = train(cfg, ModelConfig(family="mlp", latent_dim=4, hidden_dim=64, hidden_layers=1), progress=False)
        out[name] = (tmp / name, model)
    return out


def verdict_of(folder, model):
    """The verdict from the model's own KL per dimension (evaluator definition) on the fake test images."""
    import torch

    from training.data import load_split, prepare_batch
    from training.evaluate import evaluate_images

    metrics = json.loads((folder / "metrics.json").read_text())
    images, _ = load_split("mnist", metrics["train_config"]["data_root"], train=False)
    ev = evaluate_images(model, images, binarize=True, k=10)
    with torch.no_grad():
        codes = model.encode(prepare_batch(images, False, None)).mean.numpy()
    return dg.verdict(folder.name, folder.name, True, ev["marginal_kl_per_dim"], codes, metrics)


def test_collapsed_vae_is_flagged_and_a_healthy_one_is_not(trained):
    collapsed = verdict_of(*trained["collapsed"])
    healthy = verdict_of(*trained["healthy"])
    assert collapsed["state"] == "collapsed" and collapsed["collapsed"], collapsed["text"]
    assert collapsed["n_collapsed"] >= 2 and "of 4 dimensions carry < 0.01 nats" in collapsed["text"]
    assert healthy["state"] != "collapsed" and not healthy["collapsed"], healthy["text"]
    assert healthy["kl_total"] > 10 * collapsed["kl_total"]
    # the remedies name the flags, and the command rebuilds the run with them (β = 1, warm-up, free bits)
    cmd = dg.retrain_command(json.loads((trained["collapsed"][0] / "metrics.json").read_text()), "collapsed")
    assert cmd.startswith("python -m training.train ") and "--beta 1.0" in cmd and "--free-bits 0.1" in cmd
    assert "--kl-warmup-steps 2000" in cmd and "--latent-dim 4" in cmd and "collapsed-retrained" in cmd
    assert any("smaller β" in r for r in collapsed["remedies"]) and "```bash" in collapsed["text"]
    from training.train import parse_args

    parse_args(cmd.split()[3:])  # the command parses: every flag exists


def test_curves_and_kl_frames(trained):
    metrics = json.loads((trained["healthy"][0] / "metrics.json").read_text())
    curves = dg.curves_frame(metrics)
    assert set(curves["series"]) == set(dg.CURVES.values()) and sorted(set(curves["epoch"])) == list(range(1, 7))
    kl = dg.kl_frame([0.5, 0.001, 2.0], np.zeros((3, 3)))
    assert list(kl["status"]) == ["carries information", "collapsed (< 0.01 nats)", "carries information"]
    ae = dg.kl_frame(None, np.array([[0.0, 1.0], [0.0, -1.0]]))
    assert list(ae["status"]) == ["unused (variance ≤ 0.01)", "used"]


def test_shipped_models_diagnosed():
    from explorer import service

    b = load_dataset("mnist", checkpoint_root(), names=["vae-16"])
    r = service.diagnostics(b, "vae-16-beta4")
    states = {v["name"]: v["state"] for v in r["verdicts"]}
    assert states["vae-16"] == "healthy" and states["vae-16-beta4"] == "partly collapsed"
    assert states["ae-16"].startswith("not applicable")
    assert "3 of 16 dimensions carry < 0.01 nats" in r["text"] and "--beta 1.0" in r["text"]
    assert len(r["kl"]) == 16 and len(r["curves"]) == 6 * 100


# ---- downloads -----------------------------------------------------------------------------------------
def test_gif_has_one_frame_per_step(tmp_path):
    frames = np.random.default_rng(0).random((7, 28, 28))
    path = exports.gif_file(tmp_path, "strip", frames, factor=2)
    with Image.open(path) as im:
        assert im.n_frames == 7 and im.size == (56, 56)
        im.seek(3)
        shown = np.asarray(im.convert("L"), np.float64)[::2, ::2] / 255
    assert np.abs(shown - frames[3]).max() < 0.02  # the frame is that step's picture
    rgb = exports.gif_bytes(np.random.default_rng(1).random((3, 8, 8, 3)))
    assert Image.open(io.BytesIO(rgb)).n_frames == 3


def test_codes_csv_matches_the_atlas(tmp_path):
    with np.load(checkpoint_root() / "mnist" / "atlas.npz") as f:
        codes, umap, labels = f["vae-16__mean"], f["vae-16__umap"], f["labels"]
    names = [str(d) for d in range(10)]
    rows = list(csv.reader(io.StringIO(exports.codes_csv(codes, umap, labels, names).decode())))
    assert rows[0] == ["index", "label", "class", "map_x", "map_y", *[f"z{i}" for i in range(16)]]
    assert len(rows) == 1 + len(codes)
    got = np.array([[float(v) for v in r[3:]] for r in rows[1:]])
    np.testing.assert_allclose(got[:, 2:], codes, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[:, :2], umap, rtol=1e-5, atol=1e-6)
    assert [int(r[1]) for r in rows[1:]] == labels.tolist()


def test_downloads_through_the_api(client, tmp_path):
    with np.load(checkpoint_root() / "mnist" / "atlas.npz") as f:
        a, b = f["images"][0], f["images"][1]
    pa, pb = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(a).save(pa)
    Image.fromarray(b).save(pb)
    gifs = client.predict("mnist", handle_file(str(pa)), handle_file(str(pb)), 6, "linear", api_name="/export_gif")
    assert len(gifs) == 2
    for g in gifs:
        with Image.open(g) as im:
            assert im.n_frames == 6
    files = client.predict("mnist", handle_file(str(pa)), "vae-16-vamp", "ae-2", 0, api_name="/export_codes")
    assert len(files) == 4  # each model: the atlas, and the current input
    with open(files[0]) as f:
        rows = list(csv.reader(f))
    with np.load(checkpoint_root() / "mnist" / "atlas.npz", allow_pickle=False) as atlas:
        n_atlas = len(atlas["labels"])
    assert n_atlas == 10_000  # the whole test set
    assert len(rows) == n_atlas + 1 and len(rows[0]) == 5 + 16  # a header, then a row per atlas image
    with open(files[3]) as f:
        rows = list(csv.reader(f))
    assert len(rows) == 2 and rows[1][0] == "input" and len(rows[0]) == 5 + 2  # AE-2: its plane is its map


# ---- model cards -----------------------------------------------------------------------------------------
def test_model_card_of_a_shipped_model(tmp_path):
    import shutil

    from huggingface_hub import ModelCard

    from training.modelcard import write_card

    folder = tmp_path / "vae-16"
    shutil.copytree(checkpoint_root() / "mnist" / "vae-16", folder)
    card = ModelCard.load(write_card(folder))
    data = card.data.to_dict()
    assert data["library_name"] == "pytorch" and "vae" in data["tags"] and data["datasets"] == ["mnist"]
    metrics = json.loads((folder / "metrics.json").read_text())["eval"]
    nll = [r for r in card.data.eval_results if r.metric_type == "nll"][0]
    assert nll.metric_value == pytest.approx(metrics["is_nll"])
    assert "16-D VAE" in card.text and "| importance-sampled NLL, k = 1000 (nats per image) |" in card.text


def test_kl_bars_in_dimension_order():
    frame = dg.kl_frame(np.linspace(0.5, 2, 12), np.zeros((2, 12)))
    assert list(frame["dim"]) == sorted(frame["dim"]) and frame["dim"].iloc[10] == "z10"  # text order = numeric


# ---- the KL per dimension under the model's own prior (not N(0, I)) ------------------------------------------
def test_learned_prior_models_show_their_own_kl():
    """The table's KL is the model's own (metrics.json eval.kl, the ELBO's term), not the sum of per-dimension
    KLs to N(0, I) (which read 468 nats for the VampPrior VAE-16, whose KL is 23)."""
    from explorer import service

    b = load_dataset("mnist", checkpoint_root(), names=["vae-16"])
    r = service.diagnostics(b, "vae-16-vamp")
    for v in r["verdicts"]:
        metrics = json.loads((checkpoint_root() / "mnist" / v["name"] / "metrics.json").read_text())
        if v["kl_total"] is not None:
            assert v["kl_total"] == pytest.approx(metrics["eval"]["kl"], rel=1e-9), v["name"]
    vamp = {v["name"]: v for v in r["verdicts"]}["vae-16-vamp"]
    assert vamp["kl_total"] < 30 and f"the model's KL is {vamp['kl_total']:.2f} nats" in r["text"]
    assert len(r["kl"]) == 16 and (r["kl"]["value"] < 30).all()


def test_mixture_prior_dimension_that_ignores_x_is_flagged():
    """A MoG-prior VAE whose encoder puts dimension 0 exactly where the prior has it (N(3, 0.5^2) in every
    component), whatever x: that dimension carries no information and is flagged, although it lies far from
    N(0, 1) (KL 4.8 nats to it); the others are not."""
    import math

    import torch

    from models import Autoencoder, ModelConfig
    from training.evaluate import evaluate_images

    torch.manual_seed(0)
    model = Autoencoder(ModelConfig(family="mlp", latent_dim=3, hidden_dim=16, image_size=8, prior="mog",
                                    prior_components=4)).eval()
    with torch.no_grad():
        model.prior.means[:, 0] = 3.0
        model.prior.logvars[:, 0] = math.log(0.25)
        model.to_latent.weight[[0, 3]] = 0.0  # rows: mean of dim 0, log-variance of dim 0
        model.to_latent.bias[0], model.to_latent.bias[3] = 3.0, math.log(0.25)
        model.to_latent.weight[1:3] *= 20  # the other two dimensions follow x
    images = torch.randint(0, 256, (64, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    ev = evaluate_images(model, images, binarize=False, k=4)
    kl = np.asarray(ev["marginal_kl_per_dim"])
    assert kl[0] < 1e-4 and (kl[1:] > 0.1).all(), kl
    with torch.no_grad():
        codes = model.encode(images[:, None].float() / 255).mean.numpy()
    v = dg.verdict("mog", "MoG", True, kl, codes, {}, ev["kl"])
    assert v["n_collapsed"] == 1 and v["state"] == "partly collapsed", v["text"]
    assert list(dg.kl_frame(kl, codes)["status"])[0].startswith("collapsed")
