"""What ``partwise run`` writes, every file atomically.

Layout under ``OUT``::

    videos/<video_id>/persons.parquet    that input's rows (written last: its presence marks the input done)
    videos/<video_id>/annotated.mp4      boxes, part boxes, skeleton, top states and track ids (images: .jpg)
    videos/<video_id>/thumb.jpg          the annotated middle keyframe, 320 px wide
    persons.parquet, persons.jsonl       every input's rows merged (one row per person per keyframe)
    ava_detections.csv                   with --ava-csv: ``video,time,x1,y1,x2,y2,action,score`` for the 80 actions
    ava_pasta_detections.csv             with --ava-csv: the same with PaSta ids 1..87 (``partwise eval ava --pasta``)
    ava_pasta_detections.csv             with --ava-csv: the same with PaSta ids 1..87 (``partwise eval ava --pasta``;
                                         rows in the ``pasta_ava87`` vocabulary only)
    kinetics_tps/pred_part_result.json   with --tps-json: Kinetics-TPS submission (part boxes and their states, and
                                         the objects each part touches)
    kinetics_tps/pred_vid_result.json    with --tps-json and --video-model: ``{video: class}``
    videos/<video_id>/video.json         with --video-model: the input's top classes ``[[name, probability], ...]``
    run.json                             what produced the outputs (:func:`partwise.infer.pipeline.run_metadata`,
                                         the label thresholds ``label_state_thr``/``label_action_thr``/``label_top_k``),
                                         each input's top video classes, and with --gt ``evaluation``
                                         (:func:`partwise.infer.evaluation.evaluate_run`)
    index.html                           one-page summary with a thumbnail per input

Rows: :data:`RESULT_SCHEMA` = the canonical :data:`~partwise.data.records.PERSON_SCHEMA` (``dataset`` =
``partwise-run``, ``person_id`` = the track id, ``pasta`` = the model's top-k PaSta states with ``pasta_vocab`` its
vocabulary (``pasta_ava87`` for ST-Activity2Vec, ``pasta93`` for Activity2Vec), or without a PaSta model the kinematic
states as ``"<tps part>: <state>"`` with ``pasta_vocab`` ``kinetics-tps``; ``part_boxes`` the ten HAKE parts with
their Kinetics-TPS state (kinematic, never a PaSta name); ``video_label`` the input's top class with
--video-model) plus ``track_id``, ``pasta_scores`` (aligned with ``pasta``; null for kinematic states),
``pasta_probs`` (every state of ``pasta_vocab``), ``action_scores`` (80, column ``a-1`` = AVA action ``a``),
``verbs`` (Activity2Vec: the top-k of the 157 verbs) and ``verb_scores`` (all 157, ``verbs157`` order),
``activity_vector`` (ST-Activity2Vec: the pooled person feature; Activity2Vec: ``f_pasta``, visual + language),
``kinematic`` (the kinematic states) and ``keypoints`` (COCO-17 ``x, y, score`` flattened, pixels). With an object
detector (``--objects``, :mod:`partwise.infer.objects`): ``objects`` the human-object pairs (each object a body part
of the person touches, once; ``object_id`` its 1-based number in the keyframe, ``class_id`` its COCO-80 index,
``action`` null) and ``part_objects`` ``{part, object_id, score, distance}``, one per touching part.
"""
from __future__ import annotations

import base64
import html
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from partwise.data.records import PERSON_SCHEMA
from partwise.io import atomic_write

DATASET = "partwise-run"
EXTRA_FIELDS = [
    pa.field("track_id", pa.int64()),
    pa.field("pasta_scores", pa.list_(pa.float32())),
    pa.field("pasta_probs", pa.list_(pa.float32())),
    pa.field("action_scores", pa.list_(pa.float32())),
    pa.field("verbs", pa.list_(pa.string())),
    pa.field("verb_scores", pa.list_(pa.float32())),
    pa.field("activity_vector", pa.list_(pa.float32())),
    pa.field("kinematic", pa.list_(pa.string())),
    pa.field("keypoints", pa.list_(pa.float32())),
    # which body part touches which of the row's ``objects`` (``object_id``), the detector score and the keypoint's
    # distance to the object box over the person's size (partwise.infer.objects)
    pa.field("part_objects", pa.list_(pa.struct([
        pa.field("part", pa.string()), pa.field("object_id", pa.int64()), pa.field("score", pa.float32()),
        pa.field("distance", pa.float32())]))),
]
# ``keypoints`` is a canonical column now: the run's own copy is kept only where the canonical schema lacks it
RESULT_SCHEMA = pa.schema(list(PERSON_SCHEMA) + [f for f in EXTRA_FIELDS if f.name not in PERSON_SCHEMA.names])
PERSONS_FILE = "persons.parquet"
VIDEO_CLASSES_FILE = "video.json"


def video_dir(out: str | os.PathLike, video_id: str) -> Path:
    return Path(out) / "videos" / video_id


def video_done(out: str | os.PathLike, video_id: str) -> bool:
    """True when the input's rows were written by an earlier run."""
    return (video_dir(out, video_id) / PERSONS_FILE).is_file()


def _norm(box: list[float], width: int, height: int) -> list[float]:
    return [box[0] / width, box[1] / height, box[2] / width, box[3] / height]


def _objects(relations: list[dict], w: int, h: int) -> tuple[list[dict], list[dict]]:
    """A row's part-object relations (:func:`partwise.infer.objects.part_object_relations`) -> its ``objects``
    (human-object pairs, each object once: ``object_id`` = the object's 1-based number in its keyframe, ``class_id``
    its COCO-80 index, ``action`` null: the schema's ``action`` is an id of the row's action vocabulary and a touch is
    none) and ``part_objects`` (one per touching part)."""
    objects: dict[int, dict] = {}
    for rel in relations:
        box = [float(v) for v in rel["box_px"]]
        objects.setdefault(rel["object"] + 1, {
            "class_name": rel["class_name"], "class_id": rel["class_id"], "action": None,
            "object_id": rel["object"] + 1, **dict(zip(("x1", "y1", "x2", "y2"), _norm(box, w, h))),
            **dict(zip(("px1", "py1", "px2", "py2"), box))})
    parts = [{"part": rel["part"], "object_id": rel["object"] + 1, "score": rel["score"], "distance": rel["distance"]}
             for rel in relations]
    return list(objects.values()), parts


def rows_to_table(rows: list[dict]) -> pa.Table:
    """Pipeline rows (:func:`partwise.infer.pipeline.process_item`) -> a :data:`RESULT_SCHEMA` table."""
    cols: dict[str, list] = {name: [] for name in RESULT_SCHEMA.names}
    for r in rows:
        w, h = r["width"], r["height"]
        if "pasta_vocab" in r:
            pasta, pasta_vocab, pasta_scores = r["pasta"], r["pasta_vocab"], r["pasta_scores"]
        elif r["action_scores"] is not None:  # rows written before the vocabulary was recorded: ST-Activity2Vec
            pasta, pasta_vocab, pasta_scores = r["pasta"], "pasta_ava87", r["pasta_scores"]
        else:
            pasta, pasta_vocab, pasta_scores = r["kinematic"], ("kinetics-tps" if r["kinematic"] else None), None
        box = r["box_px"]
        objects, part_objects = _objects(r.get("objects") or [], w, h)
        values = {
            "dataset": DATASET, "split": None, "video_id": r["video_id"], "time_s": r["time_s"],
            "frame_index": r["frame_index"], "width": w, "height": h,
            **dict(zip(("x1", "y1", "x2", "y2"), _norm(box, w, h))), **dict(zip(("px1", "py1", "px2", "py2"), box)),
            "person_id": r["track_id"], "score": r["score"], "actions": r["actions"],
            "action_vocab": "ava80" if r["action_scores"] is not None else None,
            "pasta": pasta, "pasta_vocab": pasta_vocab,
            "part_boxes": [{"part": p["part"], **dict(zip(("x1", "y1", "x2", "y2"), _norm(p["box_px"], w, h))),
                            **dict(zip(("px1", "py1", "px2", "py2"), p["box_px"])), "state": p["state"]}
                           for p in r["part_boxes"]],
            "objects": objects, "part_objects": part_objects,
            "video_label": r.get("video_label"), "source": r["source"], "track_id": r["track_id"],
            "pasta_scores": pasta_scores, "pasta_probs": r.get("pasta_probs"),
            "action_scores": r["action_scores"], "verbs": r.get("verbs") or [], "verb_scores": r.get("verb_scores"),
            "activity_vector": r["activity_vector"],
            "kinematic": r["kinematic"],
            "keypoints": None if r["keypoints"] is None else np.asarray(r["keypoints"], np.float32).reshape(-1).tolist(),
        }
        for name in cols:
            cols[name].append(values[name])
    return pa.table({name: pa.array(cols[name], RESULT_SCHEMA.field(name).type) for name in RESULT_SCHEMA.names},
                    schema=RESULT_SCHEMA)


def write_parquet(table: pa.Table, path: str | os.PathLike) -> None:
    with atomic_write(path, "wb") as fh:
        pq.write_table(table, fh)


def write_jsonl(table: pa.Table, path: str | os.PathLike) -> None:
    """One JSON object per row, keys = the table's columns."""
    with atomic_write(path) as fh:
        for batch in table.to_batches(4096):
            for row in batch.to_pylist():
                fh.write(json.dumps(row, separators=(",", ":")))
                fh.write("\n")


def _score_rows(table: pa.Table, column: str, width: int,
                pasta_vocab: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rows that have ``column`` (a fixed-length score list) and, when given, ``pasta_vocab``, and their scores
    ``(K, width)``."""
    values = table.column(column).to_pylist()
    vocabs = table.column("pasta_vocab").to_pylist() if pasta_vocab is not None else [None] * len(values)
    keep = np.array([v is not None and voc == pasta_vocab for v, voc in zip(values, vocabs)], bool)
    scores = np.array([v for v, k in zip(values, keep) if k], np.float64).reshape(-1, width)
    return np.flatnonzero(keep), scores


def write_ava_detections(table: pa.Table, path: str | os.PathLike, column: str = "action_scores",
                         width: int = 80, pasta_vocab: str | None = None) -> int:
    """AVA detection CSV ``video,time,x1,y1,x2,y2,class,score``: one line per person and class ``1..width`` from
    ``column`` (``action_scores`` -> AVA actions, ``pasta_probs`` -> PaSta ids; give ``pasta_vocab`` to keep only
    the rows in that PaSta vocabulary). Returns the number of lines."""
    from partwise.data import ava

    rows, scores = _score_rows(table, column, width, pasta_vocab)
    n = len(rows)
    videos = table.column("video_id").to_pylist()
    names = sorted({videos[i] for i in rows})
    code = {v: i for i, v in enumerate(names)}
    ts = np.asarray(table.column("time_s").to_pylist(), np.float64)[rows] if n else np.zeros(0)
    boxes = np.stack([np.asarray(table.column(c).to_pylist(), np.float64) for c in ("x1", "y1", "x2", "y2")],
                     1)[rows] if n else np.zeros((0, 4))
    codes = np.array([code[videos[i]] for i in rows], np.int32)
    rep = np.repeat(np.arange(n), width)
    classes = np.tile(np.arange(1, width + 1, dtype=np.int32), n)
    m = n * width
    csv = ava.AvaCsv(str(path), names, codes[rep], ts[rep], boxes[rep], classes, np.full(m, -1, np.int64),
                     scores.reshape(-1), np.full(m, 8, np.int8), np.arange(1, m + 1, dtype=np.int64), "det",
                     {"box": (1, 4), "score": (1, 4)})
    ava.write_csv(csv, path)
    return m


def tps_part_result(table: pa.Table) -> dict:
    """Kinetics-TPS ``pred_part_result.json`` value: ``{video: {img_%05d.json: {"humans": [...]}}}``; the frame
    file number is ``frame_index + 1`` (1-based files); parts without a state are left out.

    Objects (``--objects``) as the dataset's reader takes them (:mod:`partwise.data.kinetics_tps`): each human's
    ``objects`` ``[{"number", "name", "box"}]`` (``number`` = ``object_id``, the object's number in its frame;
    ``name`` its COCO-80 class), written once on the frame when every human of the frame has the same ones; and
    each touching part (when written) lists the same entries of the objects it touches under ``objects`` (part
    objects: the scorer ignores both)."""
    from partwise.data.kinetics_tps import _hoist_shared_objects

    out: dict = {}
    columns = ["video_id", "frame_index", "track_id", "px1", "py1", "px2", "py2", "part_boxes", "objects"]
    columns += ["part_objects"] if "part_objects" in table.column_names else []
    for r in table.select(columns).to_pylist():
        frame = out.setdefault(r["video_id"], {}).setdefault(f"img_{r['frame_index'] + 1:05d}.json", {"humans": []})
        parts = {p["part"]: {"number": 1, "box": [[p["px1"], p["py1"], p["px2"], p["py2"]]], "verb": [p["state"]],
                             "name": p["part"]} for p in r["part_boxes"] if p["state"] is not None}
        human = {"number": r["track_id"], "box": [r["px1"], r["py1"], r["px2"], r["py2"]], "parts": parts}
        objects = {o["object_id"]: {"number": o["object_id"], "name": o["class_name"],
                                    "box": [o["px1"], o["py1"], o["px2"], o["py2"]]} for o in r["objects"] or []}
        if objects:
            human["objects"] = list(objects.values())
        for rel in r.get("part_objects") or []:
            if rel["part"] in parts and rel["object_id"] in objects:
                parts[rel["part"]].setdefault("objects", []).append(objects[rel["object_id"]])
        frame["humans"].append(human)
    for frames in out.values():
        for frame in frames.values():
            _hoist_shared_objects(frame)
    return out


def write_video_outputs(result, out: str | os.PathLike, video: bool = True, style=None,
                        progress: bool = False) -> Path:
    """Write one input's annotated video (or image), thumbnail and rows; the rows file comes last. ``style``: what
    the labels show (:class:`partwise.infer.render.Style`, default when None)."""
    from partwise.infer import render

    folder = video_dir(out, result.item.video_id)
    folder.mkdir(parents=True, exist_ok=True)
    table = rows_to_table(result.rows)
    if video:
        if result.item.kind == "image":
            render.render_image(result.item.path, table, folder / "annotated.jpg", style)
        else:
            render.render_video(result.item.path, table, folder / "annotated.mp4", result.fps, style,
                                progress=progress, total=result.num_frames, frames=getattr(result, "frames", None))
    render.write_thumbnail(result.item, table, folder / "thumb.jpg", style=style,
                           frames=getattr(result, "frames", None))
    classes_file = folder / VIDEO_CLASSES_FILE
    if result.video_classes is not None:
        with atomic_write(classes_file) as fh:
            json.dump({"video_id": result.item.video_id, "classes": [[c, p] for c, p in result.video_classes]}, fh)
    elif classes_file.exists():  # a re-run without --video-model: no stale classes
        classes_file.unlink()
    write_parquet(table, folder / PERSONS_FILE)
    return folder


def read_video_classes(out: str | os.PathLike, video_id: str) -> list[tuple[str, float]] | None:
    """An input's top video classes from its ``video.json`` (None when it was processed without --video-model)."""
    path = video_dir(out, video_id) / VIDEO_CLASSES_FILE
    if not path.is_file():
        return None
    return [(str(c), float(p)) for c, p in json.loads(path.read_text())["classes"]]


def _read_parquet(path: Path) -> pa.Table:
    """One Parquet file (``pq.read_table`` imports pyarrow's dataset layer: 0.1 s of start-up for one file)."""
    with pq.ParquetFile(path) as parquet:
        return parquet.read()


def _conform(table: pa.Table) -> pa.Table:
    """``table`` with :data:`RESULT_SCHEMA`'s columns in order; columns an older partwise did not write are null."""
    columns = [table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
               for f in RESULT_SCHEMA]
    return pa.table(columns, schema=RESULT_SCHEMA)


def merge(out: str | os.PathLike, video_ids: list[str], *, tps_json: bool = False, ava_csv: bool = False,
          metadata: dict | None = None, notes: list[str] | None = None,
          failed: list[tuple[str, str]] | None = None, gt: str | os.PathLike | None = None,
          gt_labelmap: str | os.PathLike | None = None, max_people: int | None = None) -> dict[str, Path]:
    """Concatenate the done inputs' rows (in ``video_ids`` order, each input once) and write the merged files;
    ``metadata`` goes to ``run.json``; one-line remarks for the user are appended to ``notes`` (with ``max_people``,
    how many keyframes reached that cap, where more people may have been); ``failed``
    ``[(video_id, error)]`` (this run's failed inputs) are listed on the page. With ``gt`` (an AVA CSV) the merged
    rows are scored against it (:func:`partwise.infer.evaluation.evaluate_run`, evaluated classes ``gt_labelmap``):
    ``run.json`` ``evaluation`` and the page's Evaluation section with the AP chart."""
    out = Path(out)
    notes = notes if notes is not None else []
    done = [v for v in dict.fromkeys(video_ids) if video_done(out, v)]
    tables = [_conform(_read_parquet(video_dir(out, v) / PERSONS_FILE)) for v in done]
    table = pa.concat_tables(tables) if tables else RESULT_SCHEMA.empty_table()
    classes = {v: read_video_classes(out, v) for v in done}
    paths = {"parquet": out / "persons.parquet", "jsonl": out / "persons.jsonl", "html": out / "index.html",
             "run": out / "run.json"}
    write_parquet(table, paths["parquet"])
    write_jsonl(table, paths["jsonl"])
    if max_people and table.num_rows:
        per_keyframe = table.group_by(["video_id", "frame_index"]).aggregate([([], "count_all")])
        if capped := int((per_keyframe.column("count_all").to_numpy() >= max_people).sum()):
            notes.append(f"{capped} of {per_keyframe.num_rows} keyframes hold {max_people} people, the cap: the less "
                         f"confident people past it were left out (raise --max-people)")
    charts: dict[str, str] = {}
    if gt is not None:
        from partwise.infer.evaluation import evaluate_run

        evaluation, charts = evaluate_run(table, gt, gt_labelmap)
        metadata = metadata if metadata is not None else {}
        metadata["evaluation"] = evaluation  # the caller's dict too (RunSummary.metadata)
        notes += [f"evaluation: {n}" for n in evaluation["notes"]]
        notes += [f"evaluation: {r['name']} {r['metric']} {r['text']} %" for r in evaluation["results"]]
    with atomic_write(paths["run"]) as fh:
        json.dump({**(metadata or {}), "videos": {v: {"classes": c} for v, c in classes.items()}}, fh, indent=1)
    if ava_csv:
        paths["ava_csv"] = out / "ava_detections.csv"
        paths["ava_pasta_csv"] = out / "ava_pasta_detections.csv"
        write_ava_detections(table, paths["ava_csv"], "action_scores", 80)
        write_ava_detections(table, paths["ava_pasta_csv"], "pasta_probs", 87, pasta_vocab="pasta_ava87")
    if tps_json:
        from partwise.data import kinetics_tps

        paths["tps_json"] = out / "kinetics_tps" / "pred_part_result.json"
        paths["tps_json"].parent.mkdir(parents=True, exist_ok=True)
        kinetics_tps.write_part_result(tps_part_result(table), paths["tps_json"])
        vid_path = paths["tps_json"].with_name("pred_vid_result.json")
        unclassified = [v for v, c in classes.items() if not c]
        if done and not unclassified:
            paths["tps_vid_json"] = vid_path
            kinetics_tps.write_vid_result({v: c[0][0] for v, c in classes.items()}, vid_path)
        else:
            if vid_path.exists():  # stale: from a run whose inputs are not all classified now
                vid_path.unlink()
            if done:
                notes.append("pred_vid_result.json needs --video-model (the Kinetics-TPS score needs it beside "
                             f"pred_part_result.json); {len(unclassified)} of {len(done)} inputs have no video class")
    write_html(out, done, table, paths["html"], classes, metadata, failed=failed, charts=charts)
    return paths


def _top(counter: Counter, k: int = 5) -> str:
    return ", ".join(f"{html.escape(str(name))} ({count})" for name, count in counter.most_common(k)) or "&ndash;"


def _describe_models(metadata: dict | None) -> str:
    """``model: NAME (family, vocabularies); people from: ...`` for the page's heading."""
    if not metadata:
        return ""
    out = [f"people from {html.escape(str(metadata.get('persons_from')))}"]
    pose = (metadata.get("sources") or {}).get("pose")
    if pose:
        described = [f"{p.get('name') or p.get('spec')} ({p.get('domain')}"
                     + (f", {p['licence']})" if p.get("licence") else ")") for p in pose]
        out.append("pose " + html.escape(", ".join(described)))
    for key in ("model", "detector", "video_model"):
        info = metadata.get(key)
        if info:
            vocabs = ", ".join(f"{html.escape(str(v))}" for k, v in info.items() if k.endswith("_vocab") and v)
            family = info.get("family")
            domain = f"trained on {info['domain']} data" if info.get("domain") in ("real", "synthetic") else \
                "training data unknown" if info.get("domain") else ""
            detail = ", ".join(x for x in (html.escape(str(family)) if family else "", vocabs, html.escape(domain))
                               if x)
            out.append(f"{key.replace('_', ' ')} {html.escape(str(info.get('name') or info['spec']))}"
                       + (f" ({detail})" if detail else ""))
    return "<p>" + "; ".join(out) + "</p>"


def _warnings_box(metadata: dict | None, failed: list[tuple[str, str]] | None = None) -> str:
    """The run's warnings (a model trained on synthetic data) and the inputs that failed (and why) in a box at the
    top of the page."""
    lines = (metadata or {}).get("warnings") or []
    if not lines and not failed:
        return ""
    items = "".join(f"<li>{html.escape(str(line))}</li>" for line in lines)
    items += "".join(f"<li class='failed'>input <strong>{html.escape(str(vid))}</strong> failed and was skipped: "
                     f"{html.escape(str(error))}</li>" for vid, error in failed or [])
    return ("<div class='warnings' style='border:2px solid #c00;background:#fee;padding:0.5em 1em;margin:1em 0'>"
            f"<strong>Warning</strong><ul>{items}</ul></div>")


#: colours of the timeline's states and actions, most frequent first (the rest are "other", grey).
TIMELINE_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                    "#9c755f", "#86bcb6", "#d37295", "#a0cbe8")
OTHER_COLOUR = "#bbbbbb"
#: at most this many tracks get a timeline row (the longest tracks).
TIMELINE_MAX_TRACKS = 60

_PAGE_CSS = ("body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}"
             "td,th{border-bottom:1px solid #ddd;padding:6px;vertical-align:top;text-align:left}"
             "img{width:320px}video,img.full{max-width:100%;width:800px;background:#000}"
             ".counts span{display:inline-block;margin-right:1.5em}.counts b{font-size:1.3em}"
             "section.input{border-top:2px solid #ccc;margin-top:2em;padding-top:0.5em}"
             ".legend span{display:inline-block;margin:0 1em 0.3em 0;font-size:0.9em}"
             ".legend i{display:inline-block;width:0.9em;height:0.9em;margin-right:0.3em;vertical-align:-0.1em}"
             "svg.timeline text{font-family:sans-serif}.note{color:#555}img.chart{width:auto;max-width:100%}")


def _media_html(vid: str, folder: Path) -> str:
    """The annotated video inline (an HTML5 player, relative src) or the annotated image."""
    from urllib.parse import quote

    rel = f"videos/{quote(vid)}"
    if (folder / "annotated.mp4").is_file():
        return (f"<video controls preload='metadata' src='{html.escape(rel)}/annotated.mp4'>"
                f"<a href='{html.escape(rel)}/annotated.mp4'>annotated.mp4</a></video>")
    if (folder / "annotated.jpg").is_file():
        return f"<img class='full' alt='{html.escape(vid)}' src='{html.escape(rel)}/annotated.jpg'>"
    return "<p class='note'>no annotated video (--no-video)</p>"


def _colour_map(counter: Counter) -> dict[str, str]:
    return {name: TIMELINE_COLOURS[i] for i, (name, _) in enumerate(counter.most_common(len(TIMELINE_COLOURS)))}


def _timeline_svg(rows: list[dict], labels=None) -> tuple[str, str]:
    """An input's per-track timeline (inline SVG): x = time, one row per track (``<g class='track'>``), its top
    part state per keyframe as coloured segments (upper band) and its top action (lower band, when a model gives
    actions); consecutive keyframes with the same state are one segment, named when wide enough; hovering shows
    the states and actions the annotated video shows. ``labels``: the run's :class:`partwise.infer.render.Style`
    (``--state-thr``, ``--action-thr``, ``--top-k``; default its defaults): states and actions under the thresholds
    are not drawn (an action band keyframe without one is left light grey), the hover text lists ``top_k`` of each.
    Returns ``(svg, legend html)``."""
    from dataclasses import replace

    from partwise.infer import render

    if not rows:
        return "", ""
    labels = labels or render.Style()
    style = replace(labels, top_k=1)
    every_style = replace(labels, top_k=max(labels.top_k, 1))
    times = sorted({float(r["time_s"]) for r in rows})
    spacing = min(np.diff(times)) if len(times) > 1 else 1.0
    t0, t1 = times[0] - spacing / 2, times[-1] + spacing / 2
    tracks: dict[int, list[dict]] = {}
    for r in rows:
        tracks.setdefault(int(r["track_id"]), []).append(r)
    shown = sorted(sorted(tracks, key=lambda t: -len(tracks[t]))[:TIMELINE_MAX_TRACKS])
    state_of, action_of, detail = {}, {}, {}
    for r in rows:
        key = (int(r["track_id"]), float(r["time_s"]))
        states = render.state_entries(r, style)
        state_of[key] = states[0][0] if states else None
        actions = render.action_entries(r, style)
        action_of[key] = actions[0][0] if actions else None
        every = render.state_entries(r, every_style) + render.action_entries(r, every_style)
        detail[key] = "; ".join(render._fmt(n, s) for n, s in every)
    state_colours = _colour_map(Counter(v for v in state_of.values() if v))
    action_colours = _colour_map(Counter(v for v in action_of.values() if v))
    with_actions = bool(action_colours)
    left, width, row_h, top = 56, 860, 30 if with_actions else 22, 22
    height = top + row_h * len(shown) + 8

    def x(t: float) -> float:
        return left + (t - t0) / max(t1 - t0, 1e-9) * width

    out = [f"<svg class='timeline' width='{left + width + 10}' height='{height}' "
           f"viewBox='0 0 {left + width + 10} {height}' role='img' aria-label='part states and actions per track "
           "over time'>"]
    span = t1 - t0
    step = next((s for s in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600) if span / s <= 12), 7200)
    tick = np.ceil(t0 / step) * step
    while tick <= t1 + 1e-9:
        out.append(f"<line x1='{x(tick):.1f}' y1='{top - 4}' x2='{x(tick):.1f}' y2='{height - 6}' stroke='#ddd'/>"
                   f"<text x='{x(tick):.1f}' y='{top - 8}' font-size='11' text-anchor='middle' fill='#555'>"
                   f"{tick + 0.0 if abs(tick) > 1e-9 else 0:g}s</text>")
        tick += step
    for i, tid in enumerate(shown):
        y = top + i * row_h
        band = row_h - 8 if not with_actions else 14
        out.append(f"<g class='track' data-track='{tid}'><text x='{left - 6}' y='{y + band - 2}' font-size='12' "
                   f"text-anchor='end'>#{tid}</text>")
        points = sorted({float(r["time_s"]) for r in tracks[tid]})
        for values, colours, y0, h in ((state_of, state_colours, y, band),
                                       (action_of, action_colours, y + band + 1, row_h - band - 5)):
            if values is action_of and not with_actions:
                continue
            run: list[float] = []
            for j, t in enumerate(points + [None]):
                same = (t is not None and run and values[(tid, t)] == values[(tid, run[0])]
                        and t - run[-1] <= 1.5 * spacing)
                if run and not same:
                    name = values[(tid, run[0])]
                    xa, xb = x(run[0] - spacing / 2), x(run[-1] + spacing / 2)
                    fill = colours.get(name, OTHER_COLOUR) if name else "#eeeeee"
                    tip = " | ".join(f"{ts:g}s: {detail[(tid, ts)]}" for ts in run[:8])
                    out.append(f"<rect x='{xa:.1f}' y='{y0}' width='{max(1.0, xb - xa - 0.5):.1f}' height='{h}' "
                               f"fill='{fill}'><title>#{tid} {html.escape(tip)}</title></rect>")
                    if name and h >= 12 and xb - xa > 7 * len(name):
                        out.append(f"<text x='{xa + 3:.1f}' y='{y0 + h - 3}' font-size='10' fill='#fff' "
                                   f"pointer-events='none'>{html.escape(render._pretty(name))}</text>")
                    run = []
                if t is not None:
                    run.append(t)
        out.append("</g>")
    out.append("</svg>")
    legend = "".join(f"<span><i style='background:{c}'></i>{html.escape(render._pretty(n))}</span>"
                     for n, c in state_colours.items())
    legend = f"<div class='legend'><b>part states</b>: {legend}<span><i style='background:{OTHER_COLOUR}'></i>other</span></div>"
    if with_actions:
        legend += "<div class='legend'><b>actions</b> (lower band): " + "".join(
            f"<span><i style='background:{c}'></i>{html.escape(render._pretty(n))}</span>"
            for n, c in action_colours.items()) + "</div>"
    if len(shown) < len(tracks):
        legend += f"<p class='note'>{len(shown)} longest of {len(tracks)} tracks shown</p>"
    return "".join(out), legend


def _evaluation_html(metadata: dict | None, charts: dict[str, str] | None = None) -> str:
    """The evaluation numbers when the run has them (``metadata["evaluation"]`` of
    :func:`partwise.infer.evaluation.evaluate_run`: each metric in percent, the prior, what was skipped) and the AP
    charts (``charts``: ``{name: data:image/png URI}``), else a line saying there is no ground truth."""
    evaluation = (metadata or {}).get("evaluation")
    if not evaluation:
        return ("<p class='note'>No evaluation numbers: <code>partwise run</code> is given no ground truth "
                "(<code>--gt</code>; or score the rows with <code>partwise eval</code>).</p>")
    esc = html.escape
    items = []
    for r in evaluation.get("results") or []:
        prior = r.get("prior")
        extra = (f" (label-frequency prior {esc(prior['text'])} %)" if prior and prior.get("percent") is not None
                 else "")
        count = (f", {r['classes_with_gt']} classes with GT" if "classes_with_gt" in r else
                 f", {r['gt_boxes']} GT boxes, {r['detections']} detections" if "gt_boxes" in r else "")
        items.append(f"<li data-metric='{esc(str(r['name']))}'>{esc(str(r['name']))} {esc(str(r['metric']))}: "
                     f"<b>{esc(str(r['text']))} %</b>{extra} <span class='note'>{esc(str(r.get('protocol', '')))}"
                     f"{count}</span></li>")
    items += [f"<li class='note'>{esc(str(n))}</li>" for n in evaluation.get("notes") or []]
    frames = evaluation.get("keyframes") or {}
    head = (f"<p>ground truth <code>{esc(str(evaluation.get('gt')))}</code>, classes "
            f"{esc(str(evaluation.get('labelmap')))}, IoU {evaluation.get('iou')}"
            + (f"; {frames['with_run_rows']} of {frames['gt']} GT keyframes have run rows" if frames else "")
            + "</p>")
    images = "".join(f"<figure><img class='chart' alt='{esc(name)} AP per class' src='{uri}'>"
                     f"<figcaption>{esc(name)}: AP per class with ground truth, sorted</figcaption></figure>"
                     for name, uri in (charts or {}).items())
    return f"<h2>Evaluation</h2>{head}<ul class='evaluation'>{''.join(items)}</ul>{images}"


def write_html(out: Path, video_ids: list[str], table: pa.Table, path: Path,
               video_classes: dict[str, list | None] | None = None, metadata: dict | None = None,
               failed: list[tuple[str, str]] | None = None, charts: dict[str, str] | None = None) -> None:
    """One self-contained page (inline CSS and SVG, no network; media by relative links): warnings (models trained
    on synthetic data, ``failed`` inputs and why), counts, the models and where people came from, a table with per
    input a thumbnail (inline JPEG), counts of keyframes, people and tracks, its top video classes (with
    --video-model), the most frequent actions (and Activity2Vec verbs) and part states; then per input the
    annotated video (HTML5 player) and a per-track timeline of part states and actions (:func:`_timeline_svg`, with
    the run's label thresholds ``metadata["label_state_thr"]``, ``label_action_thr``, ``label_top_k``); with ground
    truth, the evaluation numbers and ``charts`` (inline PNGs, :func:`_evaluation_html`)."""
    from partwise import vocab

    from partwise.infer import render

    ava80 = vocab.load("ava80")
    meta = metadata or {}
    style = render.Style.of(meta.get("label_state_thr"), meta.get("label_action_thr"), meta.get("label_top_k"))
    video_classes = video_classes or {}
    with_classes = any(video_classes.get(v) for v in video_ids)
    by_video: dict[str, list[dict]] = {}
    columns = ["video_id", "frame_index", "time_s", "track_id", "actions", "verbs", "pasta", "pasta_scores",
               "action_scores", "verb_scores"]
    for r in table.select([c for c in columns if c in table.column_names]).to_pylist():
        by_video.setdefault(r["video_id"], []).append(r)
    shown_rows = [r for v in video_ids for r in by_video.get(v, [])]
    n_tracks = sum(len({r["track_id"] for r in by_video.get(v, [])}) for v in video_ids)
    n_keyframes = sum(len({r["frame_index"] for r in by_video.get(v, [])}) for v in video_ids)
    counts = (f"<p class='counts'><span><b>{len(video_ids)}</b> inputs</span>"
              + (f"<span><b>{len(failed)}</b> failed</span>" if failed else "")
              + f"<span><b>{len(shown_rows)}</b> people (person rows)</span><span><b>{n_tracks}</b> tracks</span>"
              f"<span><b>{n_keyframes}</b> keyframes with people</span></p>")
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>partwise run</title><style>{_PAGE_CSS}"
             "</style></head><body>",
             f"<h1>partwise run</h1>{_warnings_box(metadata, failed)}{counts}<p>{len(video_ids)} inputs, "
             f"{table.num_rows} person rows (<a href='persons.parquet'>persons.parquet</a>, "
             "<a href='persons.jsonl'>persons.jsonl</a>, <a href='run.json'>run.json</a>)</p>",
             _describe_models(metadata), _evaluation_html(metadata, charts),
             "<table><tr><th>input</th><th>preview</th><th>keyframes / rows / tracks</th>"
             + ("<th>video class</th>" if with_classes else "") + "<th>top actions</th><th>top part states</th></tr>"]
    sections = []
    for vid in video_ids:
        rows = by_video.get(vid, [])
        folder = video_dir(out, vid)
        thumb = folder / "thumb.jpg"
        img = (f"<img alt='{html.escape(vid)}' src='data:image/jpeg;base64,"
               f"{base64.b64encode(thumb.read_bytes()).decode()}'>") if thumb.is_file() else ""
        media = next((f for f in ("annotated.mp4", "annotated.jpg") if (folder / f).is_file()), None)
        rel = f"videos/{html.escape(vid)}"
        link = f"<br><a href='{rel}/{media}'>{media}</a>" if media else ""
        actions = Counter(ava80.name_of(a) for r in rows for a in r["actions"] or [])
        actions.update(v for r in rows for v in (r["verbs"] or [])[:1])
        states = Counter(s for r in rows for s in (r["pasta"] or [])[:3])
        classes = ", ".join(f"{html.escape(c)} ({p:.2f})" for c, p in (video_classes.get(vid) or [])[:3]) or "&ndash;"
        anchor = f"input-{len(sections)}"
        parts.append(f"<tr><td><a href='#{anchor}'>{html.escape(vid)}</a>{link}<br>"
                     f"<a href='{rel}/{PERSONS_FILE}'>rows</a></td><td>{img}</td>"
                     f"<td>{len({r['frame_index'] for r in rows})} / {len(rows)} / {len({r['track_id'] for r in rows})}"
                     f"</td>" + (f"<td>{classes}</td>" if with_classes else "")
                     + f"<td>{_top(actions)}</td><td>{_top(states)}</td></tr>")
        svg, legend = _timeline_svg(rows, style) if len({r["time_s"] for r in rows}) > 1 else ("", "")
        timeline = (f"<h3>Part states and actions per track over time</h3>{svg}{legend}" if svg else
                    "<p class='note'>no people found</p>" if not rows else
                    "<p class='note'>one keyframe: no timeline (its states are in the table above)</p>")
        sections.append(f"<section class='input' id='{anchor}'><h2>{html.escape(vid)}</h2>"
                        f"{_media_html(vid, folder)}{timeline}</section>")
    parts.append("</table>")
    parts += sections
    parts.append("</body></html>\n")
    with atomic_write(path) as fh:
        fh.write("".join(parts))
