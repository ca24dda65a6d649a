"""Latent Explorer: how a deterministic AE and a VAE organize their latent spaces, side by side.

A thin Gradio page over explorer/ (plain-Python latent operations): the input panel (ui/inputs.py) and one module
per tab (ui/*.py), built here into one page. The page is served first; torch, the models and the atlases load right
after, in one background thread (~2-3 s on a laptop CPU), and any request that arrives before that waits for them.
`python app.py` serves on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 127.0.0.1:7860).
"""
from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from ui import (anomaly, diagnostics, disentangle, impute, inputs, interpolate, latent_map, playground, reconstruct,
                sample, scorecard, sliders)
from ui.common import MODELS  # noqa: F401  (tests and benches reach the model store as app.MODELS)

MAX_FILE_SIZE = "10mb"
FAQ = Path(__file__).resolve().parent / "docs" / "faq.md"
# (module, its tab's name for the events, whether it reads the current input)
TABS = [(reconstruct, "reconstruct", True), (sample, "sample", False), (interpolate, "interpolate", True),
        (sliders, "sliders", True), (latent_map, "map", True), (impute, "impute", True), (anomaly, "anomaly", True),
        (disentangle, "disentangle", True), (scorecard, "scorecard", False), (diagnostics, "diagnostics", False),
        (playground, "playground", False)]

CSS = """
.pixelated img { image-rendering: pixelated; }
#live { display: none; }
.live-row { display: flex; gap: 1rem; }
.live-row figure { flex: 1; margin: 0; text-align: center; }
.live-row figcaption { font-size: var(--text-sm); color: var(--body-text-color-subdued); text-align: left; }
.live-row canvas { width: 180px; height: 180px; image-rendering: pixelated; background: #000; }
#current img, #end-a img, #end-b img { width: 112px !important; height: 112px !important; object-fit: contain; }
#title h1 { margin: 0; font-size: var(--text-xl); }
#gallery .grid-container { grid-template-columns: repeat(5, minmax(0, 1fr)) !important; grid-auto-rows: auto !important;
  gap: 4px; }
#gallery .gallery-item, #gallery .thumbnail-item { aspect-ratio: 1 / 1; height: auto !important; width: 100%; }
#gallery .thumbnail-item img { object-fit: contain !important; image-rendering: pixelated; }
#gallery .caption-label { font-size: 10px; padding: 0 2px; max-width: 100%; }
""" + inputs.HIDE_INPUT_CSS + playground.CSS + disentangle.CSS + latent_map.CSS

with gr.Blocks(title="Latent Explorer: AE vs VAE", delete_cache=(3600, 3600)) as demo:
    page = inputs.build(demo)  # the sidebar: dataset, models, class, current input
    gr.Markdown("# Latent Explorer: AE vs VAE\nTwo models side by side on the same input (by default a deterministic "
                "autoencoder and a VAE with the same encoder/decoder). Pick the dataset, the models and the input in "
                "the sidebar; every tab follows. Questions: [FAQ](#faq), below the tabs.", elem_id="title")
    with gr.Tabs(elem_id="tabs", overflow_behavior="wrap"):  # every tab in sight, on two rows if need be
        tabs = [(module, module.build(page), name, uses_input) for module, name, uses_input in TABS]
    with gr.Accordion("FAQ: how to weight the KL, posterior collapse, blurry samples, anomalies, your own images",
                      open=False, elem_id="faq"):
        gr.Markdown(FAQ.read_text(encoding="utf-8").split("\n", 1)[1])  # docs/faq.md, below its title
    sliders.noop_probe(page)
    inputs.wire(page)  # a new dataset sets components of several tabs: wired once they all exist
    for module, tab, name, uses_input in tabs:
        opened = page.opens(tab, name, uses_input)
        if opened is not None and hasattr(module, "opened"):  # what a tab does after its rerun on opening
            module.opened(opened)

if os.environ.get("SPACES_ZERO_GPU"):  # ZeroGPU wants the models placed at import time, in the main process
    MODELS.get()

if __name__ == "__main__":
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=MAX_FILE_SIZE,
        max_threads=40,
        css=CSS,
        head=sliders.HEAD,
        show_error=True,
        # Gradio records every call (inputs and outputs, pictures included) in the visitor's localStorage: the
        # store fills in minutes of use, and at its quota every event then re-serialises megabytes on the page's
        # one thread, until clicks time out.
        run_history=False,
        prevent_thread_lock=True,
    )
    MODELS.start()  # the page is up: now torch and the models (requests until then wait for them)
    demo.block_thread()
