"""explorer/: image preprocessing, latent operations, map placement, bundle loading — no Gradio needed."""
from __future__ import annotations

import ast
import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import latent, service
from explorer.bundle import APP_MODELS, checkpoint_root, load_all, load_dataset
from explorer.catalog import find_models
from explorer.images import InputError, load_upload, to_dataset_format
from explorer.plot import Scatter

ROOT = Path(__file__).resolve().parent.parent


# ---- images ----------------------------------------------------------------------------------------
def stroke_image(h: int = 300, w: int = 200, dark_on_light: bool = True) -> np.ndarray:
    """An off-centre thick 'L' stroke on a large canvas, values in [0, 1]."""
    g = np.zeros((h, w), np.float32)
    g[40:160, 30:50] = 1.0
    g[140:160, 30:110] = 1.0
    return 1.0 - g if dark_on_light else g


def center_of_mass(img: np.ndarray) -> np.ndarray:
    a = img.astype(np.float64)
    ys, xs = np.indices(a.shape)
    return np.array([(ys * a).sum(), (xs * a).sum()]) / a.sum()


def test_dataset_format_is_mnist_style():
    out = to_dataset_format(stroke_image())
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out.max() == 255 and out[0].max() == 0 and out[:, 0].max() == 0  # light object, black border
    ys, xs = np.nonzero(out > 25)
    assert max(np.ptp(ys), np.ptp(xs)) + 1 in (19, 20, 21)  # fitted into a 20x20 box
    np.testing.assert_allclose(center_of_mass(out), [13.5, 13.5], atol=1.0)


def test_polarity_dark_on_light_equals_light_on_dark():
    a = to_dataset_format(stroke_image(dark_on_light=True)).astype(int)
    b = to_dataset_format(stroke_image(dark_on_light=False)).astype(int)
    assert np.abs(a - b).max() <= 2


def write(tmp_path: Path, name: str, im: Image.Image, **kw) -> Path:
    p = tmp_path / name
    im.save(p, **kw)
    return p


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16", "1"])
def test_upload_any_mode(tmp_path, mode):
    g = stroke_image(dark_on_light=True)
    base = Image.fromarray((g * 255).astype(np.uint8), "L")
    if mode == "I;16":
        im = Image.fromarray((g * 65535).astype(np.uint16))
        assert im.mode.startswith("I;16")
    elif mode == "RGBA":  # dark ink, transparent paper: transparent counts as white paper
        rgba = np.zeros((*g.shape, 4), np.uint8)
        rgba[..., 3] = ((1 - g) * 255).astype(np.uint8)
        im = Image.fromarray(rgba, "RGBA")
    else:
        im = base.convert(mode)
    out = load_upload(write(tmp_path, "x.png", im))
    ref = to_dataset_format(stroke_image(dark_on_light=False))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - ref).mean() < 8, mode


def test_upload_jpeg_and_gif(tmp_path):
    im = Image.fromarray((stroke_image() * 255).astype(np.uint8), "L").convert("RGB")
    ref = to_dataset_format(stroke_image(dark_on_light=False)).astype(int)
    for name in ("x.jpg", "x.gif"):
        out = load_upload(write(tmp_path, name, im))
        assert np.abs(out.astype(int) - ref).mean() < 10, name


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (no real pixel data): a decompression bomb by its header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("case,expected", [
    ("huge", "20000x20000"),
    ("text", "not an image"),
    ("truncated", "damaged or truncated"),
    ("blank", "blank"),
    ("missing", "No file"),
])
def test_bad_uploads_give_clear_messages(tmp_path, case, expected):
    p = tmp_path / "bad.png"
    if case == "huge":
        p.write_bytes(png_header_only(20000, 20000))
    elif case == "text":
        p = tmp_path / "notes.txt"
        p.write_text("this is not an image\n")
    elif case == "truncated":
        buf = io.BytesIO()
        Image.fromarray((stroke_image() * 255).astype(np.uint8)).save(buf, "PNG")
        p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif case == "blank":
        Image.new("L", (64, 64), 255).save(p)
    else:
        p = tmp_path / "nope.png"
    with pytest.raises(InputError, match=expected):
        load_upload(p)


# ---- latent operations -------------------------------------------------------------------------
def test_lerp_and_slerp_endpoints_and_geometry():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(16).astype(np.float32), 3 * rng.standard_normal(16).astype(np.float32)
    for fn in (latent.lerp, latent.slerp):
        z = fn(a, b, 9)
        assert z.shape == (9, 16)
        np.testing.assert_allclose(z[0], a, atol=1e-5)
        np.testing.assert_allclose(z[-1], b, atol=1e-5)
    z = latent.slerp(a, b, 9)
    # Norm moves linearly; the direction moves by equal angles (great circle), unlike lerp.
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), np.linspace(np.linalg.norm(a), np.linalg.norm(b), 9),
                               rtol=1e-5)
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    angles = np.arccos(np.clip((u[1:] * u[:-1]).sum(1), -1, 1))
    np.testing.assert_allclose(angles, angles.mean(), rtol=1e-3)
    np.testing.assert_allclose(latent.slerp(a, 2 * a, 5), latent.lerp(a, 2 * a, 5), atol=1e-5)  # parallel


def test_nearest_distance_and_median_nn_against_brute_force():
    rng = np.random.default_rng(1)
    codes, q = rng.standard_normal((300, 5)), rng.standard_normal((7, 5))
    brute = np.array([min(np.linalg.norm(x - c) for c in codes) for x in q])
    np.testing.assert_allclose(latent.nearest_distance(q, codes), brute, rtol=1e-6)
    nn = [min(np.linalg.norm(codes[i] - codes[j]) for j in range(300) if j != i) for i in range(300)]
    assert latent.median_nn_distance(codes, n_query=300) == pytest.approx(np.median(nn), rel=1e-5)
    np.testing.assert_allclose(latent.nn_distance_quantiles(codes, (0.5, 0.95), n_query=300),
                               np.quantile(nn, [0.5, 0.95]), rtol=1e-5)


def test_knn_place_inverse_distance_weights():
    rng = np.random.default_rng(2)
    codes, pos = rng.standard_normal((200, 4)), rng.standard_normal((200, 2))
    np.testing.assert_allclose(latent.knn_place(codes[17], codes, pos)[0], pos[17], atol=1e-3)  # on a data code
    q = rng.standard_normal(4)
    d = np.linalg.norm(codes - q, axis=1)
    nn = np.argsort(d)[:10]
    w = 1 / (d[nn] + 1e-6)
    np.testing.assert_allclose(latent.knn_place(q, codes, pos, k=10)[0], (w[:, None] * pos[nn]).sum(0) / w.sum(),
                               rtol=1e-5)


def test_gmm_sample_moments_match_the_mixture():
    rng = np.random.default_rng(3)
    w = np.array([0.2, 0.5, 0.3])
    means = rng.standard_normal((3, 2)) * 3
    a = rng.standard_normal((3, 2, 2))
    covs = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(2)
    z = latent.gmm_sample(w, means, covs, 200_000, np.random.default_rng(0))
    mu = (w[:, None] * means).sum(0)
    cov = sum(w[k] * (covs[k] + np.outer(means[k] - mu, means[k] - mu)) for k in range(3))  # law of total covariance
    np.testing.assert_allclose(z.mean(0), mu, atol=0.05)
    np.testing.assert_allclose(np.cov(z.T), cov, atol=0.1)
    same = latent.gmm_sample(w, means, covs, 5, np.random.default_rng(7))
    np.testing.assert_array_equal(same, latent.gmm_sample(w, means, covs, 5, np.random.default_rng(7)))


def test_quantile_ranges_cover_the_quantiles():
    codes = np.random.default_rng(4).standard_normal((5000, 3)) * [1, 5, 0]
    r = latent.quantile_ranges(codes)
    q = np.percentile(codes, [0.5, 99.5], axis=0).T
    assert (r[:, 0] <= q[:, 0] + 1e-9).all() and (r[:, 1] >= q[:, 1] - 1e-9).all()
    assert (r[:, 1] - q[:, 1] <= 0.01 + 1e-9)[:2].all()
    assert r[2, 1] - r[2, 0] > 0.5  # a constant dimension still gets a usable range


def test_grid_codes_and_scatter_pixels():
    g = latent.grid_codes((-1, 1), (-2, 2), 3)
    np.testing.assert_allclose(g[0], [-1, 2])  # top-left = small x, large y
    np.testing.assert_allclose(g[-1], [1, -2])
    pos = np.random.default_rng(5).standard_normal((500, 2))
    s = Scatter(pos, np.arange(500) % 10)
    px = s.to_pixel(pos[:3])
    np.testing.assert_allclose(np.stack([s.from_pixel(*p) for p in px]), pos[:3], atol=1e-9)
    assert s.nearest_point(*px[2]) == 2
    img = s.render([(pos[0], "red")])
    assert img.shape == (360, 360, 3) and img.dtype == np.uint8
    assert (img != s.render()).any()


# ---- bundles: missing checkpoints and the shipped ones ------------------------------------------
def test_missing_checkpoints_are_reported_with_the_fix(tmp_path):
    b = load_dataset("mnist", tmp_path)
    assert b.models == {} and b.images is None
    assert "atlas.npz is missing" in b.status() and "make checkpoints" in b.status()
    for name in APP_MODELS:
        assert name in b.status()
    with pytest.raises(LookupError, match="make checkpoints"):
        b.require("ae-16")


def test_models_are_found_in_their_folders_not_in_a_list(tmp_path):
    """A model is any subfolder with config.json + model.safetensors; the classifier and half-written folders
    are not models; a model added later loads next to the shipped ones."""
    import shutil

    folder = tmp_path / "mnist"
    for name in ("ae-16", "vae-16", "ae-2", "vae-2", "classifier"):
        shutil.copytree(checkpoint_root() / "mnist" / name, folder / name)
    shutil.copy(checkpoint_root() / "mnist" / "atlas.npz", folder / "atlas.npz")
    shutil.copytree(checkpoint_root() / "mnist" / "vae-16", folder / "my-vae")  # added later, not in any list
    (folder / "half-written").mkdir()
    (folder / "half-written" / "config.json").write_text("{}")
    (folder / "broken").mkdir()
    (folder / "broken" / "config.json").write_text("not json")
    (folder / "broken" / "model.safetensors").write_bytes(b"")
    assert find_models(folder) == ["ae-16", "ae-2", "broken", "my-vae", "vae-16", "vae-2"]
    b = load_dataset("mnist", tmp_path)
    assert set(b.models) == {"ae-16", "ae-2", "vae-16", "vae-2"}  # my-vae has no codes in the atlas yet
    assert any(p.startswith("broken:") for p in b.problems) and any(p.startswith("my-vae:") for p in b.problems)
    assert "classifier" not in b.status()


@pytest.fixture(scope="module")
def bundles():
    return load_all(checkpoint_root())


@pytest.mark.parametrize("key", ["mnist", "fashion-mnist"])
def test_shipped_bundle_loads_everything(bundles, key):
    b = bundles[key]
    assert b.problems == [], b.problems
    assert set(APP_MODELS) <= set(b.models) == set(find_models(checkpoint_root() / key))
    vae = b.models["vae-16"]
    assert (np.diff(vae.kl_per_dim[vae.order]) <= 0).all()  # sliders ordered by KL, largest first
    for view in b.models.values():
        q = np.quantile(view.codes, [0.005, 0.995], axis=0).T
        assert (view.ranges[:, 0] <= q[:, 0] + 1e-6).all() and (view.ranges[:, 1] >= q[:, 1] - 1e-6).all()


def test_shipped_service_calls(bundles):
    b = bundles["mnist"]
    img = b.images[0]
    r = service.reconstruct(b, img, seed=0)  # the default pair: AE-16 (Model A), VAE-16 (Model B)
    assert r["names"] == ["ae-16", "vae-16"]
    assert r["a"].shape == r["b"].shape == (112, 112)
    assert not np.array_equal(r["a"], r["b"])
    assert r["a_samples"] is None and r["b_samples"] is not None  # only a VAE has a posterior to sample
    s1, s2 = service.sample(b, 1, 1.0), service.sample(b, 1, 1.0)
    assert np.array_equal(s1["a"], s2["a"]) and np.array_equal(s1["a_extra"], s2["a_extra"])
    d = {k: np.mean(v) for k, v in s1["distances"].items()}
    # The AE's codes are not N(0, I): prior draws land farther from the data than draws from its fitted GMM.
    assert d["AE-16, z ~ N(0, I) (an AE has no prior)"] > d["AE-16, z ~ GMM fitted to its training codes"]
    assert s1["far"]["AE-16, z ~ N(0, I) (an AE has no prior)"] > s1["far"]["AE-16, z ~ GMM fitted to its training codes"]
    i = service.interpolate(b, b.images[0], b.images[1], 6, "spherical")
    for dist in i["distances"].values():
        assert dist[0] < 1e-3 and dist[-1] < 1e-3  # endpoints are atlas codes themselves
    p = service.place(b, b.images[42])
    for slot, name in zip("ab", ("ae-16", "vae-16")):
        view = b.models[name]
        np.testing.assert_allclose(p[slot + "_xy"], view.map_xy[42], atol=1e-2 * np.ptp(view.map_xy))
    start = service.slider_start(b, img)
    with pytest.raises(InputError, match="outside its range"):
        service.decode_sliders(b, start["a"] + 1e6, start["b"])
    with pytest.raises(InputError, match="no model 'vae-99'"):
        service.reconstruct(b, img, names=("ae-16", "vae-99"))


PAIRS = [("vae-16-vamp", "cvae-16"), ("vae-16-iaf", "vae-16-mog"), ("vae-16-beta4", "vae-2"), ("cvae-16", "ae-2")]


@pytest.mark.parametrize("names", PAIRS, ids=["-vs-".join(p) for p in PAIRS])
def test_any_pair_on_every_comparing_tab(bundles, names):
    """Any two models of a dataset, of different kinds and latent sizes, through every comparing tab."""
    b = bundles["mnist"]
    img, label = b.images[3], int(b.labels[3])
    views = service.pair(b, names)
    r = service.reconstruct(b, img, seed=1, names=names, label=label)
    assert r["names"] == list(names) and r["a"].shape == r["b"].shape == (112, 112)
    for slot, view in zip("ab", views):
        if view.conditional:  # the same code with every class: one row of K pictures (3x upscaled, 2 px padding)
            assert r[f"{slot}_samples"].shape[1] > view.num_classes * 28 * 3
            assert view.title in r["text"] and f"class {label}" in r["text"]
    s = service.sample(b, 2, 1.0, n=16, names=names, label=label)
    assert s["a"].shape[:2] == s["b"].shape[:2]
    i = service.interpolate(b, b.images[0], b.images[1], 5, "linear", names=names, label=label)
    assert {v.title for v in views} <= set(i["distances"])
    start = service.slider_start(b, img, names, label)
    assert [len(start[k]) for k in "ab"] == [v.latent_dim for v in views]
    shown = service.decode_sliders(b, start["a"], start["b"], names, label)
    assert all(x.shape == (112, 112) for x in shown)
    p = service.point(b, 7, img, names, label)
    assert p["a"].shape == (112, 112) and p["a_map"].ndim == 3
    m = service.place(b, img, names, label)
    assert len(m["a_xy"]) == len(m["b_xy"]) == 2


def test_conditional_model_needs_its_class_and_follows_it(bundles):
    b = bundles["mnist"]
    cvae = b.models["cvae-16"]
    img = b.images[0]
    with pytest.raises(InputError, match="class-conditional"):
        service.reconstruct(b, img, names=("cvae-16", "vae-16"))
    r3 = service.reconstruct(b, img, names=("cvae-16", "vae-16"), label=3)
    r8 = service.reconstruct(b, img, names=("cvae-16", "vae-16"), label=8)
    assert not np.array_equal(r3["a"], r8["a"]) and np.array_equal(r3["b"], r8["b"])  # only the CVAE reads it
    # Sampling a chosen class: the classifier-free check is that the decodes differ by class for the same codes.
    s3 = service.sample(b, 0, 1.0, n=9, names=("cvae-16", "vae-16"), label=3)
    s8 = service.sample(b, 0, 1.0, n=9, names=("cvae-16", "vae-16"), label=8)
    assert not np.array_equal(s3["a"], s8["a"])
    assert cvae.conditional and not b.models["vae-16"].conditional


def test_app_import_does_not_import_umap_or_torch_and_loading_does_not_import_umap():
    """The page is served before torch loads; loading the models and atlases never needs umap-learn. The app loads
    its four models of each dataset (dSprites: its pair) at start, and any other model when a request first names it."""
    code = ("import sys, app; assert 'torch' not in sys.modules, 'torch imported before serving'; "
            "assert not app.MODELS.ready; b = app.MODELS.get(); assert 'torch' in sys.modules; "
            "print(sorted(b['mnist'].models)); print(sorted(b['dsprites'].models)); "
            "app.MODELS.need('mnist', ['cvae-16', 'vae-16-beta4']); "
            "assert 'umap' not in sys.modules, 'umap imported'; "
            "print(type(app.demo).__name__, sorted(b), sorted(b['mnist'].models))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-3] == "['ae-16', 'ae-2', 'vae-16', 'vae-2']"  # at start: the four the page opens with
    assert lines[-2] == "['ae-10', 'vae-10']"  # a dataset with no 2-D models: its default pair (dataset.json)
    assert lines[-1] == "Blocks ['dsprites', 'fashion-mnist', 'mnist'] ['ae-16', 'ae-2', 'cvae-16', 'vae-16', 'vae-16-beta4', 'vae-2']"


def test_zerogpu_path_with_a_stand_in_spaces_module(tmp_path):
    """On a ZeroGPU Space (`spaces` importable, SPACES_ZERO_GPU set) every model-running callback is wrapped
    by spaces.GPU and the models load at import, in the main process. A stand-in `spaces` records the wraps;
    without the module, `gpu` is the identity (the test above)."""
    (tmp_path / "spaces.py").write_text(
        "WRAPPED = []\n"
        "def GPU(fn):\n"
        "    WRAPPED.append(fn.__name__)\n"
        "    return fn\n")
    code = ("import sys, spaces, app; assert app.MODELS.ready, 'models not loaded at import'; "
            "import ui.common; assert ui.common.gpu is spaces.GPU; print(sorted(spaces.WRAPPED))")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "SPACES_ZERO_GPU": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    wrapped = set(ast.literal_eval(out.stdout.strip().splitlines()[-1]))
    assert {"reconstruct", "sample", "interpolate", "slide", "place_on_map", "manifold"} <= wrapped


# The share of a CVAE's samples of class c that the classifier calls c, averaged over classes (chance: 0.1). Measured
# (200 codes per class, T = 1): MNIST 0.97; Fashion-MNIST 0.41 -- its 6-epoch CVAE keeps much of the class in z and
# its decoder follows the label only partly (issue 10's note).
CLASS_FOLLOWING = {"mnist": 0.9, "fashion-mnist": 0.3}


@pytest.mark.parametrize("key", ["mnist", "fashion-mnist"])
def test_shipped_cvae_samples_the_chosen_class(bundles, key):
    """A CVAE's prior samples decoded with class c are called c by the scorecard's classifier (an independent
    judge trained on real images): the label, not only z, decides the class."""
    import torch

    from models.classifier import Classifier

    b = bundles[key]
    cvae = b.models["cvae-16"]
    judge = Classifier.from_pretrained(checkpoint_root() / key / "classifier")
    z = cvae.prior_samples(40, seed=0)
    hits = []
    for c in range(10):
        images = torch.as_tensor(cvae.decode(z, np.full(len(z), c)))[:, None]
        with torch.inference_mode():
            hits.append((judge(images).argmax(1) == c).float().mean().item())
    assert np.mean(hits) > CLASS_FOLLOWING[key], hits  # chance is 0.1
    assert min(hits) > 0.1, hits  # every class above chance


# ---- the interactive map's data (explorer/mapdata.py) --------------------------------------------------------
def test_the_code_of_a_map_position_is_the_inverse_distance_mean_of_its_nearest_points_codes():
    from explorer import mapdata

    rng = np.random.default_rng(0)
    xy, codes = rng.normal(size=(300, 2)), rng.normal(size=(300, 16))
    p = np.array([[0.3, -0.2], [2.0, 1.0]])
    got = mapdata.code_at(p, xy, codes, plane=False)
    for row, q in zip(got, p):  # by hand: the 10 nearest on the map, weights 1 / distance
        d = np.sqrt(((xy - q) ** 2).sum(1))
        nn = np.argsort(d)[:10]
        w = 1 / (d[nn] + 1e-6)
        np.testing.assert_allclose(row, (w[:, None] * codes[nn]).sum(0) / w.sum(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mapdata.code_at(xy[:3], xy, codes, plane=False, k=1), codes[:3], atol=1e-6)
    np.testing.assert_array_equal(mapdata.code_at(p, xy, codes[:, :2], plane=True), p.astype(np.float32))


def test_the_density_under_the_map_matches_scipys_kernel_density():
    from scipy.stats import gaussian_kde

    from explorer import mapdata

    rng = np.random.default_rng(1)
    xy = np.concatenate([rng.normal([0, 0], 0.3, (400, 2)), rng.normal([3, 1], 0.6, (600, 2))])
    lo, hi = mapdata.bounds(xy)
    n = 60
    grid = mapdata.kde_grid(xy, lo, hi, size=n)
    cx = lo[0] + (np.arange(n) + 0.5) / n * (hi[0] - lo[0])
    cy = hi[1] - (np.arange(n) + 0.5) / n * (hi[1] - lo[1])  # row 0 at the top
    gx, gy = np.meshgrid(cx, cy)
    ref = gaussian_kde(xy.T, bw_method="scott")(np.stack([gx.ravel(), gy.ravel()])).reshape(n, n)
    assert np.corrcoef(grid.ravel(), ref.ravel())[0, 1] > 0.97
    assert grid.max() == pytest.approx(1.0)
    prior = mapdata.prior_grid(np.array([-3.0, -3.0]), np.array([3.0, 3.0]), size=61)
    assert np.unravel_index(prior.argmax(), prior.shape) == (30, 30)  # N(0, I) peaks at the origin


def test_the_sprite_sheet_holds_image_i_at_its_tile_and_a_selection_counts_its_classes():
    from explorer import mapdata
    from explorer.images import InputError

    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (130, 5, 4), dtype=np.uint8)
    sheet = np.asarray(Image.open(io.BytesIO(mapdata.sprite_png(images, cols=8))))
    assert sheet.shape == (17 * 5, 8 * 4)
    for i in (0, 9, 129):
        r, c = divmod(i, 8)
        np.testing.assert_array_equal(sheet[r * 5:(r + 1) * 5, c * 4:(c + 1) * 4], images[i])
    labels = rng.integers(0, 3, 130)
    sel = mapdata.selection(labels, ["a", "b", "c"], "4, 7 7,100")
    assert sel["indices"] == [4, 7, 100]
    assert list(sel["histogram"].values()) == np.bincount(labels[[4, 7, 100]], minlength=3).tolist()
    assert mapdata.selection(labels, ["a", "b", "c"], [])["histogram"] == {"a": 0, "b": 0, "c": 0}
    for bad in ("1, 130", "-1", "2.5", "x"):
        with pytest.raises(InputError):
            mapdata.parse_indices(bad, 130)
