"""Model weights by name: a small table of known models, where their files are looked up, and how each is loaded.

``partwise run --model NAME`` (and ``--detector``, ``--video-model``) accepts either a checkpoint path or a name
from :data:`KNOWN_WEIGHTS`. A name's file is looked up, in order,

1. in the package data folder ``partwise/models/data/`` (models shipped with partwise), then
2. in the weights folder ``$PARTWISE_WEIGHTS`` (default ``~/.cache/partwise/weights``), where the user puts
   published weights.

Nothing is ever downloaded: a name whose file is missing is a one-line :class:`~partwise.errors.ConfigError` saying
which file to put where and where the original is published. ``partwise models list`` shows every name and whether
its file is present.

Loaders (``KnownWeights.loader``):

* ``partwise``: a file written by :func:`partwise.models.checkpoint.save_model` (``partwise train`` output),
  rebuilt by :func:`~partwise.models.checkpoint.load_model`;
* ``hake_activity2vec``: HAKE-Action-Torch's released Activity2Vec ``pretrained_model.pth``, mapped onto
  :class:`~partwise.models.activity2vec.Activity2Vec` by :func:`~partwise.models.activity2vec.load_hake_checkpoint`;
* ``mmaction2``: an mmaction2 AVA detector checkpoint, rebuilt by
  :func:`~partwise.models.checkpoint.load_mmaction2_detector` (the clip sampling, which the weights cannot tell,
  comes from the table's ``clip``).

A path given instead of a name is loaded by the loader its contents call for
(:func:`~partwise.models.checkpoint.detect_source`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from partwise.errors import ConfigError, InputError

WEIGHTS_ENV = "PARTWISE_WEIGHTS"
DEFAULT_WEIGHTS_DIR = "~/.cache/partwise/weights"
LOADERS = ("partwise", "hake_activity2vec", "mmaction2")
#: mmaction2's AVA test pipeline: ``Resize(scale=(-1, 256))``.
MMACTION2_TEST_SHORT_SIDE = 256
_MMACTION2_ZOO = ("the mmaction2 model zoo (github.com/open-mmlab/mmaction2, configs/detection/{folder}/README.md, "
                  "checkpoint of config {config})")


@dataclass(frozen=True)
class KnownWeights:
    """One known model: ``file`` is relative to the folders searched; ``clip`` (for video models whose file does
    not record it) holds ``clip_len``, ``frame_interval``, ``short_side``, and for image models ``short_side``."""

    name: str
    family: str
    file: str
    loader: str
    published: str
    description: str
    clip: dict = field(default_factory=dict)


def _mmaction2(name: str, folder: str, config: str, clip_len: int, frame_interval: int) -> KnownWeights:
    return KnownWeights(name, "ava_detector", f"mmaction2/{config}.pth", "mmaction2",
                        _MMACTION2_ZOO.format(folder=folder, config=config),
                        f"mmaction2 AVA detector {config}",
                        {"clip_len": clip_len, "frame_interval": frame_interval,
                         "short_side": MMACTION2_TEST_SHORT_SIDE})


KNOWN_WEIGHTS: dict[str, KnownWeights] = {w.name: w for w in (
    KnownWeights("synth-st-activity2vec", "st_activity2vec", "synth_st_activity2vec.pt", "partwise",
                 "shipped with partwise (trained on `partwise synth` videos, tests/fixtures/synth_st_a2v/README.md)",
                 "small ST-Activity2Vec trained on synthetic stick-figure videos: 87 PaSta, 80 AVA actions"),
    KnownWeights("synth-activity2vec", "activity2vec", "synth_activity2vec.pt", "partwise",
                 "shipped with partwise (trained on `partwise synth` keyframes)",
                 "Activity2Vec trained on synthetic keyframes: 93 PaSta, 157 verbs"),
    KnownWeights("synth-person-detector", "person_detector", "synth_person_detector.pt", "partwise",
                 "shipped with partwise (trained on `partwise synth` frames)",
                 "person detector trained on synthetic frames"),
    KnownWeights("synth-video-classifier", "video_classifier", "synth_video_classifier.pt", "partwise",
                 "shipped with partwise (trained on `partwise synth` videos)",
                 "video classifier trained on synthetic videos"),
    KnownWeights("hake-activity2vec", "activity2vec", "hake/pretrained_model.pth", "hake_activity2vec",
                 "HAKE-Action-Torch, Activity2Vec branch (github.com/DirtyHarryLYL/HAKE-Action-Torch): "
                 "pretrained_model.pth inside its checkpoints.tar.gz",
                 "HAKE's released Activity2Vec (ResNet-50, HAKE-Large): 93 PaSta, 157 verbs"),
    _mmaction2("mmaction2-slowonly-r50-4x16-ava21", "slowonly",
               "slowonly_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb", 4, 16),
    _mmaction2("mmaction2-slowfast-r50-8x8-ava22", "slowfast",
               "slowfast_kinetics400-pretrained-r50_8xb6-8x8x1-cosine-10e_ava22-rgb", 32, 2),
)}


def package_data_dir() -> Path:
    """``partwise/models/data`` (models shipped with partwise)."""
    return Path(str(resources.files("partwise.models").joinpath("data")))


def weights_dir() -> Path:
    """``$PARTWISE_WEIGHTS``, or ``~/.cache/partwise/weights`` when unset."""
    return Path(os.path.expanduser(os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS_DIR))


def find_file(entry: KnownWeights) -> Path | None:
    """The first existing ``entry.file`` in the package data folder, then the weights folder; None if neither."""
    for folder in (package_data_dir(), weights_dir()):
        path = folder / entry.file
        if path.is_file():
            return path
    return None


def missing_message(entry: KnownWeights, option: str = "--model") -> str:
    """One line: which file to put where, and where the original comes from."""
    where = weights_dir() / entry.file
    shipped = f" or {package_data_dir() / entry.file}" if entry.published.startswith("shipped") else ""
    return (f"{option} {entry.name}: weights file not found; put {Path(entry.file).name} at {where}{shipped} "
            f"(weights folder: ${WEIGHTS_ENV}, default {DEFAULT_WEIGHTS_DIR}); published: {entry.published}")


def resolve(spec: str | os.PathLike, option: str = "--model") -> tuple[Path, KnownWeights | None]:
    """A checkpoint path, or a known name -> ``(file, entry)``; raises :class:`ConfigError` for a missing file or
    an unknown name (one line, with what to do)."""
    text = str(spec)
    entry = KNOWN_WEIGHTS.get(text)
    if entry is not None:
        path = find_file(entry)
        if path is None:
            raise ConfigError(missing_message(entry, option))
        return path, entry
    path = Path(text).expanduser()
    if path.is_file():
        return path, None
    if os.sep in text or path.suffix in (".pt", ".pth", ".ckpt"):
        raise ConfigError(f"{option} {text}: no such checkpoint file")
    raise ConfigError(f"{option} {text}: neither a checkpoint file nor a known model name "
                      f"({', '.join(KNOWN_WEIGHTS)}; see `partwise models list`)")


@dataclass
class LoadedWeights:
    """A model in eval mode on the CPU with what the run needs to feed it: ``extra`` is the checkpoint's ``extra``
    (``partwise train`` stores its data config there) merged with the table's ``clip`` settings as
    ``extra["clip"]``."""

    model: Any
    family: str
    path: Path
    name: str | None
    extra: dict
    loader: str = "partwise"


def load(spec: str | os.PathLike, families: tuple[str, ...], option: str = "--model") -> LoadedWeights:
    """Load ``spec`` (path or known name) and check its family is one of ``families``."""
    known = KNOWN_WEIGHTS.get(str(spec))
    if known is not None and known.family not in families:
        raise ConfigError(f"{option} {known.name}: a {known.family} model; {option} takes "
                          f"{' or '.join(families)} models")
    path, entry = resolve(spec, option)
    loader = entry.loader if entry is not None else None
    record = None
    if loader in (None, "partwise"):
        from partwise.models.checkpoint import detect_source, read_checkpoint

        record = read_checkpoint(path)
        source = detect_source(record)
        loader = {"partwise": "partwise", "hake_activity2vec": "hake_activity2vec",
                  "mmaction2": "mmaction2"}.get(source)
        if loader is None:
            raise InputError(path, None, f"{option}: not a partwise, HAKE Activity2Vec or mmaction2 AVA checkpoint")
    if loader == "partwise":
        family = record.get("family")
        if family not in families:
            raise InputError(path, "family", f"{option} needs a {' or '.join(families)} checkpoint, got {family!r}")
        from partwise.models.checkpoint import load_model

        model = load_model(path)
        extra = dict(record.get("extra") or {})
        if family == "activity2vec":
            _attach_language_matrix(model)
    elif loader == "hake_activity2vec":
        family = "activity2vec"
        if family not in families:
            raise InputError(path, None, f"{option} needs a {' or '.join(families)} checkpoint, got HAKE's "
                                         "Activity2Vec")
        from partwise.models.activity2vec import Activity2Vec, load_hake_checkpoint, load_language_matrix
        from partwise.models.checkpoint import read_checkpoint

        model = Activity2Vec(language_matrix=load_language_matrix())
        load_hake_checkpoint(model, record if record is not None else read_checkpoint(path))
        model.eval()
        extra = {}
    else:
        family = "ava_detector"
        if family not in families:
            raise InputError(path, None, f"{option} needs a {' or '.join(families)} checkpoint, got an mmaction2 "
                                         "AVA detector")
        from partwise.models.checkpoint import load_mmaction2_detector

        clip = entry.clip if entry is not None else {}
        overrides = {k: clip[k] for k in ("clip_len", "frame_interval") if k in clip}
        model, _ = load_mmaction2_detector(path, **overrides)
        model.eval()
        extra = {"clip": {"clip_len": model.cfg.clip_len, "frame_interval": model.cfg.frame_interval,
                          "short_side": clip.get("short_side", MMACTION2_TEST_SHORT_SIDE)}}
    if entry is not None and entry.clip and "clip" not in extra:
        extra["clip"] = dict(entry.clip)
    return LoadedWeights(model, family, path, entry.name if entry is not None else None, extra, loader)


def _attach_language_matrix(model) -> None:
    """partwise checkpoints do not store the (93, 768) text matrix (a non-persistent buffer): use the shipped
    MiniLM one when the model's language width is its width, so ``f_pasta`` carries the language half."""
    from partwise.models.activity2vec import load_language_matrix

    matrix = load_language_matrix()
    if tuple(model.language_matrix.shape) == tuple(matrix.shape):
        model.language_matrix = matrix.to(model.language_matrix.dtype)


def status() -> list[dict]:
    """Every known name with its family, file, where it was found (or None) and where the original is published."""
    out = []
    for entry in KNOWN_WEIGHTS.values():
        path = find_file(entry)
        out.append({"name": entry.name, "family": entry.family, "file": entry.file, "loader": entry.loader,
                    "present": path is not None, "path": str(path) if path else None,
                    "expected_at": str(weights_dir() / entry.file), "published": entry.published,
                    "description": entry.description})
    return out
