"""What every part of the page shares: the models (loaded once, in the background), the checkpoints' catalog,
error handling, and the page's shared components (Page) with its tab events.

Every callback runs under torch.inference_mode (inside ModelView.encode/decode); torch itself comes with the models.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from gradio import processing_utils

from explorer import service  # numpy only: torch comes with the models (ModelStore)
from explorer.catalog import APP_MODELS, REGENERATE, checkpoint_root, find_datasets, find_models, missing_files
from explorer.files import write_once
from explorer.images import InputError

try:  # ZeroGPU Spaces: functions that touch CUDA are wrapped; elsewhere this is a no-op.
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn

log = logging.getLogger("latent-explorer")
N_DIMS = 16
CONCURRENCY = 20  # events of one kind running at once (set per event: a demo.queue() call costs ~0.2 s of start-up)
EV = {"concurrency_limit": CONCURRENCY}
STATIC = Path(__file__).resolve().parent.parent / "static"  # served as is: the live decoder and its vendored TensorFlow.js
gr.set_static_paths([STATIC])
# The decoders the browser runs (explorer/webdecoder.py), written when the models load. Gradio serves files
# in its upload folder; these are named by their content.
DECODER_DIR = Path(gr.utils.get_upload_folder()) / "latent-explorer-decoders"
EXPORT_DIR = Path(gr.utils.get_upload_folder()) / "latent-explorer-exports"  # content-named, written atomically
# slot -> (id prefix of its sliders, id of the canvas the browser draws its decode on)
LIVE_SLOTS = {"a": ("a-s", "live-a"), "b": ("b-s", "live-b")}


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
                self.live_spec(key, self.bundles[key].pair)
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


# ---- tabs that work while open --------------------------------------------------------------------
def when_open(tab: str, fn):
    """fn, whose last input is the tab this visitor has open: skipped (no update) while another tab is open; None
    (an API caller's session, which never opens a tab) runs it."""

    def run(*values):
        *values, shown = values
        return gr.skip() if shown is not None and shown != tab else fn(*values)

    run.__name__ = f"{fn.__name__}_when_open"
    return run


def opening(handlers):
    """One Tab.select handler that runs a tab's [(fn, inputs, outputs)] on what is current: (inputs, outputs, fn)."""
    inputs = [c for _, ins, _ in handlers for c in ins]
    outputs = [c for _, _, outs in handlers for c in outs]

    def run(*values):
        out, k = [], 0
        for fn, ins, outs in handlers:
            r = fn(*values[k:k + len(ins)])
            k += len(ins)
            if isinstance(r, dict) and r.get("__type__") == "update" and len(r) == 1:  # gr.skip(): all its outputs
                out += [r] * len(outs)
            else:
                out += list(r) if len(outs) > 1 else [r]
        return out

    run.__name__ = "open_" + "_".join(fn.__name__ for fn, _, _ in handlers)
    return inputs, outputs, run


@dataclass
class Page:
    """The components every tab reads (the dataset, the pair, the class, the current input) and the tab events.

    A tab's work runs while it is open, or when it opens (tab_event): a new input or pair re-runs one tab, not nine,
    and the page's first pictures do not wait behind the hidden tabs' work."""

    dataset: gr.Radio
    model_a: gr.Dropdown
    model_b: gr.Dropdown
    cls: gr.Dropdown
    current: gr.Image
    gallery: gr.Gallery
    open_tab: gr.State  # the main tab this visitor has open; None (an API caller's session): every event runs
    demo: gr.Blocks
    relays: gr.Column | None = None  # where relayed() puts its relays (in the sidebar, out of sight)
    shared: dict = field(default_factory=dict)  # components a tab makes that the input panel sets (e.g. "end_a")
    handlers: dict = field(default_factory=dict)  # tab name -> [(fn, inputs, outputs)]: rerun when the tab opens

    @property
    def pair_in(self) -> list:
        """The pair and the class every comparing tab reads (last inputs: defaults)."""
        return [self.model_a, self.model_b, self.cls]

    @property
    def pair_changed(self) -> list:
        """A person's pick of a model (.input: set_dataset's own updates of the pickers do not count)."""
        return [self.model_a.input, self.model_b.input]

    def tab_event(self, tab: str, triggers, fn, inputs, outputs, reopen=None, **kwargs):
        """gr.on(triggers, fn, ...), run only while `tab` is open (an API call: always). Opening `tab` runs it again
        (or reopen: (fn, inputs), with the same outputs). A new dataset reaches every such listener directly, each
        with trigger_mode "once": two "always_last" listeners of one trigger re-trigger each other (see relayed)."""
        self.handlers.setdefault(tab, []).append((*(reopen or (fn, inputs)), outputs))
        if self.dataset.change in triggers:
            kwargs.setdefault("trigger_mode", "once")
        return gr.on(self.relayed(triggers), when_open(tab, fn), [*inputs, self.open_tab], outputs, **kwargs, **EV)

    def relayed(self, triggers) -> list:
        """The triggers that several tabs listen to (a new current input, a model picked) reach each listener through
        a hidden relay of its own, set in the browser. Why: when such an event arrives while a listener still runs,
        Gradio's page defers it, and on that run's end re-dispatches the *trigger*, to every listener; two deferred
        listeners of one trigger then re-trigger each other without end (every tab's work re-run twice a second, the
        page 99 % busy, clicks timing out), which a second input soon after the first sets off."""
        shared = [self.current.change, *self.pair_changed]
        mine = [t for t in triggers if t in shared]
        if not mine:
            return list(triggers)
        with self.relays:  # not where the tab's build happens to be (between two tabs, it would break the tab bar)
            relay = gr.Number(0, elem_classes="relay", show_label=False, container=False)
        gr.on(mine, None, None, relay, js="() => performance.now()", api_visibility="private")  # no server round trip
        return [t for t in triggers if t not in shared] + [relay.change]

    def opens(self, tab: gr.Tab, name: str, uses_input: bool = True):
        """Opening `tab` remembers it as this visitor's open tab and reruns its handlers on what is current; a tab
        that does not read the current input hides it. Returns that event (or None for a tab without handlers)."""
        tab.select(lambda: name, None, self.open_tab, queue=False, api_visibility="private")
        tab.select(None, js=f"() => {{ document.body.classList.toggle('no-input', {str(not uses_input).lower()}); }}")
        if name not in self.handlers:
            return None
        inputs, outputs, fn = opening(self.handlers[name])
        return tab.select(fn, inputs, outputs, api_visibility="private", **EV)
