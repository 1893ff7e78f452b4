// geovec map page: no external tiles or libraries. The map is an SVG in an equirectangular projection
// scaled by cos(latitude of the view centre) (locally true to shape); x = lon, y = lat, degrees WGS84.
"use strict";
const $ = (id) => document.getElementById(id);
const svg = $("map");
const NS = "http://www.w3.org/2000/svg";
const view = { lon: 0, lat: 20, scale: 2 };  // scale: pixels per degree of longitude at the centre
let overview = null, results = [], place = null, queryImage = null;

function size() { const r = svg.getBoundingClientRect(); return [r.width || 800, r.height || 600]; }
function kx() { return Math.cos(view.lat * Math.PI / 180); }
function project(lon, lat) {
  const [w, h] = size();
  return [w / 2 + (lon - view.lon) * view.scale, h / 2 - (lat - view.lat) * view.scale / kx()];
}
function unproject(x, y) {
  const [w, h] = size();
  return [view.lon + (x - w / 2) / view.scale, view.lat - (y - h / 2) * kx() / view.scale];
}
function el(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
function fit(b) {  // b = [minLon, minLat, maxLon, maxLat]
  if (!b) return;
  const [w, h] = size();
  view.lon = (b[0] + b[2]) / 2; view.lat = (b[1] + b[3]) / 2;
  const dx = Math.max(b[2] - b[0], 1e-4), dy = Math.max(b[3] - b[1], 1e-4) / kx();
  view.scale = 0.85 * Math.min(w / dx, h / dy);
}
function niceStep(span) {
  const raw = span / 6, p = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
}
function drawGraticule() {
  const g = $("graticule"); g.replaceChildren();
  const [w, h] = size();
  const [lon0, lat1] = unproject(0, 0), [lon1, lat0] = unproject(w, h);
  const step = niceStep(Math.max(lon1 - lon0, lat1 - lat0));
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  for (let lon = Math.ceil(lon0 / step) * step; lon <= lon1; lon += step) {
    const [x] = project(lon, 0);
    el("line", { x1: x, x2: x, y1: 0, y2: h }, g);
    el("text", { x: x + 2, y: h - 20 }, g).textContent = lon.toFixed(digits) + "°";
  }
  for (let lat = Math.ceil(lat0 / step) * step; lat <= lat1; lat += step) {
    const [, y] = project(0, lat);
    el("line", { x1: 0, x2: w, y1: y, y2: y }, g);
    el("text", { x: 2, y: y - 2 }, g).textContent = lat.toFixed(digits) + "°";
  }
}
function drawChips() {
  const g = $("chips"); g.replaceChildren();
  if (!overview) return;
  for (const b of overview.boxes) {
    const [x0, y0] = project(b[0], b[3]), [x1, y1] = project(b[2], b[1]);
    el("rect", { x: x0, y: y0, width: Math.max(x1 - x0, 0.5), height: Math.max(y1 - y0, 0.5) }, g);
  }
}
function drawResults() {
  const g = $("results"); g.replaceChildren();
  for (const f of results) {
    if (!f.geometry) continue;
    const ring = f.geometry.coordinates[0].map(([lon, lat]) => project(lon, lat));
    const p = el("path", { d: "M" + ring.map((q) => q.join(",")).join("L") + "Z", class: "footprint",
                           "data-rank": f.properties.rank }, g);
    p.addEventListener("mouseenter", () => highlight(f.properties.rank, true));
    p.addEventListener("mouseleave", () => highlight(f.properties.rank, false));
    const [cx, cy] = project(f.properties.centre_lon, f.properties.centre_lat);
    el("text", { x: cx, y: cy, "text-anchor": "middle" }, g).textContent = f.properties.rank;
  }
  const m = $("marker"); m.replaceChildren();
  if (place) {
    const [x, y] = project(place.lon, place.lat);
    const km = parseFloat($("within").value);
    if (km > 0) el("circle", { cx: x, cy: y, r: (km / 111.195) * view.scale / kx(), class: "radius" }, m);
    el("circle", { cx: x, cy: y, r: 5 }, m);
  }
}
function draw() { drawGraticule(); drawChips(); drawResults(); }
function highlight(rank, on) {
  document.querySelectorAll(`[data-rank="${rank}"]`).forEach((e) => e.classList.toggle("hover", on));
}
function renderList() {
  const list = $("result-list"); list.replaceChildren();
  for (const f of results) {
    const p = f.properties;
    const li = document.createElement("li");
    li.className = "result"; li.dataset.rank = p.rank; li.dataset.id = f.id;
    const img = document.createElement("img");
    img.src = p.thumbnail; img.alt = "chip " + p.rank; img.loading = "eager";
    const txt = document.createElement("div");
    const where = p.centre_lat == null ? "no georeference" : `${p.centre_lat.toFixed(5)}, ${p.centre_lon.toFixed(5)}`;
    const dist = p.distance_km == null ? "" : ` · ${p.distance_km.toFixed(2)} km`;
    txt.innerHTML = `<div><span class="rank">#${p.rank}</span> score <span class="score">${p.score.toFixed(4)}</span></div>` +
      `<div class="meta"></div><div class="meta where">${where}${dist}</div>`;
    txt.querySelector(".meta").textContent = `${p.path.split("/").pop()} [${p.window.join(",")}]`;
    li.append(img, txt);
    li.addEventListener("mouseenter", () => highlight(p.rank, true));
    li.addEventListener("mouseleave", () => highlight(p.rank, false));
    li.addEventListener("click", () => { if (p.bbox) { fit(p.bbox); view.scale /= 4; draw(); } });
    list.appendChild(li);
  }
}
async function runSearch(fromClick) {
  const body = { k: parseInt($("k").value, 10) || 10 };
  const text = $("q").value.trim();
  if (text) body.text = text;
  if (queryImage) body.image = queryImage;
  if (place) {
    body.near = place;
    const km = parseFloat($("within").value);
    if (km > 0) body.within_km = km;
  }
  if (!body.text && !body.image && !body.near) { $("status").textContent = "type a query, pick an image, or click the map"; return; }
  $("status").textContent = "searching…";
  const t0 = performance.now();
  const r = await fetch("/search", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const out = await r.json();
  if (!r.ok) {
    const d = out.detail;
    $("status").textContent = "error: " + (Array.isArray(d) ? d.map((x) => x.msg).join("; ") : d);
    results = []; renderList(); draw(); return;
  }
  results = out.features;
  const boxes = results.map((f) => f.properties.bbox).filter((b) => b);
  if (!fromClick && boxes.length) {  // zoom to the results (a click keeps the view where the user is)
    const b = [Math.min(...boxes.map((x) => x[0])), Math.min(...boxes.map((x) => x[1])),
               Math.max(...boxes.map((x) => x[2])), Math.max(...boxes.map((x) => x[3]))];
    const pad = Math.max(b[2] - b[0], b[3] - b[1]) * 0.15;
    fit([b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad]);
  }
  $("status").textContent = `${results.length} result(s) · task ${out.task} · ${Math.round(performance.now() - t0)} ms`;
  renderList(); draw();
}
function setPlace(lat, lon) {
  place = { lat: +lat.toFixed(6), lon: +lon.toFixed(6) };
  $("place").hidden = false;
  $("place-text").textContent = `${place.lat.toFixed(5)}, ${place.lon.toFixed(5)}`;
}
// --- interaction -----------------------------------------------------------------------------------------
let drag = null;
svg.addEventListener("mousedown", (e) => { drag = { x: e.clientX, y: e.clientY, lon: view.lon, lat: view.lat, moved: false }; });
window.addEventListener("mousemove", (e) => {
  if (!drag) return;
  const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
  if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
  if (drag.moved) { view.lon = drag.lon - dx / view.scale; view.lat = drag.lat + dy * kx() / view.scale; draw(); }
});
window.addEventListener("mouseup", (e) => {
  if (drag && !drag.moved && e.target.closest && e.target.closest("#map")) {
    const r = svg.getBoundingClientRect();
    const [lon, lat] = unproject(e.clientX - r.left, e.clientY - r.top);
    setPlace(lat, lon); runSearch(true);
  }
  drag = null;
});
svg.addEventListener("wheel", (e) => {
  e.preventDefault();
  const r = svg.getBoundingClientRect();
  const [lon, lat] = unproject(e.clientX - r.left, e.clientY - r.top);
  const f = Math.exp(-e.deltaY * 0.0015);
  view.scale *= f;
  view.lon = lon - (lon - view.lon) / f; view.lat = lat - (lat - view.lat) / f;
  draw();
}, { passive: false });
window.addEventListener("resize", draw);
$("search-form").addEventListener("submit", (e) => { e.preventDefault(); runSearch(); });
$("clear-place").addEventListener("click", () => { place = null; $("place").hidden = true; draw(); });
$("image").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (!file) { queryImage = null; return; }
  const reader = new FileReader();
  reader.onload = () => { queryImage = reader.result; runSearch(); };
  reader.readAsDataURL(file);
});
(async function init() {
  const r = await fetch("/index/overview");
  if (r.ok) {
    overview = await r.json();
    fit(overview.extent);
    $("status").textContent = `${overview.chips} chips indexed (${overview.placed} georeferenced) · model ${overview.model}`;
  } else {
    $("status").textContent = "no index loaded";
  }
  draw();
  document.body.dataset.ready = "1";
})();
