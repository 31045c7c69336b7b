"""index.html of ``partwise run``: self-contained (no network), the annotated video inline, a per-track timeline,
counts, and the inputs that failed and why."""
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from partwise.cli import main


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    """``partwise run`` on a folder with a 6 s synthetic video (two people, ground-truth boxes, no pose) and a
    corrupt .mp4."""
    from partwise.data import ava
    from partwise.synth.generator import SynthConfig, generate

    root = tmp_path_factory.mktemp("report")
    generate(root / "syn", SynthConfig(frames=False, seed=5, videos=1, seconds=6, width=160, height=120,
                                       people=(2, 2)))
    ava.write_records(pq.read_table(root / "syn" / "truth.parquet"), root / "gt.csv")
    inputs = root / "inputs"
    inputs.mkdir()
    (video,) = (root / "syn" / "videos").iterdir()
    shutil.copy(video, inputs / video.name)
    (inputs / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    out = root / "out"
    code = main(["run", str(inputs), "--out", str(out), "--boxes", str(root / "gt.csv"), "--pose", "none",
                 "--no-progress"])
    return out, video.stem, code


def test_page_has_the_video_a_timeline_per_track_and_no_network(run_out):
    out, vid, code = run_out
    assert code == 1  # one input failed
    page = (out / "index.html").read_text()
    videos = re.findall(r"<video[^>]*\ssrc='([^']+)'", page)
    assert videos == [f"videos/{vid}/annotated.mp4"] and (out / videos[0]).is_file()
    assert "controls" in page.split("<video", 1)[1].split(">", 1)[0]
    assert not re.search(r"https?://", page) and "<script" not in page and "<link" not in page
    tracks = {r["track_id"] for r in pq.read_table(out / "persons.parquet").to_pylist()}
    assert len(tracks) >= 2
    svg = page[page.index("<svg class='timeline'"):page.index("</svg>")]
    rows = re.findall(r"<g class='track' data-track='(\d+)'>", svg)
    assert sorted(map(int, rows)) == sorted(tracks)  # one row per track
    assert svg.count("<rect") >= len(tracks)
    assert f"<b>{len(tracks)}</b> tracks" in page


def test_page_lists_the_failed_input_and_why(run_out):
    out, vid, _ = run_out
    page = (out / "index.html").read_text()
    box = page[page.index("class='warnings'"):page.index("<table>")]
    assert "broken" in box and "failed" in box and vid not in box
    reason = box.split("broken</strong> failed and was skipped: ", 1)[1].split("</li>", 1)[0]
    assert "broken.mp4" in reason  # the error line, with the file
    assert "No evaluation numbers" in page  # no ground truth given to the run: said so


def test_page_in_headless_chromium_plays_the_video_and_shows_the_timeline(run_out, tmp_path):
    """The page as a browser shows it: the inline video loads and plays from file://, the timeline is drawn (one
    row per track, visible); a screenshot is kept in the test folder (and $PARTWISE_SCREENSHOTS when set)."""
    import os
    import time

    pytest.importorskip("selenium", reason="selenium not installed (bash scripts/browser-deps.sh)")
    from selenium.webdriver.common.by import By

    from tests.browser import CHROMIUM, DRIVER, MISSING, chromium

    if not (CHROMIUM and DRIVER):
        pytest.skip(MISSING)
    out, vid, _ = run_out
    with chromium() as driver:
        driver.get((out / "index.html").as_uri())
        video = driver.find_element(By.TAG_NAME, "video")
        deadline = time.monotonic() + 15
        while driver.execute_script("return arguments[0].readyState", video) < 2:
            assert time.monotonic() < deadline, "the inline video did not load"
            time.sleep(0.1)
        assert driver.execute_script("return arguments[0].error", video) is None
        driver.execute_script("arguments[0].muted = true; arguments[0].play()", video)
        start = time.monotonic()
        while driver.execute_script("return arguments[0].currentTime", video) <= 0.2:
            assert time.monotonic() - start < 15, "the inline video does not play"
            time.sleep(0.1)
        svg = driver.find_element(By.CSS_SELECTOR, "svg.timeline")
        assert svg.is_displayed() and svg.size["width"] > 200 and svg.size["height"] > 20
        tracks = {r["track_id"] for r in pq.read_table(out / "persons.parquet").to_pylist()}
        rows = driver.find_elements(By.CSS_SELECTOR, "svg.timeline g.track")
        assert len(rows) == len(tracks) and all(r.is_displayed() for r in rows)
        shot = tmp_path / "report-page.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("PARTWISE_SCREENSHOTS"):
            shutil.copy(shot, Path(os.environ["PARTWISE_SCREENSHOTS"]) / shot.name)
