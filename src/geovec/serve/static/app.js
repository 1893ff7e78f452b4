// geovec map page. Leaflet, topojson-client and Natural Earth's coastlines and borders are vendored under
// /static/vendor (no CDN). The indexed imagery comes from this server as XYZ tiles (/tiles/{z}/{x}/{y}.png) at
// every zoom, a result's own pixels as an overlay (/chips/{id}/overlay.png); --basemap adds the user's tiles.
// Coordinates: Leaflet takes [lat, lon]; the API and GeoJSON give [lon, lat] and bboxes as
// [min_lon, min_lat, max_lon, max_lat]. The query, k, filters and the view live in the URL's hash (deep links).
"use strict";
const $ = (id) => document.getElementById(id);
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
for (const [name, z] of [["world", 250], ["chips", 300], ["worldlines", 320], ["outlines", 350], ["hits", 380], ["heat", 390]]) {
  map.createPane(name).style.zIndex = z;
}
map.getPane("worldlines").style.pointerEvents = "none";
map.getPane("heat").style.pointerEvents = "none";
const outlineRenderer = L.canvas({ pane: "outlines", padding: 0.3 });
const layers = {
  basemap: null,                             // --basemap tiles
  world: L.layerGroup().addTo(map),          // Natural Earth land (fill) under the imagery
  worldLines: L.layerGroup().addTo(map),     // coastlines and country borders over it
  outlines: L.layerGroup().addTo(map),       // every georeferenced chip: its box, or a dot when it is tiny
  imagery: null,                             // the indexed rasters' own imagery, tiles at every zoom
  heat: null,                                // every chip coloured by its score for the current query
  resultImagery: L.layerGroup().addTo(map),  // the pixels of the results (also when too many chips are in view)
  results: L.featureGroup().addTo(map),      // result footprints
  labels: L.layerGroup().addTo(map),         // result ranks
  box: L.layerGroup().addTo(map),            // the draw-a-box filter
  place: L.layerGroup().addTo(map),          // the clicked place (and its radius)
};
const BOX_STYLE = { className: "search-box", color: "#00e5ff", weight: 3, dashArray: "8 5", fillColor: "#00e5ff", fillOpacity: 0.08, interactive: false };
new ResizeObserver(() => map.invalidateSize({ animate: false })).observe($("map"));  // the header grows with filters

function chipUrl(id, kind) { return "/chips/" + encodeURIComponent(id) + "/" + kind + ".png"; }
// A bbox with west > east crosses 180 degrees (RFC 7946): its east edge is taken past 180 (east + 360), so the
// map draws it as the narrow box it is, not one that spans the world the other way round.
// ``ref``: a longitude to draw near (the shift by whole turns that puts the box closest to it), so that results on
// both sides of 180 degrees sit side by side.
function eastOf(b) { return b[0] > b[2] ? b[2] + 360 : b[2]; }
function turnsTo(lon, ref) { return ref == null ? 0 : 360 * Math.round((ref - lon) / 360); }
function llBounds(b, ref) {
  const d = turnsTo((b[0] + eastOf(b)) / 2, ref);
  return L.latLngBounds([b[1], b[0] + d], [b[3], eastOf(b) + d]);
}
// A footprint (GeoJSON Polygon or MultiPolygon) as Leaflet [lat, lon] rings, one polygon per part; each part moved
// by whole turns to lie near ``ref``, so the two halves of a footprint split at the antimeridian join again.
function footprintLatLngs(geometry, ref) {
  const polys = geometry.type === "MultiPolygon" ? geometry.coordinates : [geometry.coordinates];
  return polys.map((rings) => {
    const lons = rings[0].map((c) => c[0]), d = turnsTo((Math.min(...lons) + Math.max(...lons)) / 2, ref);
    return rings.map((ring) => ring.map(([lon, lat]) => [lat, lon + d]));
  });
}
// the longitude the results are drawn around: the best georeferenced hit's
function resultsRef(features) {
  const f = features.find((x) => x.properties.centre_lon != null);
  return f ? f.properties.centre_lon : null;
}
function short(p) { return p.split("/").pop(); }
function fmtBox(b) { return b.map((v) => v.toFixed(4)).join(", "); }

// --- the index's chips: outlines and imagery ------------------------------------------------------------------
function outlineMode() {
  // a chip smaller than ~5 px on screen is drawn as a dot, so that an index spread over the globe stays visible
  const boxes = state.overview ? state.overview.boxes : [];
  if (!boxes.length) return null;
  if (!state.medianWidth) state.medianWidth = boxes.map((b) => eastOf(b) - b[0]).sort((a, b) => a - b)[boxes.length >> 1];
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
      ? L.circleMarker([(b[1] + b[3]) / 2, (b[0] + eastOf(b)) / 2], { radius: 3, renderer: outlineRenderer, interactive: false, className: "chip-dot", color: "#52606d", weight: 1, fillOpacity: 0.6 })
      : L.rectangle(llBounds(b), { renderer: outlineRenderer, interactive: false, color: "#6b7c8c", weight: 1, fill: false });
    layers.outlines.addLayer(shape);
  }
}

// --- the offline basemap: Natural Earth 1:50m land, coastlines and country borders (public domain) -----------
async function loadWorld(withFill) {
  const r = await fetch("/static/vendor/world-atlas/countries-50m.json");
  if (!r.ok) return;
  const topo = await r.json();
  const land = topojson.feature(topo, topo.objects.land);
  const borders = topojson.mesh(topo, topo.objects.countries, (a, b) => a !== b);
  const under = L.canvas({ pane: "world", padding: 0.5 }), over = L.canvas({ pane: "worldlines", padding: 0.5 });
  if (withFill) layers.world.addLayer(L.geoJSON(land, { renderer: under, interactive: false, style: { stroke: false, fillColor: "#eceee4", fillOpacity: 1 } }));
  layers.worldLines.addLayer(L.geoJSON(land, { renderer: over, interactive: false, style: { color: "#41607a", weight: 1, fill: false } }));
  layers.worldLines.addLayer(L.geoJSON(borders, { renderer: over, interactive: false, style: { color: "#7a5c8c", weight: 1, dashArray: "4 3", fill: false } }));
  document.body.dataset.world = "1";
}

// --- similarity heatmap: every georeferenced chip in its score's colour (one canvas, redrawn per view) -------------
const HEAT_STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];  // viridis
const HEAT_BINS = 32;
function heatColour(t) {  // t in [0, 1]
  const x = Math.min(0.9999, Math.max(0, t)) * (HEAT_STOPS.length - 1), i = Math.floor(x), f = x - i;
  const a = HEAT_STOPS[i], b = HEAT_STOPS[i + 1];
  return `rgb(${a.map((v, k) => Math.round(v + (b[k] - v) * f)).join(",")})`;
}
// the bins' colours as little-endian RGBA words, for writing pixels directly
const HEAT_RGBA = Uint32Array.from({ length: HEAT_BINS }, (_, b) => {
  const [r, g, bl] = heatColour((b + 0.5) / HEAT_BINS).slice(4, -1).split(",").map(Number);
  return ((255 << 24) | (bl << 16) | (g << 8) | r) >>> 0;
});
const HeatLayer = L.Layer.extend({
  options: { pane: "heat", opacity: 0.75 },
  onAdd(m) {
    this._canvas = L.DomUtil.create("canvas", "heat-canvas leaflet-zoom-hide");
    this.getPane().appendChild(this._canvas);
    m.on("moveend zoomend resize", this.redraw, this);
    this.redraw();
  },
  onRemove(m) { L.DomUtil.remove(this._canvas); m.off("moveend zoomend resize", this.redraw, this); },
  setData(merc, scores) {  // merc: Float64Array of x0, y0, x1, y1 per chip in [0, 1] (Web Mercator); scores: Uint8Array
    this._merc = merc; this._scores = scores;
    this._pastEdge = merc.some((v, j) => j % 4 === 2 && v > 1);  // a chip across 180 degrees
    // chips in ascending score (a counting sort: scores are bytes), so the best are drawn last, on top
    const start = new Uint32Array(257);
    for (const v of scores) start[v + 1] += 1;
    for (let v = 1; v < 257; v++) start[v] += start[v - 1];
    this._order = new Uint32Array(scores.length);
    scores.forEach((v, i) => { this._order[start[v]++] = i; });
    this.redraw();
  },
  redraw() {
    const m = this._map;
    if (!m || !this._canvas) return;
    const t0 = performance.now();
    const size = m.getSize(), c = this._canvas, W = size.x, H = size.y;
    c.width = W; c.height = H;
    c.style.opacity = String(this.options.opacity);
    L.DomUtil.setPosition(c, m.containerPointToLayerPoint([0, 0]));
    const ctx = c.getContext("2d");
    if (!this._scores) return;
    const scale = 256 * Math.pow(2, m.getZoom()), o = m.getPixelBounds().min, merc = this._merc, sc = this._scores;
    // chips a few pixels wide (the usual case zoomed out, where there are many) are written straight into the
    // pixels; larger ones are filled rectangles drawn after them
    const img = ctx.createImageData(W, H), buf = new Uint32Array(img.data.buffer), big = [];
    let drawn = 0;
    // every copy of the world in view, and the one before it when a chip across 180 degrees reaches past x = 1
    for (let turn = Math.floor(o.x / scale) - (this._pastEdge ? 1 : 0); turn * scale < o.x + W; turn++) {
      const ox = o.x - turn * scale;
      for (const i of this._order) {
        let x0 = merc[4 * i] * scale - ox, x1 = merc[4 * i + 2] * scale - ox;
        let y0 = merc[4 * i + 3] * scale - o.y, y1 = merc[4 * i + 1] * scale - o.y;  // north edge is the smaller y
        if (x1 < -2 || y1 < -2 || x0 > W + 2 || y0 > H + 2) continue;
        if (x1 - x0 < 3) { const cx = (x0 + x1) / 2; x0 = cx - 1.5; x1 = cx + 1.5; }
        if (y1 - y0 < 3) { const cy = (y0 + y1) / 2; y0 = cy - 1.5; y1 = cy + 1.5; }
        drawn += 1;
        if (x1 - x0 > 6 || y1 - y0 > 6) { big.push(i, x0, y0, x1, y1); continue; }
        const col = HEAT_RGBA[Math.min(HEAT_BINS - 1, (sc[i] * HEAT_BINS) >> 8)];
        const xa = Math.max(0, Math.round(x0)), xb = Math.min(W, Math.round(x1)), ya = Math.max(0, Math.round(y0)), yb = Math.min(H, Math.round(y1));
        for (let y = ya; y < yb; y++) buf.fill(col, y * W + xa, y * W + xb);
      }
    }
    ctx.putImageData(img, 0, 0);
    let bin = -1;
    for (let j = 0; j < big.length; j += 5) {
      const b = Math.min(HEAT_BINS - 1, (sc[big[j]] * HEAT_BINS) >> 8);
      if (b !== bin) { bin = b; ctx.fillStyle = heatColour((b + 0.5) / HEAT_BINS); }
      ctx.fillRect(big[j + 1], big[j + 2], big[j + 3] - big[j + 1], big[j + 4] - big[j + 2]);
    }
    this.lastDraw = { ms: performance.now() - t0, drawn };
  },
});
function mercX(lon) { return (lon + 180) / 360; }
function mercY(lat) {
  const p = Math.max(-85.0511287798, Math.min(85.0511287798, lat)) * Math.PI / 180;
  return (1 - Math.log(Math.tan(Math.PI / 4 + p / 2)) / Math.PI) / 2;
}
// a chip across 180 degrees (west > east) gets x1 past 1: its east edge in the next copy of the world
async function heatBoxes(version) {
  if (state.heatBoxes && state.heatBoxes.version === version) return state.heatBoxes.merc;
  const r = await fetch("/heatmap/boxes.bin");
  const boxes = new Float32Array(await r.arrayBuffer());
  const merc = new Float64Array(boxes.length);
  for (let i = 0; i < boxes.length; i += 4) {
    merc[i] = mercX(boxes[i]); merc[i + 1] = mercY(boxes[i + 1]); merc[i + 2] = mercX(boxes[i] > boxes[i + 2] ? boxes[i + 2] + 360 : boxes[i + 2]); merc[i + 3] = mercY(boxes[i + 3]);
  }
  state.heatBoxes = { version: r.headers.get("X-Heatmap-Version"), merc };
  return merc;
}
async function showHeat(h) {
  if (!h || !h.count) { if (layers.heat) layers.heat.setData(new Float64Array(0), new Uint8Array(0)); $("heat-legend").hidden = true; return; }
  const merc = await heatBoxes(h.version);
  const raw = atob(h.scores), scores = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) scores[i] = raw.charCodeAt(i);
  if (!layers.heat) layers.heat = new HeatLayer();
  layers.heat.setData(merc, scores);
  $("heat-lo").textContent = h.lo.toFixed(3); $("heat-hi").textContent = h.hi.toFixed(3);
  setHeat($("heat").checked);
}
function setHeat(on) {
  if (!layers.heat) { $("heat-legend").hidden = true; return; }
  if (on && !map.hasLayer(layers.heat)) layers.heat.addTo(map);
  if (!on && map.hasLayer(layers.heat)) map.removeLayer(layers.heat);
  $("heat-legend").hidden = !on;
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
  const ref = resultsRef(features);
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
    for (const f of members) bounds.extend(llBounds(f.properties.bbox, ref));  // where drawResults draws them
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
  const ref = resultsRef(state.results);
  for (const f of state.results) {
    const p = f.properties;
    if (!f.geometry) continue;
    if (p.overlay) {
      layers.resultImagery.addLayer(L.imageOverlay(p.overlay, llBounds(p.bbox, ref), { pane: "hits", className: "hit-img", interactive: false, alt: "" }));
    }
    const poly = L.polygon(footprintLatLngs(f.geometry, ref), { className: "footprint", color: "#e65100", weight: 2, fillOpacity: 0.05, bubblingMouseEvents: false });
    poly.featureId = f.id; poly.rank = p.rank;
    poly.bindTooltip(`#${p.rank} · ${p.score.toFixed(3)} · ${short(p.path)}`, { sticky: true });
    poly.on("mouseover", () => highlight(f.id, true));
    poly.on("mouseout", () => highlight(f.id, false));
    poly.on("click", () => select(f.id, { fly: false, scroll: true }));
    layers.results.addLayer(poly);
    const label = L.marker([p.centre_lat, p.centre_lon + turnsTo(p.centre_lon, ref)], {
      icon: L.divIcon({ className: "rank-label", html: String(p.rank), iconSize: null }), interactive: false, keyboard: false });
    label.rank = p.rank;
    layers.labels.addLayer(label);
  }
  declutterLabels();
}
// Rank labels never overlap: in rank order, a label that would overlap one already placed is hidden and counted
// in that one ("3 +2": rank 3 and two more under it; its title lists them). Re-run at every zoom.
function declutterLabels() {
  const gap = 2, hit = (a, b) => a.left < b.right + gap && b.left < a.right + gap && a.top < b.bottom + gap && b.top < a.bottom + gap;
  let kept = layers.labels.getLayers().filter((m) => m.getElement()).sort((a, b) => a.rank - b.rank);
  for (const m of kept) { const el = m.getElement(); el.hidden = false; el.textContent = String(m.rank); el.title = ""; m.under = []; }
  for (let changed = true; changed;) {  // merged labels grow wider: repeat until a pass changes nothing
    changed = false;
    const placed = [];
    for (const m of kept) {
      const r = m.getElement().getBoundingClientRect(), over = placed.find((p) => hit(p.r, r));
      if (over) { m.getElement().hidden = true; over.m.under.push(m.rank, ...m.under); m.under = []; changed = true; }
      else placed.push({ m, r });
    }
    kept = placed.map((p) => p.m);
    for (const m of kept) {
      const el = m.getElement();
      el.textContent = m.under.length ? `${m.rank} +${m.under.length}` : String(m.rank);
      el.title = m.under.length ? "ranks " + [m.rank, ...m.under].sort((a, b) => a - b).join(", ") : "";
    }
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
  if (fly && f && f.properties.bbox) map.fitBounds(llBounds(f.properties.bbox, resultsRef(state.results)).pad(1.0), { maxZoom: 21, animate: false });
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
  const body = { k: Math.min(parseInt($("k").value, 10) || 10, (state.config && state.config.max_k) || 200), heatmap: true };
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
    writeHash();
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
  await showHeat(out.heatmap);
  state.clusters = clustersOf(state.results);
  if (!keepView && state.clusters.length) fitCluster(0);
  else { $("cluster-info").textContent = ""; $("next-cluster").hidden = $("show-all").hidden = state.clusters.length < 2; }
  const warn = out.warnings ? " · " + out.warnings.join(" ") : "";
  $("status").textContent = `${state.results.length} result(s) · task ${out.task} · ${Math.round(performance.now() - t0)} ms${warn}`;
  writeHash();
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

// --- deep links: the query, k, filters, heatmap and view in the URL's hash --------------------------------------
// #q=TEXT&k=10&like=CHIP_ID&near=LAT,LON&within=KM&bbox=W,S,E,N&heat=1&map=ZOOM/LAT/LON (an uploaded image is
// not part of a link: it would not fit a URL)
function writeHash() {
  const h = new URLSearchParams();
  if (state.like) h.set("like", state.like.id); else if (state.text) h.set("q", state.text);
  h.set("k", String(parseInt($("k").value, 10) || 10));
  if (state.place) h.set("near", `${state.place.lat},${state.place.lon}`);
  const r = parseFloat($("within").value);
  if (state.place && r > 0) h.set("within", String(r));
  if (state.bbox) h.set("bbox", state.bbox.join(","));
  if ($("heat").checked) h.set("heat", "1");
  const c = map.getCenter(), z = map.getZoom();
  h.set("map", `${+z.toFixed(2)}/${c.lat.toFixed(6)}/${c.lng.toFixed(6)}`);
  const hash = "#" + h.toString();
  if (location.hash !== hash) history.replaceState(null, "", hash);
}
function readHash() {
  const h = new URLSearchParams(location.hash.slice(1)), nums = (key, n) => {
    const v = (h.get(key) || "").split(/[,/]/).map(Number);
    return v.length === n && v.every(Number.isFinite) ? v : null;
  };
  const view = nums("map", 3);
  return { q: h.get("q") || "", like: h.get("like"), k: parseInt(h.get("k"), 10), near: nums("near", 2),
           within: parseFloat(h.get("within")), bbox: nums("bbox", 4), heat: h.get("heat") === "1",
           view: view && { zoom: view[0], center: [view[1], view[2]] } };
}
function applyLink(link) {
  if (link.k > 0) $("k").value = String(link.k);
  if (link.within > 0) $("within").value = String(link.within);
  $("heat").checked = link.heat || $("heat").checked;
  if (link.like) {
    state.like = { id: link.like, label: short(link.like) };
    $("like").hidden = false; $("like-text").textContent = state.like.label; $("like-text").title = link.like;
  } else if (link.q) { state.text = link.q; $("q").value = link.q; }
  if (link.near) setPlace(link.near[0], link.near[1]);
  if (link.bbox) {
    state.bbox = link.bbox;
    $("box").hidden = false; $("box-text").textContent = fmtBox(state.bbox);
    layers.box.clearLayers(); layers.box.addLayer(L.rectangle(llBounds(state.bbox), BOX_STYLE));
  }
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
  // longitudes wrapped into [-180, 180]: a box drawn over 180 degrees has west > east, as the server reads it
  const wrap = (lon) => ((((lon + 180) % 360) + 360) % 360) - 180, whole = bounds.getEast() - bounds.getWest() >= 360;
  state.bbox = [r6(whole ? -180 : wrap(bounds.getWest())), r6(Math.max(-90, bounds.getSouth())),
                r6(whole ? 180 : wrap(bounds.getEast())), r6(Math.min(90, bounds.getNorth()))];
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
map.on("zoomend", declutterLabels);
map.on("moveend", writeHash);
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
$("within").addEventListener("change", () => { drawPlace(); writeHash(); });
$("k").addEventListener("change", writeHash);
$("heat").addEventListener("change", (e) => { setHeat(e.target.checked); writeHash(); });
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
  const world = loadWorld(!bm);  // with a --basemap, only the lines: its tiles are the ground
  map.attributionControl.addAttribution("Natural Earth");
  const link = readHash();
  const r = await fetch("/index/overview");
  if (r.ok) {
    state.overview = await r.json();
    if (link.view) map.setView(link.view.center, link.view.zoom, { animate: false });
    else if (state.overview.extent) map.fitBounds(llBounds(state.overview.extent).pad(0.1), { animate: false });
    drawOutlines();
    if (state.overview.placed) {
      layers.imagery = L.tileLayer("/tiles/{z}/{x}/{y}.png", { pane: "chips", maxZoom: 22, className: "imagery-tile", keepBuffer: 1 }).addTo(map);
    }
    $("status").textContent = `${state.overview.chips} chips indexed (${state.overview.placed} georeferenced) · model ${state.overview.model}`;
  } else {
    $("status").textContent = "no index loaded";
  }
  await world;
  applyLink(link);
  document.body.dataset.ready = "1";
  if (hasQuery()) await runSearch({ keepView: !!link.view });
  else writeHash();
})();
window.geovec = { map, layers, state, clustersOf, resultsGeoJSON, runSearch, declutterLabels, readHash };
