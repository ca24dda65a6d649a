// The interactive latent map: both models' atlas points in WebGL (static/vendor/regl-scatterplot), side by side.
//
// The server sends a pair's spec as the value of the map's gr.HTML (ui/latent_map.py): per model, a points file
// (explorer/mapdata.points_file: map positions, codes, posterior spreads, classes), a density picture, its browser
// decoder (explorer/webdecoder.py) and the current input's place; per dataset, a sprite sheet of the atlas images.
// Everything after that happens here, with no server round trip: hover thumbnails, the linked highlight, the lasso,
// the colours (the reconstruction errors and anomaly scores come once from a server function), and the decode of
// the code under the cursor (static/live_decoder.js runs the decoder). A click and a lasso go back to the server as
// events of that gr.HTML ('select', 'lasso'): the click makes the point the current input, the lasso fills the
// selection's gallery and histogram. Where this cannot run (no WebGL, a blocked script) the server's PNG maps stay.
(() => {
  "use strict";
  const M = (window.latentMap = {
    spec: null,
    plots: {},          // slot -> {plot, pane, canvas, data, model, url}
    live: false,        // the WebGL maps are shown (body.imap-live)
    error: null,
    colour: "class",
    density: false,
    selection: [],      // the lasso's atlas indices
    picked: null,       // the last clicked atlas index
    hovered: {a: null, b: null},
    lastDecode: {},     // slot -> {x, y, z, distance}: the last decode under the cursor
    hoverMs: [],        // cursor move -> thumbnail drawn (next frame), for bench/browser_latency.py
    decodeMs: [],       // cursor move -> decode drawn (next frame)
    draws: {a: 0, b: 0},
    decodes: 0,
    loads: 0,
  });
  let root = null, hooks = null, generation = 0, lastMove = 0;
  const sprite = {url: null, img: null, ready: null};
  const RAMP = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
                "#fde725"];  // viridis, low -> high
  const push = (arr, v) => { arr.push(v); if (arr.length > 500) arr.shift(); };

  function parseSafetensors(buf) {  // static/live_decoder.js reads the file; the map's metadata is JSON in "meta"
    const {tensors, meta} = window.latentLive.readSafetensors(buf);
    return {tensors, meta: JSON.parse(meta.meta)};
  }

  // Show the WebGL maps instead of the server's PNG maps (a style of our own: !important beats the app's
  // `#imap {display: none}` whatever selector prefix Gradio gives that rule). The body class tells tests.
  const style = document.createElement("style");
  style.textContent = "#imap { display: block !important; } #png-maps { display: none !important; }";
  const setLive = (on) => {
    M.live = on;
    document.body.classList.toggle("imap-live", on);
    if (on && !style.isConnected) document.head.appendChild(style);
    if (!on) style.remove();
  };
  const status = (text) => { if (root) root.querySelector(".imap-status").textContent = text; };
  const otherOf = (slot) => M.plots[slot === "a" ? "b" : "a"];

  // ---- coordinates: the plot's [-1, 1] square <-> the map's own units <-> the canvas' pixels -----------------------
  const toUnit = (d, x, y) => [2 * (x - d.lo[0]) / (d.hi[0] - d.lo[0]) - 1, 2 * (y - d.lo[1]) / (d.hi[1] - d.lo[1]) - 1];
  const fromUnit = (d, u, v) => [d.lo[0] + (u + 1) / 2 * (d.hi[0] - d.lo[0]), d.lo[1] + (v + 1) / 2 * (d.hi[1] - d.lo[1])];

  // A canvas pixel -> the plot's coordinates: the inverse of regl-scatterplot's getScreenPosition (clip = projection x
  // camera view x model; the model matrix is the identity at aspect ratio 1, rotation is off).
  function pixelToUnit(P, sx, sy) {
    const w = P.canvas.clientWidth, h = P.canvas.clientHeight, v = P.plot.get("cameraView");
    const cx = (2 * sx / w - 1) * (w / h) - v[12], cy = (1 - 2 * sy / h) - v[13];
    const det = v[0] * v[5] - v[4] * v[1];
    return [(v[5] * cx - v[4] * cy) / det, (v[0] * cy - v[1] * cx) / det];
  }

  // The code a map position stands for (explorer/mapdata.code_at): on a 2-D plane the position itself, else the
  // inverse-distance weighted mean of the codes of the K atlas points nearest to it on the map.
  const K = 10;
  function codeAt(d, p) {
    if (d.plane) return [p[0], p[1]];
    const best = [];  // [distance^2, index], ascending, at most K
    for (let i = 0; i < d.n; i++) {
      const dx = d.xy[2 * i] - p[0], dy = d.xy[2 * i + 1] - p[1], q = dx * dx + dy * dy;
      if (best.length < K || q < best[best.length - 1][0]) {
        let j = best.length < K ? best.length : K - 1;
        while (j > 0 && best[j - 1][0] > q) { best[j] = best[j - 1]; j--; }
        best[j] = [q, i];
      }
    }
    const z = new Float64Array(d.dim);
    let total = 0;
    for (const [q, i] of best) {
      const w = 1 / (Math.sqrt(q) + 1e-6);
      total += w;
      for (let k = 0; k < d.dim; k++) z[k] += w * d.codes[i * d.dim + k];
    }
    return Array.from(z, (v) => v / total);
  }

  // Distance of a code to its nearest atlas code, in the app's unit (1 = the median nearest-neighbour distance).
  function distance(d, z) {
    let best = Infinity;
    for (let i = 0; i < d.n; i++) {
      let q = 0;
      for (let k = 0; k < d.dim; k++) { const e = z[k] - d.codes[i * d.dim + k]; q += e * e; }
      if (q < best) best = q;
    }
    return Math.sqrt(best) / d.nn_scale;
  }

  // ---- hover: the image under the cursor, from the sprite sheet ------------------------------------------------------
  function loadSprite(spec) {
    if (sprite.url === spec.sprite.url) return sprite.ready;
    sprite.url = spec.sprite.url;
    sprite.img = new Image();
    sprite.ready = new Promise((resolve) => {
      sprite.img.onload = () => resolve(true);
      sprite.img.onerror = () => resolve(false);  // thumbnails then say so; the map still works
    });
    sprite.img.src = spec.sprite.url;
    return sprite.ready;
  }

  function thumb(canvas, i) {
    const [h, w] = M.spec.sprite.size, cols = M.spec.sprite.cols;
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(sprite.img, (i % cols) * w, Math.floor(i / cols) * h, w, h, 0, 0, w, h);
  }

  function showTip(P, i) {
    M.hovered[P.slot] = i;
    const tip = P.pane.querySelector(".imap-tip"), d = P.data;
    if (!d || i >= d.n) return;
    if (sprite.img && sprite.img.complete && sprite.img.naturalWidth) thumb(tip.querySelector("canvas"), i);
    tip.querySelector("span").textContent = `#${i} · ${M.spec.classes[d.labels[i]] ?? d.labels[i]}`;
    tip.dataset.index = String(i);
    const pos = P.plot.getScreenPosition(i) || [0, 0], w = P.canvas.clientWidth;
    tip.style.left = `${Math.min(pos[0] + 10, w - 100)}px`;
    tip.style.top = `${Math.max(pos[1] - 110, 0)}px`;
    tip.style.display = "block";
    const t0 = lastMove;
    requestAnimationFrame(() => push(M.hoverMs, performance.now() - t0));
  }

  function hideTip(P) {
    M.hovered[P.slot] = null;
    P.pane.querySelector(".imap-tip").style.display = "none";
  }

  // ---- decode under the cursor -----------------------------------------------------------------------------------
  async function decodeUnder(P) {
    P.decodeScheduled = false;
    const d = P.data, m = P.model;
    if (!d || !P.cursor) return;
    const t0 = lastMove;
    const u = pixelToUnit(P, P.cursor[0], P.cursor[1]);
    const p = fromUnit(d, u[0], u[1]);
    const z = codeAt(d, p);
    const dist = distance(d, z);
    M.lastDecode[P.slot] = {x: p[0], y: p[1], z, distance: dist};
    const text = P.pane.querySelector(".imap-dist");
    const where = d.plane ? `z = (${z[0].toFixed(2)}, ${z[1].toFixed(2)})` : `map (${p[0].toFixed(2)}, ${p[1].toFixed(2)})`;
    text.textContent = `${where} · distance to the nearest data code ${dist.toFixed(2)} (1 = a typical gap)` +
      (dist > 2 ? " · a hole: no data code near" : "");
    if (!m.decoder || !window.latentLive || !window.latentLive.decoder) {
      if (m.conditional) text.textContent += " · class-conditional: decoded by the server only";
      return;
    }
    try {
      const dec = await window.latentLive.decoder(m.decoder);
      if (P.model !== m) return;
      window.latentLive.decodeTo(P.pane.querySelector(".imap-decode"), dec, z);
      M.decodes++;
      requestAnimationFrame(() => push(M.decodeMs, performance.now() - t0));
    } catch (err) {
      text.textContent += ` · no decode in this browser (${err})`;
    }
  }

  // ---- colours --------------------------------------------------------------------------------------------------
  function legend(P, html) { P.pane.querySelector(".imap-legend").innerHTML = html; }

  function classColours() {
    const pal = M.spec.palette, n = Math.max(M.spec.classes.length, 1);
    return Array.from({length: n}, (_, k) => pal[k % pal.length]);
  }

  // Values -> their ranks in [0, 1] (the colour is a percentile: skewed scores still use the whole ramp).
  function ranks(values) {
    const n = values.length, order = Array.from(values.keys()).sort((i, j) => values[i] - values[j]);
    const out = new Float32Array(n);
    order.forEach((i, r) => (out[i] = n > 1 ? r / (n - 1) : 0));
    return {out, order};
  }

  async function colourValues(P, kind) {
    P.values = P.values || {};
    if (P.values[kind]) return P.values[kind];
    if (kind === "spread") {
      if (!P.model.vae) throw new Error(`${P.model.title} is deterministic: it has no posterior spread`);
      return (P.values[kind] = Array.from(P.data.spread));
    }
    const r = await hooks.server.map_colours({dataset: M.spec.dataset, model: P.model.key, kind});
    if (!r || r.error || !Array.isArray(r.values)) throw new Error((r && r.error) || "no values");
    return (P.values[kind] = r.values);
  }

  async function applyColour(P) {
    const kind = M.colour, d = P.data, plot = P.plot;
    const points = {x: d.x, y: d.y, valueA: d.labels, valueB: d.valueB};
    if (kind === "class") {
      plot.set({colorBy: "valueA", pointColor: classColours()});
      const pal = classColours();
      legend(P, M.spec.classes.map((c, k) => `<span style="color:${pal[k]}">&#9632;</span>&nbsp;${c}`).join(" "));
      return;
    }
    legend(P, "computing the colours…");
    let values;
    try {
      values = await colourValues(P, kind);
    } catch (err) {
      plot.set({colorBy: null, pointColor: "#999999"});
      legend(P, String(err.message || err));
      return;
    }
    if (M.colour !== kind || P.data !== d) return;  // changed meanwhile
    const {out, order} = ranks(values);
    d.valueB = out;
    await plot.draw({...points, valueB: out}, {zDataType: "categorical", wDataType: "continuous",
                                                 select: M.selection, preventFilterReset: true});
    plot.set({colorBy: "valueB", pointColor: RAMP});
    const q = (f) => values[order[Math.round(f * (order.length - 1))]].toPrecision(3);
    legend(P, `${M.spec.colours[kind] || kind}: colour = percentile. ` +
      `<span style="background:linear-gradient(90deg,${RAMP.join(",")});display:inline-block;width:90px;height:9px">` +
      `</span> 5 %: ${q(0.05)} · median: ${q(0.5)} · 95 %: ${q(0.95)}`);
  }

  M.setColour = async (kind) => {
    M.colour = kind;
    await Promise.all(Object.values(M.plots).filter((P) => P.data).map(applyColour));
  };

  M.setDensity = (on) => {
    M.density = on;
    for (const P of Object.values(M.plots)) {
      if (!P.model) continue;
      P.plot.set({backgroundImage: on ? P.model.density : null});
      P.pane.querySelector(".imap-title").dataset.density = on ? P.model.density_kind : "";
      title(P);
    }
  };

  function title(P) {
    const m = P.model, on = M.density ? ` · shaded: ${m.density_kind}` : "";
    P.pane.querySelector(".imap-title").textContent =
      `Model ${m.slot.toUpperCase()}: ${m.title} · ${m.plane ? "its latent plane" : "UMAP of its atlas codes"}${on}`;
  }

  // ---- the current input: a red cross --------------------------------------------------------------------------
  function drawCurrent(P) {
    const c = P.model.current, d = P.data;
    if (!c || !d) return;
    const [u, v] = toUnit(d, c[0], c[1]), r = 0.05;
    P.plot.drawAnnotations([
      {x1: u - r, x2: u + r, y: v, lineColor: "#e00000", lineWidth: 3},
      {y1: v - r, y2: v + r, x: u, lineColor: "#e00000", lineWidth: 3},
    ]);
  }

  // ---- the plots -------------------------------------------------------------------------------------------------
  // One WebGL renderer for both plots, the size of a plot. (regl-scatterplot's default one is the size of the window,
  // with a float framebuffer: on a software renderer each frame then cost ~55 ms instead of a few.)
  let renderer = null;
  function fitRenderer() {
    const sizes = Object.values(M.plots).map((P) => [P.canvas.clientWidth, P.canvas.clientHeight]);
    const w = Math.max(1, ...sizes.map((s) => s[0])), h = Math.max(1, ...sizes.map((s) => s[1]));
    if (renderer.canvas.width !== Math.round(w * devicePixelRatio) || renderer.canvas.height !== Math.round(h * devicePixelRatio)) {
      renderer.resize(w, h);
    }
  }

  function makePlot(slot) {
    const pane = root.querySelector(`.imap-pane[data-slot="${slot}"]`), canvas = pane.querySelector(".imap-canvas");
    if (!renderer) {
      const c = document.createElement("canvas");
      c.width = Math.max(1, canvas.clientWidth * devicePixelRatio);
      c.height = Math.max(1, canvas.clientHeight * devicePixelRatio);
      renderer = window.createScatterplot.createRenderer({canvas: c});
    }
    const plot = window.createScatterplot({
      renderer, canvas, width: "auto", height: "auto", syncEvents: true, backgroundColor: [1, 1, 1, 1], pointSize: 3, pointSizeSelected: 3,
      pointOutlineWidth: 2, pointColorActive: "#000000", pointColorHover: "#ff00ff", opacityInactiveMax: 0.25,
      lassoColor: "#333333", lassoMinDelay: 8, lassoMinDist: 2, showReticle: false, deselectOnDblClick: true,
      deselectOnEscape: true, actionKeyMap: {lasso: "shift"}, annotationLineWidth: 3,
    });
    const P = (M.plots[slot] = {slot, plot, pane, canvas, data: null, model: null, url: null, lassoing: false});
    plot.subscribe("draw", () => M.draws[slot]++);
    plot.subscribe("pointOver", (i) => showTip(P, i));
    plot.subscribe("pointOut", () => hideTip(P));
    plot.subscribe("lassoStart", () => (P.lassoing = true));
    plot.subscribe("select", ({points}) => {
      const other = otherOf(slot);
      if (P.lassoing) {
        P.lassoing = false;
        M.selection = Array.from(points);
        if (other && other.data) other.plot.select(M.selection, {preventEvent: true});  // linked
        status(`${points.length} points selected: the same images are marked on the other map.`);
        hooks.lasso({indices: M.selection});
      } else if (points.length === 1) {  // a click on a point: it becomes the current input
        M.picked = points[0];
        if (other && other.data) other.plot.select(points, {preventEvent: true});
        hooks.pick({index: points[0], slot});
      }
    });
    plot.subscribe("deselect", () => {
      M.selection = [];
      const other = otherOf(slot);
      if (other && other.data) other.plot.deselect({preventEvent: true});
    });
    canvas.addEventListener("mousemove", (e) => {
      if (e.buttons) return;  // panning or drawing a lasso: no decode under the cursor
      lastMove = performance.now();
      P.cursor = [e.offsetX, e.offsetY];
      if (!P.decodeScheduled) {  // at most one decode a frame
        P.decodeScheduled = true;
        requestAnimationFrame(() => decodeUnder(P));
      }
    }, {passive: true});
    new ResizeObserver(() => {
      const w = canvas.clientWidth, h = canvas.clientHeight;
      if (w > 0 && h > 0) {
        fitRenderer();
        plot.set({width: w, height: h});
      }
    }).observe(pane.querySelector(".imap-plot"));
    fitRenderer();
    return P;
  }

  async function loadModel(P, m, gen) {
    if (P.url !== m.points) {
      const r = await fetch(m.points);
      if (!r.ok) throw new Error(`${m.points}: HTTP ${r.status}`);
      const {tensors, meta} = parseSafetensors(await r.arrayBuffer());
      if (gen !== generation) return;
      const n = tensors.labels.data.length, xy = tensors.xy.data;
      const d = {n, xy, codes: tensors.codes.data, dim: tensors.codes.shape[1], spread: tensors.spread.data,
                 labels: Int32Array.from(tensors.labels.data), ...meta};
      d.x = new Float32Array(n);
      d.y = new Float32Array(n);
      for (let i = 0; i < n; i++) [d.x[i], d.y[i]] = toUnit(d, xy[2 * i], xy[2 * i + 1]);
      d.valueB = new Float32Array(n);
      await P.plot.draw({x: d.x, y: d.y, valueA: d.labels, valueB: d.valueB},
                        {zDataType: "categorical", wDataType: "continuous"});
      P.data = d;
      P.url = m.points;
      P.values = {};
      P.model = m;
      await applyColour(P);
      P.pane.querySelector(".imap-decode").getContext("2d").clearRect(0, 0, 1e4, 1e4);
    }
    P.model = m;
    title(P);
    P.plot.set({backgroundImage: M.density ? m.density : null});
    drawCurrent(P);
  }

  M.load = async (text) => {
    let spec;
    try { spec = JSON.parse(text); } catch (e) { return; }
    if (!spec || !Array.isArray(spec.models) || spec.models.length !== 2) return;
    const gen = ++generation;
    M.spec = spec;
    try {
      if (typeof window.createScatterplot !== "function") throw new Error("regl-scatterplot did not load");
      const pairChanged = Object.values(M.plots).some((P) => P.url && !spec.models.some((m) => m.points === P.url));
      if (pairChanged) M.selection = [];
      setLive(true);  // the panes must be on screen for the plots to take their size
      for (const m of spec.models) {
        const P = M.plots[m.slot] || makePlot(m.slot);
        await loadModel(P, m, gen);
        if (gen !== generation) return;
      }
      if (M.selection.length) for (const P of Object.values(M.plots)) P.plot.select(M.selection, {preventEvent: true});
      loadSprite(spec);
      M.loads++;
      M.error = null;
    } catch (err) {
      M.error = String(err);
      setLive(false);
      console.warn("interactive map is off:", err);
    }
  };

  // For bench/browser_latency.py: Model A's map with n synthetic points (a mixture of 10 blobs), drawn.
  M.benchPoints = async (n) => {
    const P = M.plots.a, x = new Float32Array(n), y = new Float32Array(n), c = new Int32Array(n);
    let s = 12345;
    const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let i = 0; i < n; i++) {
      const k = i % 10, a = (2 * Math.PI * k) / 10, r = Math.sqrt(-2 * Math.log(rnd() + 1e-9)) * 0.08;
      const t = 2 * Math.PI * rnd();
      x[i] = 0.6 * Math.cos(a) + r * Math.cos(t);
      y[i] = 0.6 * Math.sin(a) + r * Math.sin(t);
      c[i] = k;
    }
    await P.plot.draw({x, y, valueA: c, valueB: new Float32Array(n)}, {zDataType: "categorical"});
    P.url = null;  // the next spec reloads the real points
    P.data = null;
    return n;
  };

  M.mount = (element, h) => {
    root = element;
    hooks = h;
    M.plots = {};
    h.watch("value", () => M.load(h.props.value));
    root.querySelector(".imap-colour").addEventListener("change", (e) => M.setColour(e.target.value));
    root.querySelector(".imap-density").addEventListener("change", (e) => M.setDensity(e.target.checked));
    const lasso = root.querySelector(".imap-lasso");
    lasso.addEventListener("click", () => {
      const on = !lasso.classList.contains("on");
      lasso.classList.toggle("on", on);
      for (const P of Object.values(M.plots)) P.plot.set({mouseMode: on ? "lasso" : "panZoom"});
    });
    root.querySelector(".imap-reset").addEventListener("click", () => {
      for (const P of Object.values(M.plots)) P.plot.reset();
    });
    if (h.props.value) M.load(h.props.value);
  };
})();
