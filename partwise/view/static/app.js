// partwise view: plain JavaScript, no network but the server that sent this page.
"use strict";

const SKELETON = [[0, 1], [0, 2], [1, 3], [2, 4], [5, 6], [5, 7], [7, 9], [6, 8], [8, 10], [5, 11], [6, 12],
  [11, 12], [11, 13], [13, 15], [12, 14], [14, 16]];
const PART_COLORS = {
  head: "#e53935", hip: "#8e24aa", left_arm: "#3949ab", right_arm: "#1e88e5", left_hand: "#00acc1",
  right_hand: "#00897b", hand: "#00897b", left_leg: "#43a047", right_leg: "#7cb342", left_foot: "#fdd835",
  right_foot: "#fb8c00", foot: "#fb8c00", leg: "#43a047", arm: "#1e88e5",
};
const $ = (id) => document.getElementById(id);
const state = { videos: [], video: null, index: 0, matches: null, matchPersons: new Map(), layers: {} };

function isNone(name) { return /:\s*(none|no_interaction|no interaction)$/i.test(name || ""); }
function partColor(part) { return PART_COLORS[part] || "#9e9e9e"; }

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------------------------------------- listing
async function start() {
  document.querySelectorAll("#layers input").forEach((box) => {
    state.layers[box.dataset.layer] = box.checked;
    box.addEventListener("change", () => { state.layers[box.dataset.layer] = box.checked; draw(); });
  });
  $("query-form").addEventListener("submit", (e) => { e.preventDefault(); runQuery(); });
  $("clear-query").addEventListener("click", clearQuery);
  $("keyframe").addEventListener("input", () => showKeyframe(Number($("keyframe").value), true));
  const video = $("video");
  video.addEventListener("timeupdate", followVideo);
  video.addEventListener("seeked", followVideo);
  video.addEventListener("loadeddata", () => { resize(); draw(); });
  $("image").addEventListener("load", () => { resize(); draw(); });
  window.addEventListener("resize", () => { resize(); draw(); });
  const info = await getJSON("/api/info");
  $("source-info").textContent = `${info.kind}: ${info.name}`;
  const warnings = (info.run && info.run.warnings) || [];
  if (warnings.length) {
    $("warnings-box").hidden = false;
    warnings.forEach((w) => $("warnings").append(el("li", {}, typeof w === "string" ? w : JSON.stringify(w))));
  }
  state.videos = (await getJSON("/api/videos")).videos;
  const list = $("videos");
  for (const v of state.videos) {
    const what = v.kind || "no media";
    const li = el("li", { "data-video-id": v.video_id },
      `${v.video_id} (${what}; ${v.keyframes} keyframes, ${v.persons} persons)`);
    li.addEventListener("click", () => openVideo(v.video_id));
    list.append(li);
  }
  document.body.dataset.ready = "1";
  if (state.videos.length) await openVideo(state.videos[0].video_id);
}

async function openVideo(id, keyframe = null) {
  if (!state.video || state.video.video_id !== id) {
    const data = await getJSON(`/api/video?id=${encodeURIComponent(id)}`);
    state.video = data;
    document.querySelectorAll("#videos li").forEach((li) => li.classList.toggle("active", li.dataset.videoId === id));
    const video = $("video"), image = $("image");
    video.hidden = image.hidden = true;
    video.removeAttribute("src");
    image.removeAttribute("src");
    if (data.media && data.kind === "video") { video.hidden = false; video.src = data.media; }
    else if (data.media) { image.hidden = false; image.src = data.media; }
    const groups = new Set(data.keyframes.flatMap((k) => k.persons.map((p) => p.group)));
    state.both = groups.has("gt") && groups.has("pred");
    $("gt-panel").hidden = !(state.both && state.layers.ground_truth);
    $("pred-caption").textContent = data.annotated ? "prediction (over the run's annotated video)" :
      (groups.has("pred") ? "prediction" : "ground truth");
    $("empty-note").textContent = data.media ? "" : "No video or image of this id under PATH: overlays only.";
    $("keyframe").max = Math.max(0, data.keyframes.length - 1);
    resize();
  }
  showKeyframe(keyframe === null ? 0 : keyframe, true);
}

// ---------------------------------------------------------------------------------------------- keyframes
function nearestKeyframe(time) {
  const frames = state.video.keyframes;
  let best = 0, bestDistance = Infinity;
  frames.forEach((k, i) => {
    const d = Math.abs((k.time_s || 0) - time);
    if (d < bestDistance) { best = i; bestDistance = d; }
  });
  return best;
}

function followVideo() {
  if (!state.video || $("video").hidden) return;
  const i = nearestKeyframe($("video").currentTime);
  if (i !== state.index) showKeyframe(i, false); else draw();
}

function showKeyframe(i, seek) {
  if (!state.video) return;
  const frames = state.video.keyframes;
  state.index = Math.max(0, Math.min(i, frames.length - 1));
  $("keyframe").value = state.index;
  const k = frames[state.index];
  $("keyframe-label").textContent = k ? `${state.index + 1}/${frames.length}  t=${k.time_s ?? "-"} s  frame ${k.frame_index ?? "-"}` : "no keyframes";
  const video = $("video");
  if (seek && k && !video.hidden && k.time_s !== null && Math.abs(video.currentTime - k.time_s) > 0.01) {
    video.pause();
    video.currentTime = k.time_s;
  }
  renderPeople();
  draw();
}

function renderPeople() {
  const body = $("people").tBodies[0];
  body.replaceChildren();
  const k = state.video && state.video.keyframes[state.index];
  if (!k) return;
  const key = `${state.video.video_id}|${k.time_s}|${k.frame_index}`;
  const matched = state.matchPersons.get(key) || [];
  for (const p of k.persons) {
    const id = p.track_id ?? p.person_id;
    const tr = el("tr", { "data-person": String(id), "data-group": p.group });
    tr.className = p.group + (matched.includes(p.person_id) || matched.includes(id) ? " match" : "");
    tr.append(el("td", {}, `${p.dataset} (${p.group})`), el("td", {}, String(id ?? "-")),
      el("td", {}, p.score === null || p.score === undefined ? "-" : p.score.toFixed(2)));
    const states = el("td", { class: "states" });
    const names = (p.pasta || []).map((n, j) => [n, p.pasta_scores ? p.pasta_scores[j] : null]);
    const shown = names.filter(([n]) => !isNone(n));
    (shown.length ? shown : names).forEach(([n, s]) =>
      states.append(el("span", { class: "state" }, s === null || s === undefined ? n : `${n} ${s.toFixed(2)}`)));
    for (const b of p.part_boxes || []) {
      if (b.state && !(p.pasta || []).some((n) => n.startsWith(b.part + ":"))) {
        states.append(el("span", { class: "state" }, `${b.part}: ${b.state}`));
      }
    }
    tr.append(states, el("td", {}, (p.objects || []).map((o) => o.class_name || o.class_id).join(", ")));
    body.append(tr);
  }
}

// ---------------------------------------------------------------------------------------------- drawing
function media() {
  const video = $("video"), image = $("image");
  if (!video.hidden) return video;
  if (!image.hidden) return image;
  return null;
}

function frameSize() {
  const m = media(), v = state.video || {};
  const natural = m ? [m.videoWidth || m.naturalWidth, m.videoHeight || m.naturalHeight] : [0, 0];
  return [v.width || natural[0] || 640, v.height || natural[1] || 360];
}

function resize() {
  const m = media();
  const [w, h] = frameSize();
  const width = m && m.clientWidth ? m.clientWidth : Math.min(w, 800);
  const height = m && m.clientHeight ? m.clientHeight : Math.round(width * h / w);
  for (const canvas of [$("overlay"), $("gt-canvas")]) { canvas.width = width; canvas.height = height; }
}

function boxOf(obj, W, H, fw, fh) {
  if (obj.x1 !== null && obj.x1 !== undefined) return [obj.x1 * W, obj.y1 * H, obj.x2 * W, obj.y2 * H];
  if (obj.px1 !== null && obj.px1 !== undefined) return [obj.px1 * W / fw, obj.py1 * H / fh, obj.px2 * W / fw, obj.py2 * H / fh];
  return null;
}

function label(ctx, text, x, y, color, size) {
  ctx.font = `${size}px sans-serif`;
  const w = ctx.measureText(text).width + 4;
  x = Math.max(0, Math.min(x, ctx.canvas.width - w));
  y = Math.max(size + 2, Math.min(y, ctx.canvas.height));
  ctx.fillStyle = "rgba(0,0,0,0.6)";
  ctx.fillRect(x, y - size - 2, w, size + 4);
  ctx.fillStyle = color;
  ctx.fillText(text, x + 2, y - 1);
}

function drawPersons(ctx, persons) {
  const W = ctx.canvas.width, H = ctx.canvas.height;
  const [fw, fh] = frameSize();
  const size = Math.max(10, Math.round(H / 40)), line = Math.max(1, H / 240);
  ctx.lineWidth = line;
  for (const p of persons) {
    const fpw = p.width || fw, fph = p.height || fh;
    const box = boxOf(p, W, H, fpw, fph);
    const color = p.group === "gt" ? "#42a5f5" : "#66bb6a";
    if (state.layers.part_boxes) {
      for (const b of p.part_boxes || []) {
        const pb = boxOf(b, W, H, fpw, fph);
        if (!pb) continue;
        ctx.strokeStyle = partColor(b.part);
        ctx.strokeRect(pb[0], pb[1], pb[2] - pb[0], pb[3] - pb[1]);
        if (state.layers.states && b.state && !isNone(`x: ${b.state}`)) label(ctx, `${b.part}: ${b.state}`, pb[0], pb[1], partColor(b.part), size * 0.8);
      }
    }
    if (state.layers.skeletons && p.keypoints && p.keypoints.length >= 51) {
      const k = p.keypoints, pt = (i) => [k[3 * i] * W / fpw, k[3 * i + 1] * H / fph, k[3 * i + 2]];
      ctx.strokeStyle = "#ffeb3b";
      for (const [a, b] of SKELETON) {
        const [ax, ay, as] = pt(a), [bx, by, bs] = pt(b);
        if (as < 0.2 || bs < 0.2) continue;
        ctx.beginPath(); ctx.moveTo(ax, ay); ctx.lineTo(bx, by); ctx.stroke();
      }
      ctx.fillStyle = "#ff5722";
      for (let i = 0; i < 17; i++) {
        const [x, y, s] = pt(i);
        if (s >= 0.2) { ctx.beginPath(); ctx.arc(x, y, line * 2, 0, 2 * Math.PI); ctx.fill(); }
      }
    }
    if (state.layers.objects) {
      for (const o of p.objects || []) {
        const ob = boxOf(o, W, H, fpw, fph);
        if (!ob) continue;
        ctx.strokeStyle = "#ff9800";
        ctx.setLineDash([4, 3]);
        ctx.strokeRect(ob[0], ob[1], ob[2] - ob[0], ob[3] - ob[1]);
        ctx.setLineDash([]);
        label(ctx, String(o.class_name || o.class_id || "object"), ob[0], ob[3] + size, "#ff9800", size * 0.8);
      }
    }
    if (!box) continue;
    if (state.layers.boxes) {
      ctx.strokeStyle = color;
      ctx.lineWidth = line * 2;
      ctx.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]);
      ctx.lineWidth = line;
      label(ctx, `#${p.track_id ?? p.person_id ?? "?"}${p.score != null ? " " + p.score.toFixed(2) : ""}`, box[0], box[1], color, size);
    }
    if (state.layers.states) {
      const names = (p.pasta || []).filter((n) => !isNone(n)).slice(0, 3);
      names.forEach((n, j) => label(ctx, n, box[0], box[1] + (j + 2) * (size + 4), "#ffffff", size * 0.9));
    }
  }
}

function draw() {
  const overlay = $("overlay"), ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  const k = state.video && state.video.keyframes[state.index];
  if (!k) return;
  const showGt = state.both && state.layers.ground_truth;
  $("gt-panel").hidden = !showGt;
  const main = state.both ? k.persons.filter((p) => p.group === "pred") : k.persons;
  drawPersons(ctx, main);
  if (showGt) {
    const canvas = $("gt-canvas"), g = canvas.getContext("2d");
    g.fillStyle = "#111";
    g.fillRect(0, 0, canvas.width, canvas.height);
    const m = media();
    if (m && (m.readyState >= 2 || m.complete)) { try { g.drawImage(m, 0, 0, canvas.width, canvas.height); } catch (e) { /* not decoded yet */ } }
    drawPersons(g, k.persons.filter((p) => p.group === "gt"));
  }
}

function tick() {
  const video = $("video");
  if (!video.hidden && !video.paused) followVideo();
  requestAnimationFrame(tick);
}

// ---------------------------------------------------------------------------------------------- queries
async function runQuery() {
  const mode = $("query-mode").value, text = $("query").value.trim();
  const status = $("query-status");
  status.className = "";
  if (!text) return clearQuery();
  status.textContent = "running...";
  let result;
  try {
    result = await getJSON(`/api/query?${mode}=${encodeURIComponent(text)}`);
  } catch (err) {
    status.className = "error";
    status.textContent = err.message;
    return;
  }
  state.matches = result.matches;
  state.matchPersons = new Map(result.matches.map((m) => [`${m.video_id}|${m.time_s}|${m.frame_index}`, m.persons]));
  const ids = new Set(result.matches.map((m) => m.video_id));
  document.querySelectorAll("#videos li").forEach((li) => li.classList.toggle("filtered-out", !ids.has(li.dataset.videoId)));
  const persons = result.matches.reduce((n, m) => n + m.persons.length, 0);
  status.textContent = result.columns.includes("video_id")
    ? `${persons} persons at ${result.matches.length} keyframes in ${ids.size} videos${result.truncated ? " (first rows only)" : ""}`
    : `${result.rows.length} rows: ${result.columns.join(", ")} (no video_id column to jump to)`;
  const list = $("matches");
  list.replaceChildren();
  for (const m of result.matches) {
    const li = el("li", { "data-video-id": m.video_id, "data-time": String(m.time_s) },
      `${m.video_id} t=${m.time_s ?? "-"}: person ${m.persons.join(", ")}`);
    li.addEventListener("click", () => jumpTo(m));
    list.append(li);
  }
  if (!result.columns.includes("video_id")) {
    result.rows.slice(0, 50).forEach((r) => list.append(el("li", {}, JSON.stringify(r))));
  }
  renderPeople();
}

async function jumpTo(match) {
  await openVideo(match.video_id, 0);
  const frames = state.video.keyframes;
  const i = frames.findIndex((k) => k.time_s === match.time_s && k.frame_index === match.frame_index);
  showKeyframe(i < 0 ? nearestKeyframe(match.time_s || 0) : i, true);
}

function clearQuery() {
  state.matches = null;
  state.matchPersons = new Map();
  $("matches").replaceChildren();
  $("query-status").textContent = "";
  document.querySelectorAll("#videos li").forEach((li) => li.classList.remove("filtered-out"));
  renderPeople();
}

document.addEventListener("DOMContentLoaded", () => {
  requestAnimationFrame(tick);
  start().catch((err) => { $("query-status").className = "error"; $("query-status").textContent = String(err); });
});
