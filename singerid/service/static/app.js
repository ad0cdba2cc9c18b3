// The singerid page: pick or drop a song, POST it to /identify, show the answer and the timbre map.
// Plain JS, no library, nothing fetched from anywhere but this server. Text goes in with
// textContent only (never innerHTML), so a singer or file name cannot inject markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg"; // the SVG namespace name, not a fetched URL
const $ = (id) => document.getElementById(id);
let lastMap = null;
let lastAnswer = null;

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

const pct = (x) => `${(100 * x).toFixed(0)} %`;
const num = (x, d = 3) => Number(x).toFixed(d);
function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.kind = body && body.kind;
    throw error;
  }
  return body;
}

function setState(state) { document.body.dataset.state = state; }

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

// ---- asking ---------------------------------------------------------------------------------
async function identify(file) {
  if (!file) { showError("Choose a song first."); return; }
  showError("");
  $("file-name").textContent = `${file.name} (${(file.size / 1048576).toFixed(1)} MiB)`;
  const form = new FormData();
  form.append("song", file, file.name);
  const params = new URLSearchParams({ similar: "5", evidence: "5", top: "5" });
  const k = $("opt-k").value.trim();
  if (k) params.set("k", k);
  params.set("method", $("opt-method").value);
  if ($("opt-reject").checked) params.set("reject_unknown", "true");
  setState("busy");
  $("busy").hidden = false;
  $("go").disabled = true;
  try {
    const answer = await getJSON(`/identify?${params}`, { method: "POST", body: form });
    lastAnswer = answer;
    showAnswer(answer);
    setState("done");
    await loadMap();
  } catch (error) {
    showError(`Could not identify ${file.name}: ${error.message}`);
    setState("error");
  } finally {
    $("busy").hidden = true;
    $("go").disabled = false;
  }
}

function showAnswer(a) {
  $("answer").hidden = false;
  $("answer-song").textContent = a.song;
  const singer = $("singer");
  singer.textContent = a.known ? a.singer : "unknown singer";
  singer.classList.toggle("unknown", !a.known);
  $("verdict-detail").textContent = a.known
    ? `${a.n_blocks} one-second blocks, ${a.method === "knn" ? "KNN vote" : "classifier head"}, ${a.similarity_kind} ${num(a.similarity)}`
    : `Closest singer: ${a.predicted}, but the ${a.similarity_kind} (${num(a.similarity)}) is below the threshold.`;
  $("share-meter").value = a.vote_share;
  $("share-text").textContent = `${pct(a.vote_share)} of blocks for ${a.predicted}`;

  const runners = $("runners-up");
  runners.replaceChildren();
  for (const r of a.runners_up) runners.append(el("li", `${r.singer}: ${pct(r.vote_share)} of blocks`));
  if (!a.runners_up.length) runners.append(el("li", "none: every block voted for the same singer", "hint"));

  const similar = $("similar");
  similar.replaceChildren();
  for (const s of a.similar_singers || []) similar.append(el("li", `${s.singer}: similarity ${num(s.similarity)}`));
  if (!(a.similar_singers || []).length) similar.append(el("li", "none reported", "hint"));

  const body = $("evidence").tBodies[0];
  body.replaceChildren();
  for (const e of a.evidence) {
    const row = document.createElement("tr");
    const song = el("td", e.song);
    song.title = e.path;
    row.append(song, el("td", e.singer), el("td", e.album || "—"),
      el("td", `${clock(e.query_offset_s)} ~ ${clock(e.reference_offset_s)}`), el("td", num(e.similarity)),
      el("td", e.n_matches, "num"));
    body.append(row);
  }
  if (!a.evidence.length) {
    const row = document.createElement("tr");
    const cell = el("td", "no evidence reported", "hint");
    cell.colSpan = 6;
    row.append(cell);
    body.append(row);
  }
  const total = a.timings_s && a.timings_s.total;
  $("timings").textContent = total ? `Answered in ${num(total, 2)} s.` : "";
}

// ---- the timbre map -------------------------------------------------------------------------
async function loadMap() {
  try {
    lastMap = await getJSON("/map");
  } catch (error) {
    $("map-desc").textContent = `No map: ${error.message}`;
    return;
  }
  drawMap(lastMap, lastAnswer);
}

function drawMap(map, answer) {
  const W = 720, H = 420, pad = 48;
  const plot = $("map");
  const desc = $("map-desc");
  plot.replaceChildren(desc);
  const points = map.singers.map((s) => ({ x: s.x, y: s.y, label: s.singer, kind: "singer" }));
  if (answer && answer.map_point) {
    points.push({ x: answer.map_point.x, y: answer.map_point.y, label: answer.song, kind: "song" });
  }
  if (!points.length) { desc.textContent = "No singers to map."; return; }
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => pad + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (W - 2 * pad);
  const sy = (y) => H - pad - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * (H - 2 * pad);
  const [ex, ey] = map.explained_variance || [0, 0];
  plot.append(svg("rect", { x: 1, y: 1, width: W - 2, height: H - 2, class: "frame" }));
  plot.append(svg("text", { x: W / 2, y: H - 10, class: "axis", "text-anchor": "middle" },
    `first axis (${pct(ex)} of the spread)`));
  plot.append(svg("text", { x: 14, y: H / 2, class: "axis", "text-anchor": "middle",
    transform: `rotate(-90 14 ${H / 2})` }, `second axis (${pct(ey)})`));
  const chosen = answer ? answer.predicted : null;
  for (const p of points) {
    const group = svg("g", { class: `point ${p.kind}${p.label === chosen && p.kind === "singer" ? " chosen" : ""}` });
    const [cx, cy] = [sx(p.x), sy(p.y)];
    if (p.kind === "song") {
      group.append(svg("path", { d: `M${cx} ${cy - 9} L${cx + 9} ${cy} L${cx} ${cy + 9} L${cx - 9} ${cy} Z` }));
    } else {
      group.append(svg("circle", { cx, cy, r: 6 }));
    }
    if (p.kind === "song") { // above (or below) the diamond, so it never sits on a singer's label
      const anchor = cx < 160 ? "start" : cx > W - 160 ? "end" : "middle";
      group.append(svg("text", { x: cx, y: cy > 60 ? cy - 16 : cy + 28, "text-anchor": anchor },
        `${p.label} (this song)`));
    } else {
      const right = cx < W - 140;
      group.append(svg("text", { x: right ? cx + 10 : cx - 10, y: cy + 4, "text-anchor": right ? "start" : "end" },
        p.label));
    }
    group.append(svg("title", {}, `${p.label}: (${num(p.x, 3)}, ${num(p.y, 3)})`));
    plot.append(group);
  }
  const n = map.singers.length;
  desc.textContent = `${n} singer${n === 1 ? "" : "s"} placed by timbre` +
    (answer && answer.map_point ? `; ${answer.song} lies nearest to the singers around it.` : ".");
  $("map-caption").textContent = `${map.method}; axes explain ${pct(ex + ey)} of the differences between singers.`;
}

// ---- the catalogue --------------------------------------------------------------------------
async function loadSingers() {
  const [health, list] = await Promise.all([getJSON("/health"), getJSON("/singers")]);
  const model = health.model && health.model.kind ? `model ${health.model.kind}` : "no model";
  $("status").textContent = `${health.singers} singers · ${health.vectors ?? 0} reference blocks · ${model}` +
    (health.status === "ok" ? "" : ` · ${health.status}: ${health.problems[0] || ""}`);
  const pick = $("singer-pick");
  pick.replaceChildren(...list.singers.map((s) => { const o = el("option", s.name); o.value = s.name; return o; }));
  const body = $("singers").tBodies[0];
  body.replaceChildren();
  for (const s of list.singers) {
    const row = document.createElement("tr");
    row.append(el("td", s.name), el("td", s.kind), el("td", s.n_songs, "num"), el("td", s.n_blocks, "num"));
    body.append(row);
  }
}

async function showSimilar(event) {
  event.preventDefault();
  const singer = $("singer-pick").value;
  const out = $("similar-singers");
  out.replaceChildren();
  if (!singer) return;
  try {
    const data = await getJSON(`/similar?${new URLSearchParams({ singer, top: "5" })}`);
    for (const s of data.similar) out.append(el("li", `${s.singer}: similarity ${num(s.similarity)}`));
    if (!data.similar.length) out.append(el("li", "no other singer", "hint"));
  } catch (error) {
    out.append(el("li", error.message, "error"));
  }
}

// ---- wiring ---------------------------------------------------------------------------------
function wire() {
  const input = $("song");
  const drop = $("drop");
  input.addEventListener("change", () => identify(input.files[0]));
  $("ask").addEventListener("submit", (event) => { event.preventDefault(); identify(input.files[0]); });
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) identify(file);
  });
  $("similar-form").addEventListener("submit", showSimilar);
  loadSingers().catch((error) => { $("status").textContent = `Server not ready: ${error.message}`; });
  loadMap();
}

document.addEventListener("DOMContentLoaded", wire);
