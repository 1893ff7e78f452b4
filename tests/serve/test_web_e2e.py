"""End-to-end: the map page in headless Chromium (Debian's chromium + chromium-driver, driven by selenium)
against a live server on 127.0.0.1: Leaflet loads from the package (no CDN), the chips' own imagery is drawn at
their footprints, and a user searches by text, lands on the best cluster of results, clicks a result, asks for
more like it, draws a box, exports GeoJSON, clicks a place, and sees a local basemap. Skips only when chromium /
chromedriver / selenium are absent (installed by scripts/install-system-deps.sh, which scripts/install.sh runs).

``GEOVEC_SCREENSHOT=path.png`` saves the flow's screenshot there too (docs/search-map.png is made by
``test_screenshot_of_real_imagery`` with ``GEOVEC_SCREENSHOT_DOCS=1``: the real model on ../shared/data)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

selenium = pytest.importorskip("selenium", reason="selenium (dev extra) is not installed")
from selenium.webdriver.common.by import By  # noqa: E402
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="chromium / chromedriver not installed (see scripts/install-system-deps.sh)")
REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def _serving(app):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(timeout=10)


@pytest.fixture(scope="module")
def live_server(served):
    from geovec.serve.app import create_app

    db, scenes, model = served
    with _serving(create_app(db, model)) as url:
        yield url


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800",
              "--no-proxy-server", "--disable-extensions", "--hide-scrollbars"):
        opts.add_argument(a)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield driver
    driver.quit()


def _wait(driver, cond, timeout=20, message=""):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(cond, message)


def _open(browser, url):
    from selenium.webdriver.common.by import By

    browser.get(url + "/")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")


def _searches(browser) -> int:
    return int(browser.execute_script("return geovec.state.searches"))


def _after_search(browser, before: int):
    _wait(browser, lambda d: _searches(d) > before and not d.execute_script("return document.body.dataset.searching"),
          message="the search did not finish")


def _images_loaded(browser, css: str) -> bool:
    return browser.execute_script(
        "const imgs = [...document.querySelectorAll(arguments[0])];"
        "return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);", css)


def _statuses(browser, part: str) -> dict:
    """HTTP status of every resource the page fetched whose URL contains ``part`` (Resource Timing)."""
    return browser.execute_script(
        "const out = {}; for (const e of performance.getEntriesByType('resource'))"
        " if (e.name.includes(arguments[0])) out[e.name] = e.responseStatus; return out;", part)


def _cards(browser):
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, "#result-list .result")


def _view(browser) -> list[float]:
    """The map's visible [west, south, east, north]."""
    return browser.execute_script("const b = geovec.map.getBounds(); return [b.getWest(), b.getSouth(), b.getEast(),"
                                  " b.getNorth()];")


def _contains(outer, inner, slack=1e-9) -> bool:
    return (outer[0] - slack <= inner[0] and outer[1] - slack <= inner[1] and inner[2] <= outer[2] + slack
            and inner[3] <= outer[3] + slack)


def _intersects(a, b) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _km(lat1, lon1, lat2, lon2) -> float:
    r = math.radians
    a = math.sin(r(lat2 - lat1) / 2) ** 2 + math.cos(r(lat1)) * math.cos(r(lat2)) * math.sin(r(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(a)))


def _best_cluster(features) -> set[str]:
    """The page's rule, restated: results linked when their centres are within 3 diagonals of the larger of
    their two chips, single linkage, clusters ranked by the sum of 1 / rank."""
    geo = [f for f in features if f["properties"]["bbox"]]
    diag = [_km(b[1], b[0], b[3], b[2]) for b in (f["properties"]["bbox"] for f in geo)]
    parent = list(range(len(geo)))

    def find(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(len(geo)):
        for j in range(i + 1, len(geo)):
            a, b = geo[i]["properties"], geo[j]["properties"]
            if _km(a["centre_lat"], a["centre_lon"], b["centre_lat"], b["centre_lon"]) <= max(3 * max(diag[i], diag[j]), 0.01):
                parent[find(i)] = find(j)
    groups: dict[int, list] = {}
    for i, f in enumerate(geo):
        groups.setdefault(find(i), []).append(f)
    best = max(groups.values(), key=lambda g: (sum(1 / f["properties"]["rank"] for f in g),
                                               -min(f["properties"]["rank"] for f in g)))
    return {f["id"] for f in best}


def _ccw(ring) -> bool:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:])) > 0


def _screenshot(browser, path: Path) -> Path:
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    from PIL import Image

    with Image.open(path) as im:
        assert im.size[0] >= 1000 and len(set(im.convert("L").resize((64, 40)).getdata())) > 20  # not blank
    return path


def _tile_images(browser) -> list[list]:
    """[src, naturalWidth] of the imagery tiles the page shows."""
    return browser.execute_script("return [...document.querySelectorAll('.imagery-tile img.leaflet-tile-loaded')]"
                                  ".map((i) => [i.src, i.naturalWidth])")


def test_leaflet_from_the_package_imagery_tiles_and_the_offline_basemap(live_server, browser):
    import httpx
    import numpy as np
    from PIL import Image

    _open(browser, live_server)
    assert browser.execute_script("return L.version") == "1.9.4"
    # nothing from another origin: Leaflet, topojson-client, the world map and every image come from this server
    sources = browser.execute_script("return [...document.querySelectorAll('script[src], link[href]')]"
                                     ".map((e) => e.src || e.href)")
    for vendored in ("leaflet/leaflet.js", "leaflet/leaflet.css", "topojson-client/topojson-client.min.js"):
        assert any(s.endswith("/static/vendor/" + vendored) for s in sources), vendored
    resources = browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert resources and all(r.startswith(live_server + "/") for r in resources), resources
    assert not browser.execute_script("return document.querySelectorAll('.basemap').length")  # no --basemap
    health = httpx.get(live_server + "/healthz").json()
    ov = httpx.get(live_server + "/index/overview").json()
    assert f"{health['chips']} chips indexed" in browser.find_element("id", "status").text
    assert browser.execute_script("return geovec.layers.outlines.getLayers().length") == ov["placed"]
    # the Natural Earth basemap: land under the imagery, coastlines and borders over it, from the package
    assert _statuses(browser, "/static/vendor/world-atlas/countries-50m.json")
    assert browser.execute_script("return [geovec.layers.world.getLayers().length,"
                                  " geovec.layers.worldLines.getLayers().length]") == [1, 2]
    assert "Natural Earth" in browser.find_element(By.CLASS_NAME, "leaflet-control-attribution").text
    # the imagery at every zoom: tiles of the indexed rasters, zoomed in and zoomed out to a continent
    for zoom in (None, 5):
        if zoom is not None:
            browser.execute_script("geovec.map.setView([52.03, 6.0], arguments[0], {animate: false})", zoom)
        z = round(browser.execute_script("return geovec.map.getZoom()"))
        _wait(browser, lambda d: not d.execute_script("return geovec.layers.imagery.isLoading()")
              and [t for t in _tile_images(d) if f"/tiles/{z}/" in t[0]], message="imagery tiles did not load")
        opaque = 0
        for src, _ in [t for t in _tile_images(browser) if f"/tiles/{z}/" in t[0]]:
            assert src.startswith(live_server + "/tiles/")
            im = np.asarray(Image.open(io.BytesIO(httpx.get(src).content)).convert("RGBA"))
            opaque += int((im[..., 3] == 255).sum())
        assert opaque > 0, f"no imagery in the tiles at zoom {zoom}"
    statuses = _statuses(browser, "/tiles/")
    assert statuses and set(statuses.values()) == {200}


def test_search_cluster_click_more_like_this_box_and_export(live_server, browser, downloads, tmp_path):
    import httpx
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _open(browser, live_server)
    query = "solar farm near a river"
    k = browser.find_element(By.ID, "k")
    k.clear()
    k.send_keys("10")
    n = _searches(browser)
    browser.find_element(By.ID, "q").send_keys(query, Keys.ENTER)
    _after_search(browser, n)

    # 1. text search: the list is the API's ranking, with scores and thumbnails that loaded (HTTP 200)
    api = httpx.post(live_server + "/search", json={"text": query, "k": 10}).json()["features"]
    cards = _cards(browser)
    assert [c.get_attribute("data-id") for c in cards] == [f["id"] for f in api]
    for card, f in zip(cards, api):
        assert f"{f['properties']['score']:.4f}" in card.text
        assert card.find_element(By.CSS_SELECTOR, ".more-like").is_displayed()
    _wait(browser, lambda d: _images_loaded(d, "#result-list img.thumb"), message="thumbnails did not load")
    thumbs = _statuses(browser, "/thumbnail.png")
    assert len(thumbs) == len(api) and set(thumbs.values()) == {200}
    geo = [f for f in api if f["geometry"]]
    assert len(geo) >= 2
    counts = browser.execute_script("const l = geovec.layers; return [l.results.getLayers().length,"
                                    " l.labels.getLayers().length, l.resultImagery.getLayers().length]")
    assert counts == [len(geo)] * 3  # one footprint, one rank label, one image per georeferenced result
    _wait(browser, lambda d: _images_loaded(d, "img.hit-img"))
    assert "task retrieval" in browser.find_element(By.ID, "status").text

    # 2. the view is the best cluster of results, not the bounding box of all of them
    clusters = browser.execute_script("return geovec.state.clusters.map((c) => c.ids)")
    assert len(clusters) >= 2, "the query's results should lie in more than one place (two areas of scenes)"
    assert set(clusters[0]) == _best_cluster(api)
    view = _view(browser)
    for f in geo:
        inside = _contains(view, f["properties"]["bbox"])
        assert inside if f["id"] in clusters[0] else not inside, f["id"]
    assert "cluster 1 of" in browser.find_element(By.ID, "cluster-info").text
    browser.find_element(By.ID, "show-all").click()
    assert all(_contains(_view(browser), f["properties"]["bbox"]) for f in geo)
    browser.find_element(By.ID, "next-cluster").click()  # -> cluster 2 (after "all results": from cluster 1)
    assert set(clusters[1]) == {f["id"] for f in geo if _contains(_view(browser), f["properties"]["bbox"])}

    # 3. click a result: the map goes to its footprint, which is marked; the card too
    third = _cards(browser)[2]
    third_id = third.get_attribute("data-id")
    bbox3 = next(f["properties"]["bbox"] for f in api if f["id"] == third_id)
    third.click()
    _wait(browser, lambda d: "active" in _cards(d)[2].get_attribute("class"))
    view = _view(browser)
    assert _contains(view, bbox3)
    cx, cy = (view[0] + view[2]) / 2, (view[1] + view[3]) / 2
    assert bbox3[0] <= cx <= bbox3[2] and bbox3[1] <= cy <= bbox3[3]
    assert browser.execute_script(
        "const p = geovec.layers.results.getLayers().find((l) => l.featureId === arguments[0]);"
        "return p.getElement().classList.contains('active')", third_id)
    assert browser.execute_script("return geovec.state.active") == third_id

    # 4. more like this (card 2): the stored vector; that chip comes first with score 1
    second = _cards(browser)[1]
    like_id = second.get_attribute("data-id")
    n = _searches(browser)
    second.find_element(By.CSS_SELECTOR, ".more-like").click()
    _after_search(browser, n)
    assert "task like" in browser.find_element(By.ID, "status").text
    assert browser.find_element(By.ID, "like").is_displayed()
    like_api = httpx.post(live_server + "/search", json={"like": like_id, "k": 10}).json()["features"]
    cards = _cards(browser)
    assert [c.get_attribute("data-id") for c in cards] == [f["id"] for f in like_api]
    assert cards[0].get_attribute("data-id") == like_id and "score 1.0000" in cards[0].text
    assert set(browser.execute_script("return geovec.state.clusters[0].ids")) == _best_cluster(like_api)

    # 5. draw a box over the middle of the view: the same "like" search, inside the box only
    browser.find_element(By.ID, "draw-box").click()
    m = browser.find_element(By.ID, "map")
    w, h = m.size["width"], m.size["height"]
    n = _searches(browser)
    ActionChains(browser).move_to_element_with_offset(m, -w // 5, -h // 5).click_and_hold() \
        .move_by_offset(w // 5, h // 5).move_by_offset(w // 5, h // 5).release().perform()
    _after_search(browser, n)
    bbox = browser.execute_script("return geovec.state.bbox")
    expect = browser.execute_script(
        "const m = geovec.map, s = m.getSize(), a = m.containerPointToLatLng([s.x / 2 - arguments[0], s.y / 2 - arguments[1]]),"
        " b = m.containerPointToLatLng([s.x / 2 + arguments[0], s.y / 2 + arguments[1]]);"
        "return [a.lng, b.lat, b.lng, a.lat];", w // 5, h // 5)
    assert bbox and all(abs(a - b) < 2e-3 * max(1.0, abs(view[2] - view[0])) for a, b in zip(bbox, expect)), (bbox, expect)
    assert browser.find_element(By.ID, "box").is_displayed()
    assert browser.execute_script("return geovec.layers.box.getLayers().length") == 1
    assert not browser.execute_script("return geovec.state.drawing")  # one box per click of the button
    assert browser.execute_script("return geovec.state.place") is None  # the drag was not taken for a click
    box_api = httpx.post(live_server + "/search", json={"like": like_id, "k": 10, "bbox": bbox}).json()["features"]
    assert box_api, "the box should hold chips"
    cards = _cards(browser)
    assert [c.get_attribute("data-id") for c in cards] == [f["id"] for f in box_api]
    assert all(_intersects(f["properties"]["bbox"], bbox) for f in box_api)
    # the box did leave some out (the ungeoreferenced PNG's chips among them)
    assert any(not (f["properties"]["bbox"] and _intersects(f["properties"]["bbox"], bbox)) for f in like_api)

    # 6. export: the current results as an RFC 7946 GeoJSON file
    for old in downloads.glob("*"):
        old.unlink()
    browser.find_element(By.ID, "export").click()
    _wait(browser, lambda d: list(downloads.glob("geovec-results*.geojson")), message="no GeoJSON was downloaded")
    path = sorted(downloads.glob("geovec-results*.geojson"))[0]
    _wait(browser, lambda d: path.stat().st_size > 0 and not list(downloads.glob("*.crdownload")))
    fc = json.loads(path.read_text())
    assert fc["type"] == "FeatureCollection" and "crs" not in fc
    assert [f["id"] for f in fc["features"]] == [c.get_attribute("data-id") for c in _cards(browser)]
    assert fc["query"]["like"] == like_id and fc["query"]["bbox"] == bbox
    for f in fc["features"]:
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
        ring = f["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1] and _ccw(ring)  # closed, exterior counter-clockwise
        assert all(5 < lon < 7 and 51 < lat < 53 for lon, lat in ring)  # [lon, lat]
        assert f["properties"]["thumbnail"].startswith(live_server + "/chips/")
    assert httpx.get(fc["features"][0]["properties"]["thumbnail"]).status_code == 200

    shot = _screenshot(browser, tmp_path / "search-map.png")
    if os.environ.get("GEOVEC_SCREENSHOT"):
        shutil.copy(shot, os.environ["GEOVEC_SCREENSHOT"])

    # clearing the box searches everywhere again
    n = _searches(browser)
    browser.find_element(By.ID, "clear-box").click()
    _after_search(browser, n)
    assert browser.execute_script("return geovec.state.bbox") is None
    assert [c.get_attribute("data-id") for c in _cards(browser)] == [f["id"] for f in like_api]


def test_click_a_place(live_server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _open(browser, live_server)
    browser.find_element(By.ID, "within").send_keys("2")
    # click on the centre of an indexed chip
    x, y = browser.execute_script(
        "const l = geovec.layers.outlines.getLayers()[0], p = geovec.map.latLngToContainerPoint(l.getBounds().getCenter()),"
        " s = geovec.map.getSize(); return [p.x - s.x / 2, p.y - s.y / 2];")
    n = _searches(browser)
    ActionChains(browser).move_to_element_with_offset(browser.find_element(By.ID, "map"), int(x), int(y)).click().perform()
    _after_search(browser, n)
    assert "task geo" in browser.find_element(By.ID, "status").text
    assert browser.find_element(By.ID, "place").is_displayed()
    lat, lon = (float(v) for v in browser.find_element(By.ID, "place-text").text.split(","))
    assert 51 < lat < 53 and 5 < lon < 7  # the scenes lie at ~52 N, ~6 E
    cards = _cards(browser)
    assert cards, "a click on an indexed chip must find chips within 2 km"
    for c in cards:
        km = float(c.find_element(By.CSS_SELECTOR, ".where").text.split("·")[1].strip().split()[0])
        assert km <= 2.0
    assert browser.execute_script("return geovec.layers.place.getLayers().length") == 2  # the point and its radius


def test_basemap_from_a_local_tile_folder(served, browser, tmp_path):
    import httpx
    from PIL import Image

    from geovec.serve.app import create_app

    db, _, model = served
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    template = str(tiles) + "/{z}/{x}/{y}.png"
    with _serving(create_app(db, model, basemap=template)) as url:
        cfg = httpx.get(url + "/map/config").json()["basemap"]
        assert cfg["url"] == "/basemap/{z}/{x}/{y}.png" and cfg["local"]
        _open(browser, url)
        # the tiles of the current view, written now (the server reads the folder per request), then redrawn
        z = round(browser.execute_script("return geovec.map.getZoom()"))
        west, south, east, north = _view(browser)

        def tile(lon, lat):
            n = 2 ** z
            y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
            return int((lon + 180) / 360 * n), int(y)

        (x0, y0), (x1, y1) = tile(west, north), tile(east, south)
        Image.new("RGB", (256, 256), (200, 220, 190)).save(tmp_path / "t.png")
        for x in range(x0 - 1, x1 + 2):
            for y in range(y0 - 1, y1 + 2):
                (tiles / str(z) / str(x)).mkdir(parents=True, exist_ok=True)
                shutil.copy(tmp_path / "t.png", tiles / str(z) / str(x) / f"{y}.png")
        # re-added, not redraw(): Leaflet 1.9's redraw() asks for tiles of a fractional zoom (10.25/...)
        browser.execute_script("const l = geovec.layers.basemap; geovec.map.removeLayer(l); geovec.map.addLayer(l);")
        _wait(browser, lambda d: d.execute_script("return document.querySelectorAll('.basemap img.leaflet-tile-loaded').length") > 0,
              message="no basemap tile loaded")
        srcs = browser.execute_script("return [...document.querySelectorAll('.basemap img.leaflet-tile-loaded')].map((i) => [i.src, i.naturalWidth])")
        assert all(s.startswith(url + f"/basemap/{z}/") and w == 256 for s, w in srcs)
        assert httpx.get(url + f"/basemap/{z}/{x0}/{y0}.png").status_code == 200
        assert httpx.get(url + "/basemap/3/0/99.png").status_code == 404  # outside the tile grid
        assert httpx.get(url + "/basemap/3/0/..%2F..%2Fetc.png").status_code == 404


def _search_for(browser, text: str, k: int | None = None):
    from selenium.webdriver.common.keys import Keys

    if k is not None:
        browser.find_element(By.ID, "k").clear()
        browser.find_element(By.ID, "k").send_keys(str(k))
    n = _searches(browser)
    q = browser.find_element(By.ID, "q")
    q.clear()
    q.send_keys(text, Keys.ENTER)
    _after_search(browser, n)


def _heat_pixel(browser, bbox) -> list[int]:
    """RGBA of the heatmap canvas at the centre of a chip's bbox."""
    return browser.execute_script(
        "const m = geovec.map, p = m.latLngToContainerPoint([(arguments[0][1] + arguments[0][3]) / 2,"
        " (arguments[0][0] + arguments[0][2]) / 2]), c = document.querySelector('canvas.heat-canvas');"
        "return [...c.getContext('2d').getImageData(Math.round(p.x), Math.round(p.y), 1, 1).data];", bbox)


def _viridis(score: int):
    """The page's colour for a quantised score (0-255): 32 bins on a 5-stop viridis ramp."""
    import numpy as np

    stops = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], float)
    t = (min(31, int(score) * 32 >> 8) + 0.5) / 32 * 4
    i = int(t)
    return np.rint(stops[i] + (stops[i + 1] - stops[i]) * (t - i))


def test_similarity_heatmap_of_every_chip(live_server, browser):
    import base64

    import httpx
    import numpy as np

    _open(browser, live_server)
    _search_for(browser, "fields", k=5)
    assert not browser.find_element(By.ID, "heat-legend").is_displayed()  # off until asked for
    browser.find_element(By.ID, "heat").click()
    assert browser.execute_script("return geovec.map.hasLayer(geovec.layers.heat)")
    api = httpx.post(live_server + "/search", json={"text": "fields", "k": 5, "heatmap": True}).json()["heatmap"]
    legend = browser.find_element(By.ID, "heat-legend")
    assert legend.is_displayed() and legend.text.split()[-2:] == [f"{api['lo']:.3f}", f"{api['hi']:.3f}"]
    # all chips in view: every georeferenced chip is drawn, in its score's colour
    browser.execute_script("geovec.map.fitBounds(geovec.layers.outlines.getLayers().length &&"
                           " L.latLngBounds(geovec.state.overview.boxes.flatMap((b) => [[b[1], b[0]], [b[3], b[2]]])),"
                           " {animate: false})")
    assert browser.execute_script("return geovec.layers.heat.lastDraw.drawn") == api["count"]
    scores = np.frombuffer(base64.b64decode(api["scores"]), np.uint8)
    boxes = np.frombuffer(httpx.get(live_server + "/heatmap/boxes.bin").content, "<f4").reshape(-1, 4)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    inside = ((boxes[None, :, 0] <= cx[:, None]) & (cx[:, None] <= boxes[None, :, 2])
              & (boxes[None, :, 1] <= cy[:, None]) & (cy[:, None] <= boxes[None, :, 3])).sum(1)
    alone = np.flatnonzero(inside == 1)  # chips whose centre no other chip covers (the UTM scenes overlap)
    for i in (int(scores.argmax()), int(alone[scores[alone].argmin()]), int(alone[len(alone) // 2])):
        browser.execute_script("geovec.map.fitBounds([[arguments[0][1], arguments[0][0]], [arguments[0][3], arguments[0][2]]],"
                               " {animate: false, padding: [200, 200]})", boxes[i].tolist())
        *rgb, a = _heat_pixel(browser, boxes[i].tolist())
        assert a > 0 and np.abs(np.array(rgb) - _viridis(scores[i])).max() <= 3, (i, scores[i], rgb)
    browser.find_element(By.ID, "heat").click()
    assert not browser.execute_script("return geovec.map.hasLayer(geovec.layers.heat)")
    assert not legend.is_displayed()


def test_rank_labels_never_overlap(live_server, browser):
    import httpx

    _open(browser, live_server)
    _search_for(browser, "fields", k=50)
    geo = [f for f in httpx.post(live_server + "/search", json={"text": "fields", "k": 50}).json()["features"]
           if f["geometry"]]
    merged_somewhere = False
    for zoom in (8, 10, 12, 14, 16):
        browser.execute_script("geovec.map.setView([52.03, 6.0], arguments[0], {animate: false})", zoom)
        labels = browser.execute_script(
            "return geovec.layers.labels.getLayers().map((m) => m.getElement()).filter((e) => !e.hidden)"
            ".map((e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom, e.textContent,"
            " e.title]; })")
        for i, a in enumerate(labels):
            for b in labels[i + 1:]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (zoom, a, b)
        # every result is accounted for: a label shows its rank, or the label it is merged into counts it
        shown = [int(t.split(" +")[0]) for *_, t, _ in labels]
        under = sum(int(t.split(" +")[1]) for *_, t, _ in labels if " +" in t)
        assert len(shown) + under == len(geo), zoom
        assert min(shown) == min(f["properties"]["rank"] for f in geo)  # the best result keeps its own label
        merged_somewhere |= under > 0
        for *_, t, title in labels:
            if " +" in t:
                assert title.startswith("ranks ") and len(title[6:].split(", ")) == 1 + int(t.split(" +")[1])
    assert merged_somewhere  # zoomed out, the 50 labels do collide: the test exercises the merging


def test_deep_link_runs_the_search_and_restores_the_view(live_server, browser):
    import httpx

    ov = httpx.get(live_server + "/index/overview").json()
    bbox = [5.0, 51.0, 7.0, 53.0]
    browser.get("about:blank")
    browser.get(live_server + "/#q=fields&k=5&heat=1&bbox=" + ",".join(map(str, bbox)) + "&map=13/52.03/5.99")
    _wait(browser, lambda d: d.execute_script("return document.body.dataset.ready") == "1"
          and d.execute_script("return geovec.state.searches") >= 1
          and not d.execute_script("return document.body.dataset.searching"), message="the linked search did not run")
    api = httpx.post(live_server + "/search", json={"text": "fields", "k": 5, "bbox": bbox}).json()["features"]
    assert [c.get_attribute("data-id") for c in _cards(browser)] == [f["id"] for f in api]
    assert browser.find_element(By.ID, "q").get_attribute("value") == "fields"
    assert browser.find_element(By.ID, "k").get_attribute("value") == "5"
    assert browser.find_element(By.ID, "box").is_displayed() and browser.execute_script("return geovec.state.bbox") == bbox
    assert browser.find_element(By.ID, "heat").is_selected() and browser.find_element(By.ID, "heat-legend").is_displayed()
    # the view is the link's, not the results' cluster (to within a pixel or two of its centre)
    assert browser.execute_script("return geovec.map.getZoom()") == 13
    off = browser.execute_script("const m = geovec.map, p = m.latLngToContainerPoint([52.03, 5.99]), s = m.getSize();"
                                 " return [p.x - s.x / 2, p.y - s.y / 2];")
    assert abs(off[0]) <= 2 and abs(off[1]) <= 2, off
    # the page keeps the hash up to date: a new query and a pan land in it, and a reload restores both
    _search_for(browser, "river")
    browser.execute_script("geovec.map.setView([52.0, 6.05], 12, {animate: false})")
    link = browser.current_url
    assert "q=river" in link and "k=5" in link and "map=12%2F52.000000%2F6.050000" in link and "heat=1" in link
    browser.get("about:blank")
    browser.get(link)
    _wait(browser, lambda d: d.execute_script("return geovec.state.searches") >= 1
          and not d.execute_script("return document.body.dataset.searching"))
    api = httpx.post(live_server + "/search", json={"text": "river", "k": 5, "bbox": bbox}).json()["features"]
    assert [c.get_attribute("data-id") for c in _cards(browser)] == [f["id"] for f in api]
    assert browser.execute_script("const c = geovec.map.getCenter(); return [geovec.map.getZoom(), c.lat, c.lng]") \
        == pytest.approx([12, 52.0, 6.05], abs=1e-3)
    assert ov["placed"] > 0
    # more like this is linkable too (by chip id)
    browser.find_elements(By.CSS_SELECTOR, "#result-list .more-like")[0].click()
    _wait(browser, lambda d: "like=" in d.current_url)
    assert "q=" not in browser.current_url.split("#", 1)[1]


def _tiles_loaded(browser) -> bool:
    z = round(browser.execute_script("return geovec.map.getZoom()"))
    return (not browser.execute_script("return geovec.layers.imagery.isLoading()")
            and bool([t for t in _tile_images(browser) if f"/tiles/{z}/" in t[0]]))


def _save_docs_png(shot: Path, name: str) -> None:
    """``docs/<name>`` as a 256-colour PNG, under 300 KB (only with GEOVEC_SCREENSHOT_DOCS=1)."""
    from PIL import Image

    if not os.environ.get("GEOVEC_SCREENSHOT_DOCS"):
        return
    out = REPO / "docs" / name
    with Image.open(shot) as im:  # octree keeps the few saturated colours (heatmap, labels) true
        im.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(out, optimize=True)
    assert out.stat().st_size < 300_000


@pytest.mark.slow
@pytest.mark.shared_data
def test_screenshot_of_real_imagery(shared_data, model, browser, tmp_path):
    """The flow on real orthophotos (RSVQA-HR, Long Island) with the real model; GEOVEC_SCREENSHOT_DOCS=1 writes
    docs/search-map.png (kept under 300 KB)."""
    from selenium.webdriver.common.keys import Keys

    from geovec.index.build import build_index
    from geovec.index.chips import ChipSpec
    from geovec.serve.app import create_app

    files = sorted((shared_data / "rsvqa_hr" / "Data").glob("*.tif"))
    assert files
    build_index(files, tmp_path / "db", model, ChipSpec(256), progress=False)
    with _serving(create_app(tmp_path / "db", model)) as url:
        _open(browser, url)
        _wait(browser, _tiles_loaded)
        n = _searches(browser)
        browser.find_element(By.ID, "q").send_keys("houses with swimming pools", Keys.ENTER)
        _after_search(browser, n)
        assert len(_cards(browser)) == 10
        _wait(browser, lambda d: _images_loaded(d, "#result-list img.thumb") and _images_loaded(d, "img.hit-img"))
        browser.execute_script("geovec.map.zoomOut(0.5, {animate: false})")
        _wait(browser, _tiles_loaded)
        time.sleep(0.5)
        _save_docs_png(_screenshot(browser, tmp_path / "shot.png"), "search-map.png")


@pytest.mark.slow
@pytest.mark.shared_data
def test_screenshots_zoomed_out_with_basemap_and_heatmap(shared_data, model, browser, tmp_path):
    """51 real Sentinel-2 scenes (RSVQA-LR, Limburg) zoomed out to the region: their imagery from tiles, the
    Natural Earth borders, non-overlapping rank labels, then the heatmap. GEOVEC_SCREENSHOT_DOCS=1 writes
    docs/search-map-zoomed-out.png and docs/search-map-heatmap.png."""
    import httpx
    import numpy as np
    from PIL import Image

    from geovec.index.build import build_index
    from geovec.index.chips import ChipSpec
    from geovec.serve.app import create_app

    files = sorted((shared_data / "rsvqa_lr" / "Images_LR").glob("*.tif"))
    build_index(files, tmp_path / "db", model, ChipSpec(256), progress=False)
    with _serving(create_app(tmp_path / "db", model)) as url:
        browser.get("about:blank")
        browser.get(url + "/#q=a%20river%20with%20a%20bridge&k=20&map=9.5/51.06/6.05")
        _wait(browser, lambda d: d.execute_script("return document.body.dataset.world") == "1"
              and _searches(d) >= 1 and not d.execute_script("return document.body.dataset.searching"), timeout=120)
        _wait(browser, _tiles_loaded, timeout=120)
        assert browser.execute_script("return geovec.map.getZoom()") == 9.5
        opaque = sum(int((np.asarray(Image.open(io.BytesIO(httpx.get(src).content)).convert("RGBA"))[..., 3] == 255).sum())
                     for src, _ in _tile_images(browser))
        assert opaque > 51 * 100  # every scene is a few dozen tile pixels across at this zoom
        time.sleep(0.5)
        _save_docs_png(_screenshot(browser, tmp_path / "zoomed-out.png"), "search-map-zoomed-out.png")
        browser.find_element(By.ID, "heat").click()
        assert browser.execute_script("return geovec.layers.heat.lastDraw.drawn") == len(files)
        time.sleep(0.3)
        _save_docs_png(_screenshot(browser, tmp_path / "heatmap.png"), "search-map-heatmap.png")


@pytest.fixture(scope="module")
def dateline_server(tmp_path_factory):
    """A live server over a UTM zone 1 scene and an EPSG:4326 raster straddling 180 degrees (three of their
    chips cross it: split MultiPolygon footprints, bboxes with west > east)."""
    from geovec.index.build import build_index
    from geovec.index.chips import ChipSpec
    from geovec.serve.app import create_app
    from tests.index.geovec_fake_model import FakeGeoModel, write_dateline_scenes

    base = tmp_path_factory.mktemp("dateline")
    scenes = write_dateline_scenes(base / "scenes")
    model = FakeGeoModel()
    build_index([scenes], base / "db", model, ChipSpec(32), progress=False)
    with _serving(create_app(base / "db", model)) as url:
        yield url


_PX_WIDTHS = """return geovec.layers[arguments[0]].getLayers().map((l) => {
  const b = l.getBounds(), m = geovec.map;
  return [m.latLngToContainerPoint(b.getNorthEast()).x - m.latLngToContainerPoint(b.getSouthWest()).x,
          b.getEast() - b.getWest()];
});"""


def test_chips_across_the_antimeridian_are_drawn_narrow(dateline_server, browser):
    """The view, the chip outlines, the result footprints (MultiPolygons), their rank labels and the heatmap of an
    index across 180 degrees: nothing spans the world, no JavaScript error."""
    import httpx

    probe = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": (
        "window.__errors = []; addEventListener('error', (e) => __errors.push(String(e.message)));"
        " addEventListener('unhandledrejection', (e) => __errors.push(String(e.reason)));")})
    try:
        _open(browser, dateline_server)
        width = browser.execute_script("return geovec.map.getSize().x")
        west, _, east, _ = _view(browser)
        assert east - west < 10, (west, east)  # fitted to the index's extent across 180, not the whole world
        outlines = browser.execute_script(_PX_WIDTHS, "outlines")
        assert len(outlines) == 9 and all(0 < px < width / 2 and deg < 1 for px, deg in outlines), outlines
        _search_for(browser, "sea", k=20)
        fc = httpx.post(dateline_server + "/search", json={"text": "sea", "k": 20}).json()
        assert sum(f["geometry"]["type"] == "MultiPolygon" for f in fc["features"]) == 3
        drawn = browser.execute_script(_PX_WIDTHS, "results")
        assert len(drawn) == 9 and all(0 < px < width / 2 and deg < 1 for px, deg in drawn), drawn
        # the view went to the results (the same copy of the world they are drawn in)
        assert browser.execute_script("const v = geovec.map.getBounds(); return geovec.layers.results.getLayers()"
                                      ".every((l) => v.intersects(l.getBounds()))")
        # each rank label sits on its footprint (a label at -179.9 would be a world away from a polygon at 180.1)
        off = browser.execute_script(
            "const labels = geovec.layers.labels.getLayers();"
            "return geovec.layers.results.getLayers().filter((p) => {"
            "  const l = labels.find((x) => x.rank === p.rank);"
            "  return !p.getBounds().pad(0.01).contains(l.getLatLng()); }).map((p) => p.rank);")
        assert off == []
        browser.find_element(By.ID, "heat").click()
        assert browser.execute_script("return geovec.layers.heat.lastDraw.drawn") >= 9
        centre = browser.execute_script("return geovec.map.getCenter().lng")  # near 180 or near -180
        for f in fc["features"]:
            if f["geometry"]["type"] == "MultiPolygon":  # drawn at its place, across 180
                w, s, e, n = f["properties"]["bbox"]
                turn = 360 * round((centre - (w + e + 360) / 2) / 360)
                *_, a = _heat_pixel(browser, [w + turn, s, e + 360 + turn, n])
                assert a > 0, f["id"]
        # and the coloured pixels stay within the index's extent (about 1.3 x 0.6 degrees) on the screen
        spread, extent = browser.execute_script(
            "const c = document.querySelector('canvas.heat-canvas'), d = c.getContext('2d')"
            ".getImageData(0, 0, c.width, c.height).data, lo = [1e9, 1e9], hi = [-1, -1];"
            "for (let k = 3; k < d.length; k += 4) if (d[k]) { const p = [(k >> 2) % c.width, Math.floor((k >> 2) / c.width)];"
            " for (const j of [0, 1]) { lo[j] = Math.min(lo[j], p[j]); hi[j] = Math.max(hi[j], p[j]); } }"
            "const e = geovec.state.overview.extent, m = geovec.map, w = e[2] + (e[0] > e[2] ? 360 : 0) - e[0];"
            "const a = m.latLngToContainerPoint([e[3], 0]), b = m.latLngToContainerPoint([e[1], w]);"
            "return [[hi[0] - lo[0], hi[1] - lo[1]], [b.x - a.x, b.y - a.y]];")
        assert spread[0] <= extent[0] + 8 and spread[1] <= extent[1] + 8, (spread, extent)
        browser.find_element(By.ID, "heat").click()
        assert browser.execute_script("return window.__errors") == []
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": probe["identifier"]})
