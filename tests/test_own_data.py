"""A person's own data (issue 11): the folder:/npz:/idx: sources, their bad-data messages, and `training.explore`
end to end into the app, on images the tests make (tests/fake_data.py: coloured shapes, 32x32, class subfolders)."""
from __future__ import annotations

import struct
import subprocess
import sys

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.conftest import ROOT, RunningApp
from tests.test_app_api import unexpected_tracebacks
from tests.fake_data import SHAPES, make_shapes, write_shapes_folder
from training import sources
from training.data import DataError, dataset_info, load_split, to_float


def read_spec(spec, **kw):
    return sources.read(spec, **kw)


# ---- sources ----------------------------------------------------------------------------------------------
def test_folder_with_class_subfolders(tmp_path):
    root = write_shapes_folder(tmp_path / "shapes", n=120)
    d = read_spec(f"folder:{root}")
    assert d.images.shape == (120, 32, 32, 3) and d.images.dtype == np.uint8
    assert d.class_names == list(SHAPES) and d.labelled and set(d.labels) == {0, 1, 2}
    expected, labels = make_shapes(120)
    order = np.argsort([f"{SHAPES[c]}/{i:05d}" for i, c in enumerate(labels)])  # the folder's reading order
    np.testing.assert_array_equal(d.images, expected[order])  # PNG is lossless: the very pixels
    np.testing.assert_array_equal(d.labels, labels[order])
    assert d.name == "shapes" and d.notes == []


def test_flat_grayscale_folder_and_its_split(tmp_path):
    root = write_shapes_folder(tmp_path / "Flat Set", n=110, colour=False, labelled=False)
    d = read_spec(f"folder:{root}")
    assert d.images.shape == (110, 32, 32) and not d.labelled and d.class_names == ["all images"]
    assert d.name == "flat-set"
    train, test = sources.split(110)
    assert len(test) == 11 and len(set(train) | set(test)) == 110 and not set(train) & set(test)
    np.testing.assert_array_equal(sources.split(110)[1], test)  # a fixed seed: the same split every time
    classes = np.arange(1000) // 334  # a folder read class by class: the first training images mix the classes
    assert len(set(classes[sources.split(1000)[0][:100]])) == 3
    x, y = load_split(f"folder:{root}", ".", False)
    assert x.shape == (11, 32, 32) and to_float(x).shape == (11, 1, 32, 32)


def test_npz_gray_and_rgb_and_idx(tmp_path):
    rgb, labels = make_shapes(120, size=20)
    np.savez(tmp_path / "rgb.npz", images=rgb, labels=labels * 10 + 3)  # any integers: classes in sorted order
    d = read_spec(f"npz:{tmp_path / 'rgb.npz'}")
    assert d.images.shape == (120, 20, 20, 3) and list(np.unique(d.labels)) == [0, 1, 2]
    np.testing.assert_array_equal(d.labels, labels)
    assert d.class_names == ["3", "13", "23"]  # labels without names: named by their values
    assert dataset_info(f"npz:{tmp_path / 'rgb.npz'}")["class_names"] == ["3", "13", "23"]
    assert to_float(load_split(f"npz:{tmp_path / 'rgb.npz'}", ".", True)[0]).shape[1:] == (3, 20, 20)
    gray = rgb[..., 0]
    np.savez(tmp_path / "gray.npz", images=gray)
    g = read_spec(f"npz:{tmp_path / 'gray.npz'}")
    assert g.images.shape == (120, 20, 20) and not g.labelled
    prefix = tmp_path / "digits"
    (tmp_path / "digits-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x0803, 120, 20, 20) + gray.tobytes())
    (tmp_path / "digits-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x0801, 120) + labels.astype(np.uint8).tobytes())
    i = read_spec(f"idx:{prefix}")
    np.testing.assert_array_equal(i.images, gray)
    np.testing.assert_array_equal(i.labels, labels)
    assert i.name == "digits" and i.class_names == ["0", "1", "2"]
    (tmp_path / "colour-images-idx3-ubyte").write_bytes(  # a 4-D unsigned-byte IDX file: (N, H, W, 3)
        struct.pack(">BBBBIIII", 0, 0, 0x08, 4, 120, 20, 20, 3) + rgb.tobytes())
    c = read_spec(f"idx:{tmp_path / 'colour'}")
    np.testing.assert_array_equal(c.images, rgb)
    assert not c.labelled and c.channels == 3


def test_size_rule_and_resizing(tmp_path):
    big, _ = make_shapes(100, size=100)
    np.savez(tmp_path / "big.npz", images=big)
    d = read_spec(f"npz:{tmp_path / 'big.npz'}")
    assert d.size == 64 and any("resized 100 images" in n for n in d.notes)  # larger than 64: resized to 64
    odd, _ = make_shapes(100, size=30)
    np.savez(tmp_path / "odd.npz", images=odd)
    assert read_spec(f"npz:{tmp_path / 'odd.npz'}").size == 32  # rounded up to a size the conv family takes
    assert read_spec(f"npz:{tmp_path / 'odd.npz'}", image_size=16).images.shape == (100, 16, 16, 3)
    assert read_spec(f"npz:{tmp_path / 'odd.npz'}", channels=1).images.shape == (100, 32, 32)


def test_mixed_sizes_modes_and_corrupt_files(tmp_path):
    root = write_shapes_folder(tmp_path / "mixed", n=110)
    files = sorted(root.rglob("*.png"))
    for f in files[:5]:  # another size
        Image.open(f).resize((48, 40)).save(f)
    for f in files[5:9]:  # grayscale among colour
        Image.open(f).convert("L").save(f)
    for f in files[9:12]:  # not images at all
        f.write_bytes(b"not a png")
    (root / "circle" / "notes.txt").write_text("ignored: not an image extension")
    d = read_spec(f"folder:{root}")
    assert d.images.shape == (107, 32, 32, 3)
    text = " | ".join(d.notes)
    assert "skipped 3 of 110 files" in text
    assert "converted 4 grayscale images to RGB" in text
    assert "resized 5 images" in text and "48x40" in text


@pytest.mark.parametrize("case,message", [
    ("empty", "no image files"),
    ("missing", "no such folder"),
    ("few", "50 usable images; at least 100"),
    ("mostly_bad", "cannot be decoded"),
    ("float_labels", "must be integers"),
    ("string_labels", "must be integers"),
    ("label_count", "7 labels for 120 images"),
    ("not_uint8", "must be uint8"),
    ("bad_npz", "cannot be read"),
    ("bad_idx", "bad magic number"),
])
def test_bad_data_gets_one_clear_message(tmp_path, capsys, case, message):
    images, labels = make_shapes(120, size=16)
    if case == "empty":
        (tmp_path / "d").mkdir()
        spec = f"folder:{tmp_path / 'd'}"
    elif case == "missing":
        spec = f"folder:{tmp_path / 'nope'}"
    elif case == "few":
        spec = f"folder:{write_shapes_folder(tmp_path / 'd', n=50)}"
    elif case == "mostly_bad":
        root = write_shapes_folder(tmp_path / "d", n=120)
        for f in sorted(root.rglob("*.png"))[:70]:
            f.write_bytes(b"garbage")
        spec = f"folder:{root}"
    else:
        arrays = {"images": images, "labels": labels}
        if case == "float_labels":
            arrays["labels"] = labels + 0.5
        elif case == "string_labels":
            arrays["labels"] = np.array([SHAPES[c] for c in labels])
        elif case == "label_count":
            arrays["labels"] = labels[:7]
        elif case == "not_uint8":
            arrays["images"] = images.astype(np.float32) / 255
        path = tmp_path / "d.npz"
        np.savez(path, **arrays)
        spec = f"npz:{path}"
        if case == "bad_npz":
            path.write_bytes(b"PK not really")
        if case == "bad_idx":
            (tmp_path / "x-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04garbage")
            spec = f"idx:{tmp_path / 'x'}"
    with pytest.raises(sources.SourceError, match=message):
        read_spec(spec)
    # the training CLI: the same line on stderr, exit code 1 (in a real process, without a traceback: below)
    from training.data import _user_data
    from training.train import main

    _user_data.cache_clear()
    with pytest.raises(SystemExit) as exit_:
        main(["--dataset", spec, "--out", str(tmp_path / "o"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and message in err and len(err.strip().splitlines()) == 1, err


def test_bad_data_in_a_real_process_is_one_line(tmp_path):
    spec = f"folder:{write_shapes_folder(tmp_path / 'd', n=50)}"
    r = subprocess.run([sys.executable, "-m", "training.train", "--dataset", spec, "--out", str(tmp_path / "o"),
                        "--epochs", "1"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "50 usable images; at least 100" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_likelihood_and_preprocessing_follow_the_data(tmp_path, capsys):
    from training.train import parse_args

    root = write_shapes_folder(tmp_path / "c", n=100)
    cfg, model_cfg = parse_args(["--dataset", f"folder:{root}", "--out", str(tmp_path / "o")])
    assert (model_cfg.image_size, model_cfg.image_channels, model_cfg.likelihood) == (32, 3, "gaussian")
    assert cfg.binarize == "none" and "auto chose gaussian" in capsys.readouterr().out
    assert dataset_info(f"folder:{root}")["preprocess"] == "photo"
    binary = (make_shapes(100, colour=False)[0] > 128).astype(np.uint8) * 255  # near-binary strokes: digit-like
    np.savez(tmp_path / "b.npz", images=binary)
    cfg, model_cfg = parse_args(["--dataset", f"npz:{tmp_path / 'b.npz'}", "--out", str(tmp_path / "o")])
    assert (model_cfg.likelihood, cfg.binarize, model_cfg.image_channels) == ("bernoulli", "dynamic", 1)
    assert dataset_info(f"npz:{tmp_path / 'b.npz'}")["preprocess"] == "digit"
    grey = make_shapes(100, colour=False, seed=3)[0]  # grey levels (not near-binary), light objects on a dark ground
    np.savez(tmp_path / "grey.npz", images=grey, labels=np.arange(100) % 10)
    assert dataset_info(f"npz:{tmp_path / 'grey.npz'}")["preprocess"] == "digit"  # an upload is centred, inverted
    np.savez(tmp_path / "paper.npz", images=255 - grey)  # dark objects on a light ground: not inverted
    assert dataset_info(f"npz:{tmp_path / 'paper.npz'}")["preprocess"] == "photo"
    with pytest.raises(SystemExit):
        parse_args(["--dataset", "mnist", "--image-size", "32"])  # MNIST is 28x28: a clear refusal
    with pytest.raises(SystemExit):
        parse_args(["--dataset", "nope:/x"])


def test_conv_family_grows_with_the_image():
    import torch

    from models import Autoencoder, ModelConfig
    from models.config import conv_depth

    assert [conv_depth(s) for s in (28, 32, 48, 64)] == [2, 3, 3, 4]
    for size, channels in ((32, 3), (64, 3), (64, 1)):
        m = Autoencoder(ModelConfig(image_size=size, image_channels=channels, channels=8, hidden_dim=32))
        x = torch.rand(2, channels, size, size)
        assert m.decode_image(m.encode(x).mean).shape == x.shape
        convs = [l for l in m.encoder.modules() if isinstance(l, torch.nn.Conv2d)]
        assert len(convs) == conv_depth(size)
    with pytest.raises(ValueError, match="divisible by 8"):
        ModelConfig(image_size=36)


@pytest.mark.parametrize("size", [48, 56])
def test_explored_models_fit_under_10_mb(tmp_path, size):
    """At 48x48 the conv family's default width gave a 10,141,034-byte model.safetensors: explore narrows it."""
    import torch

    from models import Autoencoder, ModelConfig
    from training.explore import fit_in_file

    cfg = fit_in_file(ModelConfig(family="conv", bottleneck="vae", latent_dim=16, image_size=size, image_channels=3,
                                  likelihood="gaussian"))
    assert cfg.hidden_dim < 512
    Autoencoder(cfg).save_pretrained(tmp_path / "m", dtype=torch.float16)
    assert 5_000_000 < (tmp_path / "m" / "model.safetensors").stat().st_size < 10_000_000


# ---- make explore, then the app --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def explored(explore_job):
    """`python -m training.explore` on a 32x32 RGB shapes folder (tiny epochs), beside the shipped MNIST folder:
    started in the background when the session starts (tests/conftest.py: start_explore); here its result."""
    job = explore_job
    stdout, _ = job["proc"].communicate(timeout=600)
    job["log"].seek(0)
    stderr = job["log"].read()
    assert job["proc"].returncode == 0, stderr[-3000:]
    return job["root"], subprocess.CompletedProcess([], 0, stdout, stderr)


def test_explore_writes_a_dataset_folder(explored):
    import json

    root, r = explored
    folder = root / "shapes"
    assert sorted(p.name for p in folder.iterdir()) == ["ae-16", "ae-2", "atlas.npz", "dataset.json",
                                                                 "playground.npz", "vae-16", "vae-2"]
    info = json.loads((folder / "dataset.json").read_text())
    assert (info["image_size"], info["image_channels"], info["preprocess"]) == (32, 3, "photo")
    with np.load(folder / "atlas.npz") as f:
        assert f["images"].shape == (30, 32, 32, 3) and list(f["class_names"]) == list(SHAPES)
        assert f["ae-16__umap"].shape == (30, 2) and f["vae-2__mean"].shape == (30, 2)
    for model in ("ae-16", "ae-2", "vae-16", "vae-2"):  # what a finished run ships: no resume state
        assert sorted(p.name for p in (folder / model).iterdir()) == [
            "README.md", "config.json", "metrics.json", "model.safetensors"], model
    metrics = json.loads((folder / "vae-16" / "metrics.json").read_text())
    assert metrics["eval"]["is_k"] == 5 and metrics["dataset_info"]["test_split"] == {"fraction": 0.1, "seed": 0}
    assert "explore:" in r.stderr and "left" in r.stderr  # the job's one progress bar, with the time left
    assert "auto chose gaussian" in r.stderr and "pick shapes in the app" in r.stdout
    again = subprocess.run([sys.executable, "-m", "training.explore", str(root.parent / "shapes"), "--checkpoints",
                            str(root)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "exists: pass --name NEW or --overwrite" in again.stderr  # nothing overwritten


def test_the_app_shows_the_new_dataset_on_every_tab(explored, tmp_path):
    from gradio_client import Client

    root, _ = explored
    app = RunningApp({"LATENT_EXPLORER_CHECKPOINTS": str(root)}, name="own-data")
    try:
        c = Client(app.url, verbose=False)
        init = c.predict("shapes", api_name="/set_dataset")
        assert "circle" in init[4]  # the map legend: the folder's class names
        assert {ch[1] for ch in init[7]["choices"]} == {"ae-16", "vae-16", "ae-2", "vae-2"}
        img = c.predict("shapes", 3, api_name="/pick_test")
        assert np.asarray(Image.open(img)).shape == (32, 32, 3)
        x = handle_file(img)
        rec = c.predict("shapes", x, 0, api_name="/reconstruct")
        assert read(rec[0]).shape == read(rec[1]).shape == (128, 128, 3)  # 4x, RGB
        smp = c.predict("shapes", 0, 1.0, api_name="/sample")
        assert read(smp[0]).ndim == 3 and read(smp[0]).shape[2] == 3
        a, b, _ = c.predict("shapes", x, x, 4, "linear", api_name="/interpolate")
        assert read(a).shape[2] == 3
        out = c.predict("shapes", x, "encoded input", api_name="/sliders_from_input")
        assert read(out[-1]).shape == (128, 128, 3)
        values = [o["value"] if isinstance(o, dict) else o for o in out[:32]]
        a_img, _ = c.predict("shapes", *values, api_name="/slide")
        assert read(a_img).shape == (128, 128, 3)
        maps = c.predict("shapes", x, api_name="/place_on_map")
        assert read(maps[0]).shape == (360, 360, 3)
        pt = c.predict("shapes", 5, x, api_name="/show_point")
        assert read(pt[0]).shape == read(pt[1]).shape == (128, 128, 3)
        mf = c.predict("shapes", 5, x, api_name="/manifold")
        assert read(mf[0]).shape == (5 * 32, 5 * 32, 3)
        imp = c.predict("shapes", x, "bottom_half", None, 2, "pseudo_gibbs", 0, api_name="/impute")
        assert read(imp[0]).shape == (128, 128, 3) and read(imp[3]).shape[2] == 3 and "MSE" in imp[4]
        an = c.predict("shapes", x, "other_dataset", "nll", api_name="/anomaly")
        assert "no scorecard.json" in an[0]
        # the Playground trains on the folder's own training images (RGB, a Gaussian likelihood)
        small = ["vae", 2, 1.0, 0, 0.0, "standard", "mlp", 1e-3, 30]
        pg_out = c.predict("shapes", *small, *small[:-1], 40, api_name="/playground_train")
        assert pg_out[-1]["run_a"]["state"] == "done" and pg_out[-1]["run_b"]["steps"] == 40
        # an upload of another size and mode: resized and centre-cropped to 32x32 RGB (the dataset's preprocessing)
        photo = tmp_path / "photo.jpg"
        Image.fromarray(make_shapes(1, size=90, seed=5)[0][0][:, 10:80]).save(photo)
        up = np.asarray(Image.open(c.predict(handle_file(str(photo)), "shapes", api_name="/use_upload")))
        assert up.shape == (32, 32, 3)
        gray_up = np.asarray(Image.open(c.predict(handle_file(str(photo)), "mnist", api_name="/use_upload")))
        assert gray_up.shape == (28, 28)  # the same file for MNIST: digit-style, grayscale
        with pytest.raises(AppError, match="vae-16-iaf"):  # not a model of this dataset
            c.predict("shapes", x, 0, "ae-16", "vae-16-iaf", 0, api_name="/reconstruct")
        assert unexpected_tracebacks(app.log()) == []
    finally:
        app.stop()


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_explore_bad_arguments(tmp_path, capsys):
    from training.explore import main

    for argv, message in ((["/no/such/path"], "no such folder, .npz file or IDX files"),
                          ([str(tmp_path), "--name", "Bad Name"], "use lower-case letters"),
                          ([str(tmp_path), "--name", "mnist"], "not a shipped dataset's name"),
                          ([str(tmp_path)], "no image files"),
                          ([str(tmp_path), "--epochs", "-1"], "must be >= 0"),
                          ([str(tmp_path), "--preprocess", "sideways"], "invalid choice")):
        with pytest.raises(SystemExit) as exit_:
            main([*argv, "--checkpoints", str(tmp_path / "c")])
        err = capsys.readouterr().err
        assert exit_.value.code != 0 and message in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert not (tmp_path / "c").exists()  # nothing written


def test_training_a_small_folder_with_the_default_flags(tmp_path):
    """600 images (540 for training) and no --val-size: 10 % of them validate, the run trains; --val-size N holds."""
    import json

    import torch

    from tests.fake_data import write_fake_mnist
    from training.train import TrainConfig, load_data, main

    root = write_shapes_folder(tmp_path / "small", n=600, colour=False)
    out, cpu = tmp_path / "run", torch.device("cpu")
    main(["--dataset", f"folder:{root}", "--image-size", "32", "--bottleneck", "vae", "--latent-dim", "2",
          "--family", "mlp", "--hidden-dim", "16", "--epochs", "1", "--out", str(out), "--threads", "1"])
    assert json.loads((out / "metrics.json").read_text())["history"][-1]["val_loss"] > 0
    data = load_data(TrainConfig(dataset=f"folder:{root}", out=str(out)), cpu)
    assert (len(data.train), len(data.val)) == (486, 54)
    data = load_data(TrainConfig(dataset=f"folder:{root}", out=str(out), val_size=100), cpu)
    assert (len(data.train), len(data.val)) == (440, 100)
    mnist = write_fake_mnist(tmp_path / "mnist", n_train=200, n_test=20)
    assert len(load_data(TrainConfig(dataset="mnist", data_root=str(mnist), out=str(out)), cpu).val) == 20


def test_a_root_of_ones_own_expects_only_what_it_holds(tmp_path):
    """LATENT_EXPLORER_CHECKPOINTS at a root with only one's own dataset: no shipped dataset is called missing;
    an empty root still names the shipped ones (what to regenerate); an atlas without class names gets "0".."K-1"."""
    from explorer.bundle import load_dataset
    from explorer.catalog import DEFAULT_ROOT, find_datasets, missing_files

    own = tmp_path / "own"
    (own / "digits").mkdir(parents=True)
    images = np.zeros((20, 16, 16), np.uint8)
    np.savez(own / "digits" / "atlas.npz", images=images, labels=np.arange(20) % 10,
             class_names=np.array([], dtype=np.str_))
    assert list(find_datasets(own)) == ["digits"]
    assert not [f for key in find_datasets(own) for f in missing_files(own, key)]
    assert list(find_datasets(tmp_path / "empty")) == ["mnist", "fashion-mnist"]
    (own / "mnist").mkdir()
    assert list(find_datasets(own)) == ["mnist", "digits"]  # a shipped folder that is there is expected whole
    assert list(find_datasets(DEFAULT_ROOT))[:2] == ["mnist", "fashion-mnist"]
    b = load_dataset("digits", own, names=[])
    assert b.class_names == [str(c) for c in range(10)]


def test_explore_budget_scales_with_the_data():
    """Fewer images, fewer steps: 2,000 images train ~3x fewer steps than 10,000; larger images fewer still."""
    import math

    from training.explore import budget_epochs
    from training.train import default_val_size

    def steps(n_images, size, dim):
        n_train = n_images - math.ceil(0.1 * n_images)  # the test split
        per_epoch = math.ceil((n_train - default_val_size(n_train)) / 128)
        return budget_epochs(per_epoch, dim, size) * per_epoch

    large = steps(10_000, 32, 16) * 2 + steps(10_000, 32, 2) * 2
    small = steps(2_000, 32, 16) * 2 + steps(2_000, 32, 2) * 2
    assert 1400 <= steps(10_000, 32, 16) <= 1500 and 550 <= steps(10_000, 32, 2) <= 600  # as before: the step caps
    assert small < large / 2.5 and budget_epochs(13, 16, 32) == 40  # 2,000 images: 40 passes over them
    assert steps(10_000, 48, 16) < steps(10_000, 32, 16) / 2 and budget_epochs(1, 2, 64) == 16 and budget_epochs(500, 16, 64) == 3
