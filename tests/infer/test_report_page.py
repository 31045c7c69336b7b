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
