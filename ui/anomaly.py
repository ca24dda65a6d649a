"""Anomaly: is the current input like the training data? Each model's score for it among the test and OOD scores."""
from __future__ import annotations

import gradio as gr
import numpy as np

from explorer import scorecard, service
from explorer.images import InputError
from ui.common import EV, Page, bundle, gpu, guarded
from ui.inputs import random_test
from ui.scorecard import no_scorecard

OTHER_DATASET = {"mnist": "fashion-mnist", "fashion-mnist": "mnist"}


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


def build(page: Page) -> gr.Tab:
    with gr.Tab("Anomaly", elem_id="tab-anomaly") as tab:
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
    page.tab_event("anomaly", [page.current.change, an_set.input, an_score.input], anomaly,
                   [page.dataset, page.current, an_set, an_score], [an_text, an_ae, an_vae], api_name="anomaly")
    an_other.click(other_dataset_image, page.dataset, page.current, api_name="other_dataset_image", **EV)
    return tab
