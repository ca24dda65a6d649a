"""Sample: decodes of z drawn from each model's prior (an AE has none: N(0, I) shows its holes; its GMM is the fix)."""
from __future__ import annotations

import gradio as gr

from explorer import service
from explorer.images import InputError
from ui.common import Page, bundle, gpu, guarded, names_of


@guarded
@gpu
def sample(dataset: str, seed: float, temperature: float, model_a=None, model_b=None, cls=None):
    if temperature is None:
        raise InputError("Enter a temperature in (0, 3].")
    r = service.sample(bundle(dataset, (model_a, model_b)), seed, float(temperature), names=names_of(model_a, model_b),
                       label=None if cls is None or cls == "" else cls)  # the service checks the seed
    return r["a"], r["b"], r["a_extra"], r["b_extra"], r["text"]


def build(page: Page) -> gr.Tab:
    with gr.Tab("Sample", elem_id="tab-sample") as tab:
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
    # gallery.change: a new dataset (set_dataset has set the pickers by then)
    page.tab_event("sample", [smp_btn.click, smp_seed.submit, smp_temp.release, page.gallery.change, *page.pair_changed],
                   sample, [page.dataset, smp_seed, smp_temp, *page.pair_in],
                   [smp_a, smp_b, smp_a_extra, smp_b_extra, smp_text], api_name="sample")
    return tab
