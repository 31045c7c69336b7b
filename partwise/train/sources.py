"""Where training data comes from, shared by the clip and image tasks: the data-config checks every task runs before
any work, the person records of a split (a ``.parquet`` file or a format reader), and :class:`FrameSource`, the RGB
frames of a video by index from ``frames/<vid>/img_%05d.jpg`` or ``videos/<vid>.<ext>`` with a per-process cache."""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from partwise.errors import ConfigError
from partwise.train.engine import sample_rng

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")


def check_sampling(cfg) -> None:
    """One-line errors for values no run could use (before any work)."""
    if len(cfg.scale_range) != 2 or not 0 < cfg.scale_range[0] <= cfg.scale_range[1]:
        raise ConfigError(f"data.scale_range: expected [low, high] with 0 < low <= high, got {cfg.scale_range}")
    if cfg.test_short_side <= 0:
        raise ConfigError(f"data.test_short_side: expected a positive size, got {cfg.test_short_side}")
    if cfg.source not in ("auto", "frames", "video"):
        raise ConfigError(f"data.source: expected auto, frames or video, got {cfg.source!r}")
    if not 0 <= cfg.flip <= 1:
        raise ConfigError(f"data.flip: expected a probability in [0, 1], got {cfg.flip}")
    for key in ("clip_len", "frame_interval"):
        if getattr(cfg, key, 1) < 1:
            raise ConfigError(f"data.{key}: expected at least 1, got {getattr(cfg, key)}")
    if len(getattr(cfg, "mean", [0, 0, 0])) != 3 or len(getattr(cfg, "std", [1, 1, 1])) != 3:
        raise ConfigError("data.mean / data.std: expected three values (R, G, B)")


def check_root_and_annotations(cfg) -> Path:
    """The sampling options, ``data.root`` and ``data.annotations`` (one-line errors); -> the root folder."""
    check_sampling(cfg)
    root = Path(cfg.root)
    if not root.is_dir():
        raise ConfigError(f"data.root: {cfg.root} is not a folder")
    if not (root / cfg.annotations).exists():
        raise ConfigError(f"data.annotations: {root / cfg.annotations} does not exist")
    return root


def load_records(cfg, split: str) -> pa.Table:
    """Person records (PERSON_SCHEMA) of ``split``, from a parquet file or a format reader (``cfg``: a
    :class:`~partwise.train.data.ClipDataConfig` or :class:`~partwise.train.images.ImageDataConfig`)."""
    path = Path(cfg.root) / cfg.annotations
    if cfg.format == "records":
        table = read_records_file(path)
        table = table.filter(pc.equal(table.column("split"), split))
    else:
        from partwise.data.formats import FORMATS
        from partwise.data.store import read_source

        if cfg.format not in FORMATS:
            raise ConfigError(f"data.format: unknown format {cfg.format!r} (records, {', '.join(FORMATS)})")
        table = read_source(cfg.format, path, split=split)
    if table.num_rows == 0:
        raise ConfigError(f"data: no records of split {split!r} in {path}")
    return table


def read_records_file(path: Path, columns: list[str] | None = None, text_columns: tuple[str, ...] = ("split",)
                      ) -> pa.Table:
    """Records from the Parquet file ``path`` (only ``columns`` when given) whose ``text_columns`` hold strings. A
    folder, an unreadable file or a missing / mistyped column is a one-line :class:`ConfigError` naming
    ``data.annotations`` and the file (the records are filtered and compared as strings later on)."""
    import pyarrow.parquet as pq

    if path.is_dir():  # pq.read_table would read a folder as a dataset of its files
        raise ConfigError(f"data.annotations: {path}: a folder, not a .parquet file (data.format names the reader "
                          "of an annotation folder)")
    try:
        names = pq.read_schema(path).names
        missing = [name for name in (columns or []) + list(text_columns) if name not in names]
        if missing:
            raise ConfigError(f"data.annotations: {path}: no {missing[0]} column")
        table = pq.read_table(path, columns=columns)
    except (OSError, ValueError, pa.ArrowException) as exc:
        lines = str(exc).strip().splitlines()
        raise ConfigError(f"data.annotations: {path}: not a readable Parquet file of records "
                          f"({lines[0] if lines else type(exc).__name__})") from None
    for name in text_columns:
        kind = table.schema.field(name).type
        value_kind = kind.value_type if pa.types.is_dictionary(kind) else kind
        if not (pa.types.is_string(value_kind) or pa.types.is_large_string(value_kind)):
            raise ConfigError(f"data.annotations: {path}: column {name} holds {kind}, expected strings")
    return table


class FrameSource:
    """RGB frames ``(H, W, 3)`` uint8 of a video by 0-based index, from JPEG frames or a video file, with a cache."""

    def __init__(self, root: str | os.PathLike, cache: bool = True, max_cached: int = 20000, source: str = "auto"):
        if source not in ("auto", "frames", "video"):
            raise ConfigError(f"data.source: expected auto, frames or video, got {source!r}")
        self.root, self.source = Path(root), source
        self.cache: OrderedDict | None = OrderedDict() if cache else None
        self.max_cached = max_cached
        self._counts: dict[str, int] = {}

    def _frames_dir(self, video: str) -> Path | None:
        """The video's JPEG folder, or None when videos are to be decoded instead."""
        folder = self.root / "frames" / video
        return folder if self.source != "video" and folder.is_dir() else None

    def _video_file(self, video: str) -> Path | None:
        for ext in VIDEO_EXTENSIONS:
            path = self.root / "videos" / f"{video}{ext}"
            if path.exists():
                return path
        return None

    def num_frames(self, video: str) -> int:
        if video not in self._counts:
            folder = self._frames_dir(video)
            if folder is not None:
                self._counts[video] = sum(1 for name in os.listdir(folder) if name.startswith("img_"))
            else:
                path = self._video_file(video)
                if path is None:
                    raise ConfigError(f"data.root: no frames/{video}/ and no videos/{video}.* in {self.root}")
                from partwise.data.video import probe

                self._counts[video] = int(probe(path).num_frames)
        return self._counts[video]

    def read(self, video: str, indices: np.ndarray) -> np.ndarray:
        """``(T, H, W, 3)`` uint8 frames at 0-based ``indices``."""
        indices = [int(i) for i in indices]
        missing = sorted({i for i in indices if self.cache is None or (video, i) not in self.cache})
        got: dict[int, np.ndarray] = {}
        if missing:
            folder = self._frames_dir(video)
            if folder is not None:
                from PIL import Image

                for i in missing:
                    with Image.open(folder / f"img_{i + 1:05d}.jpg") as im:
                        got[i] = np.asarray(im.convert("RGB"))
            else:
                from partwise.data.video import read_frames

                path = self._video_file(video)
                if path is None:
                    raise ConfigError(f"data.root: no frames/{video}/ and no videos/{video}.* in {self.root}")
                for i, frame in zip(missing, read_frames(path, missing)):
                    got[i] = frame
            if self.cache is not None:
                for i, frame in got.items():
                    self.cache[(video, i)] = frame
                while len(self.cache) > self.max_cached:
                    self.cache.popitem(last=False)
        frames = [got[i] if i in got else self.cache[(video, i)] for i in indices]
        return np.stack(frames)


def sample_of(train: bool, seed: int, encoded: int, size: int) -> tuple[int, np.random.Generator | None]:
    """A dataset's ``(index, generator)`` for what the engine passes: training, an encoded index whose generator
    gives every random draw of the sample (:func:`partwise.train.engine.sample_rng`, exact resume); evaluation, a
    plain index and no generator."""
    return sample_rng(seed, encoded, size) if train else (int(encoded), None)


def draw_short_side(cfg, rng: np.random.Generator | None) -> int:
    """The short side of one sample: uniform in ``cfg.scale_range`` (inclusive) with a training generator (one draw),
    ``cfg.test_short_side`` without one."""
    return int(rng.integers(cfg.scale_range[0], cfg.scale_range[1] + 1)) if rng is not None else cfg.test_short_side


def read_image(cfg, frames: FrameSource, video: str, frame_index: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB: the file ``root/<cfg.images>/<video>`` when it exists (HAKE / HICO-DET, where the
    record's video id is the image file name), else frame ``frame_index`` of the video."""
    path = Path(cfg.root) / cfg.images / video
    if path.is_file():
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    return frames.read(video, np.array([frame_index]))[0]
