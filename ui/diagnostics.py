"""Diagnostics: is a model healthy? Its training curves, the KL each latent dimension carries, its verdict."""
from __future__ import annotations

import gradio as gr

from explorer import service
from explorer.catalog import find_models
from explorer.images import InputError
from ui.common import ALL_MODELS, EV, Page, bundle, config_title, guarded


@guarded
def diagnostics_tab(dataset: str, model: str | None = None):
    """The Diagnostics tab of a dataset: every model's verdict, and one model's curves, KL per dimension, verdict."""
    b = bundle(dataset)
    if model is not None and model not in find_models(b.root):
        raise InputError(f"{b.title} has no model {model!r}; choose one of {find_models(b.root)}.")
    r = service.diagnostics(b, model)
    choices = [(config_title(b.root / n) or n.upper(), n) for n in r["names"]]
    return (r["summary"], gr.Dropdown(choices=choices, value=r["name"]), r["curves"], r["kl"], r["text"])


def diagnostics_reopened(dataset: str, model: str | None):
    """The Diagnostics tab opens: the picked model if the dataset has it (it may have changed meanwhile), else the
    dataset's default."""
    try:
        known = model in find_models(bundle(dataset).root)
    except Exception:  # diagnostics_tab says what is wrong
        known = False
    return diagnostics_tab(dataset, model if known else None)


def build(page: Page) -> gr.Tab:
    with gr.Tab("Diagnostics", elem_id="tab-diagnostics") as tab:
        gr.Markdown("Is a model healthy? Its training curves (metrics.json), the KL each latent dimension carries "
                    "(KL(q(z_d|x) ‖ p(z_d)) of the dimension's marginals under the model's own prior; under "
                    "0.01 nats it is unused: collapsed), the model's own KL (its ELBO's term) and its active units "
                    "(Var over the data of E[z|x] > 0.01). A collapsed VAE gets the remedies and the exact "
                    "training command that applies them.")
        dg_summary = gr.Markdown(elem_id="dg-summary")
        dg_model = gr.Dropdown(choices=ALL_MODELS, value=service.PAIR[1], label="Model", elem_id="dg-model",
                               allow_custom_value=True)
        with gr.Row():
            dg_curves = gr.LinePlot(x="epoch", y="value", color="series", label="Training curves (per epoch)",
                                    x_title="epoch", y_title="nats per image", elem_id="dg-curves")
            dg_kl = gr.BarPlot(x="dim", y="value", color="status", sort=None,
                               label="KL of each dimension's marginals, nats (an AE: variance of its codes)",
                               x_title="latent dimension", y_title="nats (AE: variance)", elem_id="dg-kl")
        dg_text = gr.Markdown(elem_id="dg-text")
    dg_outputs = [dg_summary, dg_model, dg_curves, dg_kl, dg_text]
    page.tab_event("diagnostics", [page.dataset.change], lambda d: diagnostics_tab(d), [page.dataset],
                   dg_outputs, reopen=(diagnostics_reopened, [page.dataset, dg_model]),
                   api_name="diagnostics_dataset")
    dg_model.input(diagnostics_tab, [page.dataset, dg_model], dg_outputs, api_name="diagnostics", **EV)
    return tab
