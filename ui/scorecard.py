"""Scorecard: every model of the dataset measured on the tasks where an AE and a VAE differ (scorecard.json)."""
from __future__ import annotations

import gradio as gr

from explorer import scorecard, service
from explorer.catalog import SHIPPED
from explorer.images import InputError
from ui.common import EV, Page, bundle, config_title, guarded

VERDICT_DEFAULT = "generation (prior)"


def card_of(dataset: str) -> dict:
    b = bundle(dataset)
    if not b.scorecard:
        raise LookupError(no_scorecard(b))
    return b.scorecard


def no_scorecard(b) -> str:
    """Why a dataset has no scorecard, and what to run (the scorecard measures the shipped datasets: its OOD tasks
    pair MNIST with Fashion-MNIST)."""
    if b.key in SHIPPED:
        return (f"{b.title}: no scorecard.json. Compute it with "
                f"`python -m training.scorecard --dataset {b.key} --data-root DATA`.")
    return (f"{b.title} has no scorecard.json: the scorecard (and the Anomaly tab's test and OOD scores, read from it) "
            "is computed for the shipped MNIST and Fashion-MNIST only, whose OOD tasks use each other. The other "
            "tabs and Diagnostics work on this dataset.")


@guarded
def scorecard_tab(dataset: str):
    """Everything the Scorecard tab shows for a dataset (its text says how to compute a missing scorecard)."""
    try:
        card = card_of(dataset)
    except LookupError as e:
        return str(e), gr.Dropdown(choices=[], value=None), None, None, None
    verdicts = list(card["verdicts"])
    verdict = VERDICT_DEFAULT if VERDICT_DEFAULT in verdicts else verdicts[0]
    return (scorecard.verdict_markdown(card), gr.Dropdown(choices=verdicts, value=verdict),
            scorecard.task_frame(card, verdict), scorecard.roc_frame(card, "other_dataset"),
            scorecard.imputation_frame(card))


@guarded
def scorecard_task(dataset: str, verdict: str):
    card = card_of(dataset)
    if verdict not in card["verdicts"]:
        raise InputError(f"task must be one of {list(card['verdicts'])}, got {verdict!r}.")
    return scorecard.task_frame(card, verdict)


@guarded
def scorecard_roc(dataset: str, pair: str):
    try:
        return scorecard.roc_frame(card_of(dataset), pair)
    except ValueError as e:
        raise InputError(str(e)) from None


GOAL_DEFAULT = "generate"


@guarded
def scorecard_decision(dataset: str, goal: str | None):
    """The answer to "What do you want to do?" for a dataset: the recommended model, the runner-up, the figure."""
    b = bundle(dataset)
    if not b.scorecard:
        return "", ""  # the table's place says why (scorecard_tab)
    if goal not in scorecard.GOALS:
        raise InputError(f"goal must be one of {list(scorecard.GOALS)}, got {goal!r}.")
    titles = {n: config_title(b.root / n) for n in b.scorecard["models"]}
    text = scorecard.decision(b.scorecard, goal, {n: t for n, t in titles.items() if t})
    names = scorecard.contenders(b.scorecard, goal)
    if names is None:
        return text, ""
    return text, service.decision_picture(bundle(dataset, names), goal, names, b.scorecard)


@guarded
def latent_size(dataset: str):
    """The Scorecard tab's "Latent size" section: the sweep's table, its figures and the default figure's plot."""
    sweep = bundle(dataset).sweep
    if not sweep:
        return (f"No latent-size sweep for this dataset: compute it with `python -m training.sweep --dataset "
                f"{dataset} --data-root DATA` (sweep.json).", gr.Dropdown(choices=[], value=None), None)
    figure = scorecard.SWEEP_DEFAULT if scorecard.SWEEP_DEFAULT in sweep["figures"] else next(iter(sweep["figures"]))
    return (scorecard.sweep_markdown(sweep), gr.Dropdown(choices=scorecard.sweep_figures(sweep), value=figure),
            scorecard.sweep_frame(sweep, figure))


@guarded
def latent_size_plot(dataset: str, figure: str):
    sweep = bundle(dataset).sweep
    if not sweep:
        raise InputError(f"{dataset} has no latent-size sweep (sweep.json).")
    try:
        return scorecard.sweep_frame(sweep, figure)
    except ValueError as e:
        raise InputError(str(e)) from None


@guarded
def few_labels(dataset: str) -> str:
    """The Scorecard tab's "Few labels" section: every method's test error with 100 labels (semisupervised.json)."""
    result = bundle(dataset).semisupervised
    if not result:
        return (f"No few-label comparison for this dataset: compute it with `python -m training.semisupervised "
                f"--dataset {dataset} --data-root DATA` (semisupervised.json).")
    return scorecard.semisupervised_markdown(result)


def build(page: Page) -> gr.Tab:
    with gr.Tab("Scorecard", elem_id="tab-scorecard") as tab:
        gr.Markdown("When to use which: every model of the dataset measured on the tasks where an AE and a VAE "
                    "differ (the protocol: docs/scorecard.md).")
        sc_goal = gr.Radio(list(scorecard.GOALS), value=GOAL_DEFAULT, label="What do you want to do?",
                           elem_id="sc-goal")
        sc_answer = gr.Markdown(elem_id="sc-answer")
        sc_picture = gr.HTML(elem_id="sc-picture")
        with gr.Accordion("Every task, every model: the full table and its plots", open=False, elem_id="sc-full"):
            sc_text = gr.Markdown(elem_id="sc-text")
            # one plot at a time: each draws when its tab is first shown, so the tab opens on one plot, not three
            with gr.Tabs(elem_id="sc-views"):
                with gr.Tab("Per task", elem_id="sc-view-task"):
                    sc_task = gr.Dropdown(label="Task", choices=[], elem_id="sc-task", allow_custom_value=True)
                    sc_task_plot = gr.BarPlot(x="model", y="value", color="latent", label="The task's figure per model",
                                              elem_id="sc-task-plot")
                with gr.Tab("ROC curves", elem_id="sc-view-roc"):
                    sc_pair = gr.Dropdown([(v, k) for k, v in scorecard.OOD_CHOICES.items()], value="other_dataset",
                                          label="OOD set (ROC curves; AUROC in the legend)", elem_id="sc-pair")
                    sc_roc = gr.LinePlot(x="fpr", y="tpr", color="curve", label="ROC curves",
                                         x_title="false-positive rate", y_title="true-positive rate", elem_id="sc-roc")
                with gr.Tab("Imputation per mask", elem_id="sc-view-imp"):
                    sc_imp = gr.ScatterPlot(x="mask", y="mse", color="fill",
                                            label="Imputation: MSE on the missing pixels per mask",
                                            y_title="MSE per missing pixel", elem_id="sc-imp")
        with gr.Accordion("Few labels: semi-supervised (M2, M1+M2) against classifiers on 100 labels", open=False,
                          elem_id="sc-semisup"):
            ss_text = gr.Markdown(elem_id="ss-text")
        with gr.Accordion("Latent size: how to choose d (a measured sweep)", open=False, elem_id="sc-size"):
            sz_text = gr.Markdown(elem_id="sz-text")
            sz_figure = gr.Dropdown(label="Figure", choices=[], elem_id="sz-figure", allow_custom_value=True)
            sz_plot = gr.LinePlot(x="log2_d", y="value", color="model", label="The figure against the latent size",
                                  x_title="log₂ d (1 = 2 dims, 4 = 16, 6 = 64)", y_title="value",
                                  tooltip=["d", "value", "model"], elem_id="sz-plot")
    page.tab_event("scorecard", [page.dataset.change], few_labels, [page.dataset], [ss_text],
                   api_name="semi_supervised")
    page.tab_event("scorecard", [page.dataset.change], latent_size, [page.dataset],
                   [sz_text, sz_figure, sz_plot], api_name="latent_size")
    sz_figure.input(latent_size_plot, [page.dataset, sz_figure], sz_plot, api_name="latent_size_plot", **EV)
    page.tab_event("scorecard", [page.dataset.change], scorecard_tab, [page.dataset],
                   [sc_text, sc_task, sc_task_plot, sc_roc, sc_imp], api_name="scorecard")
    page.tab_event("scorecard", [page.dataset.change, sc_goal.input], scorecard_decision,
                   [page.dataset, sc_goal], [sc_answer, sc_picture], api_name="scorecard_decision")
    sc_task.input(scorecard_task, [page.dataset, sc_task], sc_task_plot, api_name="scorecard_task", **EV)
    sc_pair.input(scorecard_roc, [page.dataset, sc_pair], sc_roc, api_name="scorecard_roc", **EV)
    return tab
