"""End-to-end: the map page in headless Chromium (Debian's chromium + chromium-driver, driven by selenium)
against a live server on 127.0.0.1. Skips only when chromium / chromedriver / selenium are absent
(installed by scripts/install-system-deps.sh, which scripts/install.sh runs)."""

import shutil
import socket
import threading
import time

import pytest

selenium = pytest.importorskip("selenium", reason="selenium (dev extra) is not installed")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="chromium / chromedriver not installed (see scripts/install-system-deps.sh)")


@pytest.fixture(scope="module")
def live_server(served):
    import uvicorn

    from geovec.serve.app import create_app

    db, scenes, model = served
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(db, model), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    t.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800",
              "--no-proxy-server", "--disable-extensions"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(driver, cond, timeout=15):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(cond)


def test_type_a_query_and_see_footprints_thumbnails_scores(live_server, browser, served):
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(live_server + "/")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    status = browser.find_element(By.ID, "status").text
    n_chips = httpx.get(live_server + "/healthz").json()["chips"]
    assert f"{n_chips} chips indexed" in status
    # every georeferenced chip is drawn on the background layer
    placed = httpx.get(live_server + "/index/overview").json()["placed"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#chips rect")) == placed

    box = browser.find_element(By.ID, "q")
    k = browser.find_element(By.ID, "k")
    k.clear()
    k.send_keys("5")
    box.send_keys("solar farm near a river", Keys.ENTER)
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#result-list .result")) == 5)
    cards = browser.find_elements(By.CSS_SELECTOR, "#result-list .result")
    api = httpx.post(live_server + "/search", json={"text": "solar farm near a river", "k": 5}).json()["features"]
    assert [c.get_attribute("data-id") for c in cards] == [f["id"] for f in api]  # same ranking as the API
    for card, f in zip(cards, api):
        assert f"{f['properties']['score']:.4f}" in card.text
    # thumbnails actually loaded
    _wait(browser, lambda d: all(d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
                                 for img in d.find_elements(By.CSS_SELECTOR, "#result-list img")))
    # one footprint per georeferenced result, inside the visible map
    n_geo = sum(1 for f in api if f["geometry"])
    paths = browser.find_elements(By.CSS_SELECTOR, "#results path.footprint")
    assert len(paths) == n_geo > 0
    svg = browser.find_element(By.ID, "map").rect
    for p in paths:
        r = p.rect
        assert r["width"] > 1 and r["height"] > 1
        assert svg["x"] - 1 <= r["x"] and r["x"] + r["width"] <= svg["x"] + svg["width"] + 1
    assert "task retrieval" in browser.find_element(By.ID, "status").text


def test_click_a_place(live_server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(live_server + "/")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    browser.find_element(By.ID, "within").send_keys("2")
    target = browser.find_elements(By.CSS_SELECTOR, "#chips rect")[0]  # click on an indexed chip
    ActionChains(browser).move_to_element(target).click().perform()
    _wait(browser, lambda d: "task geo" in d.find_element(By.ID, "status").text)
    assert not browser.find_element(By.ID, "place").get_attribute("hidden")
    lat, lon = (float(v) for v in browser.find_element(By.ID, "place-text").text.split(","))
    assert 51 < lat < 53 and 5 < lon < 7  # the scenes lie at ~52 N, ~6 E
    cards = browser.find_elements(By.CSS_SELECTOR, "#result-list .result")
    assert cards, "a click on an indexed chip must find chips within 2 km"
    for c in cards:
        km = float(c.find_element(By.CSS_SELECTOR, ".where").text.split("·")[1].strip().split()[0])
        assert km <= 2.0
    assert browser.find_elements(By.CSS_SELECTOR, "#marker circle")
