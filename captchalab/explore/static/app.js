// captchalab explore: the page. Plain JavaScript, no libraries, nothing from the network.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { models: [], model: null, kernels: {}, captchaImage: null, compare: null };
const LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5", "conv6"];

// ---- colour maps ------------------------------------------------------------------------
const MAGMA = [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 253, 191]];
function magma(v) {  // v in [0, 1]
  const x = Math.max(0, Math.min(1, v)) * (MAGMA.length - 1), i = Math.min(Math.floor(x), MAGMA.length - 2), f = x - i;
  return MAGMA[i].map((c, k) => Math.round(c + f * (MAGMA[i + 1][k] - c)));
}
const LUT = Array.from({ length: 256 }, (_, k) => magma(k / 255));
function diverging(v) {  // v in [-1, 1]: blue - white - red
  const a = Math.min(1, Math.abs(v)), w = Math.round(255 * (1 - a));
  return v >= 0 ? [255, w, w] : [w, w, 255];
}

function decode(b64) {
  const raw = atob(b64), out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function paint(canvas, w, h, pixel) {  // pixel(x, y) -> [r, g, b]
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const [r, g, b] = pixel(x, y), o = 4 * (y * w + x);
    img.data[o] = r; img.data[o + 1] = g; img.data[o + 2] = b; img.data[o + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function showMessage(text) {
  const box = $("message");
  box.textContent = text || ""; box.hidden = !text;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = {};
  try { body = await response.json(); } catch (e) { body = { error: `the server answered ${response.status}` }; }
  if (!response.ok) { showMessage(body.error || `the server answered ${response.status}`); throw new Error(body.error); }
  showMessage("");
  return body;
}

// ---- drawing pads -----------------------------------------------------------------------
function makePad(canvas, onChange, width) {
  const ctx = canvas.getContext("2d");
  const clear = () => { ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height); canvas.dataset.ink = ""; };
  clear();
  let drawing = false, last = null, timer = null;
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };
  const changed = (now) => {
    clearTimeout(timer);
    timer = setTimeout(onChange, now ? 0 : 60);  // follow the pen, at most about every 60 ms
  };
  canvas.addEventListener("pointerdown", (e) => {
    drawing = true; last = at(e); canvas.setPointerCapture(e.pointerId); canvas.dataset.ink = "1";
    ctx.fillStyle = "#000"; ctx.beginPath(); ctx.arc(last[0], last[1], width / 2, 0, 2 * Math.PI); ctx.fill();
    changed(false);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const p = at(e);
    ctx.strokeStyle = "#000"; ctx.lineWidth = width; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
    last = p; changed(false);
  });
  const stop = () => { if (drawing) { drawing = false; changed(true); } };
  canvas.addEventListener("pointerup", stop); canvas.addEventListener("pointercancel", stop);
  return {
    clear, canvas,
    hasInk: () => canvas.dataset.ink === "1",
    blob: () => new Promise((resolve) => canvas.toBlob(resolve, "image/png")),
    dataURL: () => canvas.toDataURL("image/png"),
    async load(uri) {
      const img = new Image();
      await new Promise((resolve) => { img.onload = resolve; img.src = uri; });
      clear();
      const s = Math.min(canvas.width / img.width, canvas.height / img.height);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(img, (canvas.width - img.width * s) / 2, (canvas.height - img.height * s) / 2, img.width * s, img.height * s);
      canvas.dataset.ink = "1";
    },
  };
}

// ---- the layers of one character ----------------------------------------------------------
function mapCanvases(layer, payload, container, onHover) {
  const [h, w, c] = payload.shape, data = decode(payload.data);
  const grid = document.createElement("div");
  grid.className = "maps" + (c > 20 ? " deep" : "");
  for (let k = 0; k < c; k++) {
    const cv = document.createElement("canvas");
    cv.className = "pixelated" + (payload.silent.includes(k) ? " silent" : "");
    cv.title = `${layer} map ${k}` + (payload.silent.includes(k) ? " (silent for this input)" : "");
    paint(cv, w, h, (x, y) => LUT[data[k * h * w + y * w + x]]);
    if (onHover) cv.addEventListener("mouseenter", () => onHover(layer, k, data.subarray(k * h * w, (k + 1) * h * w), w, h, cv));
    grid.appendChild(cv);
  }
  container.appendChild(grid);
}

function bars(probabilities, charset, container) {
  const best = probabilities.indexOf(Math.max(...probabilities));
  const row = document.createElement("div"), labels = document.createElement("div");
  row.className = "bars"; labels.className = "bar-labels";
  probabilities.forEach((p, k) => {
    const bar = document.createElement("div");
    bar.className = "bar" + (k === best ? " best" : "");
    bar.style.height = `${Math.max(1, 100 * p)}%`;
    bar.title = `${charset[k]}: ${(100 * p).toFixed(1)}%`;
    row.appendChild(bar);
    const label = document.createElement("span");
    label.textContent = charset[k]; labels.appendChild(label);
  });
  container.append(row, labels);
}

async function kernelsOf(model) {
  if (!state.kernels[model]) state.kernels[model] = await api(`/api/kernels/${model}`);
  return state.kernels[model];
}

async function hoverMap(layer, k, values, w, h, canvas) {
  document.querySelectorAll(".maps canvas.active").forEach((c) => c.classList.remove("active"));
  canvas.classList.add("active");
  $("zoom").hidden = false;
  $("zoom-title").textContent = `${layer}, map ${k} (${w}x${h})`;
  paint($("zoom-map"), w, h, (x, y) => LUT[values[y * w + x]]);
  const kernels = await kernelsOf(state.model);
  const kernel = kernels[layer].kernels[k], top = Math.max(1e-6, ...kernel.flat().map(Math.abs));
  paint($("zoom-kernel"), 5, 5, (x, y) => diverging(kernel[y][x] / top));
  $("zoom-kernel-title").textContent = kernels[layer].inputs === 1 ? "Its 5x5 kernel:"
    : `Its 5x5 kernel, summed over the ${kernels[layer].inputs} maps of the layer below:`;
}

function showLayers(view, container, hover) {
  container.innerHTML = "";
  const shapes = { conv1: "24x24x20", conv2: "20x20x20", conv3: "16x16x50", conv4: "12x12x50", conv5: "8x8x50", conv6: "4x4x50" };
  for (const layer of LAYERS) {
    const box = document.createElement("div"), payload = view.layers[layer];
    box.className = "layer";
    box.innerHTML = `<div class="layer-title">${layer} <small>${shapes[layer]}, 5x5 convolution + ReLU` +
      `${payload.silent.length ? `; ${payload.silent.length} maps silent (red outline)` : ""}</small></div>`;
    mapCanvases(layer, payload, box, hover);
    container.appendChild(box);
  }
  const fc = document.createElement("div");
  fc.className = "layer";
  fc.innerHTML = '<div class="layer-title">fc1 <small>500 units as a 20x25 grid</small></div>';
  const fcCanvas = document.createElement("canvas");
  fcCanvas.id = hover ? "fc1" : ""; fcCanvas.className = "pixelated";
  const fcData = decode(view.fc1.data);
  paint(fcCanvas, 25, 20, (x, y) => LUT[fcData[y * 25 + x]]);
  fcCanvas.style.width = "250px"; fcCanvas.style.height = "200px";
  fc.appendChild(fcCanvas);
  container.appendChild(fc);
  const out = document.createElement("div");
  out.className = "layer";
  out.innerHTML = `<div class="layer-title">fc2 <small>${view.charset.length} outputs, one per character (softmax)</small></div>`;
  bars(view.probabilities, view.charset, out);
  container.appendChild(out);
}

function showCharView(view) {
  const input = decode(view.input);
  paint($("input28"), 28, 28, (x, y) => { const v = input[y * 28 + x]; return [v, v, v]; });
  const p = Math.max(...view.probabilities);
  $("prediction").innerHTML = `The network reads <b id="predicted">${view.prediction}</b> (${(100 * p).toFixed(1)}%)`;
  $("timing").textContent = `forward pass with every activation: ${view.forward_ms} ms`;
  showLayers(view, $("layers"), hoverMap);
}

let charPad = null;
async function readPad() {
  if (!charPad.hasInk() || !state.model) return;
  showCharView(await api(`/api/char/${state.model}`, { method: "POST", body: await charPad.blob() }));
}

// ---- CAPTCHAs ----------------------------------------------------------------------------
function drawCaptcha(canvas, uri, boxes) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => {
      const scale = Math.min(3, 480 / img.width);
      canvas.width = img.width * scale; canvas.height = img.height * scale;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
      (boxes || []).forEach(([x0, y0, x1, y1], k) => {
        ctx.strokeStyle = k % 2 ? "#d62728" : "#1f77b4"; ctx.lineWidth = 2;
        ctx.strokeRect(x0 * scale, y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale);
      });
      resolve();
    };
    img.src = uri;
  });
}

function readText(view) {
  return `<div class="read-text" id="text-${view.model}">` + [...view.text].map((c, k) =>
    `<span title="confidence ${view.confidence[k] !== undefined ? (100 * view.confidence[k]).toFixed(1) + "%" : "n/a"}"
      style="border-color: rgba(74,120,194,${view.confidence[k] ?? 1})">${c}</span>`).join("") +
    (view.text ? "" : "<em>(nothing read)</em>") + "</div>";
}

function stepsView(view, container) {
  const steps = view.steps, probs = steps.probabilities, labels = steps.labels;
  const used = labels.map((_, r) => r).filter((r) => r === 0 || probs.some((p) => p[r] > 0.05));
  const cell = 16, canvas = document.createElement("canvas");
  canvas.width = probs.length * cell; canvas.height = used.length * 12;
  const ctx = canvas.getContext("2d");
  used.forEach((r, row) => probs.forEach((p, t) => {
    const [cr, cg, cb] = magma(p[r]);
    ctx.fillStyle = `rgb(${cr},${cg},${cb})`; ctx.fillRect(t * cell, row * 12, cell, 12);
  }));
  const wrap = document.createElement("div");
  wrap.className = "steps";
  wrap.innerHTML = `<p class="hint">Per time step (a column of the image), the probability of each character;
    rows shown: the blank and every character above 5% somewhere. Where a row lights up, that character is read.</p>`;
  const img = document.createElement("img");
  img.src = steps.input; img.style.width = `${canvas.width}px`;
  const table = document.createElement("div");
  table.style.display = "flex";
  const names = document.createElement("div");
  names.style.cssText = "font-size:10px;line-height:12px;text-align:right;padding-right:4px";
  names.innerHTML = used.map((r) => labels[r]).join("<br>");
  table.append(names, canvas);
  const imgRow = document.createElement("div");
  imgRow.style.paddingLeft = `${names.textContent.length ? 40 : 0}px`;
  imgRow.appendChild(img);
  names.style.width = "40px";
  wrap.append(imgRow, table);
  canvas.className = "ctc-steps";
  container.appendChild(wrap);
}

function drawGrid(canvas, uri, view) {  // an image grid with each tile's probability; selected tiles framed
  return drawCaptcha(canvas, uri, []).then(() => {
    const ctx = canvas.getContext("2d"), n = view.grid, w = canvas.width / n, h = canvas.height / n;
    const chosen = new Set(view.text.split(" ").filter((t) => t !== "").map(Number));
    (view.tiles || []).forEach((p, k) => {
      const x = (k % n) * w, y = Math.floor(k / n) * h;
      if (chosen.has(k)) { ctx.strokeStyle = "#2ca02c"; ctx.lineWidth = 4; ctx.strokeRect(x + 2, y + 2, w - 4, h - 4); }
      ctx.font = "bold 14px sans-serif"; ctx.lineWidth = 3; ctx.strokeStyle = "white";
      ctx.strokeText(p.toFixed(2), x + 6, y + 18); ctx.fillStyle = "black"; ctx.fillText(p.toFixed(2), x + 6, y + 18);
    });
  });
}

function gridLayers(view, container) {  // the likeliest tile, layer by layer
  if (!view.tile) return;
  const hint = document.createElement("p");
  hint.className = "hint";
  hint.textContent = `Tile ${view.tile.index}, the one it finds likeliest to show ${view.prompt}, through every layer:`;
  const img = document.createElement("img");
  img.src = view.tile.image; img.className = "pixelated grid-tile"; img.width = 96;
  container.append(hint, img);
  for (const [layer, payload] of Object.entries(view.tile.layers)) {
    const box = document.createElement("div");
    box.className = "layer";
    box.innerHTML = `<div class="layer-title">${layer} <small>${payload.shape.join("x")}</small></div>`;
    mapCanvases(layer, payload, box, null);
    container.appendChild(box);
  }
}

function networkMaps(view, container) {  // a trained reader's ReLU maps for this input
  for (const [layer, payload] of Object.entries(view.layers || {})) {
    const box = document.createElement("div");
    box.className = "layer";
    box.innerHTML = `<div class="layer-title">${layer} <small>${payload.shape.join("x")}</small></div>`;
    mapCanvases(layer, payload, box, null);
    container.appendChild(box);
  }
}

async function readChallenge(style, strength, seed) {  // sliders and rotations: generated, read server-side
  const box = $("readings"), kind = state.styleKinds[style];
  box.innerHTML = ""; $("captcha-truth").textContent = "";
  const readers = state.models.filter((m) => !m.error && m.kind === kind);
  if (!readers.length) { box.innerHTML = `<p class="hint">No model here reads ${kind} CAPTCHAs (add one with --model).</p>`; return; }
  for (const model of readers) {
    const div = document.createElement("div");
    div.className = "reading";
    box.appendChild(div);
    let view;
    try { view = await api(`/api/challenge/${model.id}?style=${style}&strength=${strength}&seed=${seed}`); }
    catch (e) { div.innerHTML = `<h3>${model.label}</h3><p class="hint">${e.message}</p>`; continue; }
    div.innerHTML = `<h3>${model.label}</h3><p><span class="found"></span>: ${view.solved ? "solved" : "missed"}</p><p class="hint">${view.ms} ms</p>`;
    div.querySelector(".found").textContent = view.said;
    showAnswered(view, div);
    if (view.steps) stepsView(view, div);
    networkMaps(view, div);
  }
}

function showAnswered(view, div) {  // a challenge read whole, beside the images its kind draws for the answer
  if (view.sound) {  // a sound, drawn below as its spectrogram
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.className = "sound";
    audio.src = view.sound;
    div.appendChild(audio);
  }
  for (const shown of [{ caption: "the challenge", image: view.image }, ...view.images]) {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.className = "challenge";
    img.onload = () => { img.width = Math.round(img.naturalWidth * 240 / view.width); };  // one scale for all
    img.src = shown.image;
    const caption = document.createElement("figcaption");
    caption.textContent = shown.caption;
    figure.append(img, caption);
    div.appendChild(figure);
  }
}

function gridQuestion(question) {  // from a generated challenge, else what the page asks
  return question || { grid: Number($("grid-size").value), prompt: $("prompt").value };
}

async function readCaptcha(blob, truth, question) {
  state.captchaImage = blob;
  const uri = URL.createObjectURL(blob);
  $("captcha-truth").textContent = !truth ? "" : question
    ? `The generator asked for ${question.prompt}: tiles ${truth}` : `The generator drew: ${truth}`;
  const box = $("readings");
  box.innerHTML = "";
  for (const model of state.models.filter((m) => !m.error)) {
    const div = document.createElement("div");
    div.className = "reading";
    box.appendChild(div);
    let view;
    const length = $("use-length").checked ? $("length").value : 0;
    const asked = gridQuestion(question);
    const query = model.view === "tiles" ? `grid=${asked.grid}&prompt=${encodeURIComponent(asked.prompt)}` : `length=${length}`;
    try { view = await api(`/api/captcha/${model.id}?${query}`, { method: "POST", body: blob }); }
    catch (e) { div.innerHTML = `<h3>${model.label}</h3><p class="hint">${e.message}</p>`; continue; }
    if (view.view === "challenge") {
      div.innerHTML = `<h3>${model.label}</h3><p class="found"></p>`;
      div.querySelector(".found").textContent = view.said;
      showAnswered(view, div);
      networkMaps(view, div);
      continue;
    }
    div.innerHTML = `<h3>${model.label}</h3>${readText(view)}<p class="hint">${view.ms} ms</p>`;
    if (model.state && model.state.lower_bound) {  // what it reads is only a lower bound
      const warning = document.createElement("p");
      warning.className = "hint lower-bound";
      warning.textContent = `Lower bound: this attacker had not converged (${(model.state.reasons || []).join("; ")}).`;
      div.insertBefore(warning, div.children[1]);
    }
    const canvas = document.createElement("canvas");
    canvas.className = "captcha";
    div.appendChild(canvas);
    if (view.view === "tiles") {
      div.querySelector(".read-text").innerHTML = view.text ? `selects tiles <b>${view.text}</b> for ${view.prompt}`
        : `<em>selects nothing for ${view.prompt}</em>`;
      await drawGrid(canvas, uri, view);
      gridLayers(view, div);
      continue;
    }
    await drawCaptcha(canvas, uri, view.boxes);
    if (view.crops) {
      const hint = document.createElement("p");
      hint.className = "hint";
      hint.textContent = "The pieces it cut, as the network sees them (click one to open its layers):";
      div.appendChild(hint);
      const crops = document.createElement("div");
      crops.className = "crops";
      view.crops.forEach((b64, k) => {
        const fig = document.createElement("figure"), cv = document.createElement("canvas"), pixels = decode(b64);
        cv.className = "pixelated";
        paint(cv, 28, 28, (x, y) => { const v = pixels[y * 28 + x]; return [v, v, v]; });
        fig.appendChild(cv);
        const cap = document.createElement("figcaption");
        cap.textContent = view.text[k] ?? "?";
        fig.appendChild(cap);
        fig.addEventListener("click", () => openCrop(model.id, pixels));
        crops.appendChild(fig);
      });
      div.appendChild(crops);
    }
    if (view.steps) stepsView(view, div);
  }
}

async function openCrop(model, pixels) {
  switchTab("char");
  $("char-source").textContent = "On the pad: a piece cut from the CAPTCHA";
  $("model").value = model; state.model = model;
  const view = await api(`/api/crop/${model}`, { method: "POST", body: pixels });
  const cv = document.createElement("canvas");
  paint(cv, 28, 28, (x, y) => { const v = 255 - pixels[y * 28 + x]; return [v, v, v]; });
  await charPad.load(cv.toDataURL());
  showCharView(view);
}

// ---- compare -----------------------------------------------------------------------------
let pads = {};
async function compareNow() {
  if (!pads.a.hasInk() || !pads.b.hasInk() || !state.model) return;
  const view = await api(`/api/compare/${state.model}`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ first: pads.a.dataURL(), second: pads.b.dataURL() }),
  });
  state.compare = view;
  drawCurve(view);
  $("apart").innerHTML = `A reads <b>${view.first.prediction}</b>, B reads <b>${view.second.prediction}</b>. ` +
    `The hidden layers are most apart at <b id="most-apart">${view.most_apart}</b>.`;
  const select = $("compare-layer");
  if (!select.options.length) LAYERS.forEach((l) => select.add(new Option(l, l)));
  select.value = view.most_apart.startsWith("conv") ? view.most_apart : "conv1";
  sideBySide();
}

function drawCurve(view) {
  const svg = $("curve"), layers = view.layers, values = layers.map((l) => view.similarity[l]);
  const x = (k) => 40 + k * 360 / (layers.length - 1), y = (v) => 190 - 170 * Math.max(0, v);
  let parts = `<line x1="40" y1="190" x2="400" y2="190" stroke="#999"/><line x1="40" y1="20" x2="40" y2="190" stroke="#999"/>`;
  [0, 0.5, 1].forEach((v) => { parts += `<text x="34" y="${y(v) + 4}" font-size="10" text-anchor="end">${v}</text>`; });
  parts += `<polyline fill="none" stroke="#4a78c2" stroke-width="2" points="${values.map((v, k) => `${x(k)},${y(v)}`).join(" ")}"/>`;
  layers.forEach((l, k) => {
    const apart = l === view.most_apart;
    parts += `<circle cx="${x(k)}" cy="${y(values[k])}" r="${apart ? 6 : 3.5}" fill="${apart ? "#b3261e" : "#4a78c2"}"><title>${l}: ${values[k].toFixed(3)}</title></circle>`;
    parts += `<text x="${x(k)}" y="205" font-size="10" text-anchor="middle">${l}</text>`;
  });
  parts += `<text x="220" y="14" font-size="11" text-anchor="middle">cosine similarity of the activations (1 = the same)</text>`;
  svg.innerHTML = parts;
}

function sideBySide() {
  const view = state.compare, layer = $("compare-layer").value, box = $("side-by-side");
  box.innerHTML = "";
  [["A", view.first], ["B", view.second]].forEach(([name, v]) => {
    const div = document.createElement("div");
    div.innerHTML = `<h4>${name}: ${layer}</h4>`;
    mapCanvases(layer, v.layers[layer], div, null);
    box.appendChild(div);
  });
}

// ---- tabs, start-up ------------------------------------------------------------------------
function switchTab(name) {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.tab === name));
  document.querySelectorAll(".tab-page").forEach((p) => { p.hidden = p.id !== `tab-${name}`; });
  if (name !== "char") $("zoom").hidden = true;
}

let seed = 1;
async function randomDigitInto(pad) {
  const view = await api(`/api/random/char?seed=${seed++}`);
  await pad.load(view.image);
  return view;
}

async function start() {
  const info = await api("/api/models");
  state.models = info.models;
  const select = $("model");
  const broken = info.models.filter((m) => m.error);
  if (broken.length) showMessage(broken.map((m) => `${m.label}: ${m.error}`).join("  |  "));
  for (const m of info.models.filter((m) => m.character_layers)) select.add(new Option(m.label, m.id));
  state.model = select.value || null;
  if (!state.model) {
    $("layers").innerHTML = '<p class="hint">No segment model was given: the layer views need one (--model models/mnist.keras).</p>';
  }
  select.addEventListener("change", () => { state.model = select.value; readPad(); compareNow(); });
  for (const [name, charset] of Object.entries(info.styles)) $("style").add(new Option(name, name));
  const readsText = info.models.some((m) => !m.error && m.view === "text");
  document.querySelectorAll(".text-only").forEach((e) => { e.hidden = !readsText; });  // characters to cut
  if (!info.models.some((m) => m.character_layers)) switchTab("captcha");  // no network to draw on
  state.styleKinds = info.style_kinds;
  state.styleViews = info.style_views;
  const gridModel = info.models.find((m) => m.view === "tiles" && !m.error);
  const example = (info.models.find((m) => !m.error) || {}).example_style;
  $("style").value = example && info.style_kinds[example] ? example
    : info.styles.distorted !== undefined ? "distorted" : $("style").value;
  if (gridModel) {  // image grids: the page asks which class to select in a dropped image
    $("grid-question").hidden = false;
    for (const c of gridModel.classes) $("prompt").add(new Option(c, c));
  }

  charPad = makePad($("pad"), readPad, 20);
  $("clear").addEventListener("click", () => { charPad.clear(); $("char-source").textContent = ""; });
  $("random-char").addEventListener("click", async () => {
    const view = await randomDigitInto(charPad);
    $("char-source").textContent = `On the pad: ${view.label}`;
    readPad();
  });
  pads = { a: makePad($("pad-a"), compareNow, 14), b: makePad($("pad-b"), compareNow, 14) };
  document.querySelectorAll("[data-clear]").forEach((b) => b.addEventListener("click", () => pads[b.dataset.clear].clear()));
  document.querySelectorAll("[data-random]").forEach((b) => b.addEventListener("click", async () => {
    await randomDigitInto(pads[b.dataset.random]); compareNow();
  }));
  $("compare-layer").addEventListener("change", sideBySide);
  document.querySelectorAll(".tab").forEach((t) => t.addEventListener("click", () => switchTab(t.dataset.tab)));

  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files.length) readCaptcha(e.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", () => { if ($("file").files.length) readCaptcha($("file").files[0]); });
  $("strength").addEventListener("input", () => { $("strength-value").textContent = $("strength").value; });
  $("random-captcha").addEventListener("click", async () => {
    if (state.styleViews[$("style").value] === "challenge") { readChallenge($("style").value, $("strength").value, seed++); return; }
    const model = state.models.find((m) => !m.error);
    const charset = model ? model.charset : "digits";
    const q = new URLSearchParams({ style: $("style").value, strength: $("strength").value, length: $("length").value,
                                    charset, seed: seed++ });
    const view = await api(`/api/random/captcha?${q}`);
    const blob = await (await fetch(view.image)).blob();
    readCaptcha(blob, view.text, view.question);
  });
}

start().catch((e) => showMessage(`could not start: ${e.message}`));
