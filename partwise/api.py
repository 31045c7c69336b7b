"""Python API: ``results = partwise.run("video.mp4")``, with the options of ``partwise run``.

>>> import partwise
>>> results = partwise.run("examples/real/basketball1.png")       # in memory, nothing written
>>> frame = results[0]                                            # a FrameResult: one keyframe of one input
>>> frame.boxes.shape, frame.keypoints.shape, frame.part_boxes.shape   # (N, 4), (N, 17, 3), (N, 10, 4) pixels
>>> results.table().to_pandas()                                   # the persons table (pandas when installed)
>>> results.save_plot("frame.png", frame=0)                       # that keyframe drawn as in the annotated video

``out=None`` (the default) runs every input in this process (or ``workers`` processes) and keeps the rows in memory;
``out=DIR`` runs :func:`partwise.infer.pipeline.run` exactly as ``partwise run INPUT --out DIR`` does (the same files,
skipping inputs already done unless ``overwrite``) and reads the merged ``persons.parquet`` back. Options are
:class:`partwise.infer.pipeline.RunOptions`' fields (``model``, ``boxes``, ``detector``, ``video_model``, ``fps``,
``max_people``, ``pose``, ``topk``, ``timestamp_start``, ``video``, ``progress``, ...) plus :data:`RUN_CONTROLS`
(``workers``, ``overwrite``, ``tps_json``, ``ava_csv``; the last two need ``out``). ``gt`` (an AVA CSV, with
``gt_labelmap``) needs ``out``: the evaluation goes into ``run.json`` (``results.metadata["evaluation"]``) and
``index.html`` (:mod:`partwise.infer.evaluation`). ``partwise run`` is a thin layer
on :func:`run_to_folder`.

A keyframe appears in the results when at least one person was found in it. A model trained on synthetic data
warns once per call (:class:`SyntheticWeightsWarning`) and its line is in ``results.warnings``.
"""
from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: ``run`` options that organise the run rather than what it computes (not :class:`RunOptions` fields).
RUN_CONTROLS = ("workers", "overwrite", "tps_json", "ava_csv")


class SyntheticWeightsWarning(UserWarning):
    """A model trained on synthetic data was used: its outputs on real video are not meaningful."""


def make_options(options: dict) -> tuple[Any, dict]:
    """``(RunOptions, controls)`` from ``run``'s keyword options; an unknown name is a :class:`TypeError`, a bad value
    a :class:`partwise.errors.ConfigError` (one line, as the CLI reports it)."""
    from dataclasses import fields

    from partwise.errors import ConfigError
    from partwise.infer.pipeline import RunOptions

    names = [f.name for f in fields(RunOptions)]
    unknown = sorted(set(options) - set(names) - set(RUN_CONTROLS))
    if unknown:
        raise TypeError(f"partwise.run() got unknown option(s) {', '.join(unknown)}; options: "
                        f"{', '.join(names + list(RUN_CONTROLS))}")
    run_options = RunOptions(**{k: v for k, v in options.items() if k in names})
    controls = {"workers": 1, "overwrite": False, "tps_json": False, "ava_csv": False,
                **{k: v for k, v in options.items() if k in RUN_CONTROLS}}
    if int(controls["workers"]) < 1:
        raise ConfigError("--workers must be at least 1")
    run_options.check()
    return run_options, controls


def run_to_folder(source: str | os.PathLike, out: str | os.PathLike, *, warn: Callable[[str], None] | None = None,
                  **options):
    """``partwise run SOURCE --out OUT`` with keyword ``options``: the files of :mod:`partwise.infer.outputs`;
    returns the :class:`~partwise.infer.pipeline.RunSummary`. ``warn`` receives each warning line (default: one
    ``partwise: warning: ...`` line on stderr)."""
    from partwise.infer import pipeline

    run_options, controls = make_options(options)
    return pipeline.run(source, out, run_options, workers=int(controls["workers"]), tps_json=controls["tps_json"],
                        ava_csv=controls["ava_csv"], overwrite=controls["overwrite"], warn=warn)


def run(source: str | os.PathLike, *, out: str | os.PathLike | None = None, **options) -> "Results":
    """People, tracks, keypoints, part boxes, part states, actions and objects of every keyframe of ``source`` (a
    video, an image, or a folder of them); see the module docstring for ``out`` and the options."""
    def warn(line: str) -> None:
        warnings.warn(line, SyntheticWeightsWarning, stacklevel=2)

    if out is None:
        return _run_in_memory(source, options, warn)
    import pyarrow.parquet as pq

    from partwise.infer import outputs
    from partwise.infer.pipeline import discover_inputs

    summary = run_to_folder(source, out, warn=warn, **options)
    if summary.merged:
        table = pq.read_table(summary.merged["parquet"])
    else:  # a torchrun rank other than 0: its own inputs' files only
        table = _concat([pq.read_table(outputs.video_dir(out, v) / outputs.PERSONS_FILE) for v in summary.done])
    ok = set(summary.done + summary.skipped)
    inputs = [item.video_id for item in discover_inputs(source) if item.video_id in ok]
    return Results(table, summary.metadata, summary.warnings, summary.failed, _read_classes(out, table), Path(out),
                   inputs)


def _run_in_memory(source, options: dict, warn: Callable[[str], None]) -> "Results":
    from partwise.errors import PartwiseError
    from partwise.infer import outputs, pipeline

    run_options, controls = make_options(options)
    if controls["tps_json"] or controls["ava_csv"]:
        raise TypeError("partwise.run(): tps_json and ava_csv write files: give out=DIR")
    if run_options.gt is not None:
        raise TypeError("partwise.run(): gt is scored into run.json and index.html: give out=DIR (or score "
                        "results.table() with partwise.eval.ava.evaluate)")
    items = pipeline.discover_inputs(source)
    state = pipeline._check_sources(run_options, Path("."))
    metadata = pipeline.run_metadata(run_options, state)
    for line in metadata["warnings"]:
        warn(line)
    workers = min(int(controls["workers"]), len(items))
    if workers > 1:
        done = _in_pool(items, run_options, workers)
    else:
        done = []
        for item in items:
            try:
                done.append((item, _process(item, state), None))
            except (PartwiseError, OSError, ValueError, RuntimeError) as exc:
                if len(items) == 1:
                    raise
                done.append((item, None, str(exc) if isinstance(exc, PartwiseError) else
                             f"{item.path}: {type(exc).__name__}: {exc}"))
    failed = [(item.video_id, error) for item, _, error in done if error is not None]
    for _, error in failed:
        print(f"partwise: error: {error} (skipped)", file=sys.stderr)
    results = [r for _, r, _ in done if r is not None]
    table = _concat([outputs.rows_to_table(r.rows) for r in results])
    classes = {r.item.video_id: r.video_classes for r in results if r.video_classes is not None}
    return Results(table, metadata, metadata["warnings"], failed, classes, None, [r.item.video_id for r in results])


def _process(item, state):
    """:func:`~partwise.infer.pipeline.process_item` of one input with the loaded sources of ``state``."""
    from partwise.infer import pipeline

    return pipeline.process_item(item, state.options, state.boxes, state.model, state.pose, detector=state.detector,
                                 video_model=state.video_model, objects=state.objects)


def _process_in_worker(item):
    """:func:`_process` in a pool worker (state from ``pipeline._init_worker``)."""
    from partwise.errors import PartwiseError
    from partwise.infer import pipeline

    try:
        return item, _process(item, pipeline._STATE), None
    except PartwiseError as exc:
        return item, None, str(exc)
    except (OSError, ValueError, RuntimeError) as exc:
        return item, None, f"{item.path}: {type(exc).__name__}: {exc}"


def _in_pool(items, run_options, workers: int) -> list:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from dataclasses import replace

    from partwise.infer import pipeline

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=pipeline._init_worker,
                             initargs=(replace(run_options, progress=False), ".")) as pool:
        return list(pool.map(_process_in_worker, items))


def _concat(tables: list):
    import pyarrow as pa

    from partwise.infer.outputs import RESULT_SCHEMA

    return pa.concat_tables(tables) if tables else RESULT_SCHEMA.empty_table()


def _read_classes(out, table) -> dict:
    from partwise.infer import outputs

    found = {v: outputs.read_video_classes(out, v) for v in dict.fromkeys(table.column("video_id").to_pylist())}
    return {v: c for v, c in found.items() if c is not None}


# ----------------------------------------------------------------------------------------------------------------
# Results


@dataclass
class FrameResult:
    """The people of one keyframe of one input; arrays are aligned, one row per person, pixel coordinates.

    ``boxes`` (N, 4) ``x1, y1, x2, y2``; ``scores`` (N,); ``track_ids`` (N,) (the ``track_id``/``person_id`` of the
    table); ``keypoints`` (N, 17, 3) COCO-17 ``x, y, score`` (zeros without pose); ``part_boxes`` (N, 10, 4) in
    ``part_names`` order (HAKE's ten body parts); ``part_states`` per person ``{part: Kinetics-TPS state}``;
    ``pasta`` per person the top states ``[(name, score or None)]`` (``pasta_vocab``); ``actions`` per person
    ``[(AVA action name, probability)]`` above the run's threshold, ``action_scores`` (N, 80) or None; ``verbs``
    (Activity2Vec) per person; ``objects`` per person the objects their body parts touch (dicts of the table's
    ``objects`` column: ``class_name``, ``object_id``, pixel box ``px1..py2``...), ``part_objects`` per person which
    part touches which ``object_id``;
    ``activity_vectors`` (N, D) or None."""

    video_id: str
    path: str
    frame_index: int
    time_s: float
    width: int
    height: int
    boxes: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray
    keypoints: np.ndarray
    part_boxes: np.ndarray
    part_names: tuple[str, ...]
    part_states: list[dict]
    pasta: list[list[tuple[str, float | None]]]
    pasta_vocab: list[str | None]
    actions: list[list[tuple[str, float]]]
    action_scores: np.ndarray | None
    verbs: list[list[str]]
    objects: list[list[dict]]
    part_objects: list[list[dict]]
    activity_vectors: np.ndarray | None
    rows: list[dict] = field(default_factory=list, repr=False)  # the table's rows of this keyframe

    def __len__(self) -> int:
        return len(self.boxes)

    def image(self) -> np.ndarray:
        """The frame itself, (H, W, 3) uint8 RGB, decoded from the input."""
        from partwise.infer.pipeline import IMAGE_EXTENSIONS

        if Path(self.path).suffix.lower() in IMAGE_EXTENSIONS:
            from PIL import Image

            with Image.open(self.path) as im:
                return np.asarray(im.convert("RGB"))
        from partwise.data import video

        return video.read_frames(self.path, np.array([self.frame_index]))[0]

    def plot(self, image: np.ndarray | None = None, *, state_thr: float | None = None,
             action_thr: float | None = None, top_k: int | None = None) -> np.ndarray:
        """This keyframe drawn as in the annotated video (:mod:`partwise.infer.render`: person boxes, skeletons,
        part boxes with their states, ``#track`` labels with the top part states and actions): a new (H, W, 3)
        uint8 RGB array; ``image`` defaults to the decoded frame; ``state_thr``, ``action_thr``, ``top_k`` as
        ``partwise run``'s ``--state-thr``, ``--action-thr``, ``--top-k``."""
        from partwise.infer.render import Style, draw_persons

        frame = self.image() if image is None else np.asarray(image)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"plot() needs an (H, W, 3) uint8 RGB image, got {frame.shape} {frame.dtype}")
        return np.array(draw_persons(frame, self.rows, Style.of(state_thr, action_thr, top_k)))


def _frame_result(rows: list[dict], ava80) -> FrameResult:
    first = rows[0]
    parts = [r["part_boxes"] or [] for r in rows]
    names = tuple(p["part"] for p in parts[0]) if parts[0] else ()
    n = len(rows)
    keypoints = np.zeros((n, 17, 3))
    for i, r in enumerate(rows):
        if r["keypoints"]:
            keypoints[i] = np.asarray(r["keypoints"], np.float64).reshape(17, 3)
    part_boxes = np.array([[[p["px1"], p["py1"], p["px2"], p["py2"]] for p in ps] for ps in parts],
                          np.float64).reshape(n, len(names), 4)
    with_scores = all(r["action_scores"] is not None for r in rows)
    with_vectors = all(r["activity_vector"] is not None for r in rows)
    return FrameResult(
        video_id=first["video_id"], path=first["source"].rsplit(":", 1)[0], frame_index=int(first["frame_index"]),
        time_s=float(first["time_s"]), width=int(first["width"]), height=int(first["height"]),
        boxes=np.array([[r["px1"], r["py1"], r["px2"], r["py2"]] for r in rows], np.float64).reshape(n, 4),
        scores=np.array([r["score"] for r in rows], np.float64), track_ids=np.array([r["track_id"] for r in rows],
                                                                                     np.int64),
        keypoints=keypoints, part_boxes=part_boxes, part_names=names,
        part_states=[{p["part"]: p["state"] for p in ps if p["state"] is not None} for ps in parts],
        pasta=[list(zip(r["pasta"] or [], r["pasta_scores"] or [None] * len(r["pasta"] or []))) for r in rows],
        pasta_vocab=[r["pasta_vocab"] for r in rows],
        actions=[[(ava80.name_of(a), float(r["action_scores"][a - 1]) if r["action_scores"] else float("nan"))
                  for a in r["actions"] or []] for r in rows],
        action_scores=np.array([r["action_scores"] for r in rows], np.float64) if with_scores else None,
        verbs=[list(r["verbs"] or []) for r in rows], objects=[list(r["objects"] or []) for r in rows],
        part_objects=[list(r.get("part_objects") or []) for r in rows],
        activity_vectors=np.array([r["activity_vector"] for r in rows], np.float64) if with_vectors else None,
        rows=rows)


class Results:
    """Every keyframe with people of every input: iterate for :class:`FrameResult`\\ s (inputs in order, keyframes
    in time order), ``results[i]`` the i-th, ``results[video_id]`` the list of one input's; ``table()`` the persons
    table (pyarrow); ``warnings`` the run's warning lines; ``failed`` ``[(video_id, error)]`` of skipped inputs;
    ``video_classes`` ``{video_id: [(class, probability)]}`` with ``video_model``; ``metadata`` what ``run.json``
    records (sources, licences, domains); ``out`` the output folder (None in memory); ``videos`` the inputs
    processed (``results[video_id]`` of one without people is ``[]``)."""

    def __init__(self, table, metadata: dict, warnings: list[str], failed: list, video_classes: dict,
                 out: Path | None = None, inputs: list[str] | None = None):
        from partwise import vocab

        self._table = table
        self.metadata = metadata or {}
        self.warnings = list(warnings or [])
        self.failed = list(failed or [])
        self.video_classes = dict(video_classes or {})
        self.out = out
        groups: dict[tuple[str, int], list[dict]] = {}
        for row in table.to_pylist():
            groups.setdefault((row["video_id"], row["frame_index"]), []).append(row)
        ava80 = vocab.load("ava80")
        self.frames: list[FrameResult] = [_frame_result(rows, ava80) for rows in groups.values()]
        order = {v: i for i, v in enumerate(dict.fromkeys(f.video_id for f in self.frames))}
        self.frames.sort(key=lambda f: (order[f.video_id], f.frame_index))
        self.videos: list[str] = list(dict.fromkeys(list(inputs or []) + list(order)))

    def table(self):
        """The persons table (:data:`partwise.infer.outputs.RESULT_SCHEMA`, one row per person per keyframe) as a
        ``pyarrow.Table``; ``.to_pandas()`` when pandas is installed."""
        return self._table

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self):
        return iter(self.frames)

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self.videos:
                raise KeyError(f"{key!r}: no such input (inputs: {', '.join(self.videos)})")
            return [f for f in self.frames if f.video_id == key]
        return self.frames[key]

    def frame(self, video_id: str, frame_index: int) -> FrameResult:
        """The keyframe ``frame_index`` (0-based frame of the video) of ``video_id``."""
        for f in self.frames:
            if f.video_id == video_id and f.frame_index == frame_index:
                return f
        raise KeyError(f"{video_id!r} has no keyframe with people at frame {frame_index}")

    def save_plot(self, path: str | os.PathLike, frame: int | FrameResult | tuple[str, int] = 0,
                  image: np.ndarray | None = None, **style) -> Path:
        """Write :meth:`FrameResult.plot` of ``frame`` (an index into the frames, a FrameResult, or
        ``(video_id, frame_index)``) to ``path`` (PNG unless the suffix says another format Pillow writes);
        ``style``: ``state_thr``, ``action_thr``, ``top_k`` of :meth:`FrameResult.plot`."""
        from PIL import Image

        if isinstance(frame, tuple):
            frame = self.frame(*frame)
        elif not isinstance(frame, FrameResult):
            frame = self.frames[frame]
        path = Path(path)
        Image.fromarray(frame.plot(image, **style)).save(path, format=None if path.suffix else "PNG")
        return path

    def __repr__(self) -> str:
        people = self._table.num_rows
        return (f"Results({len(self.videos)} inputs, {len(self.frames)} keyframes with people, {people} person rows"
                + (f", {len(self.warnings)} warnings" if self.warnings else "") + ")")
