// Live latent sliders: the page decodes slider moves itself, with TensorFlow.js (static/vendor/tfjs).
//
// A server round trip through Gradio's event path costs more than a frame (~65 ms for a no-op in Chromium
// here), so a slider's `input` event is decoded right here, at most once per animation frame, and drawn
// on a canvas. The decoder comes from the server (explorer/webdecoder.py): the decoder's own weights in a
// safetensors file whose metadata lists its layers, which `run` below applies in order. The server still
// decodes on release (the `/slide` endpoint), and its images show wherever this script cannot run.
(() => {
  "use strict";
  const live = (window.latentLive = {
    spec: null,        // {dataset, models: [{key, prefix, canvas, url, order, latent_dim}]}
    decoders: {},      // url -> Promise of {layers, shape}
    values: {},        // prefix -> slider values in display order
    dirty: new Set(),  // prefixes to decode at the next frame
    frames: 0,         // decodes drawn so far
    decodeMs: [],      // time of the last decodes (decode + draw), for bench/browser_latency.py
    error: null,
    pending: null,     // a spec whose decoders are fetched when the sliders are first on screen
  });

  // IEEE 754 half -> float, for the float16 weights.
  function halfToFloat(u16) {
    const out = new Float32Array(u16.length);
    for (let i = 0; i < u16.length; i++) {
      const h = u16[i], s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
      out[i] = e === 0 ? s * f * 2 ** -24 : e === 31 ? (f ? NaN : s * Infinity) : s * (1 + f / 1024) * 2 ** (e - 15);
    }
    return out;
  }

  // safetensors: 8-byte little-endian header size, a JSON header, then the raw tensors. Each tensor as float32
  // ({data, shape}); the metadata as written. Shared with static/latent_map.js (latentLive.readSafetensors).
  function readSafetensors(buf) {
    const n = Number(new DataView(buf).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, n)));
    const tensors = {};
    for (const [name, t] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const bytes = buf.slice(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]);
      const data = t.dtype === "F16" ? halfToFloat(new Uint16Array(bytes))
                 : t.dtype === "F32" ? new Float32Array(bytes) : null;
      if (!data) throw new Error(`unsupported dtype ${t.dtype} for ${name}`);
      tensors[name] = {data, shape: t.shape};
    }
    return {tensors, meta: header.__metadata__};
  }
  live.readSafetensors = readSafetensors;

  function parseSafetensors(buf) {  // as TensorFlow.js tensors
    const {tensors, meta} = readSafetensors(buf);
    for (const [name, t] of Object.entries(tensors)) tensors[name] = tf.tensor(t.data, t.shape);
    return {tensors, meta};
  }

  async function loadDecoder(url) {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    const {tensors, meta} = parseSafetensors(await r.arrayBuffer());
    const layers = JSON.parse(meta.layers).map((l) => {
      if (l.op === "linear") return {...l, W: tensors[l.weight], b: tensors[l.bias]};  // W: (out, in)
      if (l.op === "conv_transpose2d") {  // torch (in, out, k, k) -> tf (k, k, out, in)
        const w = tensors[l.weight];
        return {...l, W: tf.transpose(w, [2, 3, 1, 0]), b: tensors[l.bias], out: w.shape[1]};
      }
      return l;
    });
    return {layers, shape: JSON.parse(meta.image_shape)};  // shape: [C, H, W]
  }

  // z (latent_dim) -> E[x|z] as (H, W, C) values in [0, 1]; the same layers as the torch decoder.
  function run(dec, z) {
    return tf.tidy(() => {
      let x = tf.tensor2d(z, [1, z.length]);
      for (const l of dec.layers) {
        if (l.op === "linear") x = tf.add(tf.matMul(x, l.W, false, true), l.b);
        else if (l.op === "elu") x = tf.elu(x);
        else if (l.op === "relu") x = tf.relu(x);
        else if (l.op === "unflatten") x = tf.transpose(tf.reshape(x, [1, ...l.shape]), [0, 2, 3, 1]);  // NCHW -> NHWC
        else if (l.op === "conv_transpose2d") {
          const size = (n) => (n - 1) * l.stride - 2 * l.padding + l.kernel;  // torch's output size
          x = tf.add(tf.conv2dTranspose(x, l.W, [1, size(x.shape[1]), size(x.shape[2]), l.out], l.stride,
                                        l.padding), l.b);
        } else if (l.op === "sigmoid") x = tf.sigmoid(x);
        else if (l.op === "clip01") x = tf.clipByValue(x, 0, 1);
        else throw new Error(`unknown layer ${l.op}`);
      }
      return x.dataSync();
    });
  }

  function draw(canvas, pixels, [C, H, W]) {
    canvas.width = W;
    canvas.height = H;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(W, H);
    for (let i = 0; i < H * W; i++) {
      for (let c = 0; c < 3; c++) {  // as the server: uint8(clip(v, 0, 1) * 255 + 0.5)
        img.data[4 * i + c] = Math.floor(pixels[i * C + (C === 3 ? c : 0)] * 255 + 0.5);
      }
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  // Show the live canvases instead of the server's images (a style of our own: !important beats the app's
  // `#live {display: none}` whatever selector prefix Gradio gives that rule). The body class tells tests.
  const style = document.createElement("style");
  style.textContent = "#live { display: block !important; } #sl-images { display: none !important; }";
  function showLive(on) {
    document.body.classList.toggle("live-decoding", on);
    if (on && !style.isConnected) document.head.appendChild(style);
    if (!on) style.remove();
  }

  const rangeOf = (prefix, k) => document.querySelector(`#${prefix}${k} input[type=range]`);

  function readSliders(m) {
    const v = [];
    for (let k = 0; k < m.latent_dim; k++) {
      const r = rangeOf(m.prefix, k);
      v.push(r ? parseFloat(r.value) : 0);
    }
    live.values[m.prefix] = v;
  }

  async function frame() {
    live.scheduled = false;
    const spec = live.spec;
    if (!spec) return;
    for (const m of spec.models) {
      if (!live.dirty.has(m.prefix)) continue;
      const canvas = document.getElementById(m.canvas);
      if (!canvas) continue;  // the tab is not rendered yet: drawn when it is (sync)
      live.dirty.delete(m.prefix);
      const dec = await live.decoders[m.url];
      if (live.spec !== spec) return;  // the dataset changed meanwhile
      const values = live.values[m.prefix] || [];
      const z = new Float32Array(m.latent_dim);
      m.order.forEach((d, k) => (z[d] = values[k]));  // slider k shows latent dimension order[k]
      if (!z.every(Number.isFinite)) continue;
      const t = performance.now();
      draw(canvas, run(dec, z), dec.shape);
      live.decodeMs.push(performance.now() - t);
      if (live.decodeMs.length > 500) live.decodeMs.shift();
      live.frames++;
    }
  }

  function schedule() {
    if (!live.scheduled) {
      live.scheduled = true;
      requestAnimationFrame(frame);
    }
  }

  // Slider moves: the range or its number box; read before Gradio's own handlers (capture phase).
  document.addEventListener("input", (e) => {
    const spec = live.spec;
    if (!spec || !e.target.closest) return;
    for (const m of spec.models) {
      const box = e.target.closest(`[id^="${m.prefix}"]`);
      if (!box) continue;
      const k = Number(box.id.slice(m.prefix.length));
      const v = parseFloat(e.target.value);
      const r = rangeOf(m.prefix, k);
      if (!Number.isInteger(k) || k >= m.latent_dim || !Number.isFinite(v)) return;
      if (r && (v < parseFloat(r.min) || v > parseFloat(r.max))) return;  // out of range: the server says so
      if (!live.values[m.prefix]) readSliders(m);
      live.values[m.prefix][k] = v;
      live.dirty.add(m.prefix);
      schedule();
    }
  }, true);

  const onScreen = (spec) => {
    const first = document.querySelector(`#${spec.models[0].prefix}0`);
    return first !== null && first.offsetParent !== null;
  };

  // The sliders' tab opened: fetch the pending decoders (a few MB; a page that never opens the sliders never
  // fetches them), or redraw.
  live.open = () => {
    if (live.pending) {
      const spec = live.pending;
      live.pending = null;
      activate(spec);
    } else live.sync();
  };

  // Redraw from the sliders as they stand (after the server has set them, or when the tab opens).
  live.sync = () => {
    if (live.pending && onScreen(live.pending)) {
      const spec = live.pending;
      live.pending = null;
      activate(spec);
      return;
    }
    requestAnimationFrame(() => requestAnimationFrame(() => {
      if (!live.spec) return;
      for (const m of live.spec.models) {
        readSliders(m);
        live.dirty.add(m.prefix);
      }
      schedule();
    }));
  };

  // TensorFlow.js (static/vendor/tfjs, ~420 KB) loads with the first decoders, not with the page.
  const me = document.currentScript || document.querySelector('script[src*="live_decoder.js"]');
  const here = me ? me.src : "";
  const script = (src) => new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`${src} did not load`));
    document.head.appendChild(s);
  });
  let tfReady = null;
  const loadTf = () => (tfReady = tfReady || (typeof tf !== "undefined" ? Promise.resolve()
    : script(here.replace(/live_decoder\.js.*$/, "vendor/tfjs/tf-core.min.js"))
        .then(() => script(here.replace(/live_decoder\.js.*$/, "vendor/tfjs/tf-backend-cpu.min.js")))));

  async function activate(spec) {
    try {
      await loadTf();
      if (typeof tf === "undefined") throw new Error("TensorFlow.js did not load");
      if (tf.getBackend() !== "cpu") await tf.setBackend("cpu");
      for (const m of spec.models) live.decoders[m.url] = live.decoders[m.url] || loadDecoder(m.url);
      await Promise.all(spec.models.map((m) => live.decoders[m.url]));
      if (live.pending) return;  // a newer spec arrived meanwhile: the next sync takes it
      live.spec = spec;
      live.values = {};
      live.error = null;
      showLive(true);
      live.sync();
    } catch (err) {  // the server's images stay in place
      live.error = String(err);
      live.spec = null;
      showLive(false);
      console.warn("live decoding is off:", err);
    }
  }

  // For the latent map (static/latent_map.js): a decoder by its URL (TensorFlow.js loads with the first one), and
  // one code decoded onto a canvas.
  live.decoder = async (url) => {
    await loadTf();
    if (typeof tf === "undefined") throw new Error("TensorFlow.js did not load");
    if (tf.getBackend() !== "cpu") await tf.setBackend("cpu");
    return (live.decoders[url] = live.decoders[url] || loadDecoder(url));
  };
  live.decodeTo = (canvas, dec, z) => draw(canvas, run(dec, Float32Array.from(z)), dec.shape);

  // The server sends the decoders of the current pair (Gradio js event, on load and on a new dataset or pair). They
  // are fetched when the sliders are on screen: now, if they are, or else when the tab opens (live.sync).
  live.load = (spec) => {
    if (!spec || !spec.models || !spec.models.length) {
      live.pending = null;
      live.spec = null;
      showLive(false);
      return;
    }
    live.pending = spec;
    if (onScreen(spec)) live.open();
  };
})();
