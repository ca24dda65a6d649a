"""Every named endpoint through gradio_client against the launched app (tests/conftest.py)."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from explorer.bundle import checkpoint_root

N = 16


def unexpected_tracebacks(log: str) -> list[str]:
    """Server-side tracebacks other than gradio's own log line for a clean gr.Error (e.g. its slider bounds check)."""
    blocks = log.split("Traceback (most recent call last):")[1:]
    return [b for b in blocks if "gradio.exceptions.Error:" not in b.strip().splitlines()[-1]]


def read(path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.fixture(scope="module")
def atlas():
    with np.load(checkpoint_root() / "mnist" / "atlas.npz") as f:
        return {"images": f["images"], "labels": f["labels"]}


@pytest.fixture(scope="module")
def digit(tmp_path_factory, atlas) -> str:
    p = tmp_path_factory.mktemp("img") / "digit.png"
    Image.fromarray(atlas["images"][7]).save(p)
    return str(p)


def test_startup_and_endpoints(app, client):
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    expected = {"/init", "/set_dataset", "/gallery_select", "/pick_test", "/random_test", "/use_upload", "/use_drawing",
                "/reconstruct", "/sample", "/set_a", "/set_b", "/random_b", "/interpolate", "/sliders_from_input",
                "/slide", "/noop", "/place_on_map", "/show_point", "/click_a", "/click_b", "/click_ae_2",
                "/click_vae_2", "/manifold", "/set_pair", "/select_points", "/decode_at"}
    assert expected <= names, expected - names
    assert unexpected_tracebacks(app.log()) == []


def test_no_trigger_has_two_listeners_that_wait_for_their_last_run(app):
    """At most one server listener with trigger_mode "always_last" per trigger. Gradio's page, when such a listener
    deferred an event, re-dispatches the *trigger* at that run's end, to all its listeners: two deferred ones then
    re-trigger each other forever (measured: every tab's work re-run ~2 times a second, the page 99 % busy, after
    a dataset picked while the first page's events ran). Each tab listens through a relay of its own."""
    import collections
    import json
    import urllib.request

    with urllib.request.urlopen(app.url + "config") as r:
        config = json.load(r)
    waiting = collections.defaultdict(list)
    for dep in config["dependencies"]:
        if dep.get("backend_fn") and dep.get("trigger_mode") == "always_last":
            for target, event in dep["targets"]:
                waiting[(target, event)].append(dep.get("api_name"))
    shared = {k: v for k, v in waiting.items() if len(v) > 1}
    assert shared == {}, shared
    relays = [c for c in config["components"] if "relay" in (c.get("props", {}).get("elem_classes") or [])]
    assert len(relays) >= 8  # one per tab listener of the current input or a model pick


def test_the_page_load_runs_only_the_pages_own_opening_events(app):
    """At load the page sets its open tab and asks /init for the dataset's pickers, legend and ends; no tab's handler
    is a load event (a tab computes when it opens), so a fresh page sends two requests, not seven."""
    import json
    import urllib.request

    with urllib.request.urlopen(app.url + "config") as r:
        config = json.load(r)
    loads = sorted(str(d.get("api_name")) for d in config["dependencies"]
                   if any(event == "load" for _, event in d["targets"]))
    assert len(loads) == 2 and "init" in loads, loads


def test_init_sends_the_gallery_and_input_to_an_api_caller_and_not_again_to_the_page_that_holds_them():
    import gradio as gr

    from ui.inputs import open_page, set_dataset

    full = set_dataset("mnist")
    api = open_page("mnist", None, "mnist")
    assert api[0] != gr.skip() and isinstance(api[1], np.ndarray) and len(api) == len(full)
    page = open_page("mnist", "reconstruct", "mnist")
    assert page[0] == gr.skip() and page[1] == gr.skip() and len(page) == len(full)
    np.testing.assert_array_equal(page[2], full[2])  # the Interpolate tab's ends still come (the page has none)
    other = open_page("fashion-mnist", "reconstruct", "mnist")  # a page that opened on another dataset: all of it
    assert other[0] != gr.skip() and isinstance(other[1], np.ndarray)


def test_pick_and_random_test_image(client, atlas):
    img = read(client.predict("mnist", 7, api_name="/pick_test"))
    np.testing.assert_array_equal(img, atlas["images"][7])
    for _ in range(2):
        a, ia = client.predict("mnist", api_name="/random_test")
        np.testing.assert_array_equal(read(a), atlas["images"][int(ia)])
    with pytest.raises(AppError, match="Atlas index must be"):
        client.predict("mnist", 10**7, api_name="/pick_test")
    with pytest.raises(AppError, match="Atlas index must be a whole number"):
        client.predict("mnist", 7.5, api_name="/pick_test")


def test_reconstruct(client, digit):
    """The default pair (Model A = AE-16, Model B = VAE-16) when the pickers are left out."""
    ae, vae, ae_samples, samples, text = client.predict("mnist", handle_file(digit), 0, api_name="/reconstruct")
    ae, vae, samples = read(ae), read(vae), read(samples)
    assert ae.shape == vae.shape == (112, 112) and ae.dtype == np.uint8
    assert ae.max() > 100 and ae.min() < 50  # a light object on black
    assert not np.array_equal(ae, vae)
    assert ae_samples is None  # an AE has no posterior to sample
    assert samples.shape[1] > 5 * samples.shape[0] / 2  # a strip of posterior draws
    assert "AE-16" in text and "VAE-16" in text and "MSE" in text
    again = client.predict("mnist", handle_file(digit), 1, api_name="/reconstruct")
    assert not np.array_equal(samples, read(again[3]))  # another seed, other posterior draws
    np.testing.assert_array_equal(ae, read(again[0]))  # the AE is deterministic


def test_sample_is_seeded_and_shows_the_gap(client):
    a = client.predict("mnist", 3, 1.0, api_name="/sample")
    b = client.predict("mnist", 3, 1.0, api_name="/sample")
    c = client.predict("mnist", 4, 1.0, api_name="/sample")
    for i in range(3):
        assert np.array_equal(read(a[i]), read(b[i]))
        assert not np.array_equal(read(a[i]), read(c[i]))
    assert not np.array_equal(read(a[0]), read(a[2]))  # N(0, I) vs GMM for the AE
    assert a[3] is None  # a VAE with the standard prior has no extra picture
    assert "GMM" in a[4] and "nearest atlas code" in a[4]
    with pytest.raises(AppError, match="maximum value 3"):
        client.predict("mnist", 3, 50.0, api_name="/sample")
    with pytest.raises(AppError, match="seed must be a whole number"):  # not rounded to seed 0 without a word
        client.predict("mnist", 0.5, 1.0, api_name="/sample")


def test_interpolate(client, digit, tmp_path, atlas):
    other = tmp_path / "other.png"
    Image.fromarray(atlas["images"][11]).save(other)
    ae, vae, text = client.predict("mnist", handle_file(digit), handle_file(str(other)), 7, "spherical",
                                   api_name="/interpolate")
    ae, vae = read(ae), read(vae)
    assert ae.shape == vae.shape and ae.shape[1] > 6 * ae.shape[0]  # 7 tiles in a row
    assert not np.array_equal(ae, vae)
    assert text.count("|") > 2 * 8 and "AE-16" in text and "VAE-16" in text
    lin = read(client.predict("mnist", handle_file(digit), handle_file(str(other)), 7, "linear",
                              api_name="/interpolate")[0])
    assert not np.array_equal(lin, ae)
    with pytest.raises(AppError, match="maximum value 20"):
        client.predict("mnist", handle_file(digit), handle_file(str(other)), 99, "linear", api_name="/interpolate")


def slider_values(out) -> list[float]:
    return [o["value"] if isinstance(o, dict) else o for o in out[: 2 * N]]


def test_sliders(client, digit):
    out = client.predict("mnist", handle_file(digit), "encoded input", api_name="/sliders_from_input")
    assert len(out) == 2 * N + 2
    first = out[0]
    assert first["minimum"] < first["value"] < first["maximum"] or first["value"] in (first["minimum"], first["maximum"])
    assert "KL" in out[N]["label"]  # the VAE's sliders carry their KL
    values = slider_values(out)
    ae0, vae0 = (read(p) for p in client.predict("mnist", *values, api_name="/slide"))
    np.testing.assert_array_equal(ae0, read(out[-2]))
    # Every slider to the end of its range farthest from the encoded value.
    moved = [o["minimum"] if o["value"] - o["minimum"] > o["maximum"] - o["value"] else o["maximum"] for o in out[:2 * N]]
    ae1, vae1 = (read(p) for p in client.predict("mnist", *moved, api_name="/slide"))
    assert np.abs(vae1.astype(int) - vae0).mean() > 1 and np.abs(ae1.astype(int) - ae0).mean() > 1
    origin = client.predict("mnist", handle_file(digit), "origin", api_name="/sliders_from_input")
    assert all(o["value"] == pytest.approx(0.0) or o["minimum"] > 0 or o["maximum"] < 0
               for o in origin[: 2 * N] if isinstance(o, dict))


def test_slider_out_of_range_is_refused_and_server_keeps_serving(app, client, digit):
    values = slider_values(client.predict("mnist", handle_file(digit), "encoded input", api_name="/sliders_from_input"))
    bad = list(values)
    bad[3] = 1e6
    with pytest.raises(AppError, match="outside its range"):
        client.predict("mnist", *bad, api_name="/slide")
    with pytest.raises(AppError, match="numbers"):
        client.predict("mnist", *(["x"] + values[1:]), api_name="/slide")
    assert client.predict("mnist", *values, api_name="/noop").isdigit()  # a new token per call
    assert unexpected_tracebacks(app.log()) == []


def test_the_interactive_maps_spec_names_files_that_hold_the_atlas(app, client, digit, atlas):
    """/place_on_map's 4th output is what the page's WebGL map reads: per model a points file with the atlas' map
    positions and codes (as the CSV export has them), its density picture and decoder, and the input's place."""
    import json
    import urllib.request

    from safetensors.numpy import load

    *_, spec = client.predict("mnist", handle_file(digit), api_name="/place_on_map")
    spec = json.loads(spec)
    assert spec["dataset"] == "mnist" and [m["key"] for m in spec["models"]] == ["ae-16", "vae-16"]
    get = lambda url: urllib.request.urlopen(app.url + url, timeout=30).read()  # noqa: E731
    for m in spec["models"]:
        points = load(get(m["points"]))
        np.testing.assert_array_equal(points["labels"], atlas["labels"].astype(np.float32))
        assert points["xy"].shape == (len(atlas["labels"]), 2) and points["codes"].shape == (len(atlas["labels"]), 16)
        assert (points["spread"] > 0).all() == m["vae"]
        assert get(m["density"])[:4] == b"\x89PNG" and m["decoder"].endswith(".safetensors")
        assert len(m["current"]) == 2
    sheet = np.asarray(Image.open(io.BytesIO(get(spec["sprite"]["url"]))))
    cols, (h, w) = spec["sprite"]["cols"], spec["sprite"]["size"]
    i = 1234
    np.testing.assert_array_equal(sheet[(i // cols) * h:(i // cols + 1) * h, (i % cols) * w:(i % cols + 1) * w],
                                  atlas["images"][i])


def test_a_selections_class_histogram_and_a_decoded_map_position(client, atlas):
    from explorer.latent import nn_distance_quantiles

    last = len(atlas["labels"]) - 1  # the whole test set: 10,000 images
    assert last == 9999
    indices = [5, 17, 17, 300, last, 42]
    gallery, text, sel = client.predict("mnist", ", ".join(map(str, indices)), api_name="/select_points")
    want = np.bincount(atlas["labels"][[5, 17, 300, last, 42]], minlength=10)
    assert sel["indices"] == [5, 17, 300, last, 42]  # in order, without the repeat
    assert [sel["histogram"][str(c)] for c in range(10)] == want.tolist()
    assert len(gallery) == 5 and "5 atlas images selected" in text
    with pytest.raises(AppError, match=f"whole numbers in 0..{last}"):
        client.predict("mnist", f"3, {last + 1}", api_name="/select_points")
    with pytest.raises(AppError, match="whole numbers"):
        client.predict("mnist", "3, x", api_name="/select_points")
    # a 2-D model's map is its plane: the position is the code itself, its distance the nearest atlas code's
    with np.load(checkpoint_root() / "mnist" / "atlas.npz") as f:
        codes = f["ae-2__mean"].astype(np.float64)
    img, info, text = client.predict("mnist", "ae-2", 0.5, -1.0, 0, api_name="/decode_at")
    assert info["z"] == pytest.approx([0.5, -1.0], abs=1e-6)
    gap = nn_distance_quantiles(codes)[0]  # the app's unit: the median gap between atlas codes
    assert info["distance"] == pytest.approx(np.sqrt(((codes - [0.5, -1.0]) ** 2).sum(1)).min() / gap, rel=1e-4)
    assert read(img).shape == (28, 28)
    with pytest.raises(AppError, match="no model 'ae-99'"):
        client.predict("mnist", "ae-99", 0.0, 0.0, 0, api_name="/decode_at")


def test_place_on_map_and_points(client, digit, atlas):
    ae_map, vae_map, text, spec = client.predict("mnist", handle_file(digit), api_name="/place_on_map")
    ae_map, vae_map = read(ae_map), read(vae_map)
    assert ae_map.shape == vae_map.shape == (360, 360, 3)
    assert "ms" in text and "no UMAP" in text
    other = read(client.predict("mnist", 300, api_name="/pick_test"))
    p = Path(digit).with_name("p300.png")
    Image.fromarray(other).save(p)
    assert not np.array_equal(ae_map, read(client.predict("mnist", handle_file(str(p)), api_name="/place_on_map")[0]))
    img, ae, vae, m1, m2, text = client.predict("mnist", 12, handle_file(digit), api_name="/show_point")
    assert not np.array_equal(read(m1), ae_map)  # the clicked point is marked too
    assert read(img).shape == (112, 112) and not np.array_equal(read(ae), read(vae))
    assert str(int(atlas["labels"][12])) in text


def test_manifold(client, digit):
    ae, vae, sc_ae, sc_vae = client.predict("mnist", 10, handle_file(digit), api_name="/manifold")
    assert read(ae).shape == read(vae).shape == (280, 280)
    assert not np.array_equal(read(ae), read(vae))
    assert read(sc_ae).shape == (360, 360, 3)


# ---- any two models (the pickers) ------------------------------------------------------------------------
VAMP_CVAE = ("vae-16-vamp", "cvae-16")


def test_every_tab_with_non_default_pickers(client, digit, atlas, tmp_path):
    """VampPrior VAE (Model A) against the class-conditional VAE (Model B) on every comparing tab."""
    label = int(atlas["labels"][7])  # the digit's own class, given to the CVAE
    default = client.predict("mnist", handle_file(digit), 0, api_name="/reconstruct")
    rec = client.predict("mnist", handle_file(digit), 0, *VAMP_CVAE, label, api_name="/reconstruct")
    assert "VampPrior VAE-16" in rec[4] and "CVAE-16" in rec[4] and f"class {label}" in rec[4]
    assert not np.array_equal(read(rec[0]), read(default[0]))  # Model A is no longer the AE
    every = read(rec[3])  # the CVAE: its code decoded with every class, in one row
    assert every.shape[1] > 10 * every.shape[0] / 2
    wrong = client.predict("mnist", handle_file(digit), 0, *VAMP_CVAE, (label + 1) % 10, api_name="/reconstruct")
    assert not np.array_equal(read(wrong[1]), read(rec[1]))  # reconstructed with a wrong label: another picture
    np.testing.assert_array_equal(read(wrong[0]), read(rec[0]))  # the VampPrior VAE ignores the label

    smp = client.predict("mnist", 3, 1.0, *VAMP_CVAE, 4, api_name="/sample")
    assert smp[2] is None and read(smp[3]).shape[1] > read(smp[3]).shape[0]  # same z, every class (6 x 10 grid)
    assert "VampPrior" in smp[4] and "class 4" in smp[4]
    other = tmp_path / "other.png"
    Image.fromarray(atlas["images"][11]).save(other)
    a, b, text = client.predict("mnist", handle_file(digit), handle_file(str(other)), 5, "linear", *VAMP_CVAE, label,
                                api_name="/interpolate")
    assert "VampPrior VAE-16" in text and "CVAE-16" in text and read(a).shape == read(b).shape
    out = client.predict("mnist", handle_file(digit), "encoded input", *VAMP_CVAE, label,
                         api_name="/sliders_from_input")
    assert "VampPrior" in out[0]["label"] and "CVAE" in out[N]["label"]
    values = slider_values(out)
    a_img, b_img = client.predict("mnist", *values, *VAMP_CVAE, label, api_name="/slide")
    np.testing.assert_array_equal(read(b_img), read(out[-1]))
    maps = client.predict("mnist", handle_file(digit), *VAMP_CVAE, label, api_name="/place_on_map")
    assert read(maps[0]).shape == read(maps[1]).shape == (360, 360, 3)
    pt = client.predict("mnist", 12, handle_file(digit), *VAMP_CVAE, label, api_name="/show_point")
    assert read(pt[1]).shape == (112, 112)
    described = client.predict("mnist", *VAMP_CVAE, api_name="/set_pair")
    assert "VampPrior VAE-16" in described[0] and "class-conditional" in described[0]
    assert described[1] in ({}, None) or not described[1].get("models")  # a CVAE is decoded by the server


def test_pickers_of_different_latent_sizes_and_bad_names(client, digit):
    out = client.predict("mnist", handle_file(digit), "encoded input", "vae-2", "vae-16-iaf", 0,
                         api_name="/sliders_from_input")
    shown_a = [o for o in out[:N] if isinstance(o, dict) and o.get("visible") is not False]
    assert len(shown_a) == 2  # the 2-D model: two sliders; the IAF VAE-16: sixteen
    assert all(o.get("visible") is not False for o in out[N:2 * N] if isinstance(o, dict))
    values = slider_values(out)
    a_img, b_img = client.predict("mnist", *values, "vae-2", "vae-16-iaf", 0, api_name="/slide")
    assert read(a_img).shape == read(b_img).shape == (112, 112)
    with pytest.raises(AppError, match="MNIST has no model 'vae-99'"):
        client.predict("mnist", handle_file(digit), 0, "ae-16", "vae-99", 0, api_name="/reconstruct")
    with pytest.raises(AppError, match="Fashion-MNIST has no model 'vae-16-iaf'"):  # an MNIST-only model
        client.predict("fashion-mnist", handle_file(digit), 0, "ae-16", "vae-16-iaf", 0, api_name="/reconstruct")
    with pytest.raises(AppError, match=r"whole number 0..9 \(got 42\)"):  # CVAE-16 has classes 0..9
        client.predict("mnist", handle_file(digit), 0, "cvae-16", "vae-16", 42, api_name="/reconstruct")


def test_any_dataset_and_model_in_any_order(client):
    """A model is checked against the dataset the call names, not against the pickers' last choices: after a
    switch to Fashion-MNIST (whose pickers lack the MNIST-only variants), MNIST's β-VAE is still diagnosed."""
    client.predict("fashion-mnist", api_name="/set_dataset")
    summary, _, _, _, text = client.predict("mnist", "vae-16-beta4", api_name="/diagnostics")
    assert "β" in text or "beta" in text.lower()
    assert "partly collapsed" in text
    with pytest.raises(AppError, match="Fashion-MNIST has no model 'vae-16-beta4'"):
        client.predict("fashion-mnist", "vae-16-beta4", api_name="/diagnostics")


def test_set_dataset_switches_everything(client):
    mnist = client.predict("mnist", api_name="/set_dataset")
    fashion = client.predict("fashion-mnist", api_name="/set_dataset")
    assert not np.array_equal(read(mnist[1]), read(fashion[1]))  # the current input changes dataset
    assert "Trouser" in fashion[4] and "Trouser" not in mnist[4]  # the map legend
    assert (mnist[7]["value"], mnist[8]["value"]) == ("ae-16", "vae-16")  # the pickers: the default pair
    mnist_models = {c[1] for c in mnist[7]["choices"]}
    assert {"vae-16-vamp", "vae-16-iaf", "cvae-16"} <= mnist_models  # every model folder, from the catalog
    assert "vae-16-iaf" not in {c[1] for c in fashion[7]["choices"]}
    f_img = client.predict("fashion-mnist", 0, api_name="/pick_test")
    rec = client.predict("fashion-mnist", handle_file(f_img), 0, api_name="/reconstruct")
    assert read(rec[0]).shape == (112, 112)


# ---- uploads and drawings: good and bad ------------------------------------------------------------
def similar(a: np.ndarray, b: np.ndarray) -> bool:
    """Same shape up to a pixel of shift: correlation of 5x5 box-blurred images (thin strokes move by resampling)."""
    def blur(x):
        x = np.pad(x.astype(np.float64), 2)
        return sum(x[i: i + 28, j: j + 28] for i in range(5) for j in range(5))

    return float(np.corrcoef(blur(a).ravel(), blur(b).ravel())[0, 1]) > 0.8


def dark_digit_on_white(atlas, size=(560, 560), mode="RGB") -> Image.Image:
    im = Image.fromarray(255 - atlas["images"][7]).resize(size, Image.BILINEAR)
    return im.convert(mode)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_upload_becomes_light_digit_on_black(client, atlas, tmp_path, mode):
    p = tmp_path / "up.png"
    dark_digit_on_white(atlas, mode=mode).save(p)
    out = read(client.predict(handle_file(str(p)), api_name="/use_upload"))
    assert out.shape == (28, 28)
    assert out[:3].max() < 30 and out.max() > 200  # black border, light digit
    assert similar(out, atlas["images"][7])  # and it is the same digit, re-normalized


def test_upload_16_bit(client, atlas, tmp_path):
    p = tmp_path / "u16.png"
    Image.fromarray((atlas["images"][7].astype(np.uint16) * 257)).save(p)
    out = read(client.predict(handle_file(str(p)), api_name="/use_upload"))
    assert similar(out, atlas["images"][7])


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def bad_file(tmp_path: Path, kind: str, atlas) -> Path:
    if kind == "not-an-image":
        p = tmp_path / "notes.txt"
        p.write_text("hello, not an image")
    elif kind == "huge":
        p = tmp_path / "huge.png"
        p.write_bytes(png_header_only(20000, 20000))
    elif kind == "truncated":
        buf = io.BytesIO()
        dark_digit_on_white(atlas).save(buf, "PNG")
        p = tmp_path / "trunc.png"
        p.write_bytes(buf.getvalue()[:200])
    elif kind == "gif":  # a GIF is accepted (first frame) and gives a proper input
        p = tmp_path / "anim.gif"
        frames = [dark_digit_on_white(atlas, mode="L"), Image.new("L", (560, 560), 255)]
        frames[0].save(p, save_all=True, append_images=frames[1:], duration=100)
    return p


@pytest.mark.parametrize("kind,message", [
    ("not-an-image", "not an image"),
    ("huge", "20000x20000"),
    ("truncated", "damaged or truncated"),
])
def test_bad_uploads_get_clear_errors(app, client, tmp_path, atlas, kind, message):
    with pytest.raises(AppError, match=message):
        client.predict(handle_file(str(bad_file(tmp_path, kind, atlas))), api_name="/use_upload")
    assert read(client.predict("mnist", 1, api_name="/pick_test")).shape == (28, 28)  # still serving
    assert unexpected_tracebacks(app.log()) == []


def test_gif_upload_uses_first_frame(client, tmp_path, atlas):
    out = read(client.predict(handle_file(str(bad_file(tmp_path, "gif", atlas))), api_name="/use_upload"))
    assert out.shape == (28, 28) and out.max() > 200


def sketch_value(path: str | None) -> dict:
    return {"background": None, "layers": [], "composite": handle_file(path) if path else None}


def test_drawing(client, tmp_path, atlas):
    p = tmp_path / "draw.png"
    rgba = np.zeros((280, 280, 4), np.uint8)  # black strokes on a transparent canvas, as the Sketchpad sends
    rgba[60:220, 130:150, 3] = 255
    Image.fromarray(rgba, "RGBA").save(p)
    out = read(client.predict(sketch_value(str(p)), api_name="/use_drawing"))
    assert out.shape == (28, 28) and out.max() > 200 and out[:, :5].max() < 30  # a light vertical bar


def test_empty_drawing_is_refused(app, client, tmp_path):
    p = tmp_path / "empty.png"
    Image.fromarray(np.zeros((280, 280, 4), np.uint8), "RGBA").save(p)
    for value in (sketch_value(str(p)), sketch_value(None)):
        with pytest.raises(AppError, match="empty|blank"):
            client.predict(value, api_name="/use_drawing")
    assert unexpected_tracebacks(app.log()) == []


def test_app_starts_with_missing_checkpoints_and_says_what_to_run(tmp_path):
    """Only MNIST's atlas and two of its models: the app serves, names what is missing and `make checkpoints`."""
    import json
    import urllib.request

    from gradio_client import Client

    from tests.conftest import RunningApp

    src = checkpoint_root() / "mnist"
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "atlas.npz").symlink_to(src / "atlas.npz")
    for name in ("ae-16", "vae-16"):
        (tmp_path / "mnist" / name).symlink_to(src / name)
    partial = RunningApp({"LATENT_EXPLORER_CHECKPOINTS": str(tmp_path)}, name="partial")
    try:
        with urllib.request.urlopen(partial.url + "config", timeout=30) as r:
            config = json.dumps(json.load(r))
        assert "make checkpoints" in config
        assert "ae-2" in config and "fashion-mnist" in config.lower()
        c = Client(partial.url, verbose=False)
        digit = handle_file(c.predict("mnist", 3, api_name="/pick_test"))
        ae, vae, _, _, _ = c.predict("mnist", digit, 0, api_name="/reconstruct")
        assert read(ae).shape == (112, 112)  # what is there still works
        with pytest.raises(AppError, match="make checkpoints"):
            c.predict("mnist", 10, digit, api_name="/manifold")  # needs the missing 2-D models
        with pytest.raises(AppError, match="make checkpoints"):
            c.predict("fashion-mnist", 0, 1.0, api_name="/sample")
        assert unexpected_tracebacks(partial.log()) == []
    finally:
        partial.stop()


def test_a_new_model_folder_appears_in_the_pickers(tmp_path):
    """Drop a model folder (config.json + model.safetensors, with a title) and its atlas codes into a dataset: the
    app lists it in both pickers and compares it on the tabs, with no code change."""
    import json
    import shutil

    from gradio_client import Client

    from tests.conftest import RunningApp
    from explorer.catalog import find_models

    src = checkpoint_root() / "mnist"
    dst = tmp_path / "mnist"
    dst.mkdir()
    for name in find_models(src) + ["classifier"]:
        (dst / name).symlink_to(src / name)
    extra = dst / "vae-16-extra"
    extra.mkdir()
    shutil.copy(src / "vae-16" / "model.safetensors", extra)
    config = json.loads((src / "vae-16" / "config.json").read_text())
    (extra / "config.json").write_text(json.dumps({**config, "title": "Extra VAE (test)",
                                                   "description": "A copy of the VAE-16 that a test dropped in."}))
    with np.load(src / "atlas.npz") as f:
        atlas = {k: f[k] for k in f.files}
    for key in ("mean", "std", "umap"):  # the same weights: the same atlas codes
        atlas[f"vae-16-extra__{key}"] = atlas[f"vae-16__{key}"]
    np.savez_compressed(dst / "atlas.npz", **atlas)
    (tmp_path / "fashion-mnist").symlink_to(checkpoint_root() / "fashion-mnist")
    extra_app = RunningApp({"LATENT_EXPLORER_CHECKPOINTS": str(tmp_path)}, name="extra-model")
    try:
        c = Client(extra_app.url, verbose=False)
        out = c.predict("mnist", api_name="/set_dataset")
        for picker in (out[7], out[8]):
            assert ["Extra VAE (test) · vae-16-extra", "vae-16-extra"] in [list(x) for x in picker["choices"]]
        digit = handle_file(c.predict("mnist", 3, api_name="/pick_test"))
        a, b, _, _, text = c.predict("mnist", digit, 0, "vae-16-extra", "vae-16", 0, api_name="/reconstruct")
        np.testing.assert_array_equal(read(a), read(b))  # the same weights
        assert "Extra VAE (test)" in text
        assert "A copy of the VAE-16" in c.predict("mnist", "vae-16-extra", "vae-16", api_name="/set_pair")[0]
    finally:
        extra_app.stop()


def test_the_semi_supervised_model_labels_the_input(client, digit, atlas):
    """M2 in the pickers: Reconstruct shows its q(y|x) of the input, the probabilities of the shipped model's own
    classifier head (computed here without the app); it samples a chosen class like the CVAE."""
    import torch

    from models import Autoencoder

    m2 = Autoencoder.from_pretrained(checkpoint_root() / "mnist" / "cvae-50-m2")
    assert m2.config.semi_supervised
    with torch.inference_mode():
        x = torch.tensor(atlas["images"][7][None, None]).float() / 255
        p = m2.float().classify(x).softmax(1)[0].numpy()
    best = np.argsort(-p)[:3]
    rec = client.predict("mnist", handle_file(digit), 0, "vae-16", "cvae-50-m2", None, api_name="/reconstruct")
    probs = ", ".join(f"{c} {p[c]:.2f}" for c in best)
    assert f"calls this image **{best[0]}** (probabilities: {probs}, …)" in rec[4], rec[4]
    smp = client.predict("mnist", 3, 1.0, "vae-16", "cvae-50-m2", 4, api_name="/sample")
    assert "class 4" in smp[4] and read(smp[3]).shape[1] > read(smp[3]).shape[0]  # same z, every class
