"""Latent map: each model's atlas codes as a map (UMAP, or a 2-D model's plane), the current input placed on it.

In the browser (static/latent_map.js, WebGL through the vendored regl-scatterplot): both maps pan and zoom, a hovered
point shows its image, a click makes it the current input, a lasso selects (and the same images light up in the other
map), the points take a colour by class, reconstruction error, anomaly score or posterior spread, a density lies under
them, and the page decodes the code under the cursor (static/live_decoder.js). Where the script cannot run, the
server's PNG maps and their clicks stay. Below: the 2-D models' decoded planes."""
from __future__ import annotations

import json
import threading
import time

import gradio as gr

from explorer import mapdata, service
from explorer.catalog import SHIPPED, find_models
from explorer.files import write_once
from explorer.images import InputError
from explorer.plot import PALETTE
from ui.common import DECODER_DIR, EV, EXPORT_DIR, STATIC, Page, bundle, file_url, gpu, guarded, names_of

# The files the page reads (points, sprites, densities), content-named, written once per model.
MAP_DIR = EXPORT_DIR.parent / "latent-explorer-maps"
HEAD = (f'<script src="{file_url(STATIC / "vendor" / "regl-scatterplot" / "regl-scatterplot.min.js")}"></script>'
        f'<script src="{file_url(STATIC / "latent_map.js")}"></script>')
_files: dict = {}  # (dataset, model) -> {"points", "density", "decoder"} URLs; (dataset,) -> the sprite's
_colours: dict = {}  # (dataset, model, kind) -> the values (list), computed once
_colour_lock = threading.Lock()


def _write(data: bytes, stem: str, ext: str) -> str:
    import hashlib

    return file_url(write_once(MAP_DIR / f"{stem}-{hashlib.sha256(data).hexdigest()[:16]}.{ext}", data))


def model_files(b, view) -> dict:
    """The URLs of one model's points file, density picture and (where it exports) browser decoder."""
    key = (b.key, view.name)
    if key not in _files:
        from explorer.webdecoder import UnsupportedDecoder, write_export

        plane = view.latent_dim == 2
        lo, hi = mapdata.bounds(view.map_xy)
        prior = plane and view.is_vae and view.model.config.prior == "standard"
        grid = mapdata.prior_grid(lo, hi) if prior else mapdata.kde_grid(view.map_xy, lo, hi)
        std = b.atlas_array(f"{view.name}__std") if view.is_vae else None
        meta = {"lo": lo.tolist(), "hi": hi.tolist(), "nn_scale": view.nn_scale, "plane": plane}
        try:
            decoder = file_url(write_export(view.model, DECODER_DIR))
        except UnsupportedDecoder:  # a class-conditional decoder also reads a label: no decode under the cursor
            decoder = None
        _files[key] = {
            "points": _write(mapdata.points_file(view.map_xy, view.codes, None if std is None else std.mean(1),
                                                 b.labels, meta), f"points-{b.key}-{view.name}", "safetensors"),
            "density": _write(mapdata.density_png(grid), f"density-{b.key}-{view.name}", "png"),
            "density_kind": "the prior N(0, I)" if prior else "a kernel density of the atlas codes",
            "decoder": decoder}
    return _files[key]


def sprite(b) -> dict:
    if (b.key,) not in _files:
        _files[(b.key,)] = {"url": _write(mapdata.sprite_png(b.images), f"sprite-{b.key}", "png"),
                            "cols": mapdata.SPRITE_COLS, "size": list(b.images.shape[1:3])}
    return _files[(b.key,)]


def map_spec(b, names, placed: dict) -> str:
    """What static/latent_map.js needs for a pair: the sprite, the class names and colours, and per model its
    files, title and the current input's place (red cross), as JSON (the value of the map's gr.HTML)."""
    models = []
    for slot, view in zip("ab", service.pair(b, names)):
        files = model_files(b, view)
        models.append({"slot": slot, "key": view.name, "title": view.title, "vae": bool(view.is_vae),
                       "plane": view.latent_dim == 2, "latent_dim": int(view.latent_dim),
                       "conditional": bool(view.conditional), **files,
                       "current": [float(v) for v in placed[slot + "_xy"]]})
    return json.dumps({"dataset": b.key, "classes": b.class_names, "palette": PALETTE, "sprite": sprite(b),
                       "colours": service.MAP_COLOURS, "models": models})


def map_colours(ask) -> dict:
    """Server function of the map (static/latent_map.js): asked {"dataset", "model", "kind"}, one value per atlas
    point of that model for its colours, computed once (a few seconds for 10,000 images on a CPU); {"error": message}
    for a bad request."""
    try:
        if not isinstance(ask, dict) or not all(isinstance(ask.get(k), str) for k in ("dataset", "model", "kind")):
            raise InputError("ask for the colours with a dataset, a model and a kind.")
        key = dataset, model, kind = ask["dataset"], ask["model"], ask["kind"]
        if key not in _colours:
            with _colour_lock:  # one computation at a time: a second visitor waits for the first's values
                if key not in _colours:
                    b = bundle(dataset, (model,))
                    _colours[key] = [round(float(v), 5) for v in service.map_colours(b, model, kind)]
        return {"values": _colours[key]}
    except (InputError, LookupError, gr.Error) as e:
        return {"error": str(e)}
    except Exception as e:  # never a traceback in the page
        import logging

        logging.getLogger("latent-explorer").exception("map colours")
        return {"error": f"Something went wrong ({type(e).__name__})."}


@guarded
@gpu
def place_on_map(dataset: str, image, model_a=None, model_b=None, cls=None):
    if image is None:  # fired by a .change while the input is still empty
        return gr.skip()
    t = time.perf_counter()
    r = service.place(bundle(dataset, (model_a, model_b)), image, names_of(model_a, model_b), cls)
    ms = (time.perf_counter() - t) * 1000
    spec = map_spec(bundle(dataset), names_of(model_a, model_b), r)
    text = (f"Red cross: the current input (black: a clicked point), placed from the atlas (distance-weighted mean of "
            f"the map positions of its 10 nearest atlas codes; no UMAP at request time; a 2-D model's map is its "
            f"latent plane itself) in {ms:.0f} ms.")
    return r["a"], r["b"], text, spec


@guarded
def pick_point(dataset: str, image, model_a, model_b, cls, evt: gr.EventData):
    """A point clicked on the interactive map: its atlas image becomes the current input (every tab follows)."""
    data = getattr(evt, "_data", None) or {}
    i = data.get("index")
    if not isinstance(i, (int, float)) or isinstance(i, bool):
        raise InputError("The map sent no point.")
    b = bundle(dataset)
    if not float(i).is_integer() or not 0 <= int(i) < len(b.images):
        raise InputError(f"atlas index must be 0..{len(b.images) - 1}, got {i}.")
    i = int(i)
    return (b.images[i], i, i, *show_point(dataset, i, b.images[i], model_a, model_b, cls))


@guarded
def select_points(dataset: str, indices):
    """A selection of atlas points (a list of indices, or a string of them): its images and class histogram."""
    r = service.select_points(bundle(dataset), indices)
    return list(zip(r["images"], r["captions"])), r["text"], {"indices": r["indices"], "histogram": r["histogram"]}


def lasso_points(dataset: str, evt: gr.EventData):
    """The interactive map's lasso (static/latent_map.js): the selected indices arrive with the event."""
    return select_points(dataset, (getattr(evt, "_data", None) or {}).get("indices") or [])


@guarded
@gpu
def decode_at(dataset: str, model: str, x: float, y: float, cls=None):
    """The decode of a map position of `model` (its map's own units) and that code's distance to the data."""
    r = service.decode_at(bundle(dataset, (model,)), model, x, y, cls)
    return r["image"], {"z": r["z"], "distance": r["distance"]}, r["text"]


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


def _pane(slot: str) -> str:
    return f"""<div class="imap-pane" data-slot="{slot}">
    <div class="imap-title">Model {slot.upper()}</div>
    <div class="imap-plot"><canvas class="imap-canvas"></canvas>
      <div class="imap-tip"><canvas width="28" height="28"></canvas><span></span></div></div>
    <div class="imap-strip"><canvas class="imap-decode" width="28" height="28"></canvas>
      <span class="imap-dist">Move the cursor over the map: the code under it, decoded here.</span></div>
    <div class="imap-legend"></div>
  </div>"""


COLOUR_OPTIONS = "".join(f'<option value="{k}">{v}</option>' for k, v in
                         {"class": "class", "recon_error": "reconstruction error", "anomaly": "anomaly score",
                          "spread": "posterior spread (VAE)"}.items())
MAP_HTML = f"""<div class="imap">
  <div class="imap-bar">
    <label>Colour by <select class="imap-colour">{COLOUR_OPTIONS}</select></label>
    <label><input type="checkbox" class="imap-density"> density under the points</label>
    <button type="button" class="imap-lasso">Lasso</button>
    <button type="button" class="imap-reset">Reset view</button>
    <span class="imap-help">drag: pan · wheel: zoom · shift + drag (or Lasso): select · click a point: make it the
      current input · double-click: clear the selection</span>
  </div>
  <div class="imap-panes">{_pane("a")}{_pane("b")}</div>
  <div class="imap-status"></div>
</div>"""
# The page's map (static/latent_map.js) gets the pair's spec as this component's value; a click and a lasso come back
# as events ('select': {index}, 'lasso': {indices}).
MAP_JS = "window.latentMap && window.latentMap.mount(element, {props, server, watch, " \
         "pick: (d) => trigger('select', d), lasso: (d) => trigger('lasso', d)});"
CSS = """
#imap { display: none; }
.imap-bar { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; font-size: var(--text-sm); }
.imap-bar button { border: 1px solid var(--border-color-primary); border-radius: 4px; padding: 1px 8px;
  font-size: var(--text-sm); font-weight: normal; }
.imap-bar select { font-size: var(--text-sm); padding: 1px 4px; width: auto; }
.imap-bar button.on { background: var(--color-accent-soft); }
.imap-help { color: var(--body-text-color-subdued); }
.imap-panes { display: flex; gap: 1rem; margin-top: .4rem; }
.imap-pane { flex: 1; min-width: 0; }
.imap-title { font-size: var(--text-sm); font-weight: 600; }
.imap-plot { position: relative; width: 100%; aspect-ratio: 1 / 1; max-width: 460px; border: 1px solid
  var(--border-color-primary); background: #fff; contain: strict; }
.imap-canvas { position: absolute; inset: 0; width: 100% !important; height: 100% !important; }
.imap-tip { position: absolute; display: none; pointer-events: none; background: #fff; border: 1px solid #888;
  padding: 3px; font-size: 11px; color: #222; z-index: 5; }
.imap-tip canvas, .imap-strip canvas { width: 84px; height: 84px; image-rendering: pixelated; background: #000;
  display: block; }
.imap-strip { display: flex; gap: .6rem; align-items: center; margin-top: .3rem; font-size: var(--text-sm);
  height: 90px; contain: strict; }
.imap-legend { font-size: 12px; margin-top: .2rem; }
.imap-status { font-size: var(--text-sm); color: var(--body-text-color-subdued); margin-top: .3rem; }
"""


def build(page: Page) -> gr.Tab:
    with gr.Tab("Latent map", elem_id="tab-map") as tab:
        legend = gr.Markdown(elem_id="legend")
        map_text = gr.Markdown(elem_id="map-text")
        imap = gr.HTML("", html_template=MAP_HTML, js_on_load=MAP_JS, head=HEAD, elem_id="imap",
                       server_functions=[map_colours])
        with gr.Row(elem_id="png-maps"):
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
            sel_gallery = gr.Gallery(label="Selected atlas images (lasso on the map)", columns=10, height=220,
                                     allow_preview=False, format="png", elem_id="sel-gallery", scale=3)
            with gr.Column(scale=1):
                sel_text = gr.Markdown("Select with the lasso (shift + drag) on either map.", elem_id="sel-text")
                sel_json = gr.JSON(label="Selection: indices and class histogram", elem_id="sel-json", open=False)
        with gr.Row(visible=False):  # the API's own ways in: a selection by indices, a map position decoded
            sel_indices = gr.Textbox(label="Atlas indices")
            at_model, at_x, at_y = gr.Textbox(label="Model"), gr.Number(label="x"), gr.Number(label="y")
            at_img, at_json, at_text = gr.Image(format="png"), gr.JSON(), gr.Markdown()
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
    page.shared.update(legend=legend)  # a new dataset sets the class legend
    dataset, current, pair_in = page.dataset, page.current, page.pair_in
    page.tab_event("map", [current.change, *page.pair_changed], place_on_map, [dataset, current, *pair_in],
                   [map_a, map_b, map_text, imap], api_name="place_on_map")
    point_outputs = [pt_img, pt_a, pt_b, map_a, map_b, pt_text]
    imap.select(pick_point, [dataset, current, *pair_in], [current, page.shared["index"], pt_index, *point_outputs],
                api_visibility="private", **EV)
    imap.lasso(lasso_points, dataset, [sel_gallery, sel_text, sel_json], api_visibility="private", **EV)
    sel_indices.submit(select_points, [dataset, sel_indices], [sel_gallery, sel_text, sel_json],
                       api_name="select_points", **EV)
    at_x.submit(decode_at, [dataset, at_model, at_x, at_y, page.cls], [at_img, at_json, at_text], api_name="decode_at",
                **EV)
    csv_btn.click(export_codes, [dataset, current, *pair_in], csv_files, api_name="export_codes", **EV)
    pt_index.submit(show_point, [dataset, pt_index, current, *pair_in], point_outputs, api_name="show_point", **EV)
    for img, slot in ((map_a, "a"), (map_b, "b")):
        img.select(map_click(slot), [dataset, current, *pair_in], [pt_index, *point_outputs],
                   api_name=f"click_{slot}", **EV)
    for img, model in ((sc_ae2, "ae-2"), (sc_vae2, "vae-2")):
        img.select(plane_click(model), [dataset, current, *pair_in], [pt_index, *point_outputs],
                   api_name=f"click_{model.replace('-', '_')}", **EV)
    page.tab_event("map", [current.change, grid_n.release], manifold, [dataset, grid_n, current],
                   [mf_ae, mf_vae, sc_ae2, sc_vae2], api_name="manifold")
    return tab
