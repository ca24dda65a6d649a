"""The input panel (the sidebar): the dataset, the two models, the class, and the current input every tab reads
(an atlas test image, an upload or a drawing)."""
from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import gradio as gr
import numpy as np

from explorer import service
from explorer.catalog import REGENERATE
from explorer.files import write_once
from explorer.images import InputError, drawing_to_format, load_upload, upscale
from explorer.plot import legend_markdown
from ui.common import (ALL_MODELS, DATASETS, EV, MAX_CLASSES, MODELS, Page, bundle, guarded, pair_choices,
                       describe_pair, names_of, status_text)

GALLERY_PER_CLASS = 4
THUMBS = Path(gr.utils.get_upload_folder()) / "latent-explorer-thumbnails"  # the gallery's SVGs, content-named
# Tabs that do not read the current input hide it (a class on <body>, set in the browser when a tab opens).
HIDE_INPUT_CSS = "body.no-input #input-panel { display: none !important; }\n#relays { display: none !important; }"


def gallery_indices(dataset: str) -> list[int]:
    """The first GALLERY_PER_CLASS atlas images of every class (class-major order)."""
    b = bundle(dataset)
    return first_of_each_class(b.labels, b.class_names)


def first_of_each_class(labels, class_names) -> list[int]:
    if labels is None:
        return []
    k = max(1, len(class_names))
    per_class = max(GALLERY_PER_CLASS, 40 // k)  # about 40 pictures: 4 per class of 10, 40 of an unlabelled set
    return [int(i) for c in range(k) for i in np.nonzero(labels == c)[0][:per_class]]


def gallery_items(dataset: str) -> list:
    b = bundle(dataset)
    return thumbnails(b.images, b.labels, b.class_names)


def thumbnails(images, labels, class_names) -> list:
    """(thumbnail, caption) for the gallery. Each thumbnail is an SVG file that holds its PNG: Gradio sends an SVG
    inline (a data URL), so the page shows 40 thumbnails with no request each."""
    return [(str(inline_thumbnail(images[i])), f"{i}: {class_names[int(labels[i])]}")
            for i in first_of_each_class(labels, class_names)]


def opening_input(key: str):
    """(gallery items, current input) of a dataset straight from its atlas.npz (numpy only, ~40 ms), for the page's
    first values: the first pictures come with the page, not after a first event (none where it cannot be read)."""
    try:
        with np.load(MODELS.root / key / "atlas.npz", allow_pickle=False) as f:
            images, labels = f["images"], f["labels"].astype(np.int64)
            names = [str(c) for c in f["class_names"]]
        names += [str(c) for c in range(len(names), int(labels.max()) + 1 if len(labels) else 0)]
        items = thumbnails(images, labels, names)
        return items, images[int(items[0][1].split(":")[0])] if items else None
    except Exception:  # missing or corrupt: the first event says so (status line)
        return [], None


def inline_thumbnail(img: np.ndarray, factor: int = 2) -> Path:
    """An SVG of an image (its PNG embedded, drawn `factor` times its size, pixels kept sharp), content-named."""
    from PIL import Image

    a = upscale(img, 1)  # uint8
    h, w = a.shape[:2]
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", optimize=True)
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * factor}" height="{h * factor}" '
           f'viewBox="0 0 {w} {h}"><image width="{w}" height="{h}" style="image-rendering:pixelated" '
           f'href="data:image/png;base64,{png}"/></svg>').encode()
    return write_once(THUMBS / f"{hashlib.sha1(svg).hexdigest()[:20]}.svg", svg)


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
             for i, n in enumerate(b.pair)]
    classes = [(f"{i}: {c}", i) for i, c in enumerate(b.class_names)]
    label = int(b.labels[shown[0]]) if shown else 0
    return (gr.Gallery(value=gallery_items(dataset) if b.images is not None else []), first, first, second,
            legend, msg, status_text(), gr.Dropdown(choices=choices, value=names[0]),
            gr.Dropdown(choices=choices, value=names[1]), gr.Dropdown(choices=classes, value=label),
            *(set_pair(dataset, *names) if all(names) else ("", {})))


def open_page(dataset: str, shown_tab: str | None, opened_with: str | None):
    """The page's load (/init): set_dataset, except that a browser's page already holds the gallery and the current
    input it opened with (opened_with: that dataset, None where it opened without them). Those are not sent again: a
    second copy would draw the gallery twice and re-run every tab that listens to the current input. An API caller
    (no open tab) gets them all."""
    out = set_dataset(dataset)
    if shown_tab is not None and dataset == opened_with:
        out = (gr.skip(), gr.skip(), *out[2:])
    return out


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


def build(demo: gr.Blocks) -> Page:
    """The sidebar, in the Blocks being built. Returns the Page the tabs build on."""
    first_items, first_image = opening_input(next(iter(DATASETS)))
    with gr.Sidebar(width=340, elem_id="sidebar"):
        dataset = gr.Radio([(v, k) for k, v in DATASETS.items()], value=next(iter(DATASETS)), label="Dataset",
                           elem_id="dataset")
        # allow_custom_value: an API caller may name any model of the dataset it names, whatever this session's
        # pickers last listed; the handlers check the name against that dataset's catalog (service.pair).
        model_a = gr.Dropdown(choices=ALL_MODELS, value=service.PAIR[0], label="Model A", elem_id="model-a",
                              allow_custom_value=True)
        model_b = gr.Dropdown(choices=ALL_MODELS, value=service.PAIR[1], label="Model B", elem_id="model-b",
                              allow_custom_value=True)
        cls = gr.Dropdown(choices=[(str(i), i) for i in range(MAX_CLASSES)], value=0,
                          label="Class given to a class-conditional model",
                          info="a test image's true class is printed under it in the gallery", elem_id="cls")
        pair_text = gr.Markdown(elem_id="pair-text")
        problem = gr.Markdown("", elem_id="problem")
        with gr.Column(elem_id="input-panel"):
            current = gr.Image(first_image, label="Current input (every tab reads it)", type="numpy", image_mode=None,
                               format="png", interactive=False, height=150, elem_id="current",
                               elem_classes="pixelated")
            with gr.Tabs(elem_id="input-tabs"):
                with gr.Tab("Test image"):
                    gallery = gr.Gallery(first_items, label="Atlas test images (click one)", columns=5, height=230,
                                         allow_preview=False, elem_id="gallery", format="png")
                    with gr.Row():
                        index = gr.Number(label="Atlas index", value=0, precision=None, minimum=0, step=1,
                                          min_width=90)
                        pick_btn = gr.Button("Use index", min_width=80)
                        random_btn = gr.Button("Random", elem_id="random-btn", min_width=80)
                with gr.Tab("Upload"):
                    upload = gr.File(label="Image file (any size up to 8000x8000, any mode or polarity)",
                                     type="filepath", elem_id="upload")
                with gr.Tab("Draw") as draw_tab:
                    sketch = gr.Sketchpad(label="Draw, then press Use drawing", type="numpy",
                                          canvas_size=(280, 280), fixed_canvas=True, elem_id="sketch",
                                          brush=gr.Brush(default_size=16, colors=["#000000"], color_mode="fixed"))
                    draw_btn = gr.Button("Use drawing", elem_id="draw-btn")
        with gr.Accordion("Checkpoints", open=False):
            status = gr.Markdown(status_text(), elem_id="status")
        relays = gr.Column(elem_id="relays", min_width=0)  # Page.relayed's hidden relays, one per tab listener
    page = Page(dataset=dataset, model_a=model_a, model_b=model_b, cls=cls, current=current, gallery=gallery,
                open_tab=gr.State(None), demo=demo, relays=relays)
    page.shared.update(opened_with=next(iter(DATASETS)) if first_items and first_image is not None else None,
                       pair_text=pair_text, problem=problem, status=status, index=index, pick_btn=pick_btn,
                       random_btn=random_btn, upload=upload, draw_tab=draw_tab, sketch=sketch, draw_btn=draw_btn)
    return page


def wire(page: Page) -> None:
    """The panel's events, once every tab is built (a new dataset sets components of several tabs)."""
    s = page.shared
    dataset, current, index = page.dataset, page.current, s["index"]
    pair_outputs = [s["pair_text"], s["live_spec"]]
    dataset_outputs = [page.gallery, current, s["end_a"], s["end_b"], s["legend"], s["problem"], s["status"],
                       page.model_a, page.model_b, page.cls, *pair_outputs]
    demo = page.demo
    demo.load(lambda: "reconstruct", None, page.open_tab, queue=False, api_visibility="private")
    opened_with = gr.State(s["opened_with"])
    demo.load(open_page, [dataset, page.open_tab, opened_with], dataset_outputs, api_name="init", **EV)
    dataset.change(set_dataset, dataset, dataset_outputs, api_name="set_dataset", **EV)
    # set_dataset's own updates of the pickers (new choices) must not re-run every tab: it sets the current input
    # as well, which re-runs them once, with the new pair.
    gr.on(page.pair_changed, set_pair, [dataset, page.model_a, page.model_b], pair_outputs, api_name="set_pair", **EV)
    page.gallery.select(gallery_select, dataset, [current, index], api_name="gallery_select", **EV)
    gr.on([s["pick_btn"].click, index.submit], pick_test, [dataset, index], current, api_name="pick_test", **EV)
    s["random_btn"].click(random_test, dataset, [current, index], api_name="random_test", **EV)
    s["upload"].upload(use_upload, [s["upload"], dataset], current, api_name="use_upload", **EV)
    s["draw_tab"].select(None, js=PICK_BRUSH)  # no server round trip, no API endpoint
    s["draw_btn"].click(use_drawing, [s["sketch"], dataset], current, api_name="use_drawing", **EV)
