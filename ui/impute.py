"""Impute: hide part of the current input, then fill it in (the AE iterates its reconstruction; the VAE samples the
hidden pixels given the visible ones)."""
from __future__ import annotations

import gradio as gr
import numpy as np

from explorer import service
from explorer.images import InputError
from ui.common import EV, Page, bundle, gpu, guarded

IMPUTE_MASKS = {**service.MASK_LABELS, "painted": "painted"}


EDITOR_SIDE = 280  # the mask editor's canvas (pixels a side): the current input is enlarged to it


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


def build(page: Page) -> gr.Tab:
    with gr.Tab("Impute", elem_id="tab-impute") as tab:
        gr.Markdown("Hide part of the current input, then fill it in. The AE can only iterate its reconstruction; "
                    "the VAE samples the hidden pixels given the visible ones, so several samples show what it "
                    "is unsure about. Visible pixels are never changed.")
        with gr.Row():
            imp_masked = gr.Image(label="Masked input", format="png", elem_id="imp-masked", elem_classes="pixelated",
                                  height=170)
            imp_ae = gr.Image(label="AE-16 fill", format="png", elem_id="imp-ae", elem_classes="pixelated", height=170)
            imp_vae = gr.Image(label="VAE-16: mean of the imputations", format="png", elem_id="imp-vae",
                               elem_classes="pixelated", height=170)
        imp_samples = gr.Image(label="VAE-16: each imputation (one chain each)", format="png", elem_id="imp-samples",
                               elem_classes="pixelated", height=140)
        with gr.Row():
            with gr.Column(scale=1):
                imp_mask = gr.Radio([(v, k) for k, v in IMPUTE_MASKS.items()], value="bottom_half",
                                    label="Mask (dark red: hidden)", elem_id="imp-mask")
                imp_btn = gr.Button("Impute", elem_id="imp-btn")
            with gr.Column(scale=1):
                # the mask editor draws when its tab is first shown (a canvas editor costs the page ~0.3 s to start)
                with gr.Tabs(elem_id="imp-views"):
                    with gr.Tab("VAE sampler"):
                        imp_sampler = gr.Radio([(v, k) for k, v in service.SAMPLERS.items()],
                                               value="pseudo_gibbs", label="VAE sampler")
                        with gr.Row():
                            imp_n = gr.Slider(1, 16, value=6, step=1, label="VAE imputations")
                            imp_seed = gr.Number(label="Imputation seed", value=0, precision=None, step=1)
                    with gr.Tab("Paint a mask", elem_id="imp-paint") as paint_tab:
                        imp_editor = gr.ImageEditor(
                            label="Paint the pixels to hide, then press Impute", type="numpy", image_mode="RGBA",
                            sources=(), transforms=(), layers=False, canvas_size=(EDITOR_SIDE, EDITOR_SIDE),
                            fixed_canvas=True, height=330, format="png", elem_id="imp-editor",
                            brush=gr.Brush(default_size=24, colors=["#c00000"], color_mode="fixed"))
        imp_text = gr.Markdown(elem_id="imp-text")
    # opening the editor chooses the painted mask (a .change, not an .input: nothing is imputed until the button)
    paint_tab.select(lambda: "painted", None, imp_mask, queue=False, api_visibility="private")
    imp_inputs = [page.dataset, page.current, imp_mask, imp_editor, imp_n, imp_sampler, imp_seed]
    imp_outputs = [imp_masked, imp_ae, imp_vae, imp_samples, imp_text]
    gr.on([imp_btn.click, imp_seed.submit], impute, imp_inputs, imp_outputs, api_name="impute", **EV)
    page.tab_event("impute", [page.current.change, imp_mask.input, imp_sampler.input, imp_n.release], impute_on_change,
                   imp_inputs, imp_outputs, api_name="impute_on_change")
    page.tab_event("impute", [page.current.change], editor_background, [page.current], [imp_editor],
                   api_name="editor_background")
    return tab
