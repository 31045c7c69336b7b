"""The viewer in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium).

Skipped with a reason where chromium, chromedriver or selenium is missing (``bash scripts/browser-deps.sh`` installs
them). Screenshots go to the test's temporary folder.
"""
import os
import shutil
import time

import pytest

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (bash scripts/browser-deps.sh)")
from selenium.webdriver.common.by import By  # noqa: E402

from tests.browser import CHROMIUM, DRIVER, MISSING, chromium  # noqa: E402

pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason=MISSING)


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def _wait(condition, timeout=15.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_folder_plays_filters_and_shows_people(browser, run_dir, serve_path, tmp_path):
    server = serve_path(run_dir)
    browser.get(server.url)
    _wait(lambda: browser.execute_script("return document.body.dataset.ready === '1'"), what="page ready")
    items = browser.find_elements(By.CSS_SELECTOR, "#videos li")
    assert [li.get_attribute("data-video-id") for li in items] == ["clip", "photo.png"]
    # the first video opens: it plays (currentTime advances) with the overlay drawn over it
    _wait(lambda: browser.execute_script("return document.getElementById('video').readyState >= 2"), what="video data")
    start = browser.execute_script("""
        const v = document.getElementById('video'); v.currentTime = 0; return v.currentTime;""")
    browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        document.getElementById('video').play().then(() => done(true), (e) => done(String(e)));""")
    _wait(lambda: browser.execute_script("return document.getElementById('video').currentTime") > start + 0.3,
          what="currentTime to advance")
    assert browser.execute_script("return document.getElementById('video').error") is None
    painted = browser.execute_script("""
        const c = document.getElementById('overlay'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return [c.width, n];""")
    assert painted[0] > 0 and painted[1] > 100, painted
    browser.save_screenshot(str(tmp_path / "viewer-video.png"))
    browser.execute_script("document.getElementById('video').pause()")
    # a PaSta condition filters the list; a match jumps to its keyframe, whose people are listed
    box = browser.find_element(By.ID, "query")
    box.clear()
    box.send_keys("foot: walk")
    browser.find_element(By.ID, "run-query").click()
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#matches li"), what="matches")
    visible = [li.get_attribute("data-video-id") for li in browser.find_elements(By.CSS_SELECTOR, "#videos li")
               if li.is_displayed()]
    assert visible == ["photo.png"]
    box.clear()
    box.send_keys("hand: hold AND head: inspect")
    browser.find_element(By.ID, "run-query").click()
    _wait(lambda: "keyframes" in browser.find_element(By.ID, "query-status").text and
          browser.find_elements(By.CSS_SELECTOR, "#matches li[data-video-id='clip']"), what="clip matches")
    matches = browser.find_elements(By.CSS_SELECTOR, "#matches li")
    assert len(matches) == 2
    matches[1].click()
    _wait(lambda: "2/2" in browser.find_element(By.ID, "keyframe-label").text, what="keyframe 2")
    _wait(lambda: abs(browser.execute_script("return document.getElementById('video').currentTime") - 1.0) < 0.05,
          what="seek to the keyframe")
    rows = browser.find_elements(By.CSS_SELECTOR, "#people tbody tr")
    assert [r.get_attribute("data-person") for r in rows] == ["1", "2"]
    assert "hand: hold" in rows[0].text and "head: inspect" in rows[0].text and "hip: sit in" in rows[1].text
    assert "match" in rows[0].get_attribute("class") and "match" not in rows[1].get_attribute("class")
    browser.save_screenshot(str(tmp_path / "viewer-keyframe.png"))
    if os.environ.get("PARTWISE_SCREENSHOTS"):
        browser.save_screenshot(os.path.join(os.environ["PARTWISE_SCREENSHOTS"], "viewer-keyframe.png"))
    # a refused query says why, in one line
    browser.find_element(By.CSS_SELECTOR, "#query-mode option[value='sql']").click()
    box.clear()
    box.send_keys("COPY persons TO '/tmp/x.csv'")
    browser.find_element(By.ID, "run-query").click()
    _wait(lambda: "read-only" in browser.find_element(By.ID, "query-status").text, what="refusal")


def test_store_ground_truth_beside_prediction(browser, store_dir, serve_path, tmp_path):
    server = serve_path(store_dir)
    browser.get(server.url)
    _wait(lambda: browser.execute_script("return document.body.dataset.ready === '1'"), what="page ready")
    _wait(lambda: browser.find_element(By.ID, "gt-panel").is_displayed(), what="ground-truth panel")
    rows = browser.find_elements(By.CSS_SELECTOR, "#people tbody tr")
    assert sorted(r.get_attribute("data-group") for r in rows) == ["gt", "gt", "pred", "pred"]
    browser.find_element(By.CSS_SELECTOR, "#layers input[data-layer='ground_truth']").click()
    assert not browser.find_element(By.ID, "gt-panel").is_displayed()
    browser.save_screenshot(str(tmp_path / "viewer-store.png"))
