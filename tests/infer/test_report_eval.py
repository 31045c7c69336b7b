"""``partwise run --gt``: the run's rows scored against AVA ground truth after the merge (person AP@0.5, action
frame mAP with a model), in run.json and on index.html with an inline AP chart; the label thresholds in run.json and
in the page's timeline."""
import json
import re

import pyarrow.parquet as pq
import pytest

from partwise.cli import main


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 6 s synthetic video (two people, seed 5) and its ground truth as an AVA CSV."""
    from partwise.data import ava
    from partwise.synth.generator import SynthConfig, generate

    root = tmp_path_factory.mktemp("report_eval")
    generate(root / "syn", SynthConfig(frames=False, seed=5, videos=1, seconds=6, width=160, height=120,
                                       people=(2, 2)))
    ava.write_records(pq.read_table(root / "syn" / "truth.parquet"), root / "gt.csv")
    (video,) = (root / "syn" / "videos").iterdir()
    return root, video


def _run(clip, name, *extra):
    root, video = clip
    out = root / name
    code = main(["run", str(video), "--out", str(out), "--boxes", str(root / "gt.csv"), "--gt", str(root / "gt.csv"),
                 "--pose", "none", "--no-progress", *extra])
    assert code == 0
    return out, json.loads((out / "run.json").read_text()), (out / "index.html").read_text()


def _results(meta):
    return {r["name"]: r for r in meta["evaluation"]["results"]}


def test_gt_boxes_as_the_run_boxes_give_person_ap_100(clip, capsys):
    out, meta, page = _run(clip, "boxes", "--no-video")
    ev = meta["evaluation"]
    assert ev["videos"]["matched"] == [clip[1].stem] and ev["keyframes"]["with_run_rows"] == ev["keyframes"]["gt"] > 0
    person = _results(meta)["person detection"]
    assert person["metric"] == "AP@0.5" and person["value"] == 1.0 and person["text"] == "100.00"
    assert person["gt_boxes"] == person["detections"] > 0
    assert "actions" not in _results(meta) and any("no action scores" in n for n in ev["notes"])
    assert "evaluation: person detection AP@0.5 100.00 %" in capsys.readouterr().out
    assert (meta["label_state_thr"], meta["label_action_thr"], meta["label_top_k"]) == (0.3, 0.5, 3)
    section = page[page.index("<h2>Evaluation"):]
    assert "person detection AP@0.5: <b>100.00 %</b>" in section and "No evaluation numbers" not in page
    assert "no action scores" in section and not re.search(r"https?://", page)


def test_with_a_model_the_action_map_and_its_chart_are_on_the_page(clip):
    from partwise.infer import outputs, render

    out, meta, page = _run(clip, "model", "--model", "synth-st-activity2vec", "--no-video", "--action-thr", "0.4",
                           "--top-k", "2")
    res = _results(meta)
    assert res["person detection"]["text"] == "100.00"
    actions = res["actions"]
    assert actions["metric"] == "mAP@0.5" and 0 < actions["value"] <= 1
    assert actions["text"] == f"{100 * actions['value']:.2f}" and actions["percent"] == round(100 * actions["value"], 2)
    assert actions["per_class"] and all(c["gt"] > 0 for c in actions["per_class"].values())
    assert actions["classes_with_gt"] == len(actions["per_class"])
    assert 0 <= actions["prior"]["value"] <= 1
    assert (meta["label_action_thr"], meta["label_top_k"]) == (0.4, 2)
    section = page[page.index("<h2>Evaluation"):page.index("<table>")]
    assert f"actions mAP@0.5: <b>{actions['text']} %</b>" in section
    assert f"label-frequency prior {actions['prior']['text']} %" in section
    assert re.search(r"<img class='chart'[^>]* src='data:image/png;base64,[A-Za-z0-9+/=]{1000,}'", section)
    assert not re.search(r"https?://", page) and "<script" not in page
    # the timeline follows the thresholds: no action passes 1.01, every top action passes 0
    rows = pq.read_table(out / "persons.parquet").to_pylist()
    assert "<b>actions</b>" not in outputs._timeline_svg(rows, render.Style(action_thr=1.01))[1]
    assert "<b>actions</b>" in outputs._timeline_svg(rows, render.Style(action_thr=0.0))[1]


def test_gt_of_other_videos_is_said_and_bad_paths_are_usage_errors(clip, tmp_path, capsys):
    root, video = clip
    other = tmp_path / "gt.csv"
    other.write_text("".join("x" + line[1:] + "\n" for line in (root / "gt.csv").read_text().splitlines()))
    out = tmp_path / "out"
    assert main(["run", str(video), "--out", str(out), "--boxes", str(root / "gt.csv"), "--gt", str(other),
                 "--pose", "none", "--no-progress", "--no-video"]) == 0
    meta = json.loads((out / "run.json").read_text())
    assert meta["evaluation"]["results"] == [] and "no video id" in meta["evaluation"]["notes"][0]
    assert main(["run", str(video), "--out", str(tmp_path / "o2"), "--gt", str(tmp_path / "missing.csv")]) == 2
    assert "--gt" in capsys.readouterr().err
