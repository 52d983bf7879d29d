// The gans explorer page: plain JavaScript over the JSON API in docs/explorer.md.
// Every control lives in `state`, which is mirrored into the URL's query string, so a view can
// be shared or scripted. Data is always written with textContent: names come from files.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
};

// Query keys, their defaults and types. Only values that differ from the default go in the URL.
const DEFAULTS = {
  panel: "sample", run: "", ckpt: "", ema: 1, seed: 0, n: 16, psi: 1, tz: 0, class: "",
  pins: "", rows: "1,2,3", cols: "4,5,6", layers: "", frames: 16, fps: 12, format: "gif",
  near: "", space: "pixels", k: 8, ckpt2: "", step: -1, sketch_seed: 0,
};
const state = { ...DEFAULTS };
let model = null;       // /api/model of the selected checkpoint
let listing = null;     // /api/runs
const tokens = {};      // latest request per panel: older answers are dropped

function readQuery() {
  const q = new URLSearchParams(location.search);
  for (const [key, fallback] of Object.entries(DEFAULTS)) {
    if (!q.has(key)) continue;
    const raw = q.get(key);
    // Numbers stay strings when they do not parse, so the server names the bad value.
    state[key] = typeof fallback === "number" && raw.trim() !== "" && !isNaN(Number(raw))
      ? Number(raw) : raw;
  }
}

function writeQuery() {
  const q = new URLSearchParams();
  for (const [key, fallback] of Object.entries(DEFAULTS)) {
    if (state[key] !== fallback && state[key] !== "") q.set(key, state[key]);
  }
  const text = q.toString();
  history.replaceState(null, "", text ? `?${text}` : location.pathname);
}

function set(changes) {
  Object.assign(state, changes);
  writeQuery();
}

// ------------------------------------------------------------------------ messages and API

function showError(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = false;
}

function clearError() {
  $("message").hidden = true;
  $("message").textContent = "";
}

async function api(path, params = {}, options = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  const url = `${path}${q.toString() ? "?" + q : ""}`;
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new Error(`the server cannot be reached (${err.message}); is gans serve still running?`);
  }
  const type = response.headers.get("content-type") || "";
  if (!response.ok) {
    const body = type.includes("json") ? await response.json() : { error: await response.text() };
    throw new Error(body.error || `${response.status} ${response.statusText}`);
  }
  return type.includes("json") ? response.json() : response.blob();
}

// A panel's draw: stale answers (the user moved on) are dropped, errors become the message.
async function guarded(panel, work) {
  const token = (tokens[panel] = (tokens[panel] || 0) + 1);
  const current = () => tokens[panel] === token;
  try {
    await work(current);
    if (current()) clearError();
  } catch (err) {
    if (current()) showError(err.message);
  }
}

function sampling(extra = {}) {
  return {
    ckpt: state.ckpt, ema: state.ema ? 1 : 0,
    psi: model && model.truncation && Number(state.psi) !== 1 ? state.psi : "",
    tz: Number(state.tz) > 0 || typeof state.tz === "string" ? state.tz : "",
    class: state.class, ...extra,
  };
}

// ------------------------------------------------------------------------ pins

function pins() {
  return String(state.pins).split(",").filter(Boolean).map((text) => {
    const [seed, cls] = text.split(":");
    return { seed: Number(seed), cls: cls === undefined ? "" : cls, key: text };
  });
}

function pinKey(seed, cls) {
  return cls === null || cls === undefined || cls === "" ? `${seed}` : `${seed}:${cls}`;
}

function togglePin(seed, cls) {
  const key = pinKey(seed, cls);
  const list = pins().map((p) => p.key);
  const next = list.includes(key) ? list.filter((k) => k !== key) : [...list, key];
  set({ pins: next.join(",") });
  drawPins();
  for (const cell of document.querySelectorAll(".cell[data-key]")) {
    cell.classList.toggle("pinned", next.includes(cell.dataset.key));
  }
}

function pinLabel(pin) {
  return pin.cls !== "" && model && model.classes.length
    ? `${pin.seed} · ${model.classes[Number(pin.cls)] || pin.cls}` : `${pin.seed}`;
}

function drawPins() {
  const box = $("pins");
  box.replaceChildren();
  const list = pins();
  $("pins-hint").hidden = list.length > 0;
  for (const pin of list) {
    const params = new URLSearchParams({ ckpt: state.ckpt, seed: pin.seed, ema: state.ema ? 1 : 0 });
    if (pin.cls !== "") params.set("class", pin.cls);
    const label = pinLabel(pin);
    box.append(el("span", { className: "pin", dataset: { key: pin.key } },
      state.ckpt ? el("img", { src: `/api/image?${params}`, alt: `seed ${pin.seed}` }) : "",
      label,
      el("button", { type: "button", title: "unpin", textContent: "×",
                     onclick: () => togglePin(pin.seed, pin.cls) })));
  }
  const near = $("near");
  near.replaceChildren(...list.map((p) => el("option", { value: p.key, textContent: `seed ${pinLabel(p)}` })));
  if (!state.near && list.length) state.near = list[0].key;
  near.value = state.near;
}

// ------------------------------------------------------------------------ checkpoints

async function loadListing() {
  listing = await api("/api/runs");
  const options = [];
  for (const run of listing.runs) {
    for (const c of run.checkpoints) options.push([c.id, `${run.name}: ${c.name}`]);
  }
  for (const c of listing.checkpoints) options.push([c.id, c.id]);
  for (const select of [$("ckpt"), $("ckpt2")]) {
    const keep = select === $("ckpt") ? state.ckpt : state.ckpt2;
    select.replaceChildren(...options.map(([id, label]) => el("option", { value: id, textContent: label })));
    if (keep) {
      if (!options.some(([id]) => id === keep)) select.append(el("option", { value: keep, textContent: keep }));
      select.value = keep;
    }
  }
  if (!state.ckpt && options.length) set({ ckpt: options[0][0] });
  if (!state.ckpt2 && options.length) state.ckpt2 = (options[1] || options[0])[0];
  $("ckpt").value = state.ckpt;
  $("ckpt2").value = state.ckpt2;
  if (!options.length) showError("no checkpoints under the served paths yet; a run writes " +
                                 "checkpoints/last.ckpt every train.checkpoint_every steps");
  return options.length;
}

async function loadModel() {
  model = null;
  if (!state.ckpt) return;
  model = await api("/api/model", { ckpt: state.ckpt, ema: state.ema ? 1 : 0 });
  $("model-info").textContent = `${model.recipe}: ${model.generator}, ${model.resolution}px, ` +
    `${model.weights === "ema" ? "EMA weights" : "trained weights"}` +
    (model.classes.length ? `, ${model.classes.length} classes` : "");
  for (const node of document.querySelectorAll(".needs-truncation")) node.hidden = !model.truncation;
  for (const node of document.querySelectorAll(".needs-classes")) node.hidden = !model.classes.length;
  const cls = $("class");
  cls.replaceChildren(el("option", { value: "", textContent: "every class in turn" }),
    ...model.classes.map((name, i) => el("option", { value: String(i), textContent: name })));
  cls.value = state.class;
  const mixTab = document.querySelector('nav button[data-panel="mix"]');
  mixTab.disabled = !model.style_mixing;
  mixTab.title = model.style_mixing ? "" : "this checkpoint's model has no per-layer styles";
  // An image-to-image model makes images from drawings only: the seed panels are off.
  for (const name of NOISE_PANELS) {
    const tab = document.querySelector(`nav button[data-panel="${name}"]`);
    if (!tab || (name === "mix" && !model.translates)) continue;
    tab.disabled = model.translates;
    tab.title = model.translates ? "this checkpoint is an image-to-image model: draw in Sketch" : "";
  }
  if (model.style_mixing) {
    const [start, stop] = state.layers ? state.layers.split("-").map(Number) : model.default_layers;
    for (const id of ["layer-start", "layer-stop"]) $(id).max = model.num_ws;
    $("layer-start").value = start;
    $("layer-stop").value = stop;
    $("layers-hint").textContent = `(0 to ${model.num_ws}; default ${model.default_layers.join(" to ")}: the fine layers)`;
  }
  $("space").querySelector('option[value="classifier"]').disabled = model.dataset !== "fashion-mnist";
  drawPins();
}

// ------------------------------------------------------------------------ sample grids

function gridCell(image, pinnable = true) {
  const key = pinKey(image.seed, image.class);
  const img = el("img", { src: image.src, alt: `seed ${image.seed}`, dataset: { seed: image.seed } });
  if (pinnable) img.onclick = () => togglePin(image.seed, image.class);
  const caption = el("figcaption", {},
    el("span", { textContent: `${image.seed}${image.class_name ? " · " + image.class_name : ""}` }),
    el("a", { href: image.href, download: "", title: "download this PNG (with provenance)", textContent: "⤓" }));
  const cell = el("figure", { className: "cell", dataset: { key } }, img, caption);
  cell.classList.toggle("pinned", pins().some((p) => p.key === key));
  return cell;
}

function fillGrid(box, answer, pinnable = true) {
  box.style.setProperty("--cols", Math.ceil(Math.sqrt(answer.images.length)));
  box.replaceChildren(...answer.images.map((image) => gridCell(image, pinnable)));
  box.dataset.seed = answer.seed;
}

async function drawSample() {
  await guarded("sample", async (current) => {
    if (!state.ckpt) return;
    const answer = await api("/api/sample", sampling({ seed: state.seed, n: state.n }));
    if (current()) fillGrid($("grid"), answer);
  });
}

// ------------------------------------------------------------------------ runs panel

const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c"];

function lineChart(box, series, width = 420, height = 200) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  const points = Object.values(series).flat();
  box.replaceChildren(svg);
  if (!points.length) {
    box.replaceChildren(el("p", { className: "muted", textContent: "not logged in this run" }));
    return;
  }
  const pad = { l: 44, r: 8, t: 8, b: 30 };
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]).filter(Number.isFinite);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const sx = (x) => pad.l + (x1 === x0 ? 0.5 : (x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const sy = (y) => height - pad.b - (y - y0) / (y1 - y0) * (height - pad.t - pad.b);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  add("line", { class: "axis", x1: pad.l, y1: height - pad.b, x2: width - pad.r, y2: height - pad.b });
  add("line", { class: "axis", x1: pad.l, y1: pad.t, x2: pad.l, y2: height - pad.b });
  const fmt = (v) => Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
  add("text", { x: pad.l - 4, y: sy(y1) + 4, "text-anchor": "end" }, fmt(y1));
  add("text", { x: pad.l - 4, y: sy(y0), "text-anchor": "end" }, fmt(y0));
  add("text", { x: pad.l, y: height - pad.b + 14 }, x0);
  add("text", { x: width - pad.r, y: height - pad.b + 14, "text-anchor": "end" }, x1);
  add("text", { x: (width + pad.l) / 2, y: height - 4, "text-anchor": "middle" }, "generator step");
  Object.entries(series).forEach(([name, data], i) => {
    if (!data.length) return;
    const colour = COLOURS[i % COLOURS.length];
    add("polyline", { stroke: colour, points: data.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" ") });
    if (data.length < 30) for (const [x, y] of data) add("circle", { cx: sx(x), cy: sy(y), r: 2.5, fill: colour });
  });
  // The legend goes under the plot, where it can never cover a curve.
  box.append(el("div", { className: "legend" }, ...Object.keys(series).map((name, i) =>
    el("span", { className: "key", textContent: name, dataset: { colour: i % COLOURS.length } }))));
}

function fmtFid(best) {
  return best ? `${best.value.toFixed(2)} @ ${best.step}` : "–";
}

async function drawRuns() {
  await guarded("runs", async (current) => {
    if (!listing) await loadListing();
    if (!current()) return;
    const body = $("runs-table").querySelector("tbody");
    body.replaceChildren(...listing.runs.map((run) => {
      const r = run.recipe || {};
      const row = el("tr", { dataset: { run: run.id } },
        el("td", { textContent: run.name }),
        el("td", { textContent: r.error ? r.error : `${r.generator} / ${r.loss}` }),
        el("td", { textContent: r.data ? `${r.data} ${r.resolution}px${r.conditional ? ", by class" : ""}` : "" }),
        el("td", { textContent: run.steps ?? "–" }),
        el("td", { textContent: run.kimg === null ? "–" : run.kimg.toFixed(1) }),
        el("td", { textContent: fmtFid(run.best_fid), title: run.fid_protocol || "" }),
        el("td", {}, ...run.checkpoints.map((c) => el("button", {
          type: "button", textContent: c.name, title: "sample this checkpoint",
          onclick: (event) => { event.stopPropagation(); chooseCheckpoint(c.id, "sample"); } }))));
      row.onclick = () => { set({ run: run.id, step: -1 }); drawRunDetail(); };
      row.classList.toggle("selected", run.id === state.run);
      return row;
    }));
    if (!listing.runs.length) body.append(el("tr", {}, el("td", { colSpan: 7, textContent: "no runs under the served paths" })));
    if (!state.run && listing.runs.length) state.run = listing.runs[0].id;
    if (state.run) await drawRunDetail();
  });
}

async function drawRunDetail() {
  await guarded("run", async (current) => {
    const run = await api("/api/run", { run: state.run });
    if (!current()) return;
    for (const row of document.querySelectorAll("#runs-table tbody tr")) {
      row.classList.toggle("selected", row.dataset.run === state.run);
    }
    $("run-detail").hidden = false;
    $("run-title").textContent = run.name;
    $("run-protocol").textContent = run.fid_protocol
      ? `FID protocol: ${run.fid_protocol}` : "No FID recorded in this run (metrics.fid_every is 0, or no evaluation is due yet).";
    const c = run.curves;
    lineChart($("chart-fid"), { fid: c.fid || [] });
    lineChart($("chart-loss"), { "loss/generator": c["loss/generator"] || [],
                                 "loss/discriminator": c["loss/discriminator"] || [] });
    const slider = $("step");
    slider.max = Math.max(0, run.samples.length - 1);
    const at = state.step >= 0 && state.step < run.samples.length ? state.step : run.samples.length - 1;
    slider.value = at;
    slider.disabled = run.samples.length < 2;
    slider.dataset.names = JSON.stringify(run.samples);
    showStep(at);
  });
}

function showStep(index) {
  const names = JSON.parse($("step").dataset.names || "[]");
  const name = names[index];
  $("step-image").hidden = !name;
  $("step-label").textContent = name ? `step ${Number(name.match(/\d+/)[0])} (${index + 1} of ${names.length})` : "no sample grids yet";
  if (name) $("step-image").src = `/api/run/sample?${new URLSearchParams({ run: state.run, name })}`;
}

// ------------------------------------------------------------------------ style mixing

async function drawMix() {
  await guarded("mix", async (current) => {
    if (!model || !model.style_mixing) {
      $("mix-image").removeAttribute("src");
      throw new Error("style mixing needs a style model (stylegan-lite); pick another checkpoint");
    }
    const layers = state.layers || model.default_layers.join("-");
    const cls = state.class === "" && model.classes.length ? "0" : state.class;
    $("mix-class").textContent = model.classes.length
      ? `Class: ${model.classes[Number(cls)] || cls} (the class chosen in Sample; the first when none is).` : "";
    const blob = await api("/api/style-mix", sampling({
      rows: state.rows, cols: state.cols, layers, tz: "", class: cls }));
    if (current()) $("mix-image").src = URL.createObjectURL(blob);
  });
}

// ------------------------------------------------------------------------ walk

let walkJob = null;

async function startWalk() {
  const list = pins();
  if (list.length < 2) { showError("a walk needs at least two pinned images: click images in Sample to pin them"); return; }
  const classes = new Set(list.map((p) => p.cls));
  const cls = list[0].cls !== "" ? list[0].cls : state.class;
  await guarded("walk", async () => {
    const job = await api("/api/walk", sampling({
      seeds: list.map((p) => p.seed).join(","), frames: state.frames, fps: state.fps,
      format: state.format, class: cls }), { method: "POST" });
    walkJob = job.id;
    $("walk-cancel").disabled = false;
    $("walk-result").replaceChildren();
    $("walk-state").textContent = classes.size > 1 ? "running (the pins differ in class: the walk uses the first pin's)" : "running";
    pollWalk(job.id);
  });
}

// Follows a background job until it ends or `wanted()` turns false: progress and state shown
// in `view.progress` / `view.state`, `view.update(job)` at every poll, `view.done(job)` once.
async function pollJob(id, wanted, view) {
  for (let tries = 0; tries < view.tries && wanted(); tries++) {
    let job;
    try {
      job = await api(`/api/jobs/${id}`);
    } catch (err) {
      showError(err.message);
      break;
    }
    view.progress.value = job.progress;
    if (view.update) view.update(job);
    if (job.state === "done") {
      view.done(job);
      break;
    }
    if (job.state === "error" || job.state === "cancelled") {
      view.state.textContent = job.state;
      if (job.state === "error") showError(job.message);
      break;
    }
    view.state.textContent = job.message || `running ${Math.round(job.progress * 100)}%`;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function pollWalk(id) {
  await pollJob(id, () => walkJob === id, {
    progress: $("walk-progress"), state: $("walk-state"), tries: 3000,
    done: (job) => {
      const url = job.result;
      const media = job.params.format === "mp4"
        ? el("video", { src: url, autoplay: true, loop: true, muted: true, controls: true })
        : el("img", { src: url, alt: "walk", id: "walk-image" });
      $("walk-result").replaceChildren(media, el("div", {},
        el("a", { href: url, download: "", textContent: `download ${job.params.format.toUpperCase()}` })));
      $("walk-state").textContent = `done in ${job.seconds} s`;
    },
  });
  if (walkJob === id) { walkJob = null; $("walk-cancel").disabled = true; }
}

async function cancelWalk() {
  if (!walkJob) return;
  const id = walkJob;
  try { await api(`/api/jobs/${id}/cancel`, {}, { method: "POST" }); } catch (err) { showError(err.message); }
}

// ------------------------------------------------------------------------ project

let projectJob = null;   // the running projection
let projected = null;    // the finished one that vary, mix and move start from

function prepareProject() {
  for (const node of document.querySelectorAll(".needs-style")) node.hidden = !(model && model.style_mixing);
  const names = model ? model.classes : [];
  const options = (select, extra) => {
    const keep = select.value;
    select.replaceChildren(...extra.map(([v, t]) => el("option", { value: v, textContent: t })),
      ...names.map((name, i) => el("option", { value: String(i), textContent: name })));
    if ([...select.options].some((o) => o.value === keep)) select.value = keep;
  };
  options($("project-class"), [["best", "best (try every class)"]]);
  options($("project-toward"), []);
  if (!(model && model.style_mixing)) $("project-space").value = "z";
  return Promise.resolve();
}

async function startProject() {
  const file = $("project-file").files[0];
  const space = $("project-space").value;
  await guarded("project", async () => {
    const params = { ckpt: state.ckpt, ema: state.ema ? 1 : 0, space, steps: $("project-steps").value,
      seed: file ? "" : $("project-seed").value,
      class: model.classes.length ? $("project-class").value : "" };
    const job = await api("/api/project", params, { method: "POST", body: file || null });
    projectJob = job.id;
    projected = null;
    $("project-after").hidden = true;
    $("project-cancel").disabled = false;
    $("project-frames").replaceChildren();
    $("project-state").textContent = "running";
    pollProject(job.id);
  });
}

async function pollProject(id) {
  let shown = 0;
  await pollJob(id, () => projectJob === id, {
    progress: $("project-progress"), state: $("project-state"), tries: 12000,
    update: (job) => {
      for (const src of (job.frames || []).slice(shown)) {
        $("project-frames").append(el("img", { src, alt: `step ${shown}`, className: "pixelated" }));
        shown += 1;
      }
    },
    done: (job) => {
      $("project-frames").append(el("img", { src: job.result, alt: "projection", id: "project-image", className: "pixelated" }));
      $("project-state").textContent = `done in ${job.seconds} s: PSNR ${job.psnr_db} dB` +
        (job.found_class ? `, class ${job.found_class}` : "");
      projected = id;
      $("project-after").hidden = false;
    },
  });
  if (projectJob === id) { projectJob = null; $("project-cancel").disabled = true; }
}

async function cancelProject() {
  if (!projectJob) return;
  try { await api(`/api/jobs/${projectJob}/cancel`, {}, { method: "POST" }); } catch (err) { showError(err.message); }
}

async function aroundProjection(kind) {
  if (!projected) return;
  await guarded("project-around", async (current) => {
    const params = { ckpt: state.ckpt, ema: state.ema ? 1 : 0, kind };
    if (kind === "vary") Object.assign(params, { n: $("project-n").value, spread: $("project-spread").value });
    if (kind === "mix") Object.assign(params, { seeds: $("project-seeds").value, class: model.classes.length ? $("project-toward").value : "" });
    if (kind === "toward") params.class = $("project-toward").value;
    const blob = await api(`/api/jobs/${projected}/around`, params);
    if (current()) $("project-around").src = URL.createObjectURL(blob);
  });
}

// ------------------------------------------------------------------------ memorisation

async function drawNearest() {
  await guarded("nearest", async (current) => {
    const box = $("nearest-result");
    const pin = pins().find((p) => p.key === state.near) || pins()[0];
    if (!pin) {
      box.replaceChildren(el("p", { className: "muted", textContent: "pin an image in Sample first" }));
      return;
    }
    box.replaceChildren(el("p", { className: "muted", textContent: "searching (the first search in a space builds its index)…" }));
    const answer = await api("/api/nearest", sampling({ seed: pin.seed, class: pin.cls, space: state.space, k: state.k, tz: state.tz || "" }));
    if (!current()) return;
    const first = answer.neighbours[0];
    const ratio = first && answer.typical > 0 ? first.distance / answer.typical : null;
    box.replaceChildren(
      el("p", { textContent: `${answer.index_size} training images (${answer.data}), ${answer.space} space; ` +
        `typical distance between a training image and its nearest other: ${answer.typical.toFixed(3)}` +
        (ratio === null ? "" : `; this image's nearest: ${first.distance.toFixed(3)} (${ratio.toFixed(2)}× typical)`) }),
      el("div", { className: "neighbours" },
        el("figure", { className: "query" }, el("img", { src: answer.query, alt: "pinned image" }), el("figcaption", { textContent: `seed ${pinLabel(pin)}` })),
        ...answer.neighbours.map((n) => el("figure", {}, el("img", { src: n.src, alt: `training image ${n.index}` }),
          el("figcaption", { textContent: `#${n.index}${n.label_name ? " " + n.label_name : ""} · ${n.distance.toFixed(3)}` })))));
  });
}

// ------------------------------------------------------------------------ compare

async function drawCompare() {
  await guarded("compare", async (current) => {
    const name = (id) => ($("ckpt").querySelector(`option[value="${CSS.escape(id)}"]`) || {}).textContent || id;
    $("compare-a-title").textContent = name(state.ckpt);
    $("compare-b-title").textContent = name(state.ckpt2);
    const params = { seed: state.seed, n: state.n };
    const other = await api("/api/model", { ckpt: state.ckpt2, ema: state.ema ? 1 : 0 });
    const both = [sampling(params), {
      ...sampling(params), ckpt: state.ckpt2,
      psi: other.truncation && Number(state.psi) !== 1 ? state.psi : "",
      class: other.classes.length ? state.class : "" }];
    const [a, b] = await Promise.all([api("/api/sample", both[0]), api("/api/sample", both[1])]);
    if (!current()) return;
    fillGrid($("compare-a"), a, false);
    fillGrid($("compare-b"), b, false);
  });
}

// ------------------------------------------------------------------------ sketch
// The canvas is white with black strokes; while the user draws, its PNG goes to /api/sketch
// at most every SKETCH_MS and never with a request in flight, so the image follows the pen.

const NOISE_PANELS = ["sample", "mix", "walk", "project", "nearest", "compare"];
const SKETCH_MS = 150;
const sketch = { inked: false, dirty: false, busy: false, timer: null, strokes: 0 };

function clearCanvas() {
  const canvas = $("sketch-canvas");
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  Object.assign(sketch, { inked: false, dirty: false, strokes: 0 });
  tokens.sketch = (tokens.sketch || 0) + 1;  // an answer for the old drawing is dropped
  for (const id of ["sketch-input", "sketch-output"]) $(id).removeAttribute("src");
  $("sketch-state").textContent = "draw with the mouse, a pen or a finger";
}

function sketchChanged() {
  sketch.dirty = true;
  if (!sketch.timer) sketch.timer = setTimeout(() => { sketch.timer = null; translateSketch(); }, SKETCH_MS);
}

async function translateSketch() {
  if (sketch.busy || !sketch.dirty || !sketch.inked || !model || !model.translates) return;
  sketch.dirty = false;
  sketch.busy = true;
  try {
    await guarded("sketch", async (current) => {
      const png = await new Promise((resolve) => $("sketch-canvas").toBlob(resolve, "image/png"));
      const answer = await api("/api/sketch", { ckpt: state.ckpt, ema: state.ema ? 1 : 0, seed: state.sketch_seed },
        { method: "POST", body: png, headers: { "content-type": "image/png" } });
      if (!current()) return;
      $("sketch-input").src = answer.input;
      $("sketch-output").src = answer.output;
      $("sketch-state").textContent = `${sketch.strokes} stroke${sketch.strokes === 1 ? "" : "s"}, ` +
        `${answer.resolution}px, seed ${answer.seed}`;
    });
  } finally {
    sketch.busy = false;
  }
  if (sketch.dirty) sketchChanged();  // strokes drawn while the answer was on its way
}

function bindCanvas() {
  const canvas = $("sketch-canvas");
  let last = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width,
            (event.clientY - box.top) * canvas.height / box.height];
  };
  const line = (from, to) => {
    const ctx = canvas.getContext("2d");
    Object.assign(ctx, { lineCap: "round", lineJoin: "round", strokeStyle: "#000",
                         lineWidth: Number($("sketch-pen").value) });
    ctx.beginPath();
    ctx.moveTo(...from);
    ctx.lineTo(...to);
    ctx.stroke();
  };
  canvas.addEventListener("pointerdown", (event) => {
    if (!model || !model.translates) return;
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    line(last, last);  // a click is a dot
    sketch.inked = true;
    sketchChanged();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = at(event);
    line(last, next);
    last = next;
    sketchChanged();
  });
  const end = () => {
    if (!last) return;
    last = null;
    sketch.strokes += 1;
    sketchChanged();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  $("sketch-clear").onclick = clearCanvas;
  $("sketch-seed").onchange = () => { set({ sketch_seed: Number($("sketch-seed").value) }); sketchChanged(); };
  clearCanvas();
}

async function drawSketch() {
  const ready = Boolean(model && model.translates);
  $("sketch-needs").hidden = ready;
  $("sketch-area").hidden = !ready;
  if (ready) {
    sketchChanged();
    return;
  }
  // A noise model: offer the image-to-image checkpoints that are served.
  const paired = [];
  for (const run of listing ? listing.runs : []) {
    if (run.recipe && run.recipe.paired) for (const c of run.checkpoints) paired.push([c.id, `${run.name}: ${c.name}`]);
  }
  $("sketch-needs-text").textContent = (model ? `${model.recipe} (${model.generator}) makes images from noise. ` : "") +
    "Sketches need a pix2pix run: an image-to-image checkpoint trained with recipes/pix2pix/" +
    (paired.length ? ". Served here:" : "; none is under the served paths.");
  $("sketch-choices").replaceChildren(...paired.map(([id, label]) => el("button", {
    type: "button", textContent: label, title: "draw with this checkpoint", onclick: () => chooseCheckpoint(id, "sketch") })));
}

// ------------------------------------------------------------------------ panels

const PANELS = {
  runs: drawRuns, sample: drawSample, mix: drawMix, walk: async () => {}, nearest: drawNearest,
  sketch: drawSketch, compare: drawCompare, project: prepareProject,
};

function showPanel(name) {
  if (!(name in PANELS)) name = "sample";
  if (model && model.translates && NOISE_PANELS.includes(name)) name = "sketch";
  set({ panel: name });
  for (const section of document.querySelectorAll("section[data-panel]")) {
    section.classList.toggle("active", section.dataset.panel === name);
  }
  for (const tab of document.querySelectorAll("nav button")) {
    tab.setAttribute("aria-selected", tab.dataset.panel === name ? "true" : "false");
  }
  return PANELS[name]();
}

function redraw() {
  return PANELS[state.panel]();
}

async function chooseCheckpoint(id, panel) {
  set({ ckpt: id, class: "", layers: "", pins: "", near: "" });
  $("ckpt").value = id;
  await guarded("model", loadModel);
  await showPanel(panel || state.panel);
}

let debounce = null;
function later(fn, ms = 150) {
  clearTimeout(debounce);
  debounce = setTimeout(fn, ms);
}

function bind() {
  const tabs = $("tabs");
  for (const section of document.querySelectorAll("section[data-panel]")) {
    tabs.append(el("button", { type: "button", textContent: section.dataset.title,
      dataset: { panel: section.dataset.panel }, onclick: () => showPanel(section.dataset.panel) }));
  }
  $("ckpt").onchange = () => chooseCheckpoint($("ckpt").value);
  $("ckpt2").onchange = () => { set({ ckpt2: $("ckpt2").value }); redraw(); };
  $("ema").onchange = async () => { set({ ema: $("ema").checked ? 1 : 0 }); await guarded("model", loadModel); redraw(); };
  $("refresh").onclick = async () => { await guarded("listing", loadListing); redraw(); };
  $("seed").onchange = () => { set({ seed: $("seed").value }); redraw(); };
  $("prev").onclick = () => { set({ seed: Math.max(0, Number(state.seed) - Number(state.n)) }); $("seed").value = state.seed; redraw(); };
  $("next").onclick = () => { set({ seed: Number(state.seed) + Number(state.n) }); $("seed").value = state.seed; redraw(); };
  $("reroll").onclick = () => { set({ seed: Math.floor(Math.random() * 1e6) }); $("seed").value = state.seed; redraw(); };
  $("n").onchange = () => { set({ n: Number($("n").value) }); redraw(); };
  $("psi").oninput = () => { set({ psi: Number($("psi").value) }); showTruncation(); later(redraw); };
  $("tz").oninput = () => { set({ tz: Number($("tz").value) }); showTruncation(); later(redraw); };
  $("class").onchange = () => { set({ class: $("class").value }); redraw(); };
  for (const id of ["rows", "cols"]) $(id).onchange = () => { set({ [id]: $(id).value.trim() }); redraw(); };
  for (const id of ["layer-start", "layer-stop"]) {
    $(id).onchange = () => { set({ layers: `${$("layer-start").value}-${$("layer-stop").value}` }); redraw(); };
  }
  for (const id of ["frames", "fps", "k"]) $(id).onchange = () => { set({ [id]: Number($(id).value) }); if (id === "k") redraw(); };
  $("format").onchange = () => set({ format: $("format").value });
  $("space").onchange = () => { set({ space: $("space").value }); redraw(); };
  $("near").onchange = () => { set({ near: $("near").value }); redraw(); };
  $("walk-start").onclick = startWalk;
  $("walk-cancel").onclick = cancelWalk;
  $("project-start").onclick = startProject;
  $("project-cancel").onclick = cancelProject;
  $("project-vary").onclick = () => aroundProjection("vary");
  $("project-mix").onclick = () => aroundProjection("mix");
  $("project-move").onclick = () => aroundProjection("toward");
  $("step").oninput = () => { set({ step: Number($("step").value) }); showStep(Number($("step").value)); };
  bindCanvas();
}

function showTruncation() {
  $("psi-out").textContent = Number(state.psi) === 1 ? "1 (none)" : state.psi;
  $("tz-out").textContent = Number(state.tz) > 0 ? state.tz : "off";
}

function fillControls() {
  $("ema").checked = Boolean(Number(state.ema));
  $("seed").value = state.seed;
  $("n").value = String(state.n);
  if ($("n").value !== String(state.n)) $("n").append(el("option", { textContent: String(state.n), selected: true }));
  $("psi").value = state.psi;
  $("tz").value = state.tz;
  $("rows").value = state.rows;
  $("cols").value = state.cols;
  $("frames").value = state.frames;
  $("fps").value = state.fps;
  $("format").value = state.format;
  $("space").value = state.space;
  $("k").value = state.k;
  $("sketch-seed").value = state.sketch_seed;
  showTruncation();
}

async function refreshListing() {
  // New checkpoints of a live run show up without a reload; the selection stays.
  try { await loadListing(); if (state.panel === "runs") await drawRuns(); } catch (err) { /* next time */ }
}

async function start() {
  readQuery();
  bind();
  fillControls();
  await guarded("listing", loadListing);
  await guarded("model", loadModel);
  drawPins();
  await showPanel(state.panel);
  document.body.dataset.ready = "1";
  setInterval(refreshListing, 15000);
}

start();
