"""Latent sliders: one slider per latent dimension of each model. The page decodes moves itself
(static/live_decoder.js, TensorFlow.js); the server decodes on release, for the images under the canvases and the API."""
from __future__ import annotations

import time

import gradio as gr
import numpy as np

from explorer import service
from explorer.images import InputError
from ui.common import EV, N_DIMS, STATIC, Page, bundle, file_url, gpu, guarded, names_of

# The live decoder; it loads TensorFlow.js (static/vendor/tfjs) itself, when the sliders first open.
HEAD = f'<script src="{file_url(STATIC / "live_decoder.js")}"></script>'
LIVE_HTML = """<div class="live-row">
  <figure><figcaption>Model A decode (live, in your browser)</figcaption><canvas id="live-a" width="28" height="28"></canvas></figure>
  <figure><figcaption>Model B decode (live, in your browser)</figcaption><canvas id="live-b" width="28" height="28"></canvas></figure>
</div>"""


LIVE_JS = "() => { if (window.latentLive) window.latentLive.sync(); }"
LIVE_OPEN = "() => { if (window.latentLive) window.latentLive.open(); }"  # fetches the decoders on first opening


def _slider_updates(dataset: str, values: dict[str, np.ndarray] | None, names=None) -> list:
    """gr.Slider updates (range, label, value) for Model A's then Model B's sliders."""
    b = bundle(dataset, names or ())
    out = []
    try:
        views = service.pair(b, names)
    except LookupError:  # the atlas or the models are missing: the sliders hide (the status says why)
        views = [None, None]
    for slot, view in zip("ab", views):
        for k in range(N_DIMS):
            if view is None or k >= view.latent_dim:
                out.append(gr.Slider(visible=False, value=0.0))
                continue
            d = view.order[k]
            lo, hi = (float(x) for x in view.ranges[d])
            out.append(gr.Slider(minimum=lo, maximum=hi, step=0.01, visible=True,
                                 value=round(float(values[slot][k]), 2) if values else 0.0,
                                 label=service.slider_labels(view)[k]))
    return out


def _full(view, shown: list[float]) -> list[float]:
    """The slider values of a model with more dimensions than sliders: the rest stay at the origin."""
    return [*shown, *[0.0] * (view.latent_dim - len(shown))]


@guarded
@gpu
def sliders_from_input(dataset: str, image, start: str, model_a=None, model_b=None, cls=None):
    b = bundle(dataset, (model_a, model_b))
    if image is None and start == "encoded input":
        return gr.skip()
    names = names_of(model_a, model_b)
    values = service.slider_start(b, image if start == "encoded input" else None, names, cls)
    a_img, b_img = service.decode_sliders(b, values["a"], values["b"], names, cls)
    return [*_slider_updates(dataset, values, names), a_img, b_img]


@guarded
@gpu
def slide(dataset: str, *values):
    """Called with raw payloads (preprocess=False): 2 x N_DIMS slider values, then Model A, Model B and the class;
    validated here, per model."""
    if len(values) not in (2 * N_DIMS, 2 * N_DIMS + 3):
        raise InputError(f"expected {2 * N_DIMS} slider values (then Model A, Model B, class), got {len(values)}.")
    names = names_of(*values[2 * N_DIMS: 2 * N_DIMS + 2]) if len(values) > 2 * N_DIMS else service.PAIR
    cls = values[-1] if len(values) > 2 * N_DIMS else None
    b = bundle(dataset, names)
    views = service.pair(b, names)
    n_a, n_b = (min(v.latent_dim, N_DIMS) for v in views)
    try:
        a = [float(v) for v in values[:n_a]]
        b_ = [float(v) for v in values[N_DIMS: N_DIMS + n_b]]
    except (TypeError, ValueError):
        raise InputError("slider values must be numbers.") from None
    return service.decode_sliders(b, _full(views[0], a), _full(views[1], b_), names, cls)


def noop(dataset: str, *values) -> str:
    """Does nothing: the baseline round trip for the benchmarks. Answers a new token each time, so that a
    browser sees the answer land (bench/browser_latency.py clicks the hidden button)."""
    return str(time.monotonic_ns())


def build(page: Page) -> gr.Tab:
    with gr.Tab("Latent sliders", elem_id="tab-sliders") as tab:
        with gr.Row():
            start = gr.Radio(["encoded input", "origin"], value="encoded input", label="Start from")
            reset_btn = gr.Button("Reset sliders", elem_id="reset-btn")
        gr.Markdown("Ranges: 0.5%..99.5% quantiles of each model's atlas codes. VAE dimensions are ordered by "
                    "their KL (nats: KL(q(z_d|x) ‖ p(z_d)) of the dimension's marginals, the model's own prior, "
                    "from metrics.json); *collapsed* marks < 0.01 nats (unused by the model). "
                    f"A model shows up to {N_DIMS} sliders, one per dimension.")
        gr.HTML(LIVE_HTML, elem_id="live")  # shown once the browser can decode (static/live_decoder.js)
        live_spec = gr.JSON(visible="hidden")
        with gr.Row(elem_id="sl-images"):  # the server's decodes: shown where the browser cannot decode
            sl_a_img = gr.Image(label="Model A decode", format="png", elem_id="sl-a", elem_classes="pixelated",
                                height=180)
            sl_b_img = gr.Image(label="Model B decode", format="png", elem_id="sl-b", elem_classes="pixelated",
                                height=180)
        with gr.Row():
            with gr.Column():
                a_sliders = [gr.Slider(-1, 1, value=0, label=f"Model A z{i}", elem_id=f"a-s{i}")
                             for i in range(N_DIMS)]
            with gr.Column():
                b_sliders = [gr.Slider(-1, 1, value=0, label=f"Model B z{i}", elem_id=f"b-s{i}")
                             for i in range(N_DIMS)]
    page.shared.update(live_spec=live_spec, sliders=a_sliders + b_sliders)  # live_spec: set with the pair (set_pair)
    dataset, slider_list = page.dataset, a_sliders + b_sliders
    page.tab_event("sliders", [page.current.change, reset_btn.click, start.change, *page.pair_changed],
                   sliders_from_input, [dataset, page.current, start, *page.pair_in], [*slider_list, sl_a_img, sl_b_img],
                   api_name="sliders_from_input").then(None, js=LIVE_JS)
    # Slider moves are decoded in the browser as they happen (no server round trip); the server decodes on
    # release. Raw payloads: the ranges depend on the models, so slide() validates them itself.
    gr.on([s.release for s in slider_list], slide, [dataset, *slider_list, *page.pair_in], [sl_a_img, sl_b_img],
          api_name="slide", preprocess=False, trigger_mode="always_last", show_progress="hidden", **EV)
    live_spec.change(None, live_spec, None, js="(spec) => { if (window.latentLive) window.latentLive.load(spec); }")
    tab.select(None, js=LIVE_OPEN)  # the decoders come with the tab, at once; it redraws once the sliders are set
    return tab


def noop_probe(page: Page) -> None:
    """A hidden button whose event does nothing with the sliders' payload: the floor the benches measure against
    (outside the tabs, so it is in the page whichever tab is open)."""
    noop_btn = gr.Button(visible="hidden", elem_id="noop-btn")
    noop_out = gr.Textbox(visible="hidden", elem_id="noop-out")
    noop_btn.click(noop, [page.dataset, *page.shared["sliders"]], noop_out, api_name="noop", preprocess=False,
                   show_progress="hidden", **EV)


def opened(event) -> None:
    """After the tab's own rerun on opening (Page.opens): redraw the live canvases from the new slider values."""
    event.then(None, js=LIVE_JS)
