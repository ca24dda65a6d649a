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
from explorer.catalog import APP_MODELS, REGENERATE, SHIPPED, checkpoint_root, find_datasets, find_models, missing_files
from explorer.files import write_once
from explorer.images import InputError, drawing_to_format, load_upload
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
# slot -> (id prefix of its sliders, id of the canvas the browser draws its decode on)
LIVE_SLOTS = {"a": ("a-s", "live-a"), "b": ("b-s", "live-b")}
IMPUTE_MASKS = {**service.MASK_LABELS, "painted": "painted"}
EDITOR_SIDE = 280  # the mask editor's canvas (pixels a side): the current input is enlarged to it


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
        self._live: dict = {}  # (dataset, model A, model B) -> what the browser needs to decode slider moves
        self.device = None
        self.seconds: float | None = None  # the app's four models of each dataset, loaded
        self.error: str | None = None
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
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

            from explorer.bundle import APP_MODELS, default_device, load_all

            self.device = default_device()
            if self.device.type == "cpu":
                torch.set_num_threads(1)  # many small requests: one thread each beats threads fighting over cores
            # What the page opens with (the app's four models of each dataset); any other model folder loads
            # when a request first names it (need()), so a variant costs nothing until someone picks it.
            self.bundles = load_all(self.root, self.device, names=APP_MODELS)
            for key in self.bundles:  # the default pair's decoders are written now, the others when first picked
                self.live_spec(key, service.PAIR)
        except Exception as e:  # the app keeps serving and says what failed
            log.exception("loading the models failed")
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.seconds = time.perf_counter() - t0
            self._done.set()

    def need(self, dataset: str, names) -> None:
        """Load the named models of a dataset that are not loaded yet (one at a time: ~0.3 s each on a CPU)."""
        from explorer.bundle import load_more

        b = self.bundles.get(dataset)
        missing = [n for n in names if n and b is not None and n not in b.models]
        if missing:
            with self._load_lock:
                t0 = time.perf_counter()
                loaded = load_more(b, missing, self.device)
                if loaded:
                    log.info("loaded %s/%s in %.1f s", dataset, ", ".join(loaded), time.perf_counter() - t0)

    def live_spec(self, dataset: str, names: tuple[str, str]) -> dict:
        """What static/live_decoder.js needs for a pair (written once per pair; {} where it cannot be written)."""
        from explorer.webdecoder import live_spec

        key = (dataset, *names)
        if key not in self._live:
            b = self.bundles.get(dataset)
            try:
                triples = [(n, *ids) for n, ids in zip(names, LIVE_SLOTS.values())]
                spec = live_spec(b, DECODER_DIR, file_url, triples) if b is not None else {}
                # Both or neither: the live canvases replace the server's pictures of both models together.
                self._live[key] = spec if len(spec.get("models", [])) == 2 else {}
            except OSError as e:  # e.g. a read-only cache: the server decodes slider moves instead
                log.warning("no live decoding for %s: %s", key, e)
                self._live[key] = {}
        return self._live[key]

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def get(self) -> dict:
        """The bundles, once the app's four models of each dataset are in."""
        self.start()
        self._done.wait()
        if self.error:
            raise gr.Error(f"The models could not be loaded ({self.error}). Regenerate them with `{REGENERATE}`.",
                           print_exception=False)
        return self.bundles


MODELS = ModelStore(checkpoint_root())
# Every dataset folder of the checkpoint root ({folder: title}; explorer.catalog.find_datasets): a folder that
# training/export.py wrote (`make explore`) shows up on the next start, with no code change.
DATASETS = find_datasets(MODELS.root)
# Every model folder of every dataset (config.json files only, no torch): what the pickers may hold. Each dataset's
# own models become the choices when it loads; a name from another dataset gets a message from the service.
ALL_MODELS = sorted(set(service.PAIR).union(*(find_models(MODELS.root / key) for key in DATASETS)))
MAX_CLASSES = 100  # the class picker's choices before a dataset sets its own


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
            + f"\n\nModels on {MODELS.device.type}: the default four of each dataset loaded in {MODELS.seconds:.1f} s; "
            "the others load when first picked.")


def bundle(dataset: str, names=()):
    """A dataset's bundle, with the named models loaded (the app's four always are)."""
    bundles = MODELS.get()
    MODELS.need(dataset, names)
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
    k = max(1, len(b.class_names))
    per_class = max(GALLERY_PER_CLASS, 40 // k)  # about 40 pictures: 4 per class of 10, 40 of an unlabelled set
    return [int(i) for c in range(k) for i in np.nonzero(b.labels == c)[0][:per_class]]


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
def use_upload(path: str | None, dataset: str = "mnist") -> np.ndarray:
    """An uploaded file in the dataset's format (size, channels; digit-style centring or a photo's centre crop)."""
    return load_upload(path, bundle(dataset).format)


@guarded
def use_drawing(value, dataset: str = "mnist") -> np.ndarray:
    return drawing_to_format(value, bundle(dataset).format)


# ---- tabs: every one compares Model A with Model B (the pickers; service.PAIR by default) ---------------
def names_of(model_a: str | None, model_b: str | None) -> tuple[str, str]:
    return (model_a or service.PAIR[0], model_b or service.PAIR[1])


def pair_choices(dataset: str) -> list[tuple[str, str]]:
    """(label, folder name) of every model folder of a dataset, for the pickers: the config's title and the folder
    (read from config.json: the pickers list the models that are still loading too)."""
    b = bundle(dataset)
    loaded = set(b.models) | set(APP_MODELS)
    out = []
    for name in find_models(b.root):
        if name not in loaded and any(p.startswith(f"{name}:") for p in b.problems):
            continue  # a model that failed to load is named in the status line instead
        title = config_title(b.root / name) or name.upper()
        out.append((f"{title} · {name}" if title != name.upper() else title, name))
    return out


def config_title(folder: Path) -> str:
    import json

    try:
        title = json.loads((folder / "config.json").read_text()).get("title", "")
        return title if isinstance(title, str) else ""
    except (OSError, ValueError, AttributeError):
        return ""


def describe_pair(dataset: str, model_a: str, model_b: str) -> str:
    names = names_of(model_a, model_b)
    views = service.pair(bundle(dataset, names), names)
    lines = []
    for slot, v in zip("AB", views):
        kind = ("class-conditional VAE" if v.conditional else "VAE") if v.is_vae else "deterministic AE"
        ev = v.metrics.get("eval", {})
        fig = (f", test IS-NLL {ev['is_nll']:.2f} nats (k = {ev.get('is_k')}"
               + (", given the true class" if v.conditional else "") + ")") if "is_nll" in ev else ""
        lines.append(f"**Model {slot}: {v.title}** ({kind}, {v.latent_dim}-D{fig}). {v.description}".strip())
    return "  \n".join(lines)


@guarded
@gpu
def reconstruct(dataset: str, image, seed: float, model_a=None, model_b=None, cls=None):
    if image is None:  # fired by a .change while the input is still empty
        return gr.skip()
    r = service.reconstruct(bundle(dataset, (model_a, model_b)), image, 0 if seed is None else seed,  # the service checks the seed
                            names=names_of(model_a, model_b), label=cls)
    return r["a"], r["b"], r["a_samples"], r["b_samples"], r["text"]


@guarded
@gpu
def sample(dataset: str, seed: float, temperature: float, model_a=None, model_b=None, cls=None):
    if temperature is None:
        raise InputError("Enter a temperature in (0, 3].")
    r = service.sample(bundle(dataset, (model_a, model_b)), seed, float(temperature), names=names_of(model_a, model_b),
                       label=None if cls is None or cls == "" else cls)  # the service checks the seed
    return r["a"], r["b"], r["a_extra"], r["b_extra"], r["text"]


@guarded
@gpu
def interpolate(dataset: str, image_a, image_b, steps: float, mode: str, model_a=None, model_b=None, cls=None):
    if image_a is None or image_b is None:  # fired by a .change while the input is still empty
        return gr.skip()
    r = service.interpolate(bundle(dataset, (model_a, model_b)), image_a, image_b, int(steps), mode, names=names_of(model_a, model_b),
                            label=cls)
    return r["a"], r["b"], r["text"]


def _slider_updates(dataset: str, values: dict[str, np.ndarray] | None, names=None) -> list:
    """gr.Slider updates (range, label, value) for Model A's then Model B's sliders."""
    b = bundle(dataset, names or ())
    out = []
    try:
        views = service.pair(b, names)
    except LookupError:  # the atlas or the models are missing: the sliders hide (the status says why)
        views = [None, None]
    for slot, view in zip("ab", views):
        for k in range(N_DIMS):
            if view is None or k >= view.latent_dim:
                out.append(gr.Slider(visible=False, value=0.0))
                continue
            d = view.order[k]
            lo, hi = (float(x) for x in view.ranges[d])
            out.append(gr.Slider(minimum=lo, maximum=hi, step=0.01, visible=True,
                                 value=round(float(values[slot][k]), 2) if values else 0.0,
                                 label=service.slider_labels(view)[k]))
    return out


def _full(view, shown: list[float]) -> list[float]:
    """The slider values of a model with more dimensions than sliders: the rest stay at the origin."""
    return [*shown, *[0.0] * (view.latent_dim - len(shown))]


@guarded
@gpu
def sliders_from_input(dataset: str, image, start: str, model_a=None, model_b=None, cls=None):
    b = bundle(dataset, (model_a, model_b))
    if image is None and start == "encoded input":
        return gr.skip()
    names = names_of(model_a, model_b)
    values = service.slider_start(b, image if start == "encoded input" else None, names, cls)
    a_img, b_img = service.decode_sliders(b, values["a"], values["b"], names, cls)
    return [*_slider_updates(dataset, values, names), a_img, b_img]


@guarded
@gpu
def slide(dataset: str, *values):
    """Called with raw payloads (preprocess=False): 2 x N_DIMS slider values, then Model A, Model B and the class;
    validated here, per model."""
    if len(values) not in (2 * N_DIMS, 2 * N_DIMS + 3):
        raise InputError(f"expected {2 * N_DIMS} slider values (then Model A, Model B, class), got {len(values)}.")
    names = names_of(*values[2 * N_DIMS: 2 * N_DIMS + 2]) if len(values) > 2 * N_DIMS else service.PAIR
    cls = values[-1] if len(values) > 2 * N_DIMS else None
    b = bundle(dataset, names)
    views = service.pair(b, names)
    n_a, n_b = (min(v.latent_dim, N_DIMS) for v in views)
    try:
        a = [float(v) for v in values[:n_a]]
        b_ = [float(v) for v in values[N_DIMS: N_DIMS + n_b]]
    except (TypeError, ValueError):
        raise InputError("slider values must be numbers.") from None
    return service.decode_sliders(b, _full(views[0], a), _full(views[1], b_), names, cls)


def noop(dataset: str, *values) -> str:
    """Does nothing: the baseline round trip for the benchmarks. Answers a new token each time, so that a
    browser sees the answer land (bench/browser_latency.py clicks the hidden button)."""
    return str(time.monotonic_ns())


@guarded
@gpu
def place_on_map(dataset: str, image, model_a=None, model_b=None, cls=None):
    if image is None:  # fired by a .change while the input is still empty
        return gr.skip()
    t = time.perf_counter()
    r = service.place(bundle(dataset, (model_a, model_b)), image, names_of(model_a, model_b), cls)
    ms = (time.perf_counter() - t) * 1000
    text = (f"Red cross: the current input (black: a clicked point), placed from the atlas (distance-weighted mean of "
            f"the map positions of its 10 nearest atlas codes; no UMAP at request time; a 2-D model's map is its "
            f"latent plane itself) in {ms:.0f} ms.")
    return r["a"], r["b"], text


@guarded
@gpu
def show_point(dataset: str, index: float, image=None, model_a=None, model_b=None, cls=None):
    if index is None:
        raise InputError("Enter an atlas index.")
    r = service.point(bundle(dataset, (model_a, model_b)), int(index), image, names_of(model_a, model_b), cls)
    return r["image"], r["a"], r["b"], r["a_map"], r["b_map"], r["text"]


def map_click(slot: str):
    """A click on Model A's or Model B's map: the atlas image drawn nearest to it."""
    @guarded
    def handler(dataset: str, image, model_a, model_b, cls, evt: gr.SelectData):
        col, row = evt.index
        model = names_of(model_a, model_b)["ab".index(slot)]
        i = service.click(bundle(dataset, (model,)), model, float(col), float(row))
        return (i, *show_point(dataset, i, image, model_a, model_b, cls))

    handler.__name__ = f"click_{slot}"
    return handler


def plane_click(model: str):
    """A click on the fixed 2-D models' code scatter (the plane section)."""
    @guarded
    def handler(dataset: str, image, model_a, model_b, cls, evt: gr.SelectData):
        col, row = evt.index
        i = service.click(bundle(dataset), model, float(col), float(row))
        return (i, *show_point(dataset, i, image, model_a, model_b, cls))

    handler.__name__ = f"click_{model.replace('-', '_')}"
    return handler


@guarded
@gpu
def manifold(dataset: str, n: float, image):
    if image is None:  # fired by a .change while the input is still empty
        return gr.skip()
    b = bundle(dataset)
    if b.key not in SHIPPED and not {"ae-2", "vae-2"} <= set(find_models(b.root)):  # one's own data, no 2-D pair
        return None, None, None, None
    r = service.manifold(b, int(n), image)
    return r["a"], r["b"], r["a_scatter"], r["b_scatter"]


# ---- Scorecard, Anomaly, Impute: read scorecard.json; the per-input work is small ------------------------
OTHER_DATASET = {"mnist": "fashion-mnist", "fashion-mnist": "mnist"}
VERDICT_DEFAULT = "generation (prior)"


def card_of(dataset: str) -> dict:
    b = bundle(dataset)
    if not b.scorecard:
        raise LookupError(no_scorecard(b))
    return b.scorecard


def no_scorecard(b) -> str:
    """Why a dataset has no scorecard, and what to run (the scorecard measures the shipped datasets: its OOD tasks
    pair MNIST with Fashion-MNIST)."""
    if b.key in SHIPPED:
        return (f"{b.title}: no scorecard.json. Compute it with "
                f"`python -m training.scorecard --dataset {b.key} --data-root DATA`.")
    return (f"{b.title} has no scorecard.json: the scorecard (and the Anomaly tab's test and OOD scores, read from it) "
            "is computed for the shipped MNIST and Fashion-MNIST only, whose OOD tasks use each other. The other "
            "tabs and Diagnostics work on this dataset.")


@guarded
def scorecard_tab(dataset: str):
    """Everything the Scorecard tab shows for a dataset (its text says how to compute a missing scorecard)."""
    try:
        card = card_of(dataset)
    except LookupError as e:
        return str(e), gr.Dropdown(choices=[], value=None), None, None, None
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
    b = bundle(dataset)
    if not b.scorecard:  # said in the tab, not as a message at every new input
        return no_scorecard(b), None, None
    r = service.anomaly(b, image, ood_set or None, vae_score or "nll")
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
    """The current input, enlarged to the editor's canvas, as the background to paint the mask on."""
    if image is None:
        return gr.skip()
    from PIL import Image

    a = np.asarray(image)
    big = np.asarray(Image.fromarray(a.astype(np.uint8)).resize((EDITOR_SIDE, EDITOR_SIDE), Image.NEAREST))
    return {"background": big, "layers": [], "composite": big}


EXPORT_DIR = Path(gr.utils.get_upload_folder()) / "latent-explorer-exports"  # content-named, written atomically


@guarded
@gpu
def export_gif(dataset: str, image_a, image_b, steps: float, mode: str, model_a=None, model_b=None, cls=None):
    """Model A's and Model B's interpolation strips as animated GIFs (one frame per step)."""
    if image_a is None or image_b is None:
        raise InputError("Set both ends (A and B) of the interpolation first.")
    names = names_of(model_a, model_b)
    return [str(p) for p in service.interpolation_gifs(bundle(dataset, names), image_a, image_b, int(steps), mode,
                                                       EXPORT_DIR, names, cls)]


@guarded
@gpu
def export_codes(dataset: str, image, model_a=None, model_b=None, cls=None):
    """Each model's atlas codes with their map coordinates and labels as CSV, then the current input's."""
    names = names_of(model_a, model_b)
    b = bundle(dataset, names)
    files = []
    for name in names:
        files += service.codes_csv(b, name, EXPORT_DIR, image, cls)
    return [str(p) for p in files]


@guarded
def diagnostics_tab(dataset: str, model: str | None = None):
    """The Diagnostics tab of a dataset: every model's verdict, and one model's curves, KL per dimension, verdict."""
    b = bundle(dataset)
    if model is not None and model not in find_models(b.root):
        raise InputError(f"{b.title} has no model {model!r}; choose one of {find_models(b.root)}.")
    r = service.diagnostics(b, model)
    choices = [(config_title(b.root / n) or n.upper(), n) for n in r["names"]]
    return (r["summary"], gr.Dropdown(choices=choices, value=r["name"]), r["curves"], r["kl"], r["text"])


def set_dataset(dataset: str):
    if dataset not in DATASETS and dataset not in MODELS.get():
        raise gr.Error(f"dataset must be one of {list(DATASETS)}, got {dataset!r}.")
    b = bundle(dataset)
    shown = gallery_indices(dataset)
    first = b.images[shown[0]] if shown else None
    second = b.images[shown[min(GALLERY_PER_CLASS, len(shown) - 1)]] if shown else None
    legend = legend_markdown(b.class_names) if b.class_names else ""
    msg = "" if not b.problems else b.status()
    choices = pair_choices(dataset)
    available = sorted(b.models)  # the default pair, or (models missing) whichever models did load
    names = [n if n in b.models else (available[min(i, len(available) - 1)] if available else None)
             for i, n in enumerate(service.PAIR)]
    classes = [(f"{i}: {c}", i) for i, c in enumerate(b.class_names)]
    label = int(b.labels[shown[0]]) if shown else 0
    return (gr.Gallery(value=gallery_items(dataset) if b.images is not None else []), first, first, second,
            legend, msg, status_text(), gr.Dropdown(choices=choices, value=names[0]),
            gr.Dropdown(choices=choices, value=names[1]), gr.Dropdown(choices=classes, value=label),
            *(set_pair(dataset, *names) if all(names) else ("", {})))


@guarded
def set_pair(dataset: str, model_a: str, model_b: str):
    """The pickers changed (or the dataset): the pair's description and its live decoders. (The sliders' ranges,
    labels and values come from sliders_from_input, which the same changes trigger: one update, no race.)"""
    names = names_of(model_a, model_b)
    service.pair(bundle(dataset, names), names)  # a clear message for an unknown name
    return describe_pair(dataset, *names), MODELS.live_spec(dataset, names)


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
  <figure><figcaption>Model A decode (live, in your browser)</figcaption><canvas id="live-a" width="28" height="28"></canvas></figure>
  <figure><figcaption>Model B decode (live, in your browser)</figcaption><canvas id="live-b" width="28" height="28"></canvas></figure>
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
        "# Latent Explorer: AE vs VAE\nTwo models side by side on the same input: by default a deterministic "
        "autoencoder (AE) and a variational autoencoder (VAE) with the same encoder/decoder; pick any two of the "
        "dataset's models (β-VAE, VampPrior, mixture prior, IAF posterior, class-conditional). Pick a dataset, two "
        "models and an input; every tab follows."
    )
    with gr.Row():
        dataset = gr.Radio([(v, k) for k, v in DATASETS.items()], value=next(iter(DATASETS)), label="Dataset", scale=1)
        status = gr.Markdown(status_text(), elem_id="status")
    with gr.Row():
        # allow_custom_value: an API caller may name any model of the dataset it names, whatever this session's
        # pickers last listed; the handlers check the name against that dataset's catalog (service.pair).
        model_a = gr.Dropdown(choices=ALL_MODELS, value=service.PAIR[0], label="Model A", elem_id="model-a", scale=1,
                              allow_custom_value=True)
        model_b = gr.Dropdown(choices=ALL_MODELS, value=service.PAIR[1], label="Model B", elem_id="model-b", scale=1,
                              allow_custom_value=True)
        cls = gr.Dropdown(choices=[(str(i), i) for i in range(MAX_CLASSES)], value=0,
                          label="Class given to a class-conditional model",
                          info="a test image's true class is printed under it in the gallery", elem_id="cls", scale=1)
    pair_text = gr.Markdown(elem_id="pair-text")
    problem = gr.Markdown("", elem_id="problem")
    with gr.Row():
        with gr.Column(scale=4):
            with gr.Tabs():
                with gr.Tab("Test image"):
                    gallery = gr.Gallery(label="Atlas test images (click one)", columns=10, height=260,
                                         allow_preview=False, elem_id="gallery", format="png")
                    with gr.Row():
                        index = gr.Number(label="Atlas index", value=0, precision=None, minimum=0, step=1)
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
            current = gr.Image(label="Current input", type="numpy", image_mode=None, format="png",
                               interactive=False, height=190, elem_id="current", elem_classes="pixelated")

    with gr.Tabs():
        with gr.Tab("Reconstruct", elem_id="tab-reconstruct"):
            with gr.Row():
                rec_a = gr.Image(label="Model A: reconstruction (posterior mean)", format="png", elem_id="rec-a",
                                 elem_classes="pixelated")
                rec_b = gr.Image(label="Model B: reconstruction (posterior mean)", format="png", elem_id="rec-b",
                                 elem_classes="pixelated")
            with gr.Row():
                rec_a_samples = gr.Image(label="Model A: decodes of z ~ q(z|x) (a VAE's spread; a CVAE: every class)",
                                         format="png", elem_id="rec-a-samples", elem_classes="pixelated", height=140)
                rec_b_samples = gr.Image(label="Model B: decodes of z ~ q(z|x) (a VAE's spread; a CVAE: every class)",
                                         format="png", elem_id="rec-b-samples", elem_classes="pixelated", height=140)
            with gr.Row():
                rec_seed = gr.Number(label="Posterior sample seed", value=0, precision=None, step=1)
                rec_btn = gr.Button("Resample")
            rec_text = gr.Markdown(elem_id="rec-text")

        with gr.Tab("Sample", elem_id="tab-sample"):
            with gr.Row():
                smp_seed = gr.Number(label="Seed", value=0, precision=None, step=1)
                smp_temp = gr.Slider(0.1, 3.0, value=1.0, step=0.05, label="Temperature (std of z)")
                smp_btn = gr.Button("Sample", elem_id="sample-btn")
            with gr.Row():
                smp_a = gr.Image(label="Model A: z ~ its prior (an AE has none: N(0, I) fails)", format="png",
                                 elem_id="smp-a", elem_classes="pixelated")
                smp_b = gr.Image(label="Model B: z ~ its prior", format="png", elem_id="smp-b", elem_classes="pixelated")
            with gr.Row():
                smp_a_extra = gr.Image(label="Model A: an AE's GMM samples (the fix) / a CVAE's same z, every class",
                                       format="png", elem_id="smp-a-extra", elem_classes="pixelated")
                smp_b_extra = gr.Image(label="Model B: an AE's GMM samples (the fix) / a CVAE's same z, every class",
                                       format="png", elem_id="smp-b-extra", elem_classes="pixelated")
            smp_text = gr.Markdown(elem_id="smp-text")

        with gr.Tab("Interpolate", elem_id="tab-interpolate"):
            with gr.Row():
                end_a = gr.Image(label="A", type="numpy", image_mode=None, format="png", interactive=False,
                                 height=170, elem_id="end-a", elem_classes="pixelated")
                end_b = gr.Image(label="B", type="numpy", image_mode=None, format="png", interactive=False,
                                 height=170, elem_id="end-b", elem_classes="pixelated")
                with gr.Column():
                    set_a = gr.Button("A ← current input")
                    set_b = gr.Button("B ← current input")
                    rand_b = gr.Button("B ← random test image", elem_id="rand-b")
                with gr.Column():
                    steps = gr.Slider(2, 20, value=10, step=1, label="Steps")
                    mode = gr.Radio(["linear", "spherical"], value="linear", label="Path")
            int_a = gr.Image(label="Model A", format="png", elem_id="int-a", elem_classes="pixelated", height=120)
            int_b = gr.Image(label="Model B", format="png", elem_id="int-b", elem_classes="pixelated", height=120)
            int_text = gr.Markdown(elem_id="int-text")
            with gr.Row():
                gif_btn = gr.Button("Download both strips as animated GIFs", elem_id="gif-btn", scale=1)
                gif_files = gr.File(label="GIFs (one frame per step)", file_count="multiple", elem_id="gif-files",
                                    scale=2)

        with gr.Tab("Latent sliders", elem_id="tab-sliders") as sliders_tab:
            with gr.Row():
                start = gr.Radio(["encoded input", "origin"], value="encoded input", label="Start from")
                reset_btn = gr.Button("Reset sliders", elem_id="reset-btn")
            gr.Markdown("Ranges: 0.5%..99.5% quantiles of each model's atlas codes. VAE dimensions are ordered by "
                        "their KL (nats: KL(q(z_d|x) ‖ p(z_d)) of the dimension's marginals, the model's own prior, "
                        "from metrics.json); *collapsed* marks < 0.01 nats (unused by the model). "
                        f"A model shows up to {N_DIMS} sliders, one per dimension.")
            live = gr.HTML(LIVE_HTML, elem_id="live")  # shown once the browser can decode (static/live_decoder.js)
            live_spec = gr.JSON(visible="hidden")
            with gr.Row(elem_id="sl-images"):  # the server's decodes: shown where the browser cannot decode
                sl_a_img = gr.Image(label="Model A decode", format="png", elem_id="sl-a", elem_classes="pixelated",
                                    height=180)
                sl_b_img = gr.Image(label="Model B decode", format="png", elem_id="sl-b", elem_classes="pixelated",
                                    height=180)
            with gr.Row():
                with gr.Column():
                    a_sliders = [gr.Slider(-1, 1, value=0, label=f"Model A z{i}", elem_id=f"a-s{i}")
                                 for i in range(N_DIMS)]
                with gr.Column():
                    b_sliders = [gr.Slider(-1, 1, value=0, label=f"Model B z{i}", elem_id=f"b-s{i}")
                                 for i in range(N_DIMS)]

        with gr.Tab("Latent map", elem_id="tab-map"):
            legend = gr.Markdown(elem_id="legend")
            map_text = gr.Markdown(elem_id="map-text")
            with gr.Row():
                map_a = gr.Image(label="Model A: UMAP of the atlas codes, or a 2-D model's plane (click a point)",
                                 format="png", interactive=False, elem_id="map-a", height=380)
                map_b = gr.Image(label="Model B: UMAP of the atlas codes, or a 2-D model's plane (click a point)",
                                 format="png", interactive=False, elem_id="map-b", height=380)
            with gr.Row():
                pt_index = gr.Number(label="Atlas index", value=0, precision=None, minimum=0, step=1)
                pt_img = gr.Image(label="Clicked test image", format="png", elem_id="pt-img", elem_classes="pixelated",
                                  height=130)
                pt_a = gr.Image(label="Model A decode", format="png", elem_id="pt-a", elem_classes="pixelated", height=130)
                pt_b = gr.Image(label="Model B decode", format="png", elem_id="pt-b", elem_classes="pixelated",
                                height=130)
            pt_text = gr.Markdown(elem_id="pt-text")
            with gr.Row():
                csv_btn = gr.Button("Download the latent codes as CSV", elem_id="csv-btn", scale=1)
                csv_files = gr.File(label="Each model's atlas codes (index, label, class, map x/y, z) and the current "
                                          "input's", file_count="multiple", elem_id="csv-files", scale=2)
            gr.Markdown("### The 2-D models (AE-2 and VAE-2): decoded latent plane and the atlas codes in it")
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
                        imp_seed = gr.Number(label="Imputation seed", value=0, precision=None, step=1)
                    imp_btn = gr.Button("Impute", elem_id="imp-btn")
                imp_editor = gr.ImageEditor(label="Paint the pixels to hide (then choose 'painted' and press Impute)",
                                            type="numpy", image_mode="RGBA", sources=(), transforms=(), layers=False,
                                            canvas_size=(EDITOR_SIDE, EDITOR_SIDE), fixed_canvas=True, height=330,
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
                    sc_task = gr.Dropdown(label="Task", choices=[], elem_id="sc-task", allow_custom_value=True)
                    sc_task_plot = gr.BarPlot(x="model", y="value", color="latent", label="The task's figure per model",
                                              elem_id="sc-task-plot")
                with gr.Column():
                    sc_pair = gr.Dropdown([(v, k) for k, v in scorecard.OOD_CHOICES.items()], value="other_dataset",
                                          label="OOD set (ROC curves; AUROC in the legend)", elem_id="sc-pair")
                    sc_roc = gr.LinePlot(x="fpr", y="tpr", color="curve", label="ROC curves", x_title="false-positive rate",
                                         y_title="true-positive rate", elem_id="sc-roc")
            sc_imp = gr.ScatterPlot(x="mask", y="mse", color="fill", label="Imputation: MSE on the missing pixels per mask",
                                    y_title="MSE per missing pixel", elem_id="sc-imp")

        with gr.Tab("Diagnostics", elem_id="tab-diagnostics"):
            gr.Markdown("Is a model healthy? Its training curves (metrics.json), the KL each latent dimension carries "
                        "(KL(q(z_d|x) ‖ p(z_d)) of the dimension's marginals under the model's own prior; under "
                        "0.01 nats it is unused: collapsed), the model's own KL (its ELBO's term) and its active units "
                        "(Var over the data of E[z|x] > 0.01). A collapsed VAE gets the remedies and the exact "
                        "training command that applies them.")
            dg_summary = gr.Markdown(elem_id="dg-summary")
            dg_model = gr.Dropdown(choices=ALL_MODELS, value=service.PAIR[1], label="Model", elem_id="dg-model",
                                   allow_custom_value=True)
            with gr.Row():
                dg_curves = gr.LinePlot(x="epoch", y="value", color="series", label="Training curves (per epoch)",
                                        x_title="epoch", y_title="nats per image", elem_id="dg-curves")
                dg_kl = gr.BarPlot(x="dim", y="value", color="status", sort=None,
                                   label="KL of each dimension's marginals, nats (an AE: variance of its codes)",
                                   x_title="latent dimension", y_title="nats (AE: variance)", elem_id="dg-kl")
            dg_text = gr.Markdown(elem_id="dg-text")

    noop_btn = gr.Button(visible="hidden", elem_id="noop-btn")  # in the page, not shown: the benches click it
    noop_out = gr.Textbox(visible="hidden", elem_id="noop-out")

    # ---- events (every one has an api_name) ------------------------------------------------------
    EV = {"concurrency_limit": CONCURRENCY}
    slider_list = a_sliders + b_sliders
    PAIR_IN = [model_a, model_b, cls]  # the pair and the class every comparing tab reads (last inputs: defaults)
    pair_outputs = [pair_text, live_spec]
    dataset_outputs = [gallery, current, end_a, end_b, legend, problem, status, model_a, model_b, cls, *pair_outputs]
    demo.load(set_dataset, dataset, dataset_outputs, api_name="init", **EV)
    dataset.change(set_dataset, dataset, dataset_outputs, api_name="set_dataset", **EV)
    # .input: a person's pick. set_dataset's own updates of the pickers (new choices) must not re-run every tab:
    # it sets the current input as well, which re-runs them once, with the new pair.
    pair_changed = [model_a.input, model_b.input]
    gr.on(pair_changed, set_pair, [dataset, model_a, model_b], pair_outputs, api_name="set_pair", **EV)
    gallery.select(gallery_select, dataset, [current, index], api_name="gallery_select", **EV)
    gr.on([pick_btn.click, index.submit], pick_test, [dataset, index], current, api_name="pick_test",
          **EV)
    random_btn.click(random_test, dataset, [current, index], api_name="random_test", **EV)
    upload.upload(use_upload, [upload, dataset], current, api_name="use_upload", **EV)
    draw_tab.select(None, js=PICK_BRUSH)  # no server round trip, no API endpoint
    draw_btn.click(use_drawing, [sketch, dataset], current, api_name="use_drawing", **EV)

    gr.on([current.change, rec_btn.click, rec_seed.submit, cls.input, *pair_changed], reconstruct,
          [dataset, current, rec_seed, *PAIR_IN], [rec_a, rec_b, rec_a_samples, rec_b_samples, rec_text],
          api_name="reconstruct", **EV)
    # gallery.change: a new dataset (set_dataset has set the pickers by then)
    gr.on([smp_btn.click, smp_seed.submit, smp_temp.release, gallery.change, *pair_changed], sample,
          [dataset, smp_seed, smp_temp, *PAIR_IN], [smp_a, smp_b, smp_a_extra, smp_b_extra, smp_text],
          api_name="sample", **EV)
    set_a.click(lambda x: x, current, end_a, api_name="set_a", **EV)
    set_b.click(lambda x: x, current, end_b, api_name="set_b", **EV)
    rand_b.click(lambda d: random_test(d)[0], dataset, end_b, api_name="random_b", **EV)
    gr.on([end_a.change, end_b.change, steps.release, mode.change, *pair_changed], interpolate,
          [dataset, end_a, end_b, steps, mode, *PAIR_IN], [int_a, int_b, int_text], api_name="interpolate", **EV)
    gr.on([current.change, reset_btn.click, start.change, *pair_changed], sliders_from_input,
          [dataset, current, start, *PAIR_IN], [*slider_list, sl_a_img, sl_b_img], api_name="sliders_from_input",
          **EV).then(None, js=LIVE_JS)
    # Slider moves are decoded in the browser as they happen (static/live_decoder.js, no server round trip);
    # the server decodes on release, for the images under the canvases and for the API. Raw payloads: the
    # ranges depend on the models, so slide() validates them itself.
    gr.on([s.release for s in slider_list], slide, [dataset, *slider_list, *PAIR_IN], [sl_a_img, sl_b_img],
          api_name="slide", preprocess=False, trigger_mode="always_last", show_progress="hidden", **EV)
    live_spec.change(None, live_spec, None, js="(spec) => { if (window.latentLive) window.latentLive.load(spec); }")
    sliders_tab.select(None, js=LIVE_JS)
    noop_btn.click(noop, [dataset, *slider_list], noop_out, api_name="noop", preprocess=False, show_progress="hidden",
                   **EV)
    gr.on([current.change, *pair_changed], place_on_map, [dataset, current, *PAIR_IN], [map_a, map_b, map_text],
          api_name="place_on_map", **EV)
    point_outputs = [pt_img, pt_a, pt_b, map_a, map_b, pt_text]
    gif_btn.click(export_gif, [dataset, end_a, end_b, steps, mode, *PAIR_IN], gif_files, api_name="export_gif", **EV)
    csv_btn.click(export_codes, [dataset, current, *PAIR_IN], csv_files, api_name="export_codes", **EV)
    pt_index.submit(show_point, [dataset, pt_index, current, *PAIR_IN], point_outputs, api_name="show_point", **EV)
    for img, slot in ((map_a, "a"), (map_b, "b")):
        img.select(map_click(slot), [dataset, current, *PAIR_IN], [pt_index, *point_outputs],
                   api_name=f"click_{slot}", **EV)
    for img, model in ((sc_ae2, "ae-2"), (sc_vae2, "vae-2")):
        img.select(plane_click(model), [dataset, current, *PAIR_IN], [pt_index, *point_outputs],
                   api_name=f"click_{model.replace('-', '_')}", **EV)
    gr.on([current.change, grid_n.release], manifold, [dataset, grid_n, current], [mf_ae, mf_vae, sc_ae2, sc_vae2],
          api_name="manifold", **EV)

    gr.on([demo.load, dataset.change], scorecard_tab, dataset, [sc_text, sc_task, sc_task_plot, sc_roc, sc_imp],
          api_name="scorecard", **EV)
    dg_outputs = [dg_summary, dg_model, dg_curves, dg_kl, dg_text]
    gr.on([demo.load, dataset.change], lambda d: diagnostics_tab(d), dataset, dg_outputs, api_name="diagnostics_dataset",
          **EV)
    dg_model.input(diagnostics_tab, [dataset, dg_model], dg_outputs, api_name="diagnostics", **EV)
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
