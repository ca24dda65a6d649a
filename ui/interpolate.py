"""Interpolate: decodes along the path between two inputs' codes, in each model's latent space, and as GIFs."""
from __future__ import annotations

import gradio as gr

from explorer import service
from explorer.images import InputError
from ui.common import EV, EXPORT_DIR, Page, bundle, gpu, guarded, names_of
from ui.inputs import random_test


@guarded
@gpu
def interpolate(dataset: str, image_a, image_b, steps: float, mode: str, model_a=None, model_b=None, cls=None):
    if image_a is None or image_b is None:  # fired by a .change while the input is still empty
        return gr.skip()
    r = service.interpolate(bundle(dataset, (model_a, model_b)), image_a, image_b, int(steps), mode, names=names_of(model_a, model_b),
                            label=cls)
    return r["a"], r["b"], r["text"]


@guarded
@gpu
def export_gif(dataset: str, image_a, image_b, steps: float, mode: str, model_a=None, model_b=None, cls=None):
    """Model A's and Model B's interpolation strips as animated GIFs (one frame per step)."""
    if image_a is None or image_b is None:
        raise InputError("Set both ends (A and B) of the interpolation first.")
    names = names_of(model_a, model_b)
    return [str(p) for p in service.interpolation_gifs(bundle(dataset, names), image_a, image_b, int(steps), mode,
                                                       EXPORT_DIR, names, cls)]


def build(page: Page) -> gr.Tab:
    with gr.Tab("Interpolate", elem_id="tab-interpolate") as tab:
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
    page.shared.update(end_a=end_a, end_b=end_b)  # a new dataset sets both ends
    dataset, current = page.dataset, page.current
    set_a.click(lambda x: x, current, end_a, api_name="set_a", **EV)
    set_b.click(lambda x: x, current, end_b, api_name="set_b", **EV)
    rand_b.click(lambda d: random_test(d)[0], dataset, end_b, api_name="random_b", **EV)
    page.tab_event("interpolate", [end_a.change, end_b.change, steps.release, mode.change, *page.pair_changed],
                   interpolate, [dataset, end_a, end_b, steps, mode, *page.pair_in], [int_a, int_b, int_text],
                   api_name="interpolate")
    gif_btn.click(export_gif, [dataset, end_a, end_b, steps, mode, *page.pair_in], gif_files, api_name="export_gif",
                  **EV)
    return tab
