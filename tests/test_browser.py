"""Real-browser tests: Playwright (sync) driving Debian's Chromium against the launched app.

Every interaction waits for Gradio to finish by waiting for the output image to change, and every
check compares pixels of element screenshots. Screenshots of every tab go to tests/artifacts/.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# `make screenshots` sets this to docs/images: the README's pictures are these tests' screenshots
SCREENSHOTS = Path(os.environ.get("LATENT_EXPLORER_SCREENSHOTS", ARTIFACTS))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def page(app):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's Chromium is missing: `make chromium` (apt-get install chromium) installs it.")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(TIMEOUT_MS)
        pg.goto(app.url)
        wait_src(pg, "#current")
        wait_src(pg, "#rec-b")
        yield pg
        # let the page's last events finish first: closing mid-upload leaves a ClientDisconnect traceback in the
        # shared app's log, which later tests (tests/test_serving.py) rightly count as unexpected
        # (an event of a tab never opened stays pending in Gradio 6: wait a bounded time, not for all of them)
        try:
            pg.wait_for_function("() => !document.querySelector('.pending, .generating')", timeout=15_000)
        except Exception:  # playwright's TimeoutError: some deferred event is still marked pending
            pass
        time.sleep(2.0)
        browser.close()


def src(pg, elem: str) -> str | None:
    loc = pg.locator(f"{elem} img").first
    return loc.get_attribute("src") if loc.count() else None


def wait_src(pg, elem: str, old: str | None = None) -> str:
    """Wait until the image inside `elem` has a src different from `old` (Gradio finished updating it)."""
    pg.wait_for_function(
        """([sel, old]) => { const i = document.querySelector(sel + ' img');
             return i && i.getAttribute('src') && i.getAttribute('src') !== old && i.complete && i.naturalWidth > 0; }""",
        arg=[elem, old], timeout=TIMEOUT_MS)
    return src(pg, elem)


def pixels(pg, elem: str) -> np.ndarray:
    """Screenshot of an element's image, as an RGB array."""
    return np.asarray(Image.open(io.BytesIO(pg.locator(f"{elem} img").first.screenshot())).convert("RGB"), np.int16)


def differs(a: np.ndarray, b: np.ndarray, min_mean: float = 0.05) -> bool:
    if a.shape != b.shape:
        return True
    return float(np.abs(a - b).mean()) > min_mean


def open_tab(pg, name: str) -> None:
    pg.get_by_role("tab", name=name, exact=True).click()
    time.sleep(0.5)


def shot(pg, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# Each tab's first own picture or plot (what a person looks at first there).
FIRST_CONTENT = {"Reconstruct": "#rec-a", "Sample": "#smp-a", "Interpolate": "#int-a", "Latent sliders": "#a-s0",
                 "Latent map": "#imap", "Impute": "#imp-masked", "Anomaly": "#an-ae-plot", "Disentanglement": "#tv-a", "Scorecard": "#sc-answer",
                 "Diagnostics": "#dg-summary", "Playground": "#pg-intro"}
FILLED = """(sel) => { const el = document.querySelector(sel); if (!el || el.offsetParent === null) return false;
  const img = el.querySelector('img'); if (img) return img.complete && img.naturalWidth > 0;
  if (el.querySelector('canvas, svg.marks, input[type=range]')) return true;
  return el.innerText.trim().length > 40; }"""


def test_every_tab_starts_above_the_fold(app, page):
    """At 1400x1000, every tab's first own picture or plot begins in the window, with the sidebar beside it; the
    tabs that do not read the current input hide it."""
    context = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})  # a fresh visitor
    try:
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        pg.goto(app.url)
        wait_src(pg, "#current")
        for name, elem in FIRST_CONTENT.items():
            pg.get_by_role("tab", name=name, exact=True).click()
            pg.wait_for_function(FILLED, arg=elem)  # drawn: where it lies now is where it stays
            if name == "Latent map":  # its points too, for the screenshot
                pg.wait_for_function(MAP_LIVE)
                time.sleep(0.5)
            top = pg.evaluate("(sel) => document.querySelector(sel).getBoundingClientRect().top", elem)
            assert 0 <= top <= 1000 - 100, (name, top)  # its top, and at least 100 px of it, in the window
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(SCREENSHOTS / f"{name.lower().replace(' ', '-')}.jpg"), type="jpeg", quality=70)
            reads_input = name not in ("Sample", "Scorecard", "Diagnostics", "Playground")
            pg.locator("#current").wait_for(state="visible" if reads_input else "hidden")
    finally:
        context.close()


def test_pick_test_image_and_reconstruct(page):
    open_tab(page, "Reconstruct")
    before_cur, before_rec = pixels(page, "#current"), pixels(page, "#rec-a")
    old = src(page, "#rec-a")
    page.locator("#gallery button").nth(25).click()  # a '6' (class-major gallery, 4 per class)
    wait_src(page, "#rec-a", old)
    assert differs(before_cur, pixels(page, "#current"))
    assert differs(before_rec, pixels(page, "#rec-a"))
    assert differs(pixels(page, "#rec-a"), pixels(page, "#rec-b"))
    shot(page, "tab-reconstruct")


def test_random_and_sample_tab(page):
    old = src(page, "#rec-b")
    page.locator("#random-btn").click()
    wait_src(page, "#rec-b", old)
    open_tab(page, "Sample")
    wait_src(page, "#smp-a-extra")
    before = pixels(page, "#smp-a")
    old = src(page, "#smp-a")
    page.get_by_label("Seed", exact=True).fill("7")
    page.locator("#sample-btn").click()
    wait_src(page, "#smp-a", old)
    assert differs(before, pixels(page, "#smp-a"))
    assert "GMM" in page.locator("#smp-text").inner_text()
    shot(page, "tab-sample")


def test_interpolate_tab(page):
    open_tab(page, "Interpolate")
    wait_src(page, "#int-a")
    before, old = pixels(page, "#int-a"), src(page, "#int-a")
    page.locator("#rand-b").click()
    wait_src(page, "#int-a", old)
    assert differs(before, pixels(page, "#int-a"))
    assert "AE-16" in page.locator("#int-text").inner_text()
    shot(page, "tab-interpolate")


def canvas_gray(pg, elem: str) -> np.ndarray:
    """The pixels drawn on a canvas (its own resolution, not the screen's), as a uint8 (H, W) array."""
    h, w, data = pg.evaluate("""sel => { const c = document.querySelector(sel);
        return [c.height, c.width, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]; }""",
                             elem)
    return np.asarray(data, np.uint8).reshape(h, w, 4)[..., 0]


def settle(pg, timeout: float = 90.0) -> None:
    """Wait until no event is pending on the page and the slider values stop changing for 1.5 s (a late server
    update of the sliders would undo the moves a test makes)."""
    pg.wait_for_function("() => !document.querySelector('.pending, .generating')", timeout=timeout * 1000)
    read = "() => Array.from(document.querySelectorAll('[id^=\"b-s\"] input[type=range]')).map(r => r.value).join()"
    last, since, t0 = pg.evaluate(read), time.monotonic(), time.monotonic()
    while time.monotonic() - since < 1.5 and time.monotonic() - t0 < timeout:
        time.sleep(0.25)
        now = pg.evaluate(read)
        if now != last:
            last, since = now, time.monotonic()


def test_move_a_slider_with_the_keyboard(page, client):
    """Slider moves are decoded in the page (static/live_decoder.js): the pixels on screen change, and they
    are the server's decode of the same slider values (its /slide endpoint) to within one grey level."""
    open_tab(page, "Latent sliders")
    page.wait_for_function("() => document.body.classList.contains('live-decoding') && window.latentLive.frames > 0")
    assert page.locator("#live-b").is_visible() and not page.locator("#sl-b").is_visible()
    settle(page)  # the sliders' update for the last picked image may still be on its way: it would undo the moves
    canvas = page.locator("#live-b")
    before_screen, before = screen_pixels(canvas), canvas_gray(page, "#live-b")
    frames = page.evaluate("() => window.latentLive.frames")
    rng = page.locator("#b-s0 input[type=range]")
    lo, hi, value = float(rng.get_attribute("min")), float(rng.get_attribute("max")), float(rng.input_value())
    key = "ArrowRight" if hi - value > value - lo else "ArrowLeft"  # towards the farther end
    rng.focus()
    for _ in range(60):
        page.keyboard.press(key)
    page.wait_for_function("n => window.latentLive.frames > n", arg=frames)
    time.sleep(0.5)  # the last key's frame
    assert differs(before_screen, screen_pixels(canvas))
    after = canvas_gray(page, "#live-b")
    assert after.shape == (28, 28) and np.abs(after.astype(int) - before).max() > 30

    values = page.evaluate("""() => ['a-s', 'b-s'].flatMap(p => [...Array(16).keys()].map(k =>
        parseFloat(document.querySelector(`#${p}${k} input[type=range]`).value)))""")
    ae_path, vae_path = client.predict("mnist", *values, api_name="/slide")
    for path, elem in ((ae_path, "#live-a"), (vae_path, "#live-b")):
        server = np.asarray(Image.open(path))[::4, ::4].astype(int)  # the server upscales 28x28 by 4
        assert np.abs(server - canvas_gray(page, elem)).max() <= 1, elem
    shot(page, "tab-sliders")

    frames = page.evaluate("() => window.latentLive.frames")
    page.locator("#reset-btn").click()  # the server sets the sliders back to the encoded input; the page redraws
    page.wait_for_function("n => window.latentLive.frames > n", arg=frames)
    time.sleep(0.5)
    assert np.abs(canvas_gray(page, "#live-b").astype(int) - before).max() <= 1


def test_the_live_decoders_are_fetched_when_the_sliders_open(app, page):
    """A page fetches the live decoders (a few MB) only once its sliders are on screen, not at load."""
    context = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})  # a fresh visitor
    try:
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        fetched = []
        pg.on("request", lambda r: fetched.append(r.url) if "decoder-" in r.url else None)
        pg.goto(app.url)
        wait_src(pg, "#current")
        wait_src(pg, "#rec-b")
        pg.wait_for_function("() => !!(window.latentLive && window.latentLive.pending)")  # the spec has arrived
        time.sleep(1.0)
        assert fetched == [] and pg.evaluate("() => window.latentLive.frames") == 0
        open_tab(pg, "Latent sliders")
        pg.wait_for_function("() => document.body.classList.contains('live-decoding') && window.latentLive.frames > 0")
        assert len(fetched) == 2  # Model A's and Model B's decoder
    finally:
        context.close()


@contextlib.contextmanager
def visitor_without(app, page, script: str):
    """A second visitor's page, on the app's first input, with one of the page's scripts blocked."""
    context = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        pg.route(f"**/{script}", lambda route: route.abort())
        pg.goto(app.url)
        wait_src(pg, "#current")
        yield pg
    finally:
        context.close()


def test_sliders_fall_back_to_the_server_without_the_live_decoder(app, page):
    """A browser that cannot run the live decoder (here: TensorFlow.js blocked) sees the server's decodes."""
    with visitor_without(app, page, "tf-core.min.js") as pg:
        open_tab(pg, "Latent sliders")
        wait_src(pg, "#sl-b")
        time.sleep(1.0)
        assert pg.evaluate("() => !document.body.classList.contains('live-decoding') && !!window.latentLive.error")
        assert pg.locator("#sl-b").is_visible() and not pg.locator("#live-b").is_visible()
        before, old = pixels(pg, "#sl-b"), src(pg, "#sl-b")
        rng = pg.locator("#b-s0 input[type=range]")
        rng.scroll_into_view_if_needed()
        box = rng.bounding_box()
        pg.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)  # a click = a move + release
        wait_src(pg, "#sl-b", old)
        assert differs(before, pixels(pg, "#sl-b"))


def screen_pixels(loc) -> np.ndarray:
    """Screenshot of an element as it is on screen, as an RGB array."""
    return np.asarray(Image.open(io.BytesIO(loc.screenshot())).convert("RGB"), np.int16)


MAP_LIVE = "() => window.latentMap && window.latentMap.live && window.latentMap.loads > 0"


def atlas_of(dataset: str = "mnist") -> dict:
    from explorer.catalog import checkpoint_root

    with np.load(checkpoint_root() / dataset / "atlas.npz") as f:
        return {k: f[k] for k in ("images", "labels", "ae-2__mean")}


def screen_of(pg, slot: str, indices) -> np.ndarray:
    """Where the page's WebGL map draws atlas points, in page pixels, (M, 2)."""
    return np.array(pg.evaluate("""([slot, idx]) => { const P = latentMap.plots[slot];
        const r = P.canvas.getBoundingClientRect();
        return idx.map((i) => { const s = P.plot.getScreenPosition(i); return [r.left + s[0], r.top + s[1]]; }); }""",
                                [slot, [int(i) for i in indices]]))


def open_map(pg) -> None:
    open_tab(pg, "Latent map")
    pg.wait_for_function(MAP_LIVE)
    pg.locator('.imap-pane[data-slot="a"] .imap-canvas').scroll_into_view_if_needed()
    time.sleep(0.5)


def canvas_pixels(pg, sel: str) -> np.ndarray:
    """A canvas' own pixels (its width x height), grey from the red channel, (H, W)."""
    data = pg.evaluate("""(sel) => { const c = document.querySelector(sel);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height); return [c.height, c.width, Array.from(d.data)]; }""", sel)
    return np.array(data[2], np.int16).reshape(data[0], data[1], 4)[..., 0]


def inside(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd rule: which points lie inside a polygon (both in page pixels)."""
    x, y = points[:, 0:1], points[:, 1:2]
    x0, y0, x1, y1 = poly[:, 0], poly[:, 1], np.roll(poly[:, 0], -1), np.roll(poly[:, 1], -1)
    crosses = ((y0 > y) != (y1 > y)) & (x < (x1 - x0) * (y - y0) / (y1 - y0 + 1e-12) + x0)
    return crosses.sum(1) % 2 == 1


def edge_distance(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    a, b = poly, np.roll(poly, -1, axis=0)
    ab = b - a
    t = np.clip(((points[:, None] - a) * ab).sum(-1) / ((ab ** 2).sum(-1) + 1e-12), 0, 1)
    return np.sqrt((((a + t[..., None] * ab) - points[:, None]) ** 2).sum(-1)).min(1)


def test_the_map_hover_shows_the_atlas_image_and_a_click_makes_it_the_input(page):
    open_map(page)
    atlas = atlas_of()
    for i in (3, 777, 2024):
        x, y = screen_of(page, "a", [i])[0]
        page.mouse.move(x, y)
        page.wait_for_function("() => latentMap.hovered.a !== null")
        shown = page.evaluate("() => latentMap.hovered.a")  # the point under the cursor (i, or one drawn on it)
        assert np.abs(screen_of(page, "a", [shown])[0] - [x, y]).max() <= 4
        np.testing.assert_array_equal(canvas_pixels(page, '.imap-pane[data-slot="a"] .imap-tip canvas'),
                                      atlas["images"][shown])
        assert page.locator('.imap-pane[data-slot="a"] .imap-tip span').inner_text().startswith(f"#{shown} ·")
    old = src(page, "#current")
    x, y = screen_of(page, "b", [1500])[0]
    page.mouse.move(x, y)
    picked = page.evaluate("() => latentMap.hovered.b")
    page.mouse.click(x, y)
    wait_src(page, "#current", old)
    page.wait_for_function("(i) => document.querySelector('#pt-text').innerText.includes('Atlas image ' + i + ':')",
                           arg=picked)
    assert page.evaluate("() => latentMap.plots.a.plot.get('selectedPoints')") == [picked]  # marked on both maps


def test_a_lasso_selects_the_points_inside_it_on_both_maps(page):
    open_map(page)
    page.keyboard.press("Escape")
    box = page.locator('.imap-pane[data-slot="a"] .imap-canvas').bounding_box()
    w, h = box["width"], box["height"]
    poly = np.array([[0.25, 0.3], [0.7, 0.25], [0.65, 0.7], [0.4, 0.55], [0.3, 0.7]]) * [w, h] + [box["x"], box["y"]]
    page.keyboard.down("Shift")
    page.mouse.move(*poly[0])
    page.mouse.down()
    for p in [*poly[1:], poly[0]]:
        page.mouse.move(*p, steps=15)
        time.sleep(0.05)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_function("() => latentMap.selection.length > 0")
    selected = set(page.evaluate("() => latentMap.selection"))
    n = page.evaluate("() => latentMap.plots.a.data.n")
    pts = screen_of(page, "a", range(n))
    within, near_edge = inside(pts, poly), edge_distance(pts, poly) <= 4  # the lasso samples the path every few px
    assert set(np.nonzero(within & ~near_edge)[0]) <= selected
    assert selected <= set(np.nonzero(within | near_edge)[0])
    assert len(selected) > 100
    assert set(page.evaluate("() => latentMap.plots.b.plot.get('selectedPoints')")) == selected  # linked
    page.wait_for_function("(n) => document.querySelector('#sel-text').innerText.startsWith(n + ' atlas images')",
                           arg=len(selected))
    counts = np.bincount(atlas_of()["labels"][sorted(selected)], minlength=10)
    text = page.locator("#sel-text").inner_text()
    assert all(f"{c}: {k}" in text for c, k in enumerate(counts) if k)
    shot(page, "tab-map-lasso")
    page.keyboard.press("Escape")


def test_decode_under_the_cursor_on_a_2d_model_equals_the_servers(page, client):
    open_map(page)
    choose(page, "#model-a", "AE-2")
    page.wait_for_function("() => latentMap.spec.models[0].key === 'ae-2' && latentMap.plots.a.model.key === 'ae-2'"
                           " && latentMap.plots.a.data.dim === 2")
    time.sleep(0.5)
    atlas = atlas_of()
    x, y = screen_of(page, "a", [10])[0]
    for dx, dy in ((0, 0), (37, -23)):
        before = page.evaluate("() => latentMap.decodes")
        page.mouse.move(x + dx, y + dy)
        page.wait_for_function("(n) => latentMap.decodes > n", arg=before)
        at = page.evaluate("() => latentMap.lastDecode.a")
        if (dx, dy) == (0, 0):  # the cursor on atlas point 10: the map position is that point's code
            span = np.ptp(atlas["ae-2__mean"], axis=0)
            assert np.abs(np.array([at["x"], at["y"]]) - atlas["ae-2__mean"][10]).max() <= 0.02 * span.max()
        img, info, _ = client.predict("mnist", "ae-2", at["x"], at["y"], 0, api_name="/decode_at")
        server = np.asarray(Image.open(img).convert("L"), np.int16)
        assert np.abs(canvas_pixels(page, '.imap-pane[data-slot="a"] .imap-decode') - server).max() <= 1
        assert info["distance"] == pytest.approx(at["distance"], rel=1e-3, abs=1e-3)
    choose(page, "#model-a", "AE-16")
    page.wait_for_function("() => latentMap.plots.a.model.key === 'ae-16'")


def test_without_the_map_script_the_png_maps_and_their_clicks_remain(app, page):
    with visitor_without(app, page, "regl-scatterplot.min.js") as pg:
        open_tab(pg, "Latent map")
        wait_src(pg, "#map-a")
        wait_src(pg, "#mf-vae")
        time.sleep(1.0)
        assert pg.evaluate("() => !document.body.classList.contains('imap-live') && !(window.latentMap || {}).live")
        assert pg.locator("#map-a").is_visible() and not pg.locator("#imap").is_visible()
        img = pg.locator("#map-a img").first
        box = img.bounding_box()
        old = src(pg, "#pt-img")
        img.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.5})
        wait_src(pg, "#pt-img", old)
        first = pixels(pg, "#pt-a")
        old = src(pg, "#pt-img")
        img.click(position={"x": box["width"] * 0.3, "y": box["height"] * 0.65})
        wait_src(pg, "#pt-img", old)
        assert differs(first, pixels(pg, "#pt-a"))
        shot(pg, "tab-map")


def test_draw_on_the_sketchpad(page):
    page.get_by_role("tab", name="Draw", exact=True).click()
    # Gradio's sketchpad opens with no tool; the app selects the brush when the tab opens ("highlight" = selected).
    brush = page.locator("#sketch button[aria-label='Brush']")
    brush.wait_for()
    page.wait_for_function("() => document.querySelector(\"#sketch button[aria-label='Brush']\")"
                           ".classList.contains('highlight')", timeout=10_000)
    time.sleep(0.5)
    canvas = page.locator("#sketch canvas").last
    canvas.wait_for()
    box = canvas.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.2
    page.mouse.move(x0, y0)
    page.mouse.down()
    for k in range(1, 21):  # a vertical stroke: a '1'
        page.mouse.move(x0 + k * 0.5, y0 + k * box["height"] * 0.03)
    page.mouse.up()
    time.sleep(1.0)
    before, old = pixels(page, "#current"), src(page, "#current")
    page.locator("#draw-btn").click()
    wait_src(page, "#current", old)
    assert differs(before, pixels(page, "#current"))
    shot(page, "input-draw")


def test_upload_a_file(page, tmp_path):
    p = tmp_path / "dark_on_white.png"
    a = np.full((300, 300), 255, np.uint8)
    a[60:240, 60:90] = 0
    a[60:90, 60:220] = 0  # a dark 'Γ' on white paper
    Image.fromarray(a).convert("RGB").save(p)
    page.get_by_role("tab", name="Upload", exact=True).click()
    before, old = pixels(page, "#current"), src(page, "#current")
    page.locator("#upload input[type=file]").set_input_files(str(p))
    wait_src(page, "#current", old)
    cur = pixels(page, "#current")
    assert differs(before, cur)
    shot(page, "input-upload")


@pytest.mark.parametrize("kind,message", [("text", "not an image"), ("huge", "20000x20000")])
def test_bad_upload_shows_a_message(page, tmp_path, kind, message):
    from tests.test_app_api import png_header_only

    page.get_by_role("tab", name="Upload", exact=True).click()
    if kind == "text":
        p = tmp_path / "notes.txt"
        p.write_text("not an image")
    else:
        p = tmp_path / "huge.png"
        p.write_bytes(png_header_only(20000, 20000))
    clear = page.locator("#upload button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#upload input[type=file]").set_input_files(str(p))
    page.get_by_text(message, exact=False).first.wait_for(timeout=TIMEOUT_MS)
    assert "Traceback" not in page.content()
    shot(page, f"bad-upload-{kind}")


def test_empty_drawing_shows_a_message(page):
    page.get_by_role("tab", name="Draw", exact=True).click()
    page.locator("#sketch button[aria-label='Clear canvas']").click()
    time.sleep(0.5)
    page.locator("#draw-btn").click()
    page.get_by_text("drawing is empty", exact=False).or_(page.get_by_text("image is blank", exact=False)).first.wait_for()
    shot(page, "bad-empty-drawing")


def element_pixels(pg, elem: str) -> np.ndarray:
    """Screenshot of a whole element (a plot, a table), as an RGB array."""
    return np.asarray(Image.open(io.BytesIO(pg.locator(elem).first.screenshot())).convert("RGB"), np.int16)


def wait_changed(pg, elem: str, before: np.ndarray, seconds: float = 20.0) -> bool:
    """Poll an element's screenshot until it differs from `before` (a plot redraws after its data lands)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if differs(before, element_pixels(pg, elem), min_mean=0.05):  # a moved 2-px line is enough
            return True
        time.sleep(0.5)
    return False


def red_share(picture: np.ndarray) -> np.ndarray:
    """Where the Impute tab's masked picture is dark red (hidden pixels), as a boolean map of the picture itself
    (cropped to its dark content: the page around a letterboxed image is light; rows and columns at least a third
    dark, so that a label's text drawn over the element's corner does not count)."""
    dark = picture.min(-1) < 150
    rows, cols = np.nonzero(dark.mean(1) > 1 / 3)[0], np.nonzero(dark.mean(0) > 1 / 3)[0]
    picture = picture[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]
    r, g = picture[..., 0], picture[..., 1]
    return (r > g + 40) & (r > 60)


def test_impute_tab_presets_and_a_painted_mask(page):
    open_tab(page, "Impute")
    wait_src(page, "#imp-vae")
    before_mask, before_vae, old = pixels(page, "#imp-masked"), pixels(page, "#imp-vae"), src(page, "#imp-vae")
    bottom = red_share(before_mask)
    h = bottom.shape[0]
    assert bottom[int(0.75 * h)].mean() > 0.9 and bottom[int(0.25 * h)].mean() < 0.1  # the default: bottom half
    page.locator("#imp-mask").get_by_label("centre square").check()
    wait_src(page, "#imp-vae", old)
    assert differs(before_mask, pixels(page, "#imp-masked")) and differs(before_vae, pixels(page, "#imp-vae"))
    assert "MSE on the missing pixels" in page.locator("#imp-text").inner_text()
    shot(page, "tab-impute")

    # open the editor (it chooses the painted mask), paint a vertical band on the left of its canvas, impute
    page.locator("#imp-views").get_by_role("tab", name="Paint a mask", exact=True).click()
    painted_choice = page.locator("#imp-mask").get_by_label("painted")
    for _ in range(50):
        if painted_choice.is_checked():
            break
        time.sleep(0.1)
    assert painted_choice.is_checked()
    brush = page.locator("#imp-editor button[aria-label='Brush']")
    if brush.count() and "highlight" not in (brush.first.get_attribute("class") or ""):
        brush.first.click()
    canvas = page.locator("#imp-editor canvas").last
    canvas.wait_for()
    time.sleep(0.5)
    box = canvas.bounding_box()
    # the 280x280 picture sits in the middle of the editor's wider canvas: x = 0.36 is its left third
    x0, y0 = box["x"] + box["width"] * 0.36, box["y"] + box["height"] * 0.1
    page.mouse.move(x0, y0)
    page.mouse.down()
    for k in range(1, 31):
        page.mouse.move(x0, y0 + k * box["height"] * 0.027)
    page.mouse.up()
    time.sleep(1.0)
    old = src(page, "#imp-masked")
    page.locator("#imp-mask").get_by_label("painted").check()
    page.locator("#imp-btn").click()
    wait_src(page, "#imp-masked", old)
    painted = red_share(pixels(page, "#imp-masked"))
    w = painted.shape[1]
    assert painted[:, : int(0.35 * w)].mean() > 0.2 and painted[:, int(0.5 * w):].mean() < 0.02
    shot(page, "tab-impute-painted")


def test_anomaly_tab_follows_the_input(page):
    open_tab(page, "Anomaly")
    page.wait_for_function("() => (document.querySelector('#an-text')?.innerText || '').includes('percentile')")
    text = page.locator("#an-text").inner_text()
    time.sleep(1.0)
    before = element_pixels(page, "#an-vae-plot")
    table = "(t) => t.slice(t.indexOf('model'))"  # the answer, without the progress text shown while it runs
    # A random Fashion-MNIST item as the input of the MNIST models. The thresholds flag 95 % of that dataset, so a
    # few items in a hundred pass as in-distribution: up to three draws, each one a changed table.
    for _ in range(3):
        old = src(page, "#current")
        page.locator("#an-other").click()
        wait_src(page, "#current", old)
        page.wait_for_function(f"(old) => {{ const t = document.querySelector('#an-text')?.innerText || '';"
                               f" return t.includes('percentile') && ({table})(t) !== ({table})(old); }}", arg=text)
        text = after = page.locator("#an-text").inner_text()
        if after.count("outlier") >= 3:
            break
    assert after.count("outlier") >= 3, after  # every reconstruction error and the VAE's scores flag it
    assert wait_changed(page, "#an-vae-plot", before)  # the plot redraws: the input's line moves
    shot(page, "tab-anomaly")


def test_scorecard_tab(page):
    open_tab(page, "Scorecard")
    page.wait_for_function("() => (document.querySelector('#sc-answer')?.innerText || '').includes('Recommended')")
    assert "Recommended: VampPrior VAE-16" in page.locator("#sc-answer").inner_text()  # generate: the default goal
    page.locator("#sc-goal").get_by_label("detect anomalies").check()
    page.wait_for_function("() => document.querySelector('#sc-answer').innerText.includes('AUROC')")
    assert not page.locator("#sc-text").is_visible()  # the full table: one click away
    page.locator("#sc-full").get_by_text("Every task, every model", exact=False).first.click()
    page.wait_for_function("() => (document.querySelector('#sc-text')?.innerText || '').includes('winner')")
    assert "interpolation (holes)" in page.locator("#sc-text").inner_text()
    time.sleep(1.5)
    before = element_pixels(page, "#sc-task-plot")
    page.locator("#sc-task input").click()
    page.get_by_role("option", name="ood (other dataset)", exact=True).click()
    assert wait_changed(page, "#sc-task-plot", before)
    for view, plot in (("ROC curves", "#sc-roc"), ("Imputation per mask", "#sc-imp")):  # one plot per view
        page.locator("#sc-views").get_by_role("tab", name=view, exact=True).click()
        page.locator(plot).wait_for()
        time.sleep(1.5)
        assert element_pixels(page, plot).std() > 10, plot  # drawn
    shot(page, "tab-scorecard")


def test_diagnostics_tab_plots_and_a_download(page):
    open_tab(page, "Diagnostics")
    page.wait_for_function("() => (document.querySelector('#dg-text')?.innerText || '').includes('healthy')")
    assert "partly collapsed" in page.locator("#dg-summary").inner_text()  # the shipped beta-VAE
    time.sleep(1.5)
    assert element_pixels(page, "#dg-curves").std() > 10 and element_pixels(page, "#dg-kl").std() > 10  # drawn
    shot(page, "tab-diagnostics")
    open_tab(page, "Interpolate")  # a download button yields a file: the strips as GIFs
    page.locator("#gif-btn").click()
    link = page.locator("#gif-files a").first
    link.wait_for()
    with page.expect_download() as download:
        link.click()
    with Image.open(download.value.path()) as gif:
        assert gif.format == "GIF" and gif.n_frames == 10  # the Steps slider's default


def test_switch_dataset(page):
    open_map(page)
    pane = page.locator('.imap-pane[data-slot="b"] .imap-plot')
    before_cur, before_map = pixels(page, "#current"), screen_pixels(pane)
    old_cur = src(page, "#current")
    page.get_by_role("radio", name="Fashion-MNIST", exact=True).check()
    wait_src(page, "#current", old_cur)
    page.wait_for_function("() => latentMap.spec.dataset === 'fashion-mnist' && latentMap.plots.b.url"
                           " && latentMap.plots.b.url.includes('fashion-mnist')")
    time.sleep(1.0)
    assert differs(before_cur, pixels(page, "#current"))
    assert differs(before_map, screen_pixels(pane))
    assert "Trouser" in page.locator("#legend").inner_text()
    page.wait_for_function("() => { const s = window.latentLive.pending || window.latentLive.spec; "
                           "return s && s.dataset === 'fashion-mnist'; }")
    shot(page, "fashion-map")
    open_tab(page, "Reconstruct")
    shot(page, "fashion-reconstruct")


def choose(pg, picker: str, label: str) -> None:
    """Pick an option of a Gradio dropdown by its label."""
    pg.locator(f"{picker} input").click()
    pg.get_by_role("option", name=label, exact=True).click()
    time.sleep(0.3)


def test_pickers_switch_the_pair_on_every_tab(page):
    """Model A -> VampPrior VAE-16, Model B -> CVAE-16: the pictures change, the CVAE's every-class strip and the
    pair's description appear. Last in this file: it leaves the page with that pair (each pick re-runs every tab,
    ~5-15 s here, so switching back would cost half a minute for no test)."""
    open_tab(page, "Reconstruct")
    before_a, before_b = pixels(page, "#rec-a"), pixels(page, "#rec-b")
    old_a = src(page, "#rec-a")
    choose(page, "#model-a", "VampPrior VAE-16 · vae-16-vamp")
    wait_src(page, "#rec-a", old_a)
    assert differs(before_a, pixels(page, "#rec-a"))
    assert page.locator("#rec-a-samples img").count()  # a VAE's posterior draws (the AE had none)
    old_b = src(page, "#rec-b")
    choose(page, "#model-b", "CVAE-16")
    wait_src(page, "#rec-b", old_b)
    assert differs(before_b, pixels(page, "#rec-b"))
    assert "VampPrior VAE-16" in page.locator("#pair-text").inner_text()
    assert "CVAE-16" in page.locator("#rec-text").inner_text()
    wait_src(page, "#rec-b-samples")  # the CVAE's code decoded with every class
    shot(page, "pickers-reconstruct")
    # (the other tabs with this pair: tests/test_app_api.py::test_every_tab_with_non_default_pickers, by value)


def test_playground_trains_live_and_stops(page):
    """Train: the latent plane changes at least 3 times (at >= 4 frames a second), Stop ends both runs."""
    page.get_by_role("tab", name="Playground", exact=True).click()
    for slot in "ab":  # a long budget: the runs are still training when Stop is pressed, however loaded the machine
        page.locator(f"#pg-settings-{slot}").get_by_text(f"Run {slot.upper()} settings").click()
        steps = page.locator(f"#pg-settings-{slot}").get_by_label("Steps (at most")
        steps.fill("20000")
        steps.press("Tab")
    page.locator("#pg-train").click()
    page.wait_for_function("() => document.querySelector('#pg-view-a .pg-plane path')")
    changes = page.evaluate("""() => new Promise(done => {
        const seen = new Set(); const t0 = performance.now();
        const tick = () => {
          const p = document.querySelector('#pg-view-a .pg-plane');
          if (p) seen.add(p.innerHTML);
          if (performance.now() - t0 < 2000) requestAnimationFrame(tick); else done(seen.size);
        };
        tick(); })""")
    assert changes >= 4, (changes, page.evaluate("() => window.latentPlayground"))  # distinct planes within 2 s
    # the page asked for them itself (LIVE_JS), not through Gradio's event path
    assert page.evaluate("() => window.latentPlayground.frames") >= 4
    # Nothing piles up in the browser: no run history of every frame (it fills localStorage, then freezes the page).
    assert page.evaluate("() => JSON.stringify(localStorage).length") < 20_000
    page.locator("#pg-stop").click()
    page.wait_for_function("""() => ['a', 'b'].every(s => {
        const r = document.querySelector('#pg-view-' + s + ' .pg-run');
        return r && r.dataset.state === 'stopped'; }) &&
        (document.querySelector('#pg-verdict-a') || {innerText: ''}).innerText.includes('stopped')""", timeout=15_000)
    for slot in "ab":  # the settings folded again: the picture shows the two views
        page.locator(f"#pg-settings-{slot}").get_by_text(f"Run {slot.upper()} settings").click()
    page.locator("#pg-watch").scroll_into_view_if_needed()
    page.evaluate("() => document.querySelector('#pg-watch').scrollIntoView({block: 'start'})")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # after Stop: a page redrawn 5 times a second can stall a capture
    page.screenshot(path=str(SCREENSHOTS / "playground-training.jpg"), type="jpeg", quality=70)
    assert "stopped" in page.locator("#pg-verdict-a").inner_text()


def test_disentanglement_on_dsprites(page):
    """dSprites: the traversal rows carry factor names, the heatmap is drawn, the metric table names the models.
    Last in this file: it leaves the page on dSprites."""
    open_tab(page, "Disentanglement")
    old = src(page, "#current")
    page.get_by_role("radio", name="dSprites", exact=True).check()
    wait_src(page, "#current", old)
    page.wait_for_function("() => (document.querySelector('#tv-b') || {innerText: ''}).innerText.includes('nats')")
    labels = page.locator("#tv-b .tv-label").all_inner_texts()
    assert len(labels) == 10 and all("nats" in t for t in labels)
    assert any(f in " ".join(labels) for f in ("position_x", "position_y", "scale", "shape", "orientation"))
    assert page.locator("#mi-b svg rect").count() == 50
    assert "VAE-10" in page.locator("#dis-table").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "disentanglement.jpg"), type="jpeg", quality=70)
