"""Latent map: each model's atlas codes as a map (UMAP, or a 2-D model's plane), the current input placed on it,
clicks decoded; the 2-D models' decoded planes."""
from __future__ import annotations

import time

import gradio as gr

from explorer import service
from explorer.catalog import SHIPPED, find_models
from explorer.images import InputError
from ui.common import EV, EXPORT_DIR, Page, bundle, gpu, guarded, names_of


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


def build(page: Page) -> gr.Tab:
    with gr.Tab("Latent map", elem_id="tab-map") as tab:
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
    page.shared.update(legend=legend)  # a new dataset sets the class legend
    dataset, current, pair_in = page.dataset, page.current, page.pair_in
    page.tab_event("map", [current.change, *page.pair_changed], place_on_map, [dataset, current, *pair_in],
                   [map_a, map_b, map_text], api_name="place_on_map")
    point_outputs = [pt_img, pt_a, pt_b, map_a, map_b, pt_text]
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
