"""Latency in a real browser: Debian's Chromium (Playwright) against the launched app.

    python bench/browser_latency.py [--moves 40] [--drag-seconds 3] [--pages 2] [--only pages|sliders|map]

Prints, side by side in one run:
- navigation -> first pictures: from the start of the navigation (performance.now() = 0) until the frame in which the
  gallery's and the current input's images are first decoded (watched from the document's creation), on a fresh page (median over --pages pages; goal <= 2 s), next to the same
  for bench/floor_page.py, a Gradio page that holds nothing but that gallery and image (the floor of any page);
- tab click -> its content drawn: for every tab, on a fresh page, clicked as soon as its first pictures show (as a
  person would; --settled: once the page's load events are answered), from the click until the tab's own pictures
  are decoded and its plots drawn (median over --pages pages; goal <= 1 s);
- slider input -> new pixels shown: from the range element's `input` event to the first animation frame
  after the VAE decode's new image has been decoded by the browser (median and p90 over --moves moves);
- updates per second while a slider is dragged with the mouse (distinct new images shown per second);
- the browser no-op floor: a click on the app's hidden no-op button until its answer is in the page: what
  any update through the server costs in this browser, before any work (the slider path before the page
  decoded moves itself was measured against it: 202 ms median vs 175 ms for the floor).
- the interactive latent map (WebGL, software-rendered here): cursor move -> hover thumbnail shown and cursor move
  -> decode under the cursor shown (median over --moves points; goals <= 50 ms), and frames drawn per second while
  the map is panned with the mouse, over the atlas (10,000 points) and 1,000,000 synthetic points (goal >= 30
  frames/s at 10,000).
All times are taken inside the page (performance.now()), so Playwright's own round trips do not count.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import RunningApp  # noqa: E402  (same launcher as the tests)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# Records the time of every `input` event on a slider, and every new VAE decode shown: the frame in which
# the live canvas's pixels changed (the page decodes), or else the frame after the server's new <img> was
# decoded by the browser.
INSTRUMENT = """([slider, imgBox, canvas]) => {
  const W = window.__lat = {inputs: [], shown: [], live: document.body.classList.contains('live-decoding')};
  document.addEventListener('input', e => {
    if (e.target.closest(slider)) W.inputs.push(performance.now());
  }, true);
  let lastSig = null, lastSrc = null;
  const signature = c => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let h = c.width * 7919 + c.height;
    for (let i = 0; i < d.length; i += 4) h = (Math.imul(h, 31) + d[i]) | 0;
    return h;
  };
  const tick = () => {
    if (W.live) {
      const c = document.querySelector(canvas);
      const s = c && signature(c);
      if (lastSig !== null && s !== lastSig) W.shown.push(performance.now());
      lastSig = s;
    } else {
      const img = document.querySelector(imgBox + ' img');
      const s = img && img.getAttribute('src');
      if (s && s !== lastSrc) {
        if (lastSrc !== null) img.decode().then(() => requestAnimationFrame(() => W.shown.push(performance.now())), () => {});
        lastSrc = s;
      }
    }
    requestAnimationFrame(tick);
  };
  tick();
  return W.live;
}"""

# One slider move as the browser makes it: a new value, then an `input` event on the range element.
MOVE = """([slider, frac]) => {
  const r = document.querySelector(slider + ' input[type=range]');
  const lo = parseFloat(r.min), hi = parseFloat(r.max), step = parseFloat(r.step) || 0.01;
  r.value = String(Math.round((lo + (hi - lo) * frac) / step) * step);
  const t = performance.now();
  r.dispatchEvent(new Event('input', {bubbles: true}));
  return t;
}"""

# The no-op floor: click the (CSS-hidden) no-op button; resolve when its answer lands in the page.
NOOP = """() => new Promise(resolve => {
  const out = document.querySelector('#noop-out textarea, #noop-out input');
  const before = out.value;
  const t = performance.now();
  const poll = () => (out.value !== before ? requestAnimationFrame(() => resolve(performance.now() - t))
                                           : requestAnimationFrame(poll));
  document.querySelector('#noop-btn').click();
  poll();
})"""


# Resolves with performance.now() (ms since the navigation started) once every selector shows drawn content: a
# decoded <img>, a drawn plot (a canvas or svg of non-zero size), or text. Polled every animation frame; after LIMIT_MS it
# resolves with the selectors still not drawn instead (a bench that waits forever tells nothing).
LIMIT_MS = 30_000
DRAWN = """(selectors) => new Promise(resolve => {
  const drawn = sel => sel.split('||').some(one);  // "a||b": either one drawn
  const one = sel => {
    if (sel === 'map') return !!(window.latentMap && latentMap.loads > 0 && latentMap.draws.a > 0 && latentMap.draws.b > 0);
    if (sel === 'live') return !!(window.latentLive && window.latentLive.frames > 0);  // the page's own decode drawn
    const el = document.querySelector(sel);
    if (!el || el.offsetParent === null) return false;
    const img = el.querySelector('img');
    if (img) return img.complete && img.naturalWidth > 0;
    const plot = el.matches('canvas') ? el : el.querySelector('canvas, svg.marks');
    if (plot) { const r = plot.getBoundingClientRect(); return r.width > 0 && r.height > 0; }
    return el.innerText.trim().length > 40;  // a text answer (the Scorecard's)
  };
  const t0 = performance.now();
  const poll = () => {
    if (selectors.every(drawn)) resolve(performance.now());
    else if (performance.now() - t0 > %d) resolve(selectors.filter(s => !drawn(s)));
    else requestAnimationFrame(poll);
  };
  poll();
})""" % LIMIT_MS
FIRST_PICTURES = ["#gallery", "#current"]
# Each tab's own content: its pictures and plots (the first thing a person looks at there).
TAB_CONTENT = {
    "Reconstruct": ["#rec-a", "#rec-b"], "Sample": ["#smp-a", "#smp-b"], "Interpolate": ["#int-a", "#int-b"],
    "Latent sliders": ["#sl-a||live", "#sl-b||live"], "Latent map": ["map||#map-a", "map||#map-b"], "Impute": ["#imp-ae", "#imp-vae"],
    "Anomaly": ["#an-ae-plot", "#an-vae-plot"], "Scorecard": ["#sc-answer"],
    "Diagnostics": ["#dg-curves", "#dg-kl"],
}
CLICK_TAB = """([name, selectors]) => new Promise(resolve => {
  const tab = [...document.querySelectorAll('button[role=tab]')].find(b => b.innerText.trim() === name);
  const t = performance.now();
  tab.click();
  (%s)(selectors).then(done => resolve(typeof done === "number" ? done - t : done));
})""" % DRAWN


class Traffic:
    """The page's requests to the app's queue in flight (joins and event streams; the page-long heartbeat stream
    excluded, so "networkidle" never comes): a page has settled when none has been in flight for a while."""

    def __init__(self, page):
        self.open, self.last = set(), time.perf_counter()
        page.on("request", self._start)
        page.on("requestfinished", self._end)
        page.on("requestfailed", self._end)

    def _start(self, request) -> None:
        if "/queue/" in request.url:
            self.open.add(request)
            self.last = time.perf_counter()

    def _end(self, request) -> None:
        if request in self.open:
            self.open.discard(request)
            self.last = time.perf_counter()

    def settle(self, page, quiet_s: float = 1.5, limit_s: float = 60.0) -> bool:
        """Wait until no queue request has been in flight for quiet_s; False if that took over limit_s."""
        t0 = time.perf_counter()
        while self.open or time.perf_counter() - self.last < quiet_s:
            if time.perf_counter() - t0 > limit_s:
                return False
            page.wait_for_timeout(100)  # lets Playwright deliver the page's events
        return True


def not_drawn(result, what: str) -> bool:
    if isinstance(result, list):
        print(f"  {what}: not drawn within {LIMIT_MS / 1000:.0f} s: {', '.join(result)}", flush=True)
        return True
    return False


# Watches from the document's creation: the first animation frame in which the first pictures are drawn. (A watch
# started by page.evaluate once Playwright sees the page would begin late, and time a picture already drawn by then as
# drawn when the watch began: 0.15-0.35 s late here.)
WATCH_FIRST_PICTURES = "window.__firstPictures = (%s)(%s);" % (DRAWN, json.dumps(FIRST_PICTURES))


def first_pictures(page, url: str):
    """Navigate a fresh page to url: ms from the navigation's start to the frame that first shows the first pictures
    (or the selectors still not drawn after LIMIT_MS)."""
    page.add_init_script(WATCH_FIRST_PICTURES)
    page.goto(url, wait_until="commit")
    return page.evaluate("() => window.__firstPictures")


def page_latency(browser, url: str, pages: int, settled: bool) -> tuple[list[float], dict[str, list[float]]]:
    """(navigation -> first pictures, ms, per page; {tab: click -> content drawn, ms, per page}), each on fresh pages.

    A tab is clicked as soon as the first pictures are shown, as a person would (settled: once the page's load events
    are all answered instead)."""
    first, tabs = [], {name: [] for name in TAB_CONTENT}
    for k in range(pages):
        for name in [None, *TAB_CONTENT]:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            traffic = Traffic(page)
            shown = first_pictures(page, url)
            if not not_drawn(shown, f"page {k + 1}: first pictures"):
                if name is None:
                    first.append(shown)
                    print(f"  page {k + 1}: first pictures at {shown / 1000:.2f} s", flush=True)
                else:
                    if settled and not traffic.settle(page):
                        print(f"  page {k + 1}: still busy after 60 s; measuring {name!r} anyway", flush=True)
                    ms = page.evaluate(CLICK_TAB, [name, TAB_CONTENT[name]])
                    if not not_drawn(ms, f"page {k + 1}: tab {name!r}"):
                        tabs[name].append(ms)
                        print(f"  page {k + 1}: tab {name!r} drawn {ms / 1000:.2f} s after the click", flush=True)
            page.close()
    return first, {name: ms for name, ms in tabs.items() if ms}


def floor_page(browser, pages: int) -> list[float]:
    """navigation -> first pictures, ms, for bench/floor_page.py (fresh pages)."""
    floor = RunningApp(name="floor-page", argv=("bench/floor_page.py",))
    try:
        out = []
        for _ in range(pages + 1):  # the first page warms the server up
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            out.append(first_pictures(page, floor.url))
            page.close()
        return [ms for ms in out[1:] if isinstance(ms, (int, float))]
    finally:
        floor.stop()


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def open_sliders(page) -> None:
    page.get_by_role("tab", name="Latent sliders", exact=True).click()
    time.sleep(3.0)  # the browser's decoders load after the page (a few MB)
    page.wait_for_function("() => (window.latentLive && window.latentLive.frames > 0) || "
                           "(() => { const i = document.querySelector('#sl-b img'); "
                           "return i && i.complete && i.naturalWidth > 0; })()")


def slider_move(page, slider: str, i: int) -> float:
    """The i-th move (a value no earlier move used); ms from its input event to the new pixels shown."""
    frac = 0.05 + 0.9 * ((i * 0.618034) % 1.0)  # spread over the range, never the same value twice
    shown = page.evaluate("() => window.__lat.shown.length")
    t0 = page.evaluate(MOVE, [slider, frac])
    page.wait_for_function("n => window.__lat.shown.length > n", arg=shown, timeout=10_000)
    time.sleep(0.05)
    return page.evaluate("() => window.__lat.shown[window.__lat.shown.length - 1]") - t0


# A drag as Chromium delivers it: one `input` event per display frame (~60 Hz; Chromium aligns mouse
# events to frames), the value sweeping the range once.
DRAG = """([slider, ms]) => new Promise(resolve => {
  const r = document.querySelector(slider + ' input[type=range]');
  const lo = parseFloat(r.min), hi = parseFloat(r.max), step = parseFloat(r.step) || 0.01;
  const t0 = performance.now();
  const id = setInterval(() => {
    const f = (performance.now() - t0) / ms;
    if (f >= 1) { clearInterval(id); resolve([t0, performance.now()]); return; }
    r.value = String(Math.round((lo + (hi - lo) * (0.02 + 0.96 * f)) / step) * step);
    r.dispatchEvent(new Event('input', {bubbles: true}));
  }, 1000 / 60);
})"""


def drag(page, slider: str, seconds: float) -> tuple[float, float, int]:
    """Drag a slider across its range for `seconds`. Returns (new images shown per second, input events
    per second, images shown)."""
    page.evaluate(INSTRUMENT, [slider, "#sl-b", "#live-b"])
    time.sleep(0.3)
    t0, t1 = page.evaluate(DRAG, [slider, seconds * 1000])
    time.sleep(1.0)
    w = page.evaluate("() => window.__lat")
    dur = (t1 - t0) / 1000
    shown = [t for t in w["shown"] if t0 <= t <= t1]
    inputs = [t for t in w["inputs"] if t0 <= t <= t1]
    return len(shown) / dur, len(inputs) / dur, len(shown)


def map_latency(page, moves: int, pan_seconds: float) -> dict:
    """The interactive map: hover and decode-under-cursor latencies, and frames per second while panning."""
    page.get_by_role("tab", name="Latent map", exact=True).click()
    page.wait_for_function("() => window.latentMap && latentMap.live && latentMap.loads > 0", timeout=60_000)
    page.locator('.imap-pane[data-slot="a"] .imap-canvas').scroll_into_view_if_needed()
    time.sleep(1.0)
    where = """(i) => { const P = latentMap.plots.a, r = P.canvas.getBoundingClientRect(), s = P.plot.getScreenPosition(i);
                        return [r.left + s[0], r.top + s[1]]; }"""
    n = page.evaluate("() => latentMap.plots.a.data.n")
    for k, i in enumerate(np.linspace(0, n - 1, moves + 5).astype(int)):
        if k == 5:  # after a warm-up (the decoder's first run, the sprite's first draw)
            page.evaluate("() => { latentMap.hoverMs.length = 0; latentMap.decodeMs.length = 0; }")
        page.mouse.move(*page.evaluate(where, int(i)))
        page.wait_for_function("() => latentMap.hovered.a !== null", timeout=5_000)
        time.sleep(0.15)
    out = page.evaluate("() => ({hover: latentMap.hoverMs.slice(), decode: latentMap.decodeMs.slice()})")

    # A drag as a mouse makes it: a press on the map, then one move per frame (a real mouse reports at >= 60 Hz;
    # Playwright's own moves arrive at ~30 a second here, which would cap the figure), in the page itself.
    pan_js = """(seconds) => new Promise(resolve => {
      const P = latentMap.plots.a, r = P.canvas.getBoundingClientRect(), cx = r.left + r.width / 2, cy = r.top + r.height / 2;
      const ev = (type, x, y, target) => target.dispatchEvent(new MouseEvent(type, {clientX: x, clientY: y, bubbles: true,
                                                                                    buttons: type === 'mouseup' ? 0 : 1}));
      ev('mousedown', cx, cy, P.canvas);
      const t0 = performance.now(), d0 = latentMap.draws.a;
      let k = 0;
      const step = () => {
        if (performance.now() - t0 > seconds * 1000) {
          const fps = (latentMap.draws.a - d0) / ((performance.now() - t0) / 1000);
          ev('mouseup', cx, cy, window);
          P.plot.reset();
          return resolve([fps, k / seconds]);
        }
        k++;
        ev('mousemove', cx + 60 * Math.sin(k / 15), cy + 60 * Math.cos(k / 15), window);
        requestAnimationFrame(step);
      };
      requestAnimationFrame(step);
    })"""

    def pan() -> tuple[float, float]:
        return tuple(page.evaluate(pan_js, pan_seconds))

    # One entry per map drawn: (label, points, frames/s, mouse moves/s, seconds to first draw or None).
    out["pans"] = [("the atlas", n, *pan(), None)]
    for size in (10_000, 1_000_000):
        t = time.perf_counter()
        page.evaluate("(n) => latentMap.benchPoints(n)", size)
        drawn_s = time.perf_counter() - t
        time.sleep(0.5)
        out["pans"].append(("synthetic", size, *pan(), drawn_s))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--moves", type=int, default=40, help="slider moves and no-op clicks (>= 30)")
    p.add_argument("--drag-seconds", type=float, default=3.0)
    p.add_argument("--pages", type=int, default=2, help="fresh pages per page-latency figure (median)")
    p.add_argument("--only", choices=("pages", "sliders", "map"), default=None, help="measure only one part")
    p.add_argument("--pan-seconds", type=float, default=3.0, help="seconds of panning the map per point count")
    p.add_argument("--settled", action="store_true",
                   help="click a tab once the page's load events are answered (default: once its first pictures show)")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    app = RunningApp(name="browser-bench")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(app.url)
            open_sliders(page)
            live = page.evaluate(INSTRUMENT, ["#b-s0", "#sl-b", "#live-b"])
            for i in range(10):  # warm-up (also of the server: every model loaded, every first call made)
                slider_move(page, "#b-s0", 1000 + i)
                page.evaluate(NOOP)
            moves, noops = [], []
            for i in range(args.moves if args.only not in ("pages", "map") else 0):  # interleaved: both see the same machine
                moves.append(slider_move(page, "#b-s0", i))
                noops.append(page.evaluate(NOOP))
            decode_ms = page.evaluate("() => window.latentLive.decodeMs.slice()") if live and moves else []
            rate, input_rate, n_shown = drag(page, "#b-s2", args.drag_seconds) if moves else (0, 0, 0)
            first, tabs = (page_latency(browser, app.url, args.pages, args.settled) if args.only in (None, "pages")
                           else ([], {}))
            imap = map_latency(page, args.moves, args.pan_seconds) if args.only in (None, "map") else None
            page_floor = floor_page(browser, args.pages) if first else []
            noops += [page.evaluate(NOOP) for _ in range(10)]  # the floor again, after the page loads
            browser.close()
    finally:
        app.stop()
    floor = statistics.median(noops)
    print(f"browser no-op floor, a Gradio event that does nothing (click -> its answer in the page): median "
          f"{floor:.1f} ms, p90 {pct(noops, 90):.1f} ms over {len(noops)} clicks")
    if first:
        print(f"navigation -> first pictures (gallery, current input): median {statistics.median(first) / 1000:.2f} s "
              f"over {len(first)} fresh pages (goal <= 2 s); {statistics.median(first) / floor:.0f}x the no-op floor")
        if page_floor:
            print(f"  the same for a page of only that gallery and image (bench/floor_page.py): median "
                  f"{statistics.median(page_floor) / 1000:.2f} s; the app / that page = "
                  f"{statistics.median(first) / statistics.median(page_floor):.2f}")
        for name, ms in tabs.items():
            print(f"  tab {name!r}: click{' (page settled)' if args.settled else ' (at the first pictures)'} -> content drawn, median {statistics.median(ms) / 1000:.2f} s "
                  f"(max {max(ms) / 1000:.2f} s; goal <= 1 s): {statistics.median(ms) / floor:.1f}x the floor")
    if imap:
        print(f"latent map, cursor move -> hover thumbnail shown: median {statistics.median(imap['hover']):.1f} ms, "
              f"p90 {pct(imap['hover'], 90):.1f} ms over {len(imap['hover'])} points (goal: median <= 50 ms)")
        print(f"latent map, cursor move -> decode under the cursor shown: median {statistics.median(imap['decode']):.1f} "
              f"ms, p90 {pct(imap['decode'], 90):.1f} ms over {len(imap['decode'])} moves (goal: median <= 50 ms)")
        for label, size, fps, move_rate, drawn_s in imap["pans"]:
            drawn = f"; first drawn {drawn_s:.2f} s after its points were given" if drawn_s is not None else ""
            print(f"latent map, panning {size:,} points ({label}): {fps:.1f} frames/s from {move_rate:.0f} mouse "
                  f"moves/s{' (goal >= 30 at 10,000)' if size == 10_000 else ''}{drawn}")
    if moves:
        shown_by = "the page's live canvas (decoded in the browser)" if live else "the server's image"
        print(f"new pixels shown by {shown_by}")
        print(f"slider input -> new pixels shown: median {statistics.median(moves):.1f} ms, p90 {pct(moves, 90):.1f} ms "
              f"over {len(moves)} moves (goal: median <= 50 ms); slider / floor = {statistics.median(moves) / floor:.2f}")
        if decode_ms:
            print(f"  of which the page's decode of one model + drawing it: median {statistics.median(decode_ms):.1f} "
                  f"ms (the rest is waiting for the next animation frame, ~16.7 ms apart, and the frame itself)")
        print(f"drag for {args.drag_seconds:g} s: {rate:.1f} new images shown per second ({n_shown} in all) from "
              f"{input_rate:.0f} input events per second (goal: >= 20 updates per second)")


if __name__ == "__main__":
    main()
