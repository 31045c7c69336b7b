"""Where every output of ``partwise run`` came from (``run.json``'s ``sources``), and the warnings for weights
trained on synthetic data.

Each source is described by :func:`describe_weights`: ``name`` (the known name, else None), ``spec`` (what was
given), ``path`` (the file), ``family``, ``domain`` (``real``, ``synthetic`` or ``unknown``), ``domain_evidence``
(why), ``licence`` and ``published`` (where the original comes from).

The domain of a **known name** is the table's (:data:`partwise.models.weights.KNOWN_WEIGHTS`). A **checkpoint
given by path** is judged by the first of these signals that answers (:func:`checkpoint_domain`):

1. ``extra["domain"]`` in the checkpoint (``real`` / ``synthetic``), when a writer declared it;
2. the file is byte-identical to a known weights file found on this machine (same size, same sha256): that
   entry's domain, licence and source (a copy of ``synth_st_activity2vec.pt`` is still synthetic);
3. the training data config ``partwise train`` stores in the checkpoint (``extra["data"]``): its ``root`` names
   ``partwise synth`` (the shipped models record the command there), or the root folder, looked up as given,
   from the current folder and from each folder above the checkpoint, holds ``synth.json`` (written by
   ``partwise synth`` and by nothing else);
4. otherwise ``unknown``: a partwise checkpoint records neither the config file's name nor what its data were, and
   the mmaction2 and HAKE formats say nothing of the data either.

Only ``synthetic`` sources warn (:func:`synthetic_warnings`); ``unknown`` is written to ``run.json`` as such.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: how the MediaPipe estimator (``--pose mediapipe``) is described.
MEDIAPIPE_SOURCE = {
    "name": "mediapipe", "family": "pose", "domain": "real",
    "domain_evidence": "Google's BlazePose, trained on photos of real people",
    "licence": "Apache-2.0 (Google MediaPipe)",
    "published": "pip package mediapipe (Google MediaPipe Pose, BlazePose GHUM; its model ships inside the package)",
}
#: what each MoveNetPose part does in the run.
POSE_ROLES = {"movenet-multipose": "people and keypoints", "centernet": "extra person boxes",
              "movenet-thunder": "keypoints of people MultiPose misses",
              "movenet-lightning": "keypoints of people MultiPose misses"}
SYNTHETIC_CONSEQUENCE = "its outputs on real video are not meaningful"


def _entry_fields(entry) -> dict:
    return {"name": entry.name, "family": entry.family, "domain": entry.domain, "licence": entry.licence,
            "published": entry.published}


def describe_weights(spec: Any, path: Any = None, family: str | None = None, role: str | None = None) -> dict:
    """One source: a known name or a checkpoint path ``spec`` (``path``: the file actually loaded, when known;
    ``family``: the loaded family). Never raises: what cannot be told is None or ``unknown``."""
    from partwise.models import weights

    entry = weights.KNOWN_WEIGHTS.get(str(spec))
    info: dict[str, Any] = {"spec": str(spec), "name": None, "path": str(path) if path else None, "family": family,
                            "domain": "unknown", "domain_evidence": None, "licence": None, "published": None}
    if role:
        info["role"] = role
    if entry is not None:
        info.update(_entry_fields(entry), domain_evidence="partwise's table of known weights")
        if info["path"] is None:
            found = weights.find_file(entry)
            info["path"] = str(found) if found else None
        return info
    file = Path(str(path if path else spec)).expanduser()
    if not file.is_file():
        info["domain_evidence"] = "no such file: nothing to judge"
        return info
    info["path"] = str(file)
    known, domain, evidence = checkpoint_domain(file)
    if known is not None:
        info.update(_entry_fields(known))
        info["name"] = None  # given by path: the name is where it came from, not what was asked
        info["same_file_as"] = known.name
    info["domain"], info["domain_evidence"] = domain, evidence
    if info["licence"] is None:
        info["licence"] = "unknown (checkpoint given by path)"
    if info["published"] is None:
        info["published"] = f"checkpoint file {file}"
    return info


def _same_known_file(path: Path):
    """The known weights entry whose local file is byte-identical to ``path``, else None."""
    from partwise.models import weights

    size = path.stat().st_size
    digest = None
    for entry in weights.KNOWN_WEIGHTS.values():
        found = weights.find_file(entry)
        if found is None or found.stat().st_size != size:
            continue
        digest = digest or weights.sha256_file(path)
        if weights.sha256_file(found) == digest:
            return entry
    return None


def _synth_root(root: str, checkpoint: Path) -> Path | None:
    """The folder ``root`` (as given, from the current folder, from each folder above the checkpoint) holding a
    ``partwise synth`` ``synth.json``, else None."""
    given = Path(root).expanduser()
    candidates = [given] if given.is_absolute() else [Path.cwd() / given] + [
        parent / given for parent in checkpoint.resolve().parents]
    for folder in candidates:
        marker = folder / "synth.json"
        try:
            if marker.is_file() and {"config", "videos"} <= set(json.loads(marker.read_text(encoding="utf-8"))):
                return folder
        except (OSError, ValueError, TypeError):
            continue
    return None


def checkpoint_domain(path: str | os.PathLike) -> tuple[Any, str, str]:
    """``(known entry or None, domain, evidence)`` of a checkpoint file (see the module docstring)."""
    from partwise.errors import PartwiseError

    path = Path(path)
    try:
        known = _same_known_file(path)
    except OSError:
        known = None
    if known is not None:
        return known, known.domain, f"byte-identical to the known weights {known.name}"
    try:
        from partwise.models.checkpoint import read_checkpoint

        record = read_checkpoint(path)
    except (PartwiseError, OSError, RuntimeError, ValueError) as exc:
        return None, "unknown", f"not readable as a checkpoint ({str(exc).splitlines()[0] if str(exc) else exc!r})"
    extra = record.get("extra") if isinstance(record.get("extra"), dict) else {}
    if extra.get("domain") in ("real", "synthetic"):
        return None, str(extra["domain"]), "the checkpoint's extra['domain']"
    data = extra.get("data")
    if data is None and isinstance(extra.get("config"), dict):
        data = extra["config"].get("data")
    root = data.get("root") if isinstance(data, dict) else data if isinstance(data, str) else None
    if isinstance(root, str) and root:
        if "partwise synth" in root:
            return None, "synthetic", f"its training data config names `partwise synth` ({root!r})"
        folder = _synth_root(root, path)
        if folder is not None:
            return None, "synthetic", f"its training data root {folder} holds synth.json (`partwise synth` data)"
        return None, "unknown", (f"trained on {root!r} (training data config), which is not `partwise synth` data "
                                 "found here; the checkpoint does not say what the data were")
    return None, "unknown", "the checkpoint records no training data"


def describe_pose(options, pose=None) -> list[dict] | None:
    """The pose sources (keypoints, and people when no boxes or detector are given): ``pose.sources`` when the pose
    object lists its weights (MoveNet), MediaPipe's BlazePose, or (no pose object loaded) what the options would
    load; None for ``--pose none``."""
    from partwise.infer.pose import PoseEstimator

    if options.pose == "none" and pose is None:
        return None
    if isinstance(pose, PoseEstimator) or (pose is None and options.pose == "mediapipe"):
        return [dict(MEDIAPIPE_SOURCE, spec="mediapipe", path=None, role="people and keypoints")]
    if pose is not None and not hasattr(pose, "sources"):  # a pose object of the caller's own
        return [{"spec": type(pose).__name__, "name": None, "path": None, "family": "pose", "domain": "unknown",
                 "domain_evidence": "a pose object that lists no weights", "licence": None, "published": None}]
    names = list(pose.sources) if pose is not None else _movenet_sources(options)
    return [describe_weights(name, role=POSE_ROLES.get(name)) for name in names]


def object_source(options, state) -> tuple[Any, str | None]:
    """``(loaded object detector or None, its spec or None)`` of a run: the state's object source (``objects`` or
    ``object_detector``, with a ``name``) when loaded, else what the options' ``objects`` (``auto``: CenterNet when
    installed; ``none``: off) or ``object_detector`` ask for."""
    from partwise.infer.movenet_pose import _installed

    for attribute in ("objects", "object_detector"):
        loaded = getattr(state, attribute, None) if state is not None else None
        if loaded is not None and not isinstance(loaded, (dict, list)):
            return loaded, str(getattr(loaded, "name", None) or type(loaded).__name__)
    spec = getattr(options, "objects", None) or getattr(options, "object_detector", None)
    if state is not None or spec in (None, "none"):
        return None, None  # loaded state without an object source: the run has none
    if spec == "auto":
        return None, "centernet" if _installed("centernet") else None
    return None, str(spec)


def _movenet_sources(options) -> list[str]:
    """The weights :class:`partwise.infer.movenet_pose.MoveNetPose` would load for ``options`` (without loading)."""
    from partwise.infer.movenet_pose import _installed

    names = ["movenet-multipose"]
    detector = options.person_detector
    if detector == "auto":
        detector = "centernet" if _installed("centernet") else None
    if detector:
        names.append(str(detector))
    single = options.single_pose
    if single == "auto":
        single = next((n for n in ("movenet-thunder", "movenet-lightning") if _installed(n)), None)
    if single:
        names.append(str(single))
    return names


def synthetic_warnings(sources: dict) -> list[str]:
    """One line per source trained on synthetic data (once per weights), in the order of ``sources``
    (``{option: description or list of descriptions}``)."""
    lines: list[str] = []
    seen: set[str] = set()
    for option, value in sources.items():
        for info in value if isinstance(value, list) else [value]:
            if not info or info.get("domain") != "synthetic":
                continue
            key = str(info.get("path") or info.get("spec"))
            if key in seen:
                continue
            seen.add(key)
            label = f"{option} {info.get('spec') or info.get('name')}"
            if info.get("name") in _stick_figure_names():
                what = "was trained on synthetic stick figures, not real people"
            elif "extra['domain']" in str(info.get("domain_evidence")):
                what = "was trained on synthetic data, not real people (so says the checkpoint)"
            else:  # every other signal (a copy of a shipped model, partwise synth data) means stick figures
                what = (f"was trained on synthetic stick figures, not real people ({info.get('domain_evidence')})")
            lines.append(f"{label} {what}: {SYNTHETIC_CONSEQUENCE}")
    return lines


def _stick_figure_names() -> set[str]:
    """Known synthetic weights: all of them are trained on ``partwise synth`` stick figures."""
    from partwise.models import weights

    return {e.name for e in weights.KNOWN_WEIGHTS.values() if e.domain == "synthetic"}
