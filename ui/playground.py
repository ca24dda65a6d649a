"""Playground: train two small models side by side, watch their latent spaces form, then compare them in the other
tabs, download them, or train them at full length with the printed command (explorer/playground.py: one process
a run, at most a few at once on the server, the others in line).

The live view is pulled, not pushed: Train's event sends the panels when a run's state changes (in line, training,
ended), and the page itself asks for newer panels (LIVE_JS, one request at a time). A pushed frame goes through
Gradio's event path, which on every message copies the state of every component the page has shown: on a page
with a few tabs open that cost more than the frames' own drawing, and a slow machine fell behind until clicks
timed out. Pulled, a slow page draws fewer frames and stays responsive.
"""
from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np

from explorer import liveplot
from explorer import playground as pg
from explorer.files import write_once
from ui import inputs
from ui.common import EXPORT_DIR, MODELS, Page, bundle, guarded, log, pair_choices

PLAYGROUND = pg.Playground()
MAX_WATCHERS = 32  # visitors streaming a view (or waiting in line) at once: each holds a worker thread
FRAME_S = 0.2  # how often Train's event checks the runs' states
POLL_MS = 80  # the page asks for newer panels this long after drawing the last ones (runs send <= 6 a second)
IDLE_POLL_MS = 120  # ... after an answer with none; 1 s while both runs wait in line
FIELDS = ("bottleneck", "latent_dim", "beta", "kl_warmup_steps", "free_bits", "prior", "family", "lr", "steps")
ZIP_FILES = ("config.json", "model.safetensors", "metrics.json", "README.md")
FIRST = next(iter(pg.PRESETS))
CSS = liveplot.CSS
# Run once, when the Playground's first view mounts: while a panel on the page is live (data-live, the job's token),
# ask for both runs' newer panels (server.playground_frames) and draw them; the next request waits for this one.
LIVE_JS = """
const live = (window.latentPlayground = window.latentPlayground || {frames: 0, polls: 0, ms: [], looping: false});
if (!live.looping) {
  live.looping = true;
  const tick = async () => {
    const runs = Array.from(document.querySelectorAll('.pg-run[data-live]'));
    let drew = false;
    if (runs.length && !document.hidden) {
      const keys = {};
      runs.forEach(r => { keys[r.dataset.slot] = r.dataset.key; });
      try {
        const t0 = performance.now();
        const got = await server.playground_frames({token: runs[0].dataset.live, keys: keys});
        live.polls += 1;
        live.ms = live.ms.slice(-49).concat([performance.now() - t0]);  // the last 50 answers' times
        for (const r of runs) {
          const panel = got && got[r.dataset.slot];
          if (panel && r.isConnected) { r.outerHTML = panel; live.frames += 1; drew = true; }
        }
      } catch (e) { /* the server is busy or restarting: the next tick asks again */ }
    }
    const training = runs.some(r => r.dataset.state !== 'waiting');
    setTimeout(() => requestAnimationFrame(tick), !runs.length ? 300 : !training ? 1000 : drew ? %d : %d);
  };
  tick();
}
""" % (POLL_MS, IDLE_POLL_MS)


def settings_values(s: pg.RunSettings) -> list:
    return [s.bottleneck, s.latent_dim, s.beta, s.kl_warmup_steps, s.free_bits, s.prior, s.family, s.lr, s.steps]


def preset(name: str):
    if name not in pg.PRESETS:
        raise gr.Error(f"preset must be one of {list(pg.PRESETS)}, got {name!r}.", print_exception=False)
    watch, a, b = pg.PRESETS[name]
    return [f"**What to watch:** {watch}", *settings_values(a), *settings_values(b)]


def parse(values) -> tuple[pg.RunSettings, pg.RunSettings]:
    n = len(FIELDS)
    return tuple(pg.RunSettings.parse(slot, dict(zip(FIELDS, values[i * n:(i + 1) * n]))) for i, slot in enumerate("AB"))


def session_of(request: gr.Request | None) -> str:
    return (request.session_hash if request is not None else None) or "local"


def status_line(job: pg.Job) -> str:
    pos = PLAYGROUND.position(job)
    if pos:
        return (f"**Waiting for a free trainer:** you are number {pos} in line ({PLAYGROUND.max_runs} runs train at "
                "once on this server). Stop leaves the line.")
    if job.state == "ended":
        return "**Both runs ended.** Compare them in the other tabs, download them, or train them at full length."
    return "**Training…** Stop ends both runs and keeps what they learnt so far."


def zip_file(run: pg.Run) -> str | None:
    """The run's checkpoint folder as a zip (config.json, model.safetensors, metrics.json, README.md)."""
    if not run.end or not run.end.get("out"):
        return None
    folder = Path(run.end["out"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in ZIP_FILES:
            if (folder / name).is_file():
                z.write(folder / name, f"playground-{run.slot.lower()}/{name}")
    return str(write_once(EXPORT_DIR / folder.name / f"playground-{run.slot.lower()}.zip", buf.getvalue()))


def verdict_markdown(run: pg.Run) -> str:
    end = run.end or {}
    if not end.get("verdict"):
        return f"**Run {run.slot} {liveplot.STATES.get(run.state, run.state)}**: {run.reason}." if run.ended else ""
    return (f"**Run {run.slot} {liveplot.STATES.get(run.state, run.state)}** ({run.reason}). {end['verdict']}\n\n"
            f"Train it at full length ({pg.FULL_EPOCHS} epochs over the whole dataset):\n\n```bash\n{end['command']}\n```")


def figures(job: pg.Job) -> dict:
    return {f"run_{r.slot.lower()}": {"state": r.state, "reason": r.reason, "settings": r.settings.__dict__,
                                      "first_frame_s": r.first_frame_s, "frames": r.frames,
                                      **((r.end or {}).get("metrics") or {})} for r in job.runs}


def view_key(run: pg.Run, position: int) -> str:
    return f"{run.frames}.{run.state}.{position}"


def view(job: pg.Job, run: pg.Run, position: int) -> str:
    """A run's panel; while the run has not ended it carries the job's token, for the page to ask for newer ones."""
    live = None if run.ended else (job.token, view_key(run, position))
    return liveplot.run_html(run, run.originals, position, live)


def playground_frames(ask) -> dict:
    """The page's live view asks {"token": the job's token, "keys": {"A": key, "B": key}} (the panels it shows);
    the answer has the panels that are newer ({} for an unknown token: only the page that started a job has it)."""
    if not isinstance(ask, dict) or not isinstance(ask.get("keys", {}), dict):
        return {}
    try:
        job = PLAYGROUND.by_token(str(ask.get("token", "")))
        if job is None:
            return {}
        keys = ask.get("keys") or {}
        pos = PLAYGROUND.position(job)
        return {r.slot: view(job, r, pos) for r in job.runs if keys.get(r.slot) != view_key(r, pos)}
    except Exception:  # never a traceback in the page
        log.exception("playground: a live-view request failed")
        return {}


def train(request: gr.Request, dataset: str, *values):
    """Start this visitor's two runs; send their panels whenever a run's state changes, until both end (the page
    asks for the frames in between itself: LIVE_JS)."""
    try:
        if dataset not in MODELS.bundles and not (MODELS.root / dataset).is_dir():
            raise pg.SettingsError(f"dataset must be one of {sorted(p.name for p in MODELS.root.iterdir() if p.is_dir())}, "
                                   f"got {dataset!r}.")
        settings = parse(values)
        job = PLAYGROUND.start(session_of(request), MODELS.root / dataset, settings)
    except (pg.SettingsError, FileNotFoundError) as e:
        raise gr.Error(str(e), print_exception=False) from None
    except Exception as e:  # never a traceback in the page
        log.exception("playground: could not start")
        raise gr.Error(f"The runs could not start ({type(e).__name__}).", print_exception=False) from None
    shown = None
    while True:
        ended = job.state == "ended"
        pos = PLAYGROUND.position(job)
        now = (pos, *(r.state for r in job.runs), *(r.frame is None for r in job.runs))
        if now != shown or ended:
            shown = now
            views = [view(job, r, pos) for r in job.runs]
            if ended:
                break
            yield status_line(job), *views, gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        time.sleep(FRAME_S)
    yield (status_line(job), *views, *(verdict_markdown(r) for r in job.runs), *(zip_file(r) for r in job.runs),
           figures(job))


@guarded
def stop(request: gr.Request = None) -> str:
    return ("**Stopped.** Each run keeps what it learnt until Stop." if PLAYGROUND.stop(session_of(request))
            else "Nothing is training.")


@guarded
def compare(dataset: str, request: gr.Request = None):
    """Add this visitor's two finished runs to this visitor's Model A/B pickers, and pick them."""
    job = PLAYGROUND.job(session_of(request))
    if job is None or job.state != "ended":
        raise gr.Error("Train two runs first (and let them end, or press Stop).", print_exception=False)
    b = bundle(dataset)
    if Path(job.folder).name != b.key:
        raise gr.Error(f"These runs were trained on {job.folder.name}: pick that dataset first.", print_exception=False)
    names = []
    for run in job.runs:
        if not run.end or not run.end.get("out"):
            raise gr.Error(f"Run {run.slot} saved no model ({run.reason}).", print_exception=False)
        name = f"playground-{Path(run.end['out']).name}"
        if name not in b.models:
            with np.load(job.format["path"], allow_pickle=False) as f:
                train_images = f["images"][job.format["val_images"]:]
            t0 = time.perf_counter()
            from explorer.bundle import add_model

            add_model(b, name, Path(run.end["out"]), train_images, MODELS.device)
            log.info("playground: %s added in %.1f s", name, time.perf_counter() - t0)
        names.append(name)
    job.compared = names
    choices = pair_choices(dataset) + [(b.models[n].title, n) for n in names]
    return (gr.Dropdown(choices=choices, value=names[0]), gr.Dropdown(choices=choices, value=names[1]),
            "**Run A and Run B are now Model A and Model B** in every other tab (for you only; they go when you "
            "close the page).")


def close_session(request: gr.Request) -> None:
    """The visitor closed the page: end its runs at once, drop its models from the pickers, delete its files."""
    session = session_of(request)
    job = PLAYGROUND.job(session)
    log.info("playground: session %s closed%s", session[:8], " (its runs end)" if job is not None else "")
    if job is not None:
        b = MODELS.bundles.get(Path(job.folder).name)
        for name in getattr(job, "compared", []):
            if b is not None:
                b.models.pop(name, None)
    PLAYGROUND.close(session)


def warm() -> None:
    """The Playground tab opened: start the spare trainers now (they import torch), so Train answers at once."""
    PLAYGROUND.warm()


def run_settings(slot: str, s: pg.RunSettings) -> list:
    with gr.Accordion(f"Run {slot} settings", open=False, elem_id=f"pg-settings-{slot.lower()}"):
        with gr.Row():
            bottleneck = gr.Radio([("AE", "ae"), ("VAE", "vae")], value=s.bottleneck, label="Model",
                                  elem_id=f"pg-{slot.lower()}-model")
            family = gr.Radio([("small MLP", "mlp"), ("conv", "conv")], value=s.family, label="Backbone")
        latent = gr.Slider(pg.MIN_LATENT, pg.MAX_LATENT, value=s.latent_dim, step=1, label="Latent size")
        with gr.Row():
            beta = gr.Dropdown([(f"{v:g}", float(v)) for v in pg.BETAS], value=float(s.beta), label="β (KL weight)",
                               allow_custom_value=True, info="0 to 50")
            prior = gr.Radio([("N(0, I)", "standard"), ("MoG", "mog")], value=s.prior, label="Prior")
        with gr.Row():
            warmup = gr.Number(s.kl_warmup_steps, label="KL warm-up steps", precision=0, minimum=0)
            free_bits = gr.Number(s.free_bits, label="Free bits (nats per dimension)", minimum=0)
        with gr.Row():
            lr = gr.Number(s.lr, label="Learning rate")
            steps = gr.Number(s.steps, label=f"Steps (at most {pg.MAX_STEPS})", precision=0, minimum=1)
    return [bottleneck, latent, beta, warmup, free_bits, prior, family, lr, steps]


def build(page: Page) -> gr.Tab:
    watch, a, b = pg.PRESETS[FIRST]
    with gr.Tab("Playground", elem_id="tab-playground") as tab:
        gr.Markdown("Train two small models on this dataset's training images and watch their latent spaces form. "
                    f"Each run has its own settings; runs stop at their step budget, at {pg.MAX_SECONDS} s, or when "
                    "you press Stop.", elem_id="pg-intro")
        with gr.Row():
            preset_pick = gr.Dropdown(list(pg.PRESETS), value=FIRST, label="Question", scale=3, elem_id="pg-preset")
            train_btn = gr.Button("Train", variant="primary", elem_id="pg-train", scale=1)
            stop_btn = gr.Button("Stop", variant="stop", elem_id="pg-stop", scale=1)
        watch_md = gr.Markdown(f"**What to watch:** {watch}", elem_id="pg-watch")
        status = gr.Markdown(elem_id="pg-status")
        with gr.Row(equal_height=False):
            with gr.Column():
                fields_a = run_settings("A", a)
                view_a = gr.HTML(elem_id="pg-view-a", js_on_load=LIVE_JS, server_functions=[playground_frames])
                verdict_a = gr.Markdown(elem_id="pg-verdict-a")
                file_a = gr.DownloadButton("Download Run A (checkpoint folder, zip)", elem_id="pg-file-a", size="sm")
            with gr.Column():
                fields_b = run_settings("B", b)
                view_b = gr.HTML(elem_id="pg-view-b", js_on_load=None)
                verdict_b = gr.Markdown(elem_id="pg-verdict-b")
                file_b = gr.DownloadButton("Download Run B (checkpoint folder, zip)", elem_id="pg-file-b", size="sm")
        compare_btn = gr.Button("Compare A and B in the other tabs", elem_id="pg-compare")
        with gr.Accordion("Figures of the last runs (JSON)", open=False):
            numbers = gr.JSON(elem_id="pg-figures")
    preset_pick.change(preset, preset_pick, [watch_md, *fields_a, *fields_b], api_name="playground_preset")
    train_btn.click(train, [page.dataset, *fields_a, *fields_b],
                          [status, view_a, view_b, verdict_a, verdict_b, file_a, file_b, numbers],
                          api_name="playground_train", concurrency_limit=MAX_WATCHERS, show_progress="hidden")
    stop_btn.click(stop, None, status, api_name="playground_stop", queue=False)
    compare_btn.click(compare, page.dataset, [page.model_a, page.model_b, status],
                      api_name="playground_compare").success(
        inputs.set_pair, [page.dataset, page.model_a, page.model_b],
        [page.shared["pair_text"], page.shared["live_spec"]], api_name="playground_pair", api_visibility="private")
    tab.select(warm, None, None, api_name="playground_warm", api_visibility="private", queue=False)
    page.demo.unload(close_session)
    return tab
