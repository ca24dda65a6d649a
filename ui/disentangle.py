"""Disentanglement: for Model A and Model B, a traversal grid (one row per latent dimension, labelled with the factor
it informs most and that mutual information), the mutual-information heatmap and the metric table. For a dataset
without known factors (MNIST), the traversal alone, and a line that says why there is no metric."""
from __future__ import annotations

import gradio as gr

from explorer import disentangle
from ui.common import Page, bundle, gpu, guarded, names_of

CSS = """
.traversal .tv-head { font-size: var(--text-sm); color: var(--body-text-color-subdued); margin-bottom: 4px; }
.traversal .tv-row { display: flex; align-items: center; gap: 8px; margin: 2px 0; }
.traversal .tv-label { width: 9em; flex: none; font-size: var(--text-xs); font-family: var(--font-mono); }
.traversal img { image-rendering: pixelated; min-width: 0; max-width: calc(100% - 9em - 8px); height: auto; }
.mi-map { max-width: 100%; height: auto; }
"""


@guarded
@gpu
def traverse(dataset: str, image, steps: float, span: float, model_a=None, model_b=None, cls=None):
    """The two traversal grids, the two heatmaps, the metric table and the figures behind them (codes, labels,
    mutual information) as JSON."""
    if image is None:  # fired by a .change while the input is still empty
        return gr.skip()
    names = names_of(model_a, model_b)
    r = disentangle.traversal(bundle(dataset, names), image, names, steps, span, cls)
    figures = {"names": r["names"], "steps": r["steps"], "span": r["span"], "factor_names": r["factor_names"],
               **{slot: {k: v for k, v in r[slot].items() if k not in ("html", "heatmap")} | {
                   "rows": [{k: v for k, v in row.items() if k != "image"} for row in r[slot]["rows"]]}
                  for slot in ("a", "b")}}
    return r["a"]["html"], r["b"]["html"], r["a"]["heatmap"], r["b"]["heatmap"], r["table"], figures


def build(page: Page) -> gr.Tab:
    with gr.Tab("Disentanglement", elem_id="tab-disentangle") as tab:
        gr.Markdown("Is each factor of the data in a latent dimension of its own? Each row sweeps one dimension of "
                    "the current input's code and keeps the others; on dSprites (five known factors: shape, scale, "
                    "orientation, position x and y) each row is labelled with the factor it carries most "
                    "information about, and the heatmap shows all of them.")
        with gr.Row():
            steps = gr.Slider(3, 15, value=disentangle.STEPS, step=2, label="Steps per row")
            span = gr.Slider(0.5, 5, value=disentangle.SPAN, step=0.5, label="Span (± standard deviations)")
        with gr.Row():
            with gr.Column():
                grid_a = gr.HTML(elem_id="tv-a")
                heat_a = gr.HTML(elem_id="mi-a")
            with gr.Column():
                grid_b = gr.HTML(elem_id="tv-b")
                heat_b = gr.HTML(elem_id="mi-b")
        table = gr.Markdown(elem_id="dis-table")
        figures = gr.JSON(visible="hidden")
    page.tab_event("disentangle", [page.current.change, steps.release, span.release, *page.pair_changed], traverse,
                   [page.dataset, page.current, steps, span, *page.pair_in], [grid_a, grid_b, heat_a, heat_b, table,
                                                                              figures], api_name="traverse")
    return tab
