"""Synthetic part-state videos: articulated figures whose drawn poses ARE the labels, written in the real formats.

World
-----
Each video shows 2-4 (``people``) stick figures on a lightly textured background, each with its own color (right
limbs in the color, left limbs darker), walking or staying in place; walking figures turn at the frame borders and
may cross each other. Every figure plays a sequence of **segments** of 3-6 s; a segment fixes a lower-body posture
(:data:`LOWER`) and an upper-body activity (:data:`UPPER`), which fix the figure's pose over time, its PaSta
(``pasta_ava87`` names), its AVA actions (``ava80`` ids), its Kinetics-TPS part-state tags and the object it
interacts with (``ball``, ``box``, ``cup``, ``chair``). Consecutive segments blend over 0.4 s. Each video has a
TPS-style class (:data:`VIDEO_CLASSES`) that biases which segments its figures play, so the class is visible too.

Timeline
--------
Videos are 30 fps. As in AVA's 15-minute cuts, the video starts at **900 s**: frame file ``img_{n:05d}.jpg``
(1-based) shows time ``900 + (n-1)/30``. Keyframes are at whole seconds ``902 .. 900+seconds-2`` (1 Hz, like
AVA's 902..1798); the labels of keyframe ``t`` are the state at frame index ``(t-900)*30`` (0-based), which is the
records' ``frame_index``, so SlowFast's ``sec_to_frame`` and mmaction2's clip rules apply unchanged.
Kinetics-TPS records are emitted for every 5th frame, ``img_00001, img_00006, ...`` (the frames the TPS evaluator
scores), with ``frame_index`` = the 1-based file number.

Layout under ``OUT``
--------------------
::

    videos/<vid>.mp4                          30 fps H.264, GOP 10 (frame-exact seeks are cheap)
    frames/<vid>/img_%05d.jpg                 1-based JPEG frames (skipped with --no-frames)
    ava/ava_{train,val}_v2.2.csv              AVA GT (ava80 ids), 1 Hz keyframes, via partwise.data.ava
    ava/ava_{train,val}_excluded_timestamps_v2.2.csv
    ava/ava_action_list_v2.2_for_activitynet_2019.pbtxt   the 60 evaluated classes
    ava/ava_dense_proposals_{train,val}.FAIR.recall_93.9.pkl   GT boxes jittered (scores 0.9-1) + false positives
    hake_ava/video_pasta_{train,val}.csv, part_state.pbtxt     via partwise.data.hake_ava
    gio/DIO_{train,val}.csv                   interacted objects, via partwise.data.gio
    kinetics_tps/{train,val}_annotations/<class>/<vid>/<vid>/img_XXXXX.json   every 5th frame (1, 6, 11, ...)
    kinetics_tps/list/body_part.txt, part_stat.txt, object.txt, video_{train,val}_flist.csv
    kinetics_tps/gt_part_result.json, gt_vid_result.json   TPS evaluator ground truth (val videos)
    truth.parquet                             canonical records (PERSON_SCHEMA), dataset "synthetic", 1 Hz keyframes
                                              (with COCO-17 keypoints of every figure)
    truth_frames.parquet                      canonical records, dataset "kinetics-tps", every 5th frame
    hico_det/images/{train,test}/<vid>_<t>.jpg   keyframes with a HOI (split val -> test), JPEG
    hico_det/annotations/{trainval,test}_hico.json   HICO-DET HOIs (HICO_VERBS), PPDM/QPIC JSON
    hico_det/anno_bbox.mat                    the same HOIs in the HICO-DET release format
    synth.json                                generation parameters, splits, classes, states

Video ids are 11-character AVA-like ids drawn from the seed. The last quarter of the videos (at least one when
there are two or more) is the ``val`` split, the rest ``train``. Annotation files are byte-identical for equal
arguments; the videos and frames too, as long as the same FFmpeg/x264 build encodes them.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from partwise import vocab
from partwise.data.records import RecordBuilder
from partwise.synth import figures as fig
from partwise.synth.spec import (  # noqa: F401 (the generator's names, public here too)
    ALLOWED_UPPER, AVA_ACTIONS, LOWER, OBJECT_CLASSES, OBJECT_COLORS, PASTA_STATES, PERSON_COLORS, UPPER,
    VIDEO_CLASSES, Person, Segment, StateSpec, SynthConfig, VideoTrack)

#: The output layout (the block of the module docstring), printed by ``partwise synth``.
LAYOUT = "OUT/\n" + __doc__.split("::\n\n", 1)[1].split("\n\nVideo ids", 1)[0]

FPS = 30
TIMESTAMP_START = 900
TPS_STRIDE = 5
BLEND_S = 0.4
SEGMENT_S = (3.0, 6.0)
_ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))

# --------------------------------------------------------------------------------------------------------------
# Sampling


def video_ids(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct 11-character AVA-like ids."""
    out: list[str] = []
    while len(out) < n:
        vid = "".join(rng.choice(_ID_ALPHABET, size=11))
        if vid not in out:
            out.append(vid)
    return out


def split_of(index: int, n: int) -> str:
    """``val`` for the last quarter of the videos (at least one when ``n >= 2``), ``train`` otherwise."""
    n_val = 0 if n < 2 else max(1, int(round(n / 4)))
    return "val" if index >= n - n_val else "train"


def sample_segments(rng: np.random.Generator, video_class: str, seconds: float) -> list[Segment]:
    """States of one person covering ``[0, seconds)``: consecutive segments of 3-6 s."""
    lower_w, upper_w = VIDEO_CLASSES[video_class]
    lowers, uppers = list(LOWER), list(UPPER)
    segments: list[Segment] = []
    t = 0.0
    previous: tuple[str, str] | None = None
    while t < seconds:
        for _ in range(10):  # avoid repeating the previous state: a new segment should look different
            lower = lowers[rng.choice(len(lowers), p=np.asarray(lower_w) / sum(lower_w))]
            allowed = ALLOWED_UPPER[lower]
            weights = np.array([upper_w[uppers.index(u)] for u in allowed], dtype=float)
            upper = allowed[rng.choice(len(allowed), p=weights / weights.sum())]
            if (lower, upper) != previous:
                break
        choices = UPPER[upper].objects
        obj = str(choices[rng.integers(len(choices))]) if choices else None
        segments.append(Segment(t, lower, upper, obj))
        previous = (lower, upper)
        t += float(rng.uniform(*SEGMENT_S))
    return segments


def sample_people(rng: np.random.Generator, cfg: SynthConfig, video_class: str) -> list[Person]:
    count = int(rng.integers(cfg.people[0], cfg.people[1] + 1))
    colors = rng.permutation(len(PERSON_COLORS))[:count]
    ground = np.sort(rng.uniform(0.80, 0.97, size=count)) * cfg.height
    people = []
    for k in range(count):
        scale = cfg.height * (0.36 + 0.10 * (ground[k] / cfg.height - 0.80) / 0.17)
        people.append(Person(
            track_id=k, color=PERSON_COLORS[int(colors[k])], ground_y=float(ground[k]), scale=float(scale),
            speed=float(rng.uniform(0.3, 0.45) * scale), phase=float(rng.uniform(0, 2)),
            segments=sample_segments(rng, video_class, cfg.seconds),
        ))
    return people


# --------------------------------------------------------------------------------------------------------------
# Simulation


def _segment_index(person: Person, n_frames: int) -> np.ndarray:
    starts = np.array([s.start for s in person.segments])
    times = np.arange(n_frames) / FPS
    return np.searchsorted(starts, times, side="right") - 1


def simulate(rng: np.random.Generator, cfg: SynthConfig, person: Person, start_x: float) -> VideoTrack:
    """Positions and poses of ``person`` in every frame: walkers move and turn at the borders, others stay."""
    n = cfg.seconds * FPS
    seg = _segment_index(person, n)
    margin = 0.3 * person.scale
    x = np.empty(n)
    facing = np.empty(n, dtype=np.int64)
    pos, face = start_x, int(rng.choice([-1, 1]))
    for j in range(n):
        if j and seg[j] != seg[j - 1] and rng.random() < 0.35:
            face = -face  # figures sometimes turn around when they change what they do
        if person.segments[seg[j]].lower == "walk":
            pos += face * person.speed / FPS
            if pos < margin or pos > cfg.width - margin:
                face = -face
                pos = float(np.clip(pos, margin, cfg.width - margin))
        x[j], facing[j] = pos, face
    joints = np.empty((n, len(fig.JOINTS), 2))
    for j in range(n):
        joints[j] = _pose_at(person, seg, x, facing, j)
    return VideoTrack(person, joints, facing, seg, x)


def _pose_at(person: Person, seg: np.ndarray, x: np.ndarray, facing: np.ndarray, j: int) -> np.ndarray:
    clock = j / FPS + person.phase
    segment = person.segments[seg[j]]
    place = fig.Placement(float(x[j]), person.ground_y, person.scale, int(facing[j]))
    joints = fig.pose(segment.lower, segment.upper, clock, place)
    since = j / FPS - segment.start
    if seg[j] > 0 and since < BLEND_S:
        before = person.segments[seg[j] - 1]
        old = fig.pose(before.lower, before.upper, clock, place)
        alpha = since / BLEND_S
        joints = (1 - alpha) * old + alpha * joints
    return joints


def object_geometry(track: VideoTrack, j: int) -> list[tuple[str, np.ndarray, int]]:
    """``[(class, box (4,), ava_action)]`` of the objects the person interacts with at frame ``j``: the chair of a
    sitting figure first, then the object of the upper-body activity."""
    segment = track.person.segments[track.segment[j]]
    place = fig.Placement(float(track.x[j]), track.person.ground_y, track.person.scale, int(track.facing[j]))
    out = []
    if segment.lower == "sit":
        out.append(("chair", fig.chair_box(track.joints[j], place), LOWER["sit"].object_action))
    if segment.obj is not None:
        box = fig.object_box(segment.obj, track.joints[j], segment.upper, place)
        out.append((segment.obj, box, UPPER[segment.upper].object_action))
    return out


def render_frame(bg: np.ndarray, tracks: list[VideoTrack], j: int) -> np.ndarray:
    """Frame ``j`` ``(H, W, 3)`` uint8: figures far to near (by ground line), each between its chair and the
    objects in its hands."""
    items = []
    for track in sorted(tracks, key=lambda tr: tr.person.ground_y):
        person = track.person
        facing = int(track.facing[j])
        objects = object_geometry(track, j)
        for kind, box, _ in objects:
            if kind == "chair":
                items.append(lambda d, box=box, f=facing: fig.draw_object(d, "chair", box, OBJECT_COLORS["chair"], f))
        items.append(lambda d, jt=track.joints[j], p=person: fig.draw_figure(d, jt, p.scale, p.color))
        for kind, box, _ in objects:
            if kind != "chair":
                items.append(lambda d, k=kind, box=box, f=facing: fig.draw_object(d, k, box, OBJECT_COLORS[k], f))
    return fig.render(bg, items)


# --------------------------------------------------------------------------------------------------------------
# Labels


def _clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.clip(box, 0, [width, height, width, height])


def _box_fields(px: np.ndarray, width: int, height: int, *, decimals: int | None) -> dict:
    """Box dict with normalized and pixel fields. ``decimals``: round the normalized box (pixels follow from it);
    ``None``: round the pixels to integers (normalized follow)."""
    if decimals is not None:
        norm = np.round(px / [width, height, width, height], decimals)
        pix = norm * [width, height, width, height]
    else:
        pix = np.round(px)
        norm = pix / [width, height, width, height]
    keys = ("x1", "y1", "x2", "y2")
    out = {k: float(v) for k, v in zip(keys, norm)}
    out.update({"p" + k: float(v) for k, v in zip(keys, pix)})
    return out


def person_labels(track: VideoTrack, j: int) -> tuple[list[int], list[str], dict]:
    """AVA actions (sorted ava80 ids), PaSta names (sorted by pasta_ava87 id) and TPS tag per body part at frame ``j``."""
    segment = track.person.segments[track.segment[j]]
    lower, upper = LOWER[segment.lower], UPPER[segment.upper]
    pasta_vocab = vocab.load("pasta_ava87")
    actions = sorted(set(lower.actions) | set(upper.actions))
    pasta = sorted(set(lower.pasta) | set(upper.pasta), key=pasta_vocab.id_of)
    tps = {**lower.tps, **upper.tps}
    return actions, pasta, tps


def record_values(track: VideoTrack, j: int, cfg: SynthConfig, object_ids: dict, *, pixel_boxes: bool = False) -> dict:
    """Geometry and labels of a person at frame ``j`` as record columns (box, person_id, labels, parts, objects,
    COCO-17 ``keypoints`` of the drawn pose, see :func:`partwise.synth.figures.coco_keypoints`).

    Person and object boxes are normalized with 3 decimals like AVA's (pixels follow), or with ``pixel_boxes``
    whole pixels like Kinetics-TPS's; part boxes are always whole pixels."""
    decimals = None if pixel_boxes else 3
    w, h = cfg.width, cfg.height
    person = track.person
    actions, pasta, tps = person_labels(track, j)
    box = _box_fields(_clip_box(fig.person_box(track.joints[j], person.scale), w, h), w, h, decimals=decimals)
    parts = []
    for name, part_box in zip(vocab.BODY_PARTS, fig.part_boxes(track.joints[j])):
        parts.append({"part": name, **_box_fields(_clip_box(part_box, w, h), w, h, decimals=None), "state": tps[name]})
    objects = []
    for kind, obj_box, action in object_geometry(track, j):
        # One instance id per (person, segment, class): the same chair or ball keeps its id over keyframes.
        key = (person.track_id, int(track.segment[j]), kind)
        object_ids.setdefault(key, len(object_ids))
        objects.append({"class_name": kind, "class_id": OBJECT_CLASSES.index(kind), "action": action,
                        "object_id": object_ids[key], **_box_fields(_clip_box(obj_box, w, h), w, h, decimals=decimals)})
    # COCO-17 pose of the drawn figure (figures.coco_keypoints documents the joint mapping), 0.01 px
    keypoints = fig.coco_keypoints(track.joints[j], person.scale, int(track.facing[j]), (w, h))
    return {**box, "person_id": person.track_id, "actions": actions, "action_vocab": "ava80", "pasta": pasta,
            "pasta_vocab": "pasta_ava87", "part_boxes": parts, "objects": objects,
            "keypoints": [float(v) for v in np.round(keypoints, 2).reshape(-1)]}


def keyframe_seconds(cfg: SynthConfig) -> list[int]:
    """AVA-like keyframe seconds ``902 .. 900+seconds-2``."""
    return list(range(TIMESTAMP_START + 2, TIMESTAMP_START + cfg.seconds - 1))


@dataclass
class VideoLabels:
    """Everything generated for one video."""

    video_id: str
    split: str
    video_class: str
    keyframes: RecordBuilder
    frames: RecordBuilder
    excluded: list[int]
    proposals: dict  # "vid,ts" -> (N, 5) float64
    num_frames: int
    people: list  # [{"person_id", "color" (right side RGB), "color_left"}]


def label_video(rng: np.random.Generator, cfg: SynthConfig, vid: str, split: str, video_class: str,
                tracks: list[VideoTrack]) -> VideoLabels:
    """Keyframe records (1 Hz, AVA timing), TPS frame records (every 5th frame), exclusions and proposals."""
    keyframes, frames = RecordBuilder(), RecordBuilder()
    object_ids: dict = {}
    seconds = keyframe_seconds(cfg)
    # Like AVA, a few keyframes are excluded from annotation; they have proposals but no ground truth.
    excluded = [int(seconds[rng.integers(len(seconds))])] if rng.random() < 0.3 else []
    proposals = {}
    for t in seconds:
        j = (t - TIMESTAMP_START) * FPS
        rows = [record_values(track, j, cfg, object_ids) for track in tracks]
        proposals[f"{vid},{t:04d}"] = _proposals(rng, rows)
        if t in excluded:
            continue
        for values in rows:
            keyframes.append(dataset="synthetic", split=split, video_id=vid, time_s=float(t), frame_index=j,
                             width=cfg.width, height=cfg.height, video_label=video_class,
                             source=f"synth:{vid},{t}", **values)
    for j in range(0, cfg.seconds * FPS, TPS_STRIDE):
        for track in tracks:
            values = record_values(track, j, cfg, object_ids, pixel_boxes=True)
            frames.append(dataset="kinetics-tps", split=split, video_id=vid, time_s=None, frame_index=j + 1,
                          width=cfg.width, height=cfg.height, video_label=video_class,
                          source=f"synth:{vid}/img_{j + 1:05d}", **values)
    people = [{"person_id": tr.person.track_id, "color": list(tr.person.color), "color_left": list(fig.shade(tr.person.color))}
              for tr in tracks]
    return VideoLabels(vid, split, video_class, keyframes, frames, excluded, proposals, cfg.seconds * FPS, people)


def _proposals(rng: np.random.Generator, rows: list[dict]) -> np.ndarray:
    """Dense-proposal rows ``(N, 5)`` ``[x1, y1, x2, y2, score]`` normalized: every GT box jittered with a high
    score, sometimes a looser duplicate, and 0-2 low-scoring false positives; unsorted, 3/6 decimals like FAIR's."""
    out = []
    for row in rows:
        box = np.array([row["x1"], row["y1"], row["x2"], row["y2"]])
        size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
        out.append([*np.clip(box + rng.normal(0, 0.03, 4) * size, 0, 1), rng.uniform(0.9, 1.0)])
        if rng.random() < 0.3:
            out.append([*np.clip(box + rng.normal(0, 0.15, 4) * size, 0, 1), rng.uniform(0.3, 0.9)])
    for _ in range(int(rng.integers(0, 3))):
        x1, y1 = rng.uniform(0, 0.7, 2)
        w, h = rng.uniform(0.1, 0.3), rng.uniform(0.2, 0.5)
        out.append([x1, y1, min(1.0, x1 + w), min(1.0, y1 + h), rng.uniform(0.01, 0.7)])
    arr = np.array(out, dtype=np.float64)
    arr[:, :4] = np.round(np.sort(arr[:, :4].reshape(-1, 2, 2), axis=1).reshape(-1, 4), 3)
    arr[:, 4] = np.round(arr[:, 4], 6)
    return arr[rng.permutation(len(arr))]


# --------------------------------------------------------------------------------------------------------------
# One video


def make_video(cfg: SynthConfig, index: int, vid: str, split: str, video_class: str, out: Path) -> VideoLabels:
    """Simulate, render and encode video ``index``; write ``videos/<vid>.mp4`` (and frames); return its labels."""
    from partwise.data import video as video_io

    rng = np.random.default_rng([cfg.seed, index])
    people = sample_people(rng, cfg, video_class)
    starts = (np.arange(len(people)) + 0.5) / len(people) * cfg.width + rng.uniform(-0.05, 0.05, len(people)) * cfg.width
    tracks = [simulate(rng, cfg, p, float(np.clip(x, 0.3 * p.scale, cfg.width - 0.3 * p.scale))) for p, x in
              zip(people, rng.permutation(starts))]
    labels = label_video(rng, cfg, vid, split, video_class, tracks)
    bg = fig.background(cfg.width, cfg.height, rng)
    n = cfg.seconds * FPS
    video_path = out / "videos" / f"{vid}.mp4"
    video_io.write_video(video_path, (render_frame(bg, tracks, j) for j in range(n)), FPS, gop=10)
    if cfg.frames:
        video_io.extract_frames(video_path, out / "frames" / vid)
    return labels


def class_of(index: int, seed: int) -> str:
    """Video classes cycle through :data:`VIDEO_CLASSES` from a seed-dependent offset (balanced classes)."""
    names = list(VIDEO_CLASSES)
    return names[(index + seed) % len(names)]


def _concat(builders: list[RecordBuilder]) -> pa.Table:
    return pa.concat_tables([b.to_table() for b in builders])


def generate(out: str | os.PathLike, cfg: SynthConfig, *, progress: bool = False, overwrite: bool = False) -> dict:
    """Generate the synthetic dataset into ``out`` (atomically: a temp folder renamed at the end).

    Returns a summary dict (video ids, splits, classes, counts). Raises :class:`ConfigError` for bad parameters or
    an existing non-empty ``out`` without ``overwrite``.
    """
    from partwise.progress import bar as tqdm

    from partwise.errors import ConfigError
    from partwise.io import atomic_dir

    cfg.check()
    out = Path(out)
    ids = video_ids(np.random.default_rng([cfg.seed, 10**6]), cfg.videos)
    splits = [split_of(i, cfg.videos) for i in range(cfg.videos)]
    classes = [class_of(i, cfg.seed) for i in range(cfg.videos)]
    try:
        with atomic_dir(out, overwrite=overwrite) as tmp:
            labels = []
            for i in tqdm(range(cfg.videos), desc="synth videos", unit="video", disable=not progress):
                labels.append(make_video(cfg, i, ids[i], splits[i], classes[i], tmp))
            summary = write_annotations(tmp, cfg, labels)
    except FileExistsError:
        raise ConfigError(f"{out}: exists and is not empty (use --overwrite to replace it)") from None
    return summary


def write_annotations(out: Path, cfg: SynthConfig, labels: list[VideoLabels]) -> dict:
    """Write every annotation format from the canonical records (through the format modules) plus the truth."""
    from partwise.data import formats

    truth = _concat([v.keyframes for v in labels])
    frames = _concat([v.frames for v in labels])
    pq.write_table(truth, out / "truth.parquet")
    pq.write_table(frames, out / "truth_frames.parquet")

    _write_ava(out / "ava", truth, labels)
    formats.get_format("hake-ava").write_records(_as_dataset(truth, "hake-ava"), out / "hake_ava")
    # GIO rows exist only for persons with objects; a split without any gets no file (the readers reject empty
    # files), like AVA splits whose keyframes are all excluded.
    with_objects = truth.filter(pc.greater(pc.list_value_length(truth.column("objects")), 0))
    formats.get_format("gio").write_records(_as_dataset(with_objects, "gio"), out / "gio")
    _write_tps(out / "kinetics_tps", frames, labels)
    _write_hico_det(out / "hico_det", truth, out)

    summary = {
        "config": {**asdict(cfg), "people": list(cfg.people)},
        "fps": FPS, "timestamp_start": TIMESTAMP_START, "keyframes": keyframe_seconds(cfg), "tps_stride": TPS_STRIDE,
        "videos": [{"video_id": v.video_id, "split": v.split, "class": v.video_class, "excluded": v.excluded,
                    "num_frames": v.num_frames, "people": v.people}
                   for v in labels],
        "pasta_states": list(PASTA_STATES), "ava_actions": list(AVA_ACTIONS), "video_classes": list(VIDEO_CLASSES),
        "object_classes": list(OBJECT_CLASSES),
        "records": {"keyframes": truth.num_rows, "tps_frames": frames.num_rows},
    }
    with open(out / "synth.json", "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1, sort_keys=True)
        fh.write("\n")
    return summary


def _as_dataset(table: pa.Table, name: str) -> pa.Table:
    return table.set_column(table.schema.get_field_index("dataset"), "dataset", pa.array([name] * table.num_rows, pa.string()))


def _split_rows(table: pa.Table, split: str) -> pa.Table:
    return table.filter(pc.equal(table.column("split"), split))


def _write_ava(folder: Path, truth: pa.Table, labels: list[VideoLabels]) -> None:
    """AVA GT CSVs (splits with at least one annotated keyframe), excluded timestamps, the dense proposals (every
    split) and the 60-class label map."""
    from partwise.data import ava

    folder.mkdir(parents=True, exist_ok=True)
    table = _as_dataset(truth, "ava")
    for split in sorted({v.split for v in labels}):
        rows = _split_rows(table, split)
        if rows.num_rows:
            ava.write_records(rows, folder / f"ava_{split}_v2.2.csv")
        excluded = [(v.video_id, t) for v in labels if v.split == split for t in v.excluded]
        ava.write_excluded(excluded, folder / f"ava_{split}_excluded_timestamps_v2.2.csv")
        proposals = {k: a for v in labels if v.split == split for k, a in v.proposals.items()}
        ava.write_proposals(proposals, folder / f"ava_dense_proposals_{split}.FAIR.recall_93.9.pkl")
    ava60 = vocab.load("ava60")
    vocab.write_label_map(dict(zip(ava60.ids, ava60.names)), folder / "ava_action_list_v2.2_for_activitynet_2019.pbtxt", "item")


def _write_tps(folder: Path, frames: pa.Table, labels: list[VideoLabels]) -> None:
    """Kinetics-TPS tree (``<split>_annotations/`` for every split, ``list/`` with the names used and the frame
    counts ``video_<split>_flist.csv``) and the evaluator ground truth of the val videos."""
    from partwise.data import kinetics_tps

    kinetics_tps.write_records(frames, folder)
    frame_count = {v.video_id: int(v.num_frames) for v in labels}
    for split in sorted({v.split for v in labels}):
        counts = {v.video_id: frame_count[v.video_id] for v in labels if v.split == split}
        kinetics_tps.write_frame_counts(counts, folder / "list" / f"video_{split}_flist.csv")
    val = _split_rows(frames, "val")
    if val.num_rows:
        kinetics_tps.write_part_result(kinetics_tps.part_result_from_records(val, stride=TPS_STRIDE),
                                       folder / "gt_part_result.json")
        kinetics_tps.write_vid_result(kinetics_tps.vid_result_from_records(val), folder / "gt_vid_result.json")


# --------------------------------------------------------------------------------------------------------------
# HICO-DET

#: Synthetic object -> ``hico_objects80`` name (the box is the closest rigid, handled container HICO has).
HICO_OBJECTS: dict[str, str] = {"ball": "sports_ball", "box": "suitcase", "cup": "cup", "chair": "chair"}
#: (AVA action of the object interaction, synthetic object) -> ``hico_verbs117`` names. ``touch`` (AVA 59) has no
#: HICO verb, so touched objects get no HOI (and no box: HICO-DET annotates only objects of some HOI).
HICO_VERBS: dict[tuple[int, str], tuple[str, ...]] = {
    (11, "chair"): ("sit_on",),
    (17, "ball"): ("hold",), (17, "box"): ("hold",), (17, "cup"): ("hold",),
    (36, "ball"): ("hold", "pick_up"), (36, "box"): ("hold", "pick_up"), (36, "cup"): ("hold",),
}
#: Verbs added to a held (AVA 17) object: ``inspect`` when the person's PaSta has ``head: inspect`` (and HICO has
#: that HOI), ``carry`` when the person walks (AVA 14).
HICO_INSPECT_PASTA = "head: inspect"
HICO_WALK_ACTION = 14


def hico_hois(ava_action: int | None, obj: str, person_actions: list[int], pasta: list[str]) -> list[int]:
    """``hico_hoi600`` ids (sorted) of one synthetic person-object interaction (see :data:`HICO_VERBS`)."""
    from partwise.data.hico_det import hoi_id_of

    verbs = list(HICO_VERBS.get((int(ava_action) if ava_action is not None else -1, obj), ()))
    if ava_action == 17 and HICO_INSPECT_PASTA in pasta:
        verbs.append("inspect")
    if ava_action == 17 and HICO_WALK_ACTION in person_actions:
        verbs.append("carry")
    obj_id = vocab.load("hico_objects80").id_of(HICO_OBJECTS[obj])
    verb_vocab = vocab.load("hico_verbs117")
    ids = {hoi_id_of(verb_vocab.id_of(v), obj_id) for v in verbs}
    return sorted(i for i in ids if i is not None)


def _write_hico_det(folder: Path, truth: pa.Table, frames_root: Path) -> None:
    """HICO-DET view of the keyframes: ``images/{train,test}/<vid>_<t>.jpg`` (the keyframe's JPEG frame, copied,
    or decoded from the video and encoded when frames were not extracted), ``annotations/trainval_hico.json`` and
    ``test_hico.json`` (PPDM/QPIC) and ``anno_bbox.mat``, through :mod:`partwise.data.hico_det`. Split ``val``
    becomes ``test``. Only keyframes with at least one HOI are images; persons without a HOI are not annotated
    (as in HICO-DET), nor are objects outside the frame. Boxes are rounded to whole pixels, then written 1-based
    inclusive like HICO-DET's."""
    import shutil

    from PIL import Image

    from partwise.data import hico_det
    from partwise.data import video as video_io

    objects80 = vocab.load("hico_objects80")
    builder = RecordBuilder()
    images: dict[str, tuple[str, str, int]] = {}  # file name -> (split, video, frame index)
    columns = ["split", "video_id", "time_s", "frame_index", "width", "height", "px1", "py1", "px2", "py2",
               "actions", "pasta", "person_id", "objects"]
    for row in truth.select(columns).to_pylist():
        objs = []
        for o in row["objects"] or []:
            box = {k: float(np.round(o[k])) for k in ("px1", "py1", "px2", "py2")}
            if box["px2"] - box["px1"] < 1 or box["py2"] - box["py1"] < 1:
                continue  # outside the frame: not visible, so not annotated
            for hoi in hico_hois(o["action"], o["class_name"], row["actions"] or [], row["pasta"] or []):
                objs.append({"class_name": HICO_OBJECTS[o["class_name"]], "action": hoi, "object_id": o["object_id"],
                             "class_id": objects80.id_of(HICO_OBJECTS[o["class_name"]]), **box})
        if not objs:
            continue
        split = "test" if row["split"] == "val" else row["split"]
        name = f"{row['video_id']}_{int(row['time_s']):04d}.jpg"
        images[name] = (split, row["video_id"], int(row["frame_index"]))
        builder.append(dataset=hico_det.DATASET, split=split, video_id=name, width=row["width"], height=row["height"],
                       **{k: float(np.round(row[k])) for k in ("px1", "py1", "px2", "py2")},
                       person_id=row["person_id"], actions=sorted({o["action"] for o in objs}),
                       action_vocab=hico_det.ACTION_VOCAB, objects=objs,
                       source=f"synth:{row['video_id']},{row['time_s']:g}")
    if not images:
        return
    table = builder.to_table()
    hico_det.write_records(table, folder / "annotations")
    mat = folder / "anno_bbox.mat"
    hico_det.write_records(table, mat)
    # scipy stamps the creation time into the 116-byte MAT-5 header text: a fixed text keeps the file per-seed stable
    data = bytearray(mat.read_bytes())
    data[:116] = b"MATLAB 5.0 MAT-file, written by partwise synth".ljust(116, b" ")
    mat.write_bytes(bytes(data))
    for name, (split, vid, index) in images.items():
        target = folder / "images" / split / name
        target.parent.mkdir(parents=True, exist_ok=True)
        frame = frames_root / "frames" / vid / f"img_{index + 1:05d}.jpg"
        if frame.is_file():
            shutil.copyfile(frame, target)
        else:
            pixels = video_io.read_frames(frames_root / "videos" / f"{vid}.mp4", [index])[0]
            Image.fromarray(pixels).save(target, quality=95)
