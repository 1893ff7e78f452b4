// geovec map page. Leaflet (vendored under /static/vendor/leaflet, no CDN); the chips' own pixels come from this
// server (/chips/{id}/overlay.png: reprojected to Web Mercator over the chip's lon/lat bbox). A basemap is drawn
// only when the server was started with --basemap. Coordinates: Leaflet takes [lat, lon]; the API and GeoJSON
// give [lon, lat] and bboxes as [min_lon, min_lat, max_lon, max_lat].
"use strict";
const $ = (id) => document.getElementById(id);
const IMAGERY_LIMIT = 200;  // draw the chips' imagery when at most this many chips are in view
const state = {
  overview: null, config: null,
  results: [], collection: null,  // the last /search answer (features and query)
  text: "", queryImage: null, like: null, place: null, bbox: null,
  drawing: false, searches: 0, clusters: [], clusterIndex: 0, active: null,
};

// --- map and layers -------------------------------------------------------------------------------------------
const map = L.map("map", { boxZoom: false, worldCopyJump: true, zoomSnap: 0.25, maxZoom: 22 }).setView([20, 0], 2);
L.control.scale({ imperial: false }).addTo(map);
map.attributionControl.setPrefix("Leaflet");
for (const [name, z] of [["chips", 300], ["outlines", 350], ["hits", 380]]) map.createPane(name).style.zIndex = z;
const outlineRenderer = L.canvas({ pane: "outlines", padding: 0.3 });
const layers = {
  basemap: null,
  outlines: L.layerGroup().addTo(map),       // every georeferenced chip: its box, or a dot when it is tiny
  imagery: L.layerGroup().addTo(map),        // the pixels of the chips in view
  resultImagery: L.layerGroup().addTo(map),  // the pixels of the results (also when too many chips are in view)
  results: L.featureGroup().addTo(map),      // result footprints
  labels: L.layerGroup().addTo(map),         // result ranks
  box: L.layerGroup().addTo(map),            // the draw-a-box filter
  place: L.layerGroup().addTo(map),          // the clicked place (and its radius)
};
const drawnImagery = new Map();
const BOX_STYLE = { className: "search-box", color: "#00e5ff", weight: 3, dashArray: "8 5", fillColor: "#00e5ff", fillOpacity: 0.08, interactive: false };
new ResizeObserver(() => map.invalidateSize({ animate: false })).observe($("map"));  // the header grows with filters  // chip id -> imageOverlay in layers.imagery

function chipUrl(id, kind) { return "/chips/" + encodeURIComponent(id) + "/" + kind + ".png"; }
function llBounds(b) { return L.latLngBounds([b[1], b[0]], [b[3], b[2]]); }
function short(p) { return p.split("/").pop(); }
function fmtBox(b) { return b.map((v) => v.toFixed(4)).join(", "); }

// --- the index's chips: outlines and imagery ------------------------------------------------------------------
function outlineMode() {
  // a chip smaller than ~5 px on screen is drawn as a dot, so that an index spread over the globe stays visible
  const boxes = state.overview ? state.overview.boxes : [];
  if (!boxes.length) return null;
  if (!state.medianWidth) state.medianWidth = boxes.map((b) => b[2] - b[0]).sort((a, b) => a - b)[boxes.length >> 1];
  return (state.medianWidth / 360) * 256 * Math.pow(2, map.getZoom()) < 5 ? "dots" : "boxes";
}
function drawOutlines() {
  const mode = outlineMode();
  if (mode === layers.outlines.mode) return;
  layers.outlines.clearLayers();
  layers.outlines.mode = mode;
  if (!mode) return;
  const dots = mode === "dots";
  const boxes = state.overview.boxes;
  for (const b of boxes) {
    const shape = dots
      ? L.circleMarker([(b[1] + b[3]) / 2, (b[0] + b[2]) / 2], { radius: 3, renderer: outlineRenderer, interactive: false, className: "chip-dot", color: "#52606d", weight: 1, fillOpacity: 0.6 })
      : L.rectangle(llBounds(b), { renderer: outlineRenderer, interactive: false, color: "#6b7c8c", weight: 1, fill: false });
    layers.outlines.addLayer(shape);
  }
}

let imageryTimer = null, imageryRequest = 0;
function scheduleImagery() { clearTimeout(imageryTimer); imageryTimer = setTimeout(loadImagery, 120); }
async function loadImagery() {
  if (!state.overview || !state.overview.placed) return;
  const b = map.getBounds();
  const w = Math.max(-180, b.getWest()), e = Math.min(180, b.getEast());
  const s = Math.max(-90, b.getSouth()), n = Math.min(90, b.getNorth());
  if (w >= e || s >= n) return;
  const ticket = ++imageryRequest;
  const r = await fetch(`/chips?bbox=${w},${s},${e},${n}&limit=${IMAGERY_LIMIT}`);
  if (!r.ok || ticket !== imageryRequest) return;
  const out = await r.json();
  const info = $("imagery-info");
  if (out.total > out.limit) {
    layers.imagery.clearLayers(); drawnImagery.clear();
    info.textContent = `${out.total} chips in view: zoom in to see their imagery`;
  } else {
    const keep = new Set(out.chips.map((c) => c.id));
    for (const [id, layer] of drawnImagery) if (!keep.has(id)) { layers.imagery.removeLayer(layer); drawnImagery.delete(id); }
    for (const c of out.chips) {
      if (drawnImagery.has(c.id)) continue;
      const layer = L.imageOverlay(c.overlay, llBounds(c.bbox), { pane: "chips", className: "chip-img", interactive: false, alt: "" });
      layer.chipId = c.id;
      layers.imagery.addLayer(layer); drawnImagery.set(c.id, layer);
    }
    info.textContent = out.total ? `imagery of ${out.total} chip(s) in view` : "";
  }
  state.imageryLoads = (state.imageryLoads || 0) + 1;
  document.body.dataset.imagery = String(state.imageryLoads);
}

// --- result clusters ------------------------------------------------------------------------------------------
function km(lat1, lon1, lat2, lon2) {
  const r = Math.PI / 180, a = Math.sin((lat2 - lat1) * r / 2) ** 2 +
    Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.sin((lon2 - lon1) * r / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(a)));
}
// Two results are linked when their centres are within 3 diagonals of the larger of their two chips; clusters are
// groups of linked results (single linkage), ordered by the sum of 1 / rank of their members: the top hit's
// neighbourhood usually wins, but a dense group of good hits beats one lone best hit far away. The view fits the
// first; the others are a click away.
function clustersOf(features) {
  const geo = features.filter((f) => f.properties.bbox && f.properties.centre_lat != null);
  if (!geo.length) return [];
  const diag = geo.map((f) => { const b = f.properties.bbox; return km(b[1], b[0], b[3], b[2]); });
  const parent = geo.map((_, i) => i);
  const find = (i) => (parent[i] === i ? i : (parent[i] = find(parent[i])));
  for (let i = 0; i < geo.length; i++) {
    for (let j = i + 1; j < geo.length; j++) {
      const a = geo[i].properties, b = geo[j].properties;
      if (km(a.centre_lat, a.centre_lon, b.centre_lat, b.centre_lon) <= Math.max(3 * Math.max(diag[i], diag[j]), 0.01)) parent[find(i)] = find(j);
    }
  }
  const groups = new Map();
  geo.forEach((f, i) => { const g = find(i); if (!groups.has(g)) groups.set(g, []); groups.get(g).push(f); });
  const out = [...groups.values()].map((members) => {
    const bounds = L.latLngBounds([]);
    for (const f of members) bounds.extend(llBounds(f.properties.bbox));
    return { ids: members.map((f) => f.id), ranks: members.map((f) => f.properties.rank),
             weight: members.reduce((s, f) => s + 1 / f.properties.rank, 0), bounds };
  });
  out.sort((a, b) => b.weight - a.weight || Math.min(...a.ranks) - Math.min(...b.ranks));
  return out;
}
function fitCluster(i) {
  const c = state.clusters[i];
  if (!c) return;
  state.clusterIndex = i;
  // a lone result gets room around it (its chip a quarter of the view), a group a margin
  map.fitBounds(c.bounds.pad(c.ids.length > 1 ? 0.25 : 1.5), { maxZoom: 20, animate: false });
  const n = state.results.length;
  $("cluster-info").textContent = state.clusters.length > 1
    ? `cluster ${i + 1} of ${state.clusters.length}: ${c.ids.length} of ${n} results (ranks ${c.ranks.slice(0, 6).join(", ")}${c.ranks.length > 6 ? ", …" : ""})`
    : `${c.ids.length} result(s) in view`;
  $("next-cluster").hidden = state.clusters.length < 2;
  $("show-all").hidden = state.clusters.length < 2;
}
function fitAll() {
  const b = layers.results.getBounds();
  if (b.isValid()) map.fitBounds(b.pad(0.1), { maxZoom: 20, animate: false });
  $("cluster-info").textContent = `all ${state.results.length} results`;
}

// --- results --------------------------------------------------------------------------------------------------
function drawResults() {
  layers.results.clearLayers(); layers.labels.clearLayers(); layers.resultImagery.clearLayers();
  for (const f of state.results) {
    const p = f.properties;
    if (!f.geometry) continue;
    if (p.overlay) {
      layers.resultImagery.addLayer(L.imageOverlay(p.overlay, llBounds(p.bbox), { pane: "hits", className: "hit-img", interactive: false, alt: "" }));
    }
    const ring = f.geometry.coordinates[0].map(([lon, lat]) => [lat, lon]);
    const poly = L.polygon(ring, { className: "footprint", color: "#e65100", weight: 2, fillOpacity: 0.05, bubblingMouseEvents: false });
    poly.featureId = f.id; poly.rank = p.rank;
    poly.bindTooltip(`#${p.rank} · ${p.score.toFixed(3)} · ${short(p.path)}`, { sticky: true });
    poly.on("mouseover", () => highlight(f.id, true));
    poly.on("mouseout", () => highlight(f.id, false));
    poly.on("click", () => select(f.id, { fly: false, scroll: true }));
    layers.results.addLayer(poly);
    layers.labels.addLayer(L.marker([p.centre_lat, p.centre_lon], {
      icon: L.divIcon({ className: "rank-label", html: String(p.rank), iconSize: null }), interactive: false, keyboard: false }));
  }
}
function polygonOf(id) { return layers.results.getLayers().find((l) => l.featureId === id); }
function cardOf(id) { return [...document.querySelectorAll("#result-list .result")].find((li) => li.dataset.id === id); }
function highlight(id, on) {
  const card = cardOf(id), poly = polygonOf(id);
  if (card) card.classList.toggle("hover", on);
  if (poly) poly.setStyle({ weight: on || state.active === id ? 4 : 2, fillOpacity: on ? 0.2 : 0.05 });
}
function select(id, { fly = true, scroll = false } = {}) {
  state.active = id;
  for (const li of document.querySelectorAll("#result-list .result")) li.classList.toggle("active", li.dataset.id === id);
  for (const l of layers.results.getLayers()) {
    const on = l.featureId === id;
    l.setStyle({ weight: on ? 4 : 2, color: on ? "#1565c0" : "#e65100" });
    if (on) { l.bringToFront(); l.getElement() && l.getElement().classList.add("active"); }
    else if (l.getElement()) l.getElement().classList.remove("active");
  }
  const f = state.results.find((x) => x.id === id);
  if (fly && f && f.properties.bbox) map.fitBounds(llBounds(f.properties.bbox).pad(1.0), { maxZoom: 21, animate: false });
  const card = cardOf(id);
  if (scroll && card) card.scrollIntoView({ block: "nearest" });
}
function renderList() {
  const list = $("result-list"); list.replaceChildren();
  for (const f of state.results) {
    const p = f.properties;
    const li = document.createElement("li");
    li.className = "result"; li.dataset.rank = p.rank; li.dataset.id = f.id;
    const img = document.createElement("img");
    img.src = p.thumbnail; img.alt = "chip " + p.rank; img.loading = "eager"; img.className = "thumb";
    const txt = document.createElement("div"); txt.className = "text";
    const where = p.centre_lat == null ? "no georeference" : `${p.centre_lat.toFixed(5)}, ${p.centre_lon.toFixed(5)}`;
    const dist = p.distance_km == null ? "" : ` · ${p.distance_km.toFixed(2)} km`;
    txt.innerHTML = `<div><span class="rank">#${p.rank}</span> score <span class="score">${p.score.toFixed(4)}</span></div>` +
      `<div class="meta name"></div><div class="meta where">${where}${dist}</div>` +
      `<button type="button" class="more-like" title="search with this chip's stored embedding">more like this</button>`;
    txt.querySelector(".name").textContent = `${short(p.path)} [${p.window.join(",")}]`;
    txt.querySelector(".name").title = f.id;
    txt.querySelector(".more-like").addEventListener("click", (e) => { e.stopPropagation(); moreLike(f); });
    li.append(img, txt);
    li.addEventListener("mouseenter", () => highlight(f.id, true));
    li.addEventListener("mouseleave", () => highlight(f.id, false));
    li.addEventListener("click", () => select(f.id, { fly: true }));
    list.appendChild(li);
  }
  $("hint").hidden = state.results.length > 0;
  $("export").disabled = state.results.length === 0;
}

// --- searching ------------------------------------------------------------------------------------------------
function queryBody() {
  const body = { k: Math.min(parseInt($("k").value, 10) || 10, (state.config && state.config.max_k) || 200) };
  if (state.like) body.like = state.like.id;
  else {
    if (state.text) body.text = state.text;
    if (state.queryImage) body.image = state.queryImage;
  }
  if (state.place) {
    body.near = { lat: state.place.lat, lon: state.place.lon };
    const r = parseFloat($("within").value);
    if (r > 0) body.within_km = r;
  }
  if (state.bbox) body.bbox = state.bbox;
  return body;
}
function hasQuery() { return !!(state.like || state.text || state.queryImage || state.place); }
async function runSearch({ keepView = false } = {}) {
  if (!hasQuery()) {
    $("status").textContent = state.bbox ? "box set: now type a query, pick an image or click a place in it"
                                         : "type a query, pick an image, or click the map";
    return;
  }
  const body = queryBody();
  $("status").textContent = "searching…";
  document.body.dataset.searching = "1";
  const t0 = performance.now();
  let out, ok;
  try {
    const r = await fetch("/search", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    ok = r.ok; out = await r.json();
  } catch (err) { ok = false; out = { error: { message: String(err) } }; }
  state.searches += 1;
  document.body.dataset.searching = "";
  if (!ok) {
    const d = out.error ? out.error.message : out.detail;
    $("status").textContent = "error: " + (Array.isArray(d) ? d.map((x) => x.msg).join("; ") : d);
    state.results = []; state.collection = null; renderList(); drawResults();
    document.body.dataset.searches = String(state.searches);
    return;
  }
  state.collection = out; state.results = out.features; state.active = null;
  drawResults(); renderList();
  state.clusters = clustersOf(state.results);
  if (!keepView && state.clusters.length) fitCluster(0);
  else { $("cluster-info").textContent = ""; $("next-cluster").hidden = $("show-all").hidden = state.clusters.length < 2; }
  const warn = out.warnings ? " · " + out.warnings.join(" ") : "";
  $("status").textContent = `${state.results.length} result(s) · task ${out.task} · ${Math.round(performance.now() - t0)} ms${warn}`;
  document.body.dataset.searches = String(state.searches);
}
function moreLike(f) {
  state.like = { id: f.id, label: `${short(f.properties.path)} [${f.properties.window.join(",")}]` };
  $("like").hidden = false; $("like-text").textContent = state.like.label; $("like-text").title = f.id;
  runSearch();
}
function setPlace(lat, lon) {
  state.place = { lat: +lat.toFixed(6), lon: +lon.toFixed(6) };
  $("place").hidden = false;
  $("place-text").textContent = `${state.place.lat.toFixed(5)}, ${state.place.lon.toFixed(5)}`;
  drawPlace();
}
function drawPlace() {
  layers.place.clearLayers();
  if (!state.place) return;
  const ll = [state.place.lat, state.place.lon], r = parseFloat($("within").value);
  if (r > 0) layers.place.addLayer(L.circle(ll, { radius: r * 1000, className: "radius", color: "#2b6cb0", weight: 1, dashArray: "4 3", fillOpacity: 0.06, interactive: false }));
  layers.place.addLayer(L.circleMarker(ll, { radius: 6, className: "place-marker", color: "#fff", weight: 2, fillColor: "#2b6cb0", fillOpacity: 1, interactive: false }));
}

// --- draw a box -----------------------------------------------------------------------------------------------
let boxStart = null, boxShape = null, suppressClick = false;
function setDrawing(on) {
  state.drawing = on;
  $("draw-box").classList.toggle("on", on);
  map.getContainer().classList.toggle("drawing", on);
  if (on) map.dragging.disable(); else map.dragging.enable();
  if (on) $("status").textContent = "drag a box on the map";
}
map.on("mousedown", (e) => {
  if (!state.drawing) return;
  boxStart = e.latlng;
  boxShape = L.rectangle(L.latLngBounds(boxStart, boxStart), BOX_STYLE);
  layers.box.clearLayers(); layers.box.addLayer(boxShape);
});
map.on("mousemove", (e) => { if (boxStart && boxShape) boxShape.setBounds(L.latLngBounds(boxStart, e.latlng)); });
map.on("mouseup", (e) => {
  if (!state.drawing || !boxStart) return;
  const a = map.latLngToContainerPoint(boxStart), b = map.latLngToContainerPoint(e.latlng);
  const bounds = L.latLngBounds(boxStart, e.latlng);
  boxStart = null; suppressClick = true; setTimeout(() => { suppressClick = false; }, 400);
  setDrawing(false);
  if (Math.abs(a.x - b.x) < 5 || Math.abs(a.y - b.y) < 5) { layers.box.clearLayers(); boxShape = null; $("status").textContent = "box too small"; return; }
  boxShape.setBounds(bounds);
  const r6 = (v) => Math.round(v * 1e6) / 1e6;
  state.bbox = [r6(Math.max(-180, bounds.getWest())), r6(Math.max(-90, bounds.getSouth())),
                r6(Math.min(180, bounds.getEast())), r6(Math.min(90, bounds.getNorth()))];
  $("box").hidden = false; $("box-text").textContent = fmtBox(state.bbox);
  runSearch({ keepView: true });
});

// --- export ---------------------------------------------------------------------------------------------------
function resultsGeoJSON() {  // RFC 7946: the server's rings are counter-clockwise, [lon, lat]; no "crs" member
  const abs = (u) => (u ? new URL(u, location.origin).href : u);
  return {
    type: "FeatureCollection",
    features: state.results.map((f) => ({ type: "Feature", id: f.id, geometry: f.geometry,
      properties: { ...f.properties, thumbnail: abs(f.properties.thumbnail), overlay: abs(f.properties.overlay) } })),
    query: state.collection ? state.collection.query : null,
    task: state.collection ? state.collection.task : null,
  };
}
function exportGeoJSON() {
  if (!state.results.length) return;
  const blob = new Blob([JSON.stringify(resultsGeoJSON(), null, 1)], { type: "application/geo+json" });
  const a = $("download");
  if (a.href) URL.revokeObjectURL(a.href);
  a.href = URL.createObjectURL(blob);
  a.download = "geovec-results.geojson";
  a.click();
}

// --- wiring ---------------------------------------------------------------------------------------------------
map.on("click", (e) => {
  if (state.drawing || suppressClick) return;
  setPlace(e.latlng.lat, e.latlng.lng);
  runSearch({ keepView: true });
});
map.on("zoomend", drawOutlines);
map.on("moveend", scheduleImagery);
$("search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  state.text = $("q").value.trim();
  if (state.text) clearLike();
  runSearch();
});
function clearLike() { state.like = null; $("like").hidden = true; }
$("clear-like").addEventListener("click", () => { clearLike(); runSearch(); });
$("clear-place").addEventListener("click", () => { state.place = null; $("place").hidden = true; drawPlace(); runSearch({ keepView: true }); });
$("clear-box").addEventListener("click", () => { state.bbox = null; $("box").hidden = true; layers.box.clearLayers(); runSearch({ keepView: true }); });
$("within").addEventListener("change", drawPlace);
$("draw-box").addEventListener("click", () => setDrawing(!state.drawing));
$("export").addEventListener("click", exportGeoJSON);
$("next-cluster").addEventListener("click", () => fitCluster((state.clusterIndex + 1) % state.clusters.length));
$("show-all").addEventListener("click", fitAll);
document.addEventListener("keydown", (e) => { if (e.key === "Escape" && state.drawing) { setDrawing(false); layers.box.clearLayers(); if (state.bbox) layers.box.addLayer(L.rectangle(llBounds(state.bbox), BOX_STYLE)); } });
$("image").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (!file) { state.queryImage = null; return; }
  const reader = new FileReader();
  reader.onload = () => { state.queryImage = reader.result; clearLike(); runSearch(); };
  reader.readAsDataURL(file);
});

(async function init() {
  try {
    state.config = await (await fetch("/map/config")).json();
  } catch (err) { state.config = { basemap: null }; }
  const bm = state.config.basemap;
  if (bm) {
    layers.basemap = L.tileLayer(bm.url, { attribution: bm.attribution || "", maxNativeZoom: bm.max_native_zoom || 19, maxZoom: 22, className: "basemap" }).addTo(map);
  }
  const r = await fetch("/index/overview");
  if (r.ok) {
    state.overview = await r.json();
    if (state.overview.extent) map.fitBounds(llBounds(state.overview.extent).pad(0.1), { animate: false });
    drawOutlines();
    $("status").textContent = `${state.overview.chips} chips indexed (${state.overview.placed} georeferenced) · model ${state.overview.model}`;
  } else {
    $("status").textContent = "no index loaded";
  }
  await loadImagery();
  document.body.dataset.ready = "1";
})();
window.geovec = { map, layers, state, clustersOf, resultsGeoJSON, runSearch };
