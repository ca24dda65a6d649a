"""Latent Explorer: how a deterministic AE and a VAE organize their latent spaces, side by side.

Thin Gradio layer over explorer/ (plain-Python latent operations). The page is served first; torch,
the models and the atlases load right after, in one background thread (~2-3 s on a laptop CPU), and
any request that arrives before that waits for them. Every callback runs under torch.inference_mode
(inside ModelView.encode/decode). `python app.py` serves on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT
(default 127.0.0.1:7860).
"""
from __future__ import annotations

import functools
import logging
import os
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np
from gradio import processing_utils

from explorer import scorecard, service  # numpy only: torch comes with the models (ModelStore)
from explorer.catalog import DATASETS, REGENERATE, checkpoint_root, missing_files
from explorer.files import write_once
from explorer.images import InputError, drawing_to_gray, load_upload, to_dataset_format
from explorer.plot import legend_markdown

try:  # ZeroGPU Spaces: functions that touch CUDA are wrapped; elsewhere this is a no-op.
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn

log = logging.getLogger("latent-explorer")
N_DIMS = 16
GALLERY_PER_CLASS = 4
MAX_FILE_SIZE = "10mb"
CONCURRENCY = 20  # events of one kind running at once (set per event: a demo.queue() call costs ~0.2 s of start-up)
STATIC = Path(__file__).resolve().parent / "static"  # served as is: the live decoder and its vendored TensorFlow.js
gr.set_static_paths([STATIC])
# The decoders the browser runs (explorer/webdecoder.py), written when the models load. Gradio serves files
# in its upload folder; these are named by their content.
DECODER_DIR = Path(gr.utils.get_upload_folder()) / "latent-explorer-decoders"
# slider model -> (id prefix of its sliders, id of the canvas the browser draws its decode on)
LIVE_MODELS = {"ae-16": ("ae-s", "live-ae"), "vae-16": ("vae-s", "live-vae")}
IMPUTE_MASKS = {**service.MASK_LABELS, "painted": "painted"}


def file_url(path: Path) -> str:
    """The URL (relative to the page) at which gradio serves a static or cached file."""
    return f"gradio_api/file={Path(path).resolve().as_posix()}"


def save_pil_to_cache_atomically(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """gradio.processing_utils.save_pil_to_cache, but each cached file is written once, atomically.

    Gradio names a returned image's file by the hash of its bytes and rewrote that file in place
    (truncate, then write) on every return. Identical outputs share one path, so a response still
    streaming the file (starlette's FileResponse, Content-Length from stat() first) saw it shrink and h11
    aborted it ("Too little data for declared Content-Length"): a broken image for that client.
    """
    data = processing_utils.encode_pil_to_bytes(img, format)
    path = Path(cache_dir) / processing_utils.hash_bytes(data) / f"{name}.{format}"
    return str(write_once(path.resolve(), data))


# gr.Image and gr.Gallery outputs (numpy or PIL) all go through this one function.
processing_utils.save_pil_to_cache = save_pil_to_cache_atomically


class ModelStore:
    """Imports torch and loads every model and atlas once, in a background thread.

    `start()` begins loading (`python app.py` calls it as soon as the server is up, so the page does
    not wait for torch); `get()` starts it if needed and blocks until it is done.
    """

    def __init__(self, root):
        self.root = root
        self.bundles: dict = {}
        self.live: dict = {}  # dataset -> what the browser needs to decode slider moves (webdecoder.live_spec)
        self.device = None
        self.seconds: float | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._load, name="load-models", daemon=True)
                self._thread.start()

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            import torch

            from explorer.bundle import default_device, load_all

            self.device = default_device()
            if self.device.type == "cpu":
                torch.set_num_threads(1)  # many small requests: one thread each beats threads fighting over cores
            self.bundles = load_all(self.root, self.device)
            self.live = self._live_specs()
        except Exception as e:  # the app keeps serving and says what failed
            log.exception("loading the models failed")
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.seconds = time.perf_counter() - t0
            self._done.set()

    def _live_specs(self) -> dict:
        from explorer.webdecoder import live_spec

        specs = {}
        for key, b in self.bundles.items():
            try:
                specs[key] = live_spec(b, DECODER_DIR, file_url, LIVE_MODELS)
            except OSError as e:  # e.g. a read-only cache: the server decodes slider moves instead
                log.warning("no live decoding for %s: %s", key, e)
        return specs

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def get(self) -> dict:
        self.start()
        self._done.wait()
        if self.error:
            raise gr.Error(f"The models could not be loaded ({self.error}). Regenerate them with `{REGENERATE}`.",
                           print_exception=False)
        return self.bundles


MODELS = ModelStore(checkpoint_root())


MISSING_HEAD = f"Some checkpoints are missing: the affected tabs show a message. Regenerate with `{REGENERATE}`."


def status_text() -> str:
    """Which checkpoints are there: from the files at start-up, from the loaded models afterwards."""
    if not MODELS.ready:
        missing = [f for key in DATASETS for f in missing_files(MODELS.root, key)]
        if not missing:
            return "Loading the models…"
        shown = "; ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        return f"{MISSING_HEAD}\n\nMissing: {shown}. Loading the rest…"
    if MODELS.error:
        return f"**The models could not be loaded** ({MODELS.error}). Regenerate them with `{REGENERATE}`."
    bundles = MODELS.bundles
    ok = all(not b.problems for b in bundles.values())
    head = "" if ok else f"{MISSING_HEAD}\n\n"
    return (head + "\n\n".join(f"- {b.status()}" for b in bundles.values())
            + f"\n\nModels on {MODELS.device.type}, loaded in {MODELS.seconds:.1f} s.")


def bundle(dataset: str):
    bundles = MODELS.get()
    if dataset not in bundles:
        raise InputError(f"dataset must be one of {list(bundles)}, got {dataset!r}.")
    return bundles[dataset]


def guarded(fn):
    """Turn bad input into a clear gr.Error (a toast in the UI, a clean error through the API)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (InputError, LookupError) as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception as e:  # never show a traceback to the user
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Something went wrong ({type(e).__name__}); the input was not processed.",
                           print_exception=False) from None

    return wrapper


# ---- inputs ------------------------------------------------------------------------------------
def gallery_indices(dataset: str) -> list[int]:
    """The first GALLERY_PER_CLASS atlas images of every class (class-major order)."""
    b = bundle(dataset)
    if b.labels is None:
        return []
    return [int(i) for c in range(10) for i in np.nonzero(b.labels == c)[0][:GALLERY_PER_CLASS]]


def gallery_items(dataset: str) -> list:
    b = bundle(dataset)
    return [(service.upscale(b.images[i], 2), f"{i}: {b.class_names[int(b.labels[i])]}") for i in gallery_indices(dataset)]


@guarded
def pick_test(dataset: str, index: float) -> np.ndarray:
    b = bundle(dataset)
    if b.images is None:
        raise LookupError(f"{b.title}: atlas.npz is missing; regenerate with `{REGENERATE}`.")
    if index is None or not float(index).is_integer() or not 0 <= int(index) < len(b.images):
        raise InputError(f"Atlas index must be a whole number in 0..{len(b.images) - 1}, got {index}.")
    return b.images[int(index)]


@guarded
def random_test(dataset: str) -> tuple[np.ndarray, int]:
    b = bundle(dataset)
    if b.images is None:
        raise LookupError(f"{b.title}: atlas.npz is missing; regenerate with `{REGENERATE}`.")
    i = int(np.random.default_rng().integers(len(b.images)))
    return b.images[i], i


@guarded
def gallery_select(dataset: str, evt: gr.SelectData) -> tuple[np.ndarray, int]:
    i = gallery_indices(dataset)[evt.index]
    return pick_test(dataset, i), i


@guarded
def use_upload(path: str | None) -> np.ndarray:
    return load_upload(path)


@guarded
def use_drawing(value) -> np.ndarray:
    return to_dataset_format(drawing_to_gray(value))


# ---- tabs ----------------------------------------------------------------------------------------
@guarded
@gpu
def reconstruct(dataset: str, image, seed: float):
    if image is None:  # fired by a .change while the input is still empty
        return gr.skip()
    r = service.reconstruct(bundle(dataset), image, 0 if seed is None else seed)  # the service checks the seed
    return r["ae"], r["vae"], r["vae_samples"], r["text"]


@guarded
@gpu
def sample(dataset: str, seed: float, temperature: float):
    if temperature is None:
        raise InputError("Enter a temperature in (0, 3].")
    r = service.sample(bundle(dataset), seed, float(temperature))  # the service checks the seed
    return r["ae_prior"], r["vae_prior"], r["ae_gmm"], r["text"]


@guarded
@gpu
def interpolate(dataset: str, image_a, image_b, steps: float, mode: str):
    if image_a is None or image_b is None:  # fired by a .change while the input is still empty
        return gr.skip()
    r = service.interpolate(bundle(dataset), image_a, image_b, int(steps), mode)
    return r["ae"], r["vae"], r["text"]


def _slider_updates(dataset: str, values: dict[str, np.ndarray] | None) -> list:
    """gr.Slider updates (range, label, value) for the AE's then the VAE's sliders."""
    b = bundle(dataset)
    out = []
    for name in ("ae-16", "vae-16"):
        view = b.models.get(name)
        for k in range(N_DIMS):
            if view is None or k >= view.latent_dim:
                out.append(gr.Slider(visible=False))
                continue
            d = view.order[k]
            lo, hi = (float(x) for x in view.ranges[d])
            out.append(gr.Slider(minimum=lo, maximum=hi, step=0.01, visible=True,
                                 value=round(float(values[name][k]), 2) if values else 0.0,
                                 label=service.slider_labels(view)[k]))
    return out


@guarded
@gpu
def sliders_from_input(dataset: str, image, start: str):
    b = bundle(dataset)
    if image is None and start == "encoded input":
        return gr.skip()
    values = service.slider_start(b, image if start == "encoded input" else None)
    ae_img, vae_img = service.decode_sliders(b, values["ae-16"], values["vae-16"])
    return [*_slider_updates(dataset, values), ae_img, vae_img]


@guarded
@gpu
def slide(dataset: str, *values):
    """Called with raw payloads (preprocess=False): slider values are validated here, per dataset."""
    if len(values) != 2 * N_DIMS:
        raise InputError(f"expected {2 * N_DIMS} slider values, got {len(values)}.")
    b = bundle(dataset)
    n_ae, n_vae = (b.require(n)[0].latent_dim for n in ("ae-16", "vae-16"))
    try:
        ae = [float(v) for v in values[:n_ae]]
        vae = [float(v) for v in values[N_DIMS: N_DIMS + n_vae]]
    except (TypeError, ValueError):
        raise InputError("slider values must be numbers.") from None
    return service.decode_sliders(b, ae, vae)


def noop(dataset: str, *values) -> str:
    """Does nothing: the baseline round trip for the benchmarks. Answers a new token each time, so that a
    browser sees the answer land (bench/browser_latency.py clicks the hidden button)."""
    return str(time.monotonic_ns())


@guarded
@gpu
def place_on_map(dataset: str, image):
    if image is None:  # fired by a .change while the input is still empty
        return gr.skip()
    t = time.perf_counter()
    r = service.place(bundle(dataset), image)
    ms = (time.perf_counter() - t) * 1000
    text = (f"Red cross: the current input (black: a clicked point), placed from the atlas (distance-weighted mean of the map positions of "
            f"its 10 nearest atlas codes; no UMAP at request time) in {ms:.0f} ms.")
    return r["ae-16"], r["vae-16"], text


@guarded
@gpu
def show_point(dataset: str, index: float, image=None):
    if index is None:
        raise InputError("Enter an atlas index.")
    r = service.point(bundle(dataset), int(index), image)
    return r["image"], r["ae-16"], r["vae-16"], r["ae-16_map"], r["vae-16_map"], r["text"]


def map_click(model: str):
    @guarded
    def handler(dataset: str, image, evt: gr.SelectData):
        col, row = evt.index
        i = service.click(bundle(dataset), model, float(col), float(row))
        return (i, *show_point(dataset, i, image))

    handler.__name__ = f"click_{model.replace('-', '_')}"
    return handler


@guarded
@gpu
def manifold(dataset: str, n: float, image):
    if image is None:  # fired by a .change while the input is still empty
        return gr.skip()
    r = service.manifold(bundle(dataset), int(n), image)
    return r["ae-2"], r["vae-2"], r["ae-2_scatter"], r["vae-2_scatter"]


# ---- Scorecard, Anomaly, Impute: read scorecard.json; the per-input work is small ------------------------
OTHER_DATASET = {"mnist": "fashion-mnist", "fashion-mnist": "mnist"}
VERDICT_DEFAULT = "generation (prior)"


def card_of(dataset: str) -> dict:
    b = bundle(dataset)
    if not b.scorecard:
        raise LookupError(f"{b.title}: no scorecard.json. Compute it with "
                          f"`python -m training.scorecard --dataset {dataset} --data-root DATA`.")
    return b.scorecard


@guarded
def scorecard_tab(dataset: str):
    """Everything the Scorecard tab shows for a dataset."""
    card = card_of(dataset)
    verdicts = list(card["verdicts"])
    verdict = VERDICT_DEFAULT if VERDICT_DEFAULT in verdicts else verdicts[0]
    return (scorecard.verdict_markdown(card), gr.Dropdown(choices=verdicts, value=verdict),
            scorecard.task_frame(card, verdict), scorecard.roc_frame(card, "other_dataset"),
            scorecard.imputation_frame(card))


@guarded
def scorecard_task(dataset: str, verdict: str):
    card = card_of(dataset)
    if verdict not in card["verdicts"]:
        raise InputError(f"task must be one of {list(card['verdicts'])}, got {verdict!r}.")
    return scorecard.task_frame(card, verdict)


@guarded
def scorecard_roc(dataset: str, pair: str):
    try:
        return scorecard.roc_frame(card_of(dataset), pair)
    except ValueError as e:
        raise InputError(str(e)) from None


@guarded
@gpu
def anomaly(dataset: str, image, ood_set: str, vae_score: str):
    if image is None:  # fired by a .change while the input is still empty
        return gr.skip()
    r = service.anomaly(bundle(dataset), image, ood_set or None, vae_score or "nll")
    return r["text"], r["ae_plot"], r["vae_plot"]


@guarded
def other_dataset_image(dataset: str) -> np.ndarray:
    """A random test image of the other dataset: what the models make of data they never saw."""
    if dataset not in OTHER_DATASET:
        raise InputError(f"dataset must be one of {list(OTHER_DATASET)}, got {dataset!r}.")
    return random_test(OTHER_DATASET[dataset])[0]


def painted_mask(value) -> np.ndarray | None:
    """The painted strokes of a gr.ImageEditor value (alpha of every layer), or None if nothing is painted."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return np.asarray(value)  # not an editor value: taken as the painted mask itself
    layers = [np.asarray(l) for l in value.get("layers") or [] if l is not None]
    alpha = [l[..., 3] if l.ndim == 3 and l.shape[2] == 4 else l for l in layers]
    painted = [a for a in alpha if np.asarray(a).any()]
    return np.max(np.stack(painted), 0) if painted else None


@guarded
@gpu
def impute(dataset: str, image, mask: str, editor, n_samples: float, sampler: str, seed: float):
    if image is None:
        raise InputError("No input image yet: pick a test image, upload a file or draw something.")
    if n_samples is None or not float(n_samples).is_integer():
        raise InputError(f"number of VAE imputations must be a whole number 1..16, got {n_samples}.")
    r = service.impute(bundle(dataset), image, mask, painted_mask(editor) if mask == "painted" else None,
                       int(n_samples), sampler, 0 if seed is None else seed)
    return r["masked"], r["ae"], r["vae_mean"], r["vae_samples"], r["text"]


def impute_on_change(dataset: str, image, mask: str, editor, n_samples: float, sampler: str, seed: float):
    """A new input or preset refills at once; a painted mask waits for the Impute button (it was just cleared)."""
    if image is None or mask == "painted":
        return gr.skip()
    return impute(dataset, image, mask, editor, n_samples, sampler, seed)


def editor_background(image):
    """The current input, 10x, as the editor's background to paint the mask on."""
    if image is None:
        return gr.skip()
    big = service.upscale(service.as_input(image), 10)
    return {"background": big, "layers": [], "composite": big}


def set_dataset(dataset: str):
    if dataset not in DATASETS:
        raise gr.Error(f"dataset must be one of {list(DATASETS)}, got {dataset!r}.")
    b = bundle(dataset)
    shown = gallery_indices(dataset)
    first = b.images[shown[0]] if shown else None
    second = b.images[shown[min(GALLERY_PER_CLASS, len(shown) - 1)]] if shown else None
    legend = legend_markdown(b.class_names) if b.class_names else ""
    msg = "" if not b.problems else b.status()
    return (gr.Gallery(value=gallery_items(dataset) if b.images is not None else []), first, first, second,
            legend, msg, status_text(), MODELS.live.get(dataset, {}), *_slider_updates(dataset, None))


# ---- layout --------------------------------------------------------------------------------------
# Gradio's Sketchpad opens with no tool selected; opening the Draw tab selects the brush (browser-side only).
PICK_BRUSH = """() => {
  let tries = 0;
  const pick = () => {  // the sketchpad renders after the tab opens: look for its brush for up to 5 s
    const b = document.querySelector("#sketch button[aria-label='Brush']");
    if (b) { if (!b.classList.contains("highlight")) b.click(); }  // "highlight": the selected tool
    else if (++tries < 50) setTimeout(pick, 100);
  };
  setTimeout(pick, 50);
}"""

HEAD = "".join(f'<script src="{file_url(STATIC / f)}"></script>' for f in
               ("vendor/tfjs/tf-core.min.js", "vendor/tfjs/tf-backend-cpu.min.js", "live_decoder.js"))
LIVE_HTML = """<div class="live-row">
  <figure><figcaption>AE decode (live, in your browser)</figcaption><canvas id="live-ae" width="28" height="28"></canvas></figure>
  <figure><figcaption>VAE decode (live, in your browser)</figcaption><canvas id="live-vae" width="28" height="28"></canvas></figure>
</div>"""
LIVE_JS = "() => { if (window.latentLive) window.latentLive.sync(); }"

CSS = """
.pixelated img { image-rendering: pixelated; }
#live { display: none; }
.live-row { display: flex; gap: 1rem; }
.live-row figure { flex: 1; margin: 0; text-align: center; }
.live-row figcaption { font-size: var(--text-sm); color: var(--body-text-color-subdued); text-align: left; }
.live-row canvas { width: 180px; height: 180px; image-rendering: pixelated; background: #000; }
#current img, #end-a img, #end-b img { width: 112px !important; height: 112px !important; object-fit: contain; }
"""

with gr.Blocks(title="Latent Explorer: AE vs VAE", delete_cache=(3600, 3600)) as demo:
    gr.Markdown(
        "# Latent Explorer: AE vs VAE\nA deterministic autoencoder (AE) and a variational autoencoder (VAE) with the "
        "same encoder/decoder, side by side on the same input. Pick a dataset and an input; every tab follows."
    )
    with gr.Row():
        dataset = gr.Radio([(v, k) for k, v in DATASETS.items()], value="mnist", label="Dataset", scale=1)
        status = gr.Markdown(status_text(), elem_id="status")
    problem = gr.Markdown("", elem_id="problem")
    with gr.Row():
        with gr.Column(scale=4):
            with gr.Tabs():
                with gr.Tab("Test image"):
                    gallery = gr.Gallery(label="Atlas test images (click one)", columns=10, height=260,
                                         allow_preview=False, elem_id="gallery", format="png")
                    with gr.Row():
                        index = gr.Number(label="Atlas index", value=0, precision=0, minimum=0)
                        pick_btn = gr.Button("Use this index")
                        random_btn = gr.Button("Random test image", elem_id="random-btn")
                with gr.Tab("Upload"):
                    upload = gr.File(label="Image file (any size up to 8000x8000, any mode or polarity)",
                                     type="filepath", elem_id="upload")
                with gr.Tab("Draw") as draw_tab:
                    sketch = gr.Sketchpad(label="Draw, then press Use drawing", type="numpy",
                                          canvas_size=(280, 280), fixed_canvas=True, elem_id="sketch",
                                          brush=gr.Brush(default_size=16, colors=["#000000"], color_mode="fixed"))
                    draw_btn = gr.Button("Use drawing", elem_id="draw-btn")
        with gr.Column(scale=1, min_width=180):
            current = gr.Image(label="Current input (28x28)", type="numpy", image_mode="L", format="png",
                               interactive=False, height=190, elem_id="current", elem_classes="pixelated")

    with gr.Tabs():
        with gr.Tab("Reconstruct", elem_id="tab-reconstruct"):
            with gr.Row():
                rec_ae = gr.Image(label="AE reconstruction", format="png", elem_id="rec-ae", elem_classes="pixelated")
                rec_vae = gr.Image(label="VAE reconstruction (posterior mean)", format="png", elem_id="rec-vae",
                                   elem_classes="pixelated")
            rec_samples = gr.Image(label="VAE decodes of z ~ q(z|x): the posterior's spread", format="png",
                                   elem_id="rec-samples", elem_classes="pixelated", height=140)
            with gr.Row():
                rec_seed = gr.Number(label="Posterior sample seed", value=0, precision=0)
                rec_btn = gr.Button("Resample")
            rec_text = gr.Markdown(elem_id="rec-text")

        with gr.Tab("Sample", elem_id="tab-sample"):
            with gr.Row():
                smp_seed = gr.Number(label="Seed", value=0, precision=0)
                smp_temp = gr.Slider(0.1, 3.0, value=1.0, step=0.05, label="Temperature (std of z)")
                smp_btn = gr.Button("Sample", elem_id="sample-btn")
            with gr.Row():
                smp_ae = gr.Image(label="AE: z ~ N(0, I)  (the AE has no prior: this fails)", format="png",
                                  elem_id="smp-ae", elem_classes="pixelated")
                smp_vae = gr.Image(label="VAE: z ~ N(0, I)", format="png", elem_id="smp-vae", elem_classes="pixelated")
                smp_gmm = gr.Image(label="AE: z ~ GMM fitted to its training codes (the fix)", format="png",
                                   elem_id="smp-gmm", elem_classes="pixelated")
            smp_text = gr.Markdown(elem_id="smp-text")

        with gr.Tab("Interpolate", elem_id="tab-interpolate"):
            with gr.Row():
                end_a = gr.Image(label="A", type="numpy", image_mode="L", format="png", interactive=False,
                                 height=170, elem_id="end-a", elem_classes="pixelated")
                end_b = gr.Image(label="B", type="numpy", image_mode="L", format="png", interactive=False,
                                 height=170, elem_id="end-b", elem_classes="pixelated")
                with gr.Column():
                    set_a = gr.Button("A ← current input")
                    set_b = gr.Button("B ← current input")
                    rand_b = gr.Button("B ← random test image", elem_id="rand-b")
                with gr.Column():
                    steps = gr.Slider(2, 20, value=10, step=1, label="Steps")
                    mode = gr.Radio(["linear", "spherical"], value="linear", label="Path")
            int_ae = gr.Image(label="AE", format="png", elem_id="int-ae", elem_classes="pixelated", height=120)
            int_vae = gr.Image(label="VAE", format="png", elem_id="int-vae", elem_classes="pixelated", height=120)
            int_text = gr.Markdown(elem_id="int-text")

        with gr.Tab("Latent sliders", elem_id="tab-sliders") as sliders_tab:
            with gr.Row():
                start = gr.Radio(["encoded input", "origin"], value="encoded input", label="Start from")
                reset_btn = gr.Button("Reset sliders", elem_id="reset-btn")
            gr.Markdown("Ranges: 0.5%..99.5% quantiles of each model's atlas codes. VAE dimensions are ordered by "
                        "their KL (nats, from metrics.json); *collapsed* marks KL < 0.01 nats (unused by the model).")
            live = gr.HTML(LIVE_HTML, elem_id="live")  # shown once the browser can decode (static/live_decoder.js)
            live_spec = gr.JSON(visible="hidden")
            with gr.Row(elem_id="sl-images"):  # the server's decodes: shown where the browser cannot decode
                sl_ae_img = gr.Image(label="AE decode", format="png", elem_id="sl-ae", elem_classes="pixelated",
                                     height=180)
                sl_vae_img = gr.Image(label="VAE decode", format="png", elem_id="sl-vae", elem_classes="pixelated",
                                      height=180)
            with gr.Row():
                with gr.Column():
                    ae_sliders = [gr.Slider(-1, 1, value=0, label=f"AE z{i}", elem_id=f"ae-s{i}")
                                  for i in range(N_DIMS)]
                with gr.Column():
                    vae_sliders = [gr.Slider(-1, 1, value=0, label=f"VAE z{i}", elem_id=f"vae-s{i}")
                                   for i in range(N_DIMS)]

        with gr.Tab("Latent map", elem_id="tab-map"):
            legend = gr.Markdown(elem_id="legend")
            map_text = gr.Markdown(elem_id="map-text")
            with gr.Row():
                map_ae = gr.Image(label="AE-16: UMAP of the atlas codes (click a point)", format="png",
                                  interactive=False, elem_id="map-ae", height=380)
                map_vae = gr.Image(label="VAE-16: UMAP of the atlas codes (click a point)", format="png",
                                   interactive=False, elem_id="map-vae", height=380)
            with gr.Row():
                pt_index = gr.Number(label="Atlas index", value=0, precision=0, minimum=0)
                pt_img = gr.Image(label="Clicked test image", format="png", elem_id="pt-img", elem_classes="pixelated",
                                  height=130)
                pt_ae = gr.Image(label="AE decode", format="png", elem_id="pt-ae", elem_classes="pixelated", height=130)
                pt_vae = gr.Image(label="VAE decode", format="png", elem_id="pt-vae", elem_classes="pixelated",
                                  height=130)
            pt_text = gr.Markdown(elem_id="pt-text")
            gr.Markdown("### The 2-D models: decoded latent plane and the atlas codes in it")
            grid_n = gr.Slider(5, 25, value=15, step=1, label="Grid size")
            with gr.Row():
                mf_ae = gr.Image(label="AE-2: decodes over its latent plane", format="png", elem_id="mf-ae")
                mf_vae = gr.Image(label="VAE-2: decodes over its latent plane", format="png", elem_id="mf-vae")
            with gr.Row():
                sc_ae2 = gr.Image(label="AE-2 atlas codes (click a point)", format="png", interactive=False,
                                  elem_id="sc-ae2")
                sc_vae2 = gr.Image(label="VAE-2 atlas codes (click a point)", format="png", interactive=False,
                                   elem_id="sc-vae2")

        with gr.Tab("Impute", elem_id="tab-impute"):
            gr.Markdown("Hide part of the current input, then fill it in. The AE can only iterate its reconstruction; "
                        "the VAE samples the hidden pixels given the visible ones, so several samples show what it "
                        "is unsure about. Visible pixels are never changed.")
            with gr.Row():
                with gr.Column(scale=1):
                    imp_mask = gr.Radio([(v, k) for k, v in IMPUTE_MASKS.items()], value="bottom_half",
                                        label="Mask (dark red: hidden)", elem_id="imp-mask")
                    imp_sampler = gr.Radio([(v, k) for k, v in service.SAMPLERS.items()],
                                           value="pseudo_gibbs", label="VAE sampler")
                    with gr.Row():
                        imp_n = gr.Slider(1, 16, value=6, step=1, label="VAE imputations")
                        imp_seed = gr.Number(label="Imputation seed", value=0, precision=0)
                    imp_btn = gr.Button("Impute", elem_id="imp-btn")
                imp_editor = gr.ImageEditor(label="Paint the pixels to hide (then choose 'painted' and press Impute)",
                                            type="numpy", image_mode="RGBA", sources=(), transforms=(), layers=False,
                                            canvas_size=(280, 280), fixed_canvas=True, height=330,
                                            brush=gr.Brush(default_size=24, colors=["#c00000"], color_mode="fixed"),
                                            format="png", elem_id="imp-editor", scale=1)
            with gr.Row():
                imp_masked = gr.Image(label="Masked input", format="png", elem_id="imp-masked", elem_classes="pixelated",
                                      height=170)
                imp_ae = gr.Image(label="AE-16 fill", format="png", elem_id="imp-ae", elem_classes="pixelated", height=170)
                imp_vae = gr.Image(label="VAE-16: mean of the imputations", format="png", elem_id="imp-vae",
                                   elem_classes="pixelated", height=170)
            imp_samples = gr.Image(label="VAE-16: each imputation (one chain each)", format="png", elem_id="imp-samples",
                                   elem_classes="pixelated", height=140)
            imp_text = gr.Markdown(elem_id="imp-text")

        with gr.Tab("Anomaly", elem_id="tab-anomaly"):
            gr.Markdown("Is the current input like the training data? Each model's anomaly scores for it, placed among "
                        "the scores of test images and of an out-of-distribution set (from the scorecard).")
            with gr.Row():
                an_set = gr.Dropdown([(v, k) for k, v in scorecard.OOD_CHOICES.items()], value="other_dataset",
                                     label="OOD set", elem_id="an-set")
                an_score = gr.Dropdown([(v, k) for k, v in service.SCORE_LABELS.items()], value="nll",
                                       label="VAE score in the plot", elem_id="an-score")
                an_other = gr.Button("Current input ← a random image of the other dataset", elem_id="an-other")
            with gr.Row():  # native plots take no height: with one, Gradio 6.31 clips their legend away
                an_ae = gr.LinePlot(x="score", y="share", color="set", label="AE-16: reconstruction error",
                                    x_title="score", y_title="share of images", elem_id="an-ae-plot")
                an_vae = gr.LinePlot(x="score", y="share", color="set", label="VAE-16: the chosen score",
                                     x_title="score", y_title="share of images", elem_id="an-vae-plot")
            an_text = gr.Markdown(elem_id="an-text")

        with gr.Tab("Scorecard", elem_id="tab-scorecard"):
            gr.Markdown("When to use which: every model of the dataset measured on the tasks where an AE and a VAE "
                        "differ (see the README's scorecard section for the protocol).")
            sc_text = gr.Markdown(elem_id="sc-text")
            with gr.Row():
                with gr.Column():
                    sc_task = gr.Dropdown(label="Task", choices=[], elem_id="sc-task")
                    sc_task_plot = gr.BarPlot(x="model", y="value", color="latent", label="The task's figure per model",
                                              elem_id="sc-task-plot")
                with gr.Column():
                    sc_pair = gr.Dropdown([(v, k) for k, v in scorecard.OOD_CHOICES.items()], value="other_dataset",
                                          label="OOD set (ROC curves; AUROC in the legend)", elem_id="sc-pair")
                    sc_roc = gr.LinePlot(x="fpr", y="tpr", color="curve", label="ROC curves", x_title="false-positive rate",
                                         y_title="true-positive rate", elem_id="sc-roc")
            sc_imp = gr.ScatterPlot(x="mask", y="mse", color="fill", label="Imputation: MSE on the missing pixels per mask",
                                    y_title="MSE per missing pixel", elem_id="sc-imp")

    noop_btn = gr.Button(visible="hidden", elem_id="noop-btn")  # in the page, not shown: the benches click it
    noop_out = gr.Textbox(visible="hidden", elem_id="noop-out")

    # ---- events (every one has an api_name) ------------------------------------------------------
    EV = {"concurrency_limit": CONCURRENCY}
    slider_list = ae_sliders + vae_sliders
    dataset_outputs = [gallery, current, end_a, end_b, legend, problem, status, live_spec, *slider_list]
    demo.load(set_dataset, dataset, dataset_outputs, api_name="init", **EV)
    dataset.change(set_dataset, dataset, dataset_outputs, api_name="set_dataset", **EV)
    gallery.select(gallery_select, dataset, [current, index], api_name="gallery_select", **EV)
    gr.on([pick_btn.click, index.submit], pick_test, [dataset, index], current, api_name="pick_test",
          **EV)
    random_btn.click(random_test, dataset, [current, index], api_name="random_test", **EV)
    upload.upload(use_upload, upload, current, api_name="use_upload", **EV)
    draw_tab.select(None, js=PICK_BRUSH)  # no server round trip, no API endpoint
    draw_btn.click(use_drawing, sketch, current, api_name="use_drawing", **EV)

    gr.on([current.change, rec_btn.click, rec_seed.submit], reconstruct, [dataset, current, rec_seed],
          [rec_ae, rec_vae, rec_samples, rec_text], api_name="reconstruct", **EV)
    gr.on([smp_btn.click, smp_seed.submit, smp_temp.release, dataset.change, demo.load], sample,
          [dataset, smp_seed, smp_temp], [smp_ae, smp_vae, smp_gmm, smp_text], api_name="sample", **EV)
    set_a.click(lambda x: x, current, end_a, api_name="set_a", **EV)
    set_b.click(lambda x: x, current, end_b, api_name="set_b", **EV)
    rand_b.click(lambda d: random_test(d)[0], dataset, end_b, api_name="random_b", **EV)
    gr.on([end_a.change, end_b.change, steps.release, mode.change], interpolate, [dataset, end_a, end_b, steps, mode],
          [int_ae, int_vae, int_text], api_name="interpolate", **EV)
    gr.on([current.change, reset_btn.click, start.change], sliders_from_input, [dataset, current, start],
          [*slider_list, sl_ae_img, sl_vae_img], api_name="sliders_from_input", **EV).then(None, js=LIVE_JS)
    # Slider moves are decoded in the browser as they happen (static/live_decoder.js, no server round trip);
    # the server decodes on release, for the images under the canvases and for the API. Raw payloads: the
    # ranges depend on the dataset, so slide() validates them itself.
    gr.on([s.release for s in slider_list], slide, [dataset, *slider_list], [sl_ae_img, sl_vae_img],
          api_name="slide", preprocess=False, trigger_mode="always_last", show_progress="hidden", **EV)
    live_spec.change(None, live_spec, None, js="(spec) => { if (window.latentLive) window.latentLive.load(spec); }")
    sliders_tab.select(None, js=LIVE_JS)
    noop_btn.click(noop, [dataset, *slider_list], noop_out, api_name="noop", preprocess=False, show_progress="hidden",
                   **EV)
    current.change(place_on_map, [dataset, current], [map_ae, map_vae, map_text], api_name="place_on_map",
                   **EV)
    point_outputs = [pt_img, pt_ae, pt_vae, map_ae, map_vae, pt_text]
    pt_index.submit(show_point, [dataset, pt_index, current], point_outputs, api_name="show_point", **EV)
    for img, model in ((map_ae, "ae-16"), (map_vae, "vae-16"), (sc_ae2, "ae-2"), (sc_vae2, "vae-2")):
        img.select(map_click(model), [dataset, current], [pt_index, *point_outputs],
                   api_name=f"click_{model.replace('-', '_')}", **EV)
    gr.on([current.change, grid_n.release], manifold, [dataset, grid_n, current], [mf_ae, mf_vae, sc_ae2, sc_vae2],
          api_name="manifold", **EV)

    gr.on([demo.load, dataset.change], scorecard_tab, dataset, [sc_text, sc_task, sc_task_plot, sc_roc, sc_imp],
          api_name="scorecard", **EV)
    sc_task.input(scorecard_task, [dataset, sc_task], sc_task_plot, api_name="scorecard_task", **EV)
    sc_pair.input(scorecard_roc, [dataset, sc_pair], sc_roc, api_name="scorecard_roc", **EV)
    gr.on([current.change, an_set.input, an_score.input], anomaly, [dataset, current, an_set, an_score],
          [an_text, an_ae, an_vae], api_name="anomaly", **EV)
    an_other.click(other_dataset_image, dataset, current, api_name="other_dataset_image", **EV)
    imp_inputs = [dataset, current, imp_mask, imp_editor, imp_n, imp_sampler, imp_seed]
    imp_outputs = [imp_masked, imp_ae, imp_vae, imp_samples, imp_text]
    gr.on([imp_btn.click, imp_seed.submit], impute, imp_inputs, imp_outputs, api_name="impute", **EV)
    gr.on([current.change, imp_mask.input, imp_sampler.input, imp_n.release], impute_on_change, imp_inputs, imp_outputs,
          api_name="impute_on_change", **EV)
    current.change(editor_background, current, imp_editor, api_name="editor_background", **EV)

if os.environ.get("SPACES_ZERO_GPU"):  # ZeroGPU wants the models placed at import time, in the main process
    MODELS.get()

if __name__ == "__main__":
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=MAX_FILE_SIZE,
        max_threads=40,
        css=CSS,
        head=HEAD,
        show_error=True,
        prevent_thread_lock=True,
    )
    MODELS.start()  # the page is up: now torch and the models (requests until then wait for them)
    demo.block_thread()
