"""Reconstruct: each model's reconstruction of the current input, and decodes of z ~ q(z|x) (a VAE's spread)."""
from __future__ import annotations

import gradio as gr

from explorer import service
from ui.common import Page, bundle, gpu, guarded, names_of


@guarded
@gpu
def reconstruct(dataset: str, image, seed: float, model_a=None, model_b=None, cls=None):
    if image is None:  # fired by a .change while the input is still empty
        return gr.skip()
    r = service.reconstruct(bundle(dataset, (model_a, model_b)), image, 0 if seed is None else seed,  # the service checks the seed
                            names=names_of(model_a, model_b), label=cls)
    return r["a"], r["b"], r["a_samples"], r["b_samples"], r["text"]


def build(page: Page) -> gr.Tab:
    with gr.Tab("Reconstruct", elem_id="tab-reconstruct") as tab:
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
    page.tab_event("reconstruct", [page.current.change, rec_btn.click, rec_seed.submit, page.cls.input,
                                   *page.pair_changed], reconstruct, [page.dataset, page.current, rec_seed, *page.pair_in],
                   [rec_a, rec_b, rec_a_samples, rec_b_samples, rec_text], api_name="reconstruct")
    return tab
