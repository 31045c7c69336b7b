"""Reading a Kinetics-TPS tree into person records, chunk by chunk.

Speed: files are read as raw bytes with plain ``os`` calls and about :data:`FILES_PER_CHUNK` files at a time go
through Arrow's C++ JSON reader as newline-delimited JSON (:mod:`partwise.data.kinetics_tps.arrow_json`); columns
are then built with vectorized Arrow/numpy operations (:mod:`partwise.data.kinetics_tps.columns`). A chunk the fast
path cannot take (bad or unusual content, human-level objects) goes through Python's decoder, which also names the
file and key of a real problem.

Memory: :func:`iter_records` yields one table per chunk as the directory walk goes on, with at most a few chunks in
flight, so a caller that writes each table away (``partwise data ingest`` writes Parquet row groups) holds memory
independent of the number of files. :func:`read_records` concatenates them.

Threads: chunks are parsed on ``pyarrow.cpu_count()`` threads (Arrow's own pool size, which honours
``OMP_NUM_THREADS``; at most 4) while this thread reads the next chunk's files; with one, everything runs inline on
the calling thread. ``benchmarks/ingest.py`` times ``partwise data ingest`` against a plain ``json.load`` loop.
"""
from __future__ import annotations

import gc
import json.decoder
import json.scanner
import os
from collections import deque
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa

from partwise.data.kinetics_tps.arrow_json import _arrow_arrays
from partwise.data.kinetics_tps.checks import frame_problems, load_frame, parse_frame_bytes
from partwise.data.kinetics_tps.columns import _assemble, _collect, _columns_to_table, _empty_columns, _Malformed
from partwise.data.kinetics_tps.layout import VideoDir, frame_index, iter_videos
from partwise.data.records import PERSON_SCHEMA
from partwise.errors import InputError, Problem

#: With ``workers > 1``, trees of at least this many files are spread over worker processes.
PARALLEL_MIN_FILES = 20000
#: Files parsed per Arrow JSON call (about 5 MB, some 10,000 person rows): large enough that the per-call costs
#: vanish, small enough that a few chunks in flight stay a few tens of MB.
FILES_PER_CHUNK = 5000
FIRST_CHUNK_FILES = 1000
#: Most parse threads (more do not pay: reading the files on one thread is the limit).
MAX_THREADS = 4

_BRACE = ord("{")
_SCAN = json.scanner.make_scanner(json.decoder.JSONDecoder())
_WS = json.decoder.WHITESPACE
_WS_CHARS = " \t\n\r"


def _read_bytes(paths: Sequence[str], folder: str | None = None) -> list[bytes]:
    """Raw bytes of each file (plain os calls: no Python file object per file), checked for deep nesting before
    any parser sees them (:func:`_check_nesting`); :class:`InputError` naming a file that cannot be read (a
    directory, a dangling link). ``folder``: the directory all ``paths`` are in (``folder + os.sep + name``), opened
    once so that each file is opened by its name alone (the kernel walks one path component, not the whole path)."""
    out = []
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
    op, readv, cl = os.open, os.readv, os.close
    # Per-frame files are ~1 KB: one read, no fstat. Into a reused buffer, then copied at the exact size: each
    # os.read(fd, 64 KiB) would allocate 64 KiB and shrink it, and the kept results then pin a page or two of
    # heap each (RSS growing some 4 KB per file read).
    buffer = bytearray(1 << 16)
    view = memoryview(buffer)
    dir_fd = None
    if folder is not None and op in os.supports_dir_fd:
        try:
            dir_fd = op(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            pass  # each file by its full path then (its own error names it)
    prefix = folder + os.sep if dir_fd is not None else None
    skip = len(prefix) if prefix is not None else 0
    try:
        for path in paths:
            try:
                if prefix is not None and path.startswith(prefix):
                    fd = op(path[skip:], flags, dir_fd=dir_fd)
                else:
                    fd = op(path, flags)
                try:
                    size = readv(fd, (buffer,))
                    data = view[:size].tobytes()
                    if size == len(buffer):
                        parts = [data]
                        while chunk := os.read(fd, len(buffer)):
                            parts.append(chunk)
                        data = b"".join(parts)
                finally:
                    cl(fd)
            except OSError as exc:
                raise InputError(path, None, f"cannot read: {exc.strerror or exc}") from None
            out.append(data)
    finally:
        if dir_fd is not None:
            cl(dir_fd)
    _check_nesting(out, paths)
    return out


def _check_nesting(blobs: list[bytes], paths: Sequence[str]) -> None:
    """:func:`partwise.data.safe_json.check_nesting_many` for the files that could nest too deeply.

    A file nests at most as deep as it has opening brackets, so a file with at most ``MAX_DEPTH`` of them is safe
    for every parser; those are counted for all files at once (numpy over the joined bytes, no Python work per
    file), and only the few others get the exact depth."""
    from partwise.data import safe_json

    if not blobs:
        return
    limit = safe_json.MAX_DEPTH
    data = np.frombuffer(b"".join(blobs), np.uint8)
    # "[" (0x5B) and "{" (0x7B) are the only bytes that are "{" with bit 0x20 set: one comparison finds both
    opening = np.flatnonzero((data | 0x20) == _BRACE)
    if len(opening) <= limit:
        return
    ends = np.cumsum(np.fromiter(map(len, blobs), np.int64, len(blobs)))
    per_file = np.diff(np.searchsorted(opening, ends), prepend=0)
    deep = np.flatnonzero(per_file > limit)
    if len(deep):
        safe_json.check_nesting_many([blobs[i] for i in deep], [paths[i] for i in deep])


def _parse_many(blobs: list[bytes]) -> list[Any]:
    """Parse many JSON documents in one decoder pass; each must span exactly its own bytes (else ``_Malformed``).

    One decode of the concatenated bytes, then the C scanner from each file's offset: unlike parsing the files
    joined into one array, a truncated file cannot borrow text from its neighbour and still parse.
    """
    try:
        text = b" ".join(blobs).decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed from None
    out = []
    start = 0
    for blob in blobs:
        # Byte and character offsets agree only for ASCII; for other text, find the boundary in characters.
        stop = start + len(blob) if blob.isascii() else start + len(blob.decode("utf-8"))
        idx = start
        try:
            if text[idx] in _WS_CHARS:
                idx = _WS.match(text, idx).end()
            value, end = _SCAN(text, idx)
        except (StopIteration, ValueError, IndexError):
            raise _Malformed from None
        if end != stop and (end > stop or not text[end:stop].isspace()):
            raise _Malformed
        out.append(value)
        start = stop + 1
    return out


def _first_problem(files: list[str]) -> Problem:
    for path in files:
        with open(path, "rb") as fh:
            try:
                frame = parse_frame_bytes(fh.read(), path)
            except InputError as exc:
                return exc.problem
        problems = frame_problems(frame, path)
        if problems:
            return problems[0]
    return Problem(", ".join(files) if len(files) < 4 else f"{files[0]} ...", None,
                   "values the records cannot hold (e.g. an integer beyond 64 bits or a non-string object name)")


def _parse_video(video: VideoDir, blobs: list[bytes]) -> list[Any]:
    """All frames of a video: one decoder pass, or file by file (naming the file) when that pass fails."""
    try:
        return _parse_many(blobs)
    except _Malformed:
        return [parse_frame_bytes(blob, path) for blob, path in zip(blobs, video.files)]


def _python_chunk(videos: list[VideoDir], blobs: list[list[bytes]], rel_root: str, frame_sizes: dict | None,
                  fps: Any) -> pa.Table:
    cols = _empty_columns()
    for video, video_blobs in zip(videos, blobs):
        frames = _parse_video(video, video_blobs)
        try:
            _collect(video, frames, cols, rel_root)
        except (_Malformed, KeyError, TypeError, AttributeError, ValueError, IndexError):
            raise InputError.from_problem(_first_problem(video.files)) from None
    try:
        return _columns_to_table(cols, frame_sizes, fps)
    except _Malformed:
        raise InputError.from_problem(_first_problem([f for v in videos for f in v.files])) from None


def _chunk_bytes(videos: list[VideoDir]) -> list[list[bytes]]:
    return [_read_bytes(video.files, video.folder) for video in videos]


def _read_chunk(videos: list[VideoDir], rel_root: str, frame_sizes: dict | None, fps: Any,
                blobs: list[list[bytes]] | None = None, schema_box: list | None = None) -> pa.Table | Problem:
    """Records of a chunk of videos, or the first :class:`Problem` in it (returned, so it crosses processes).

    Arrow's JSON reader first; a chunk it cannot take as is (unusual types, human-level objects, any error) goes
    through the Python decoder, which names the file and key of a real problem. ``blobs``: the files' bytes when
    already read; ``schema_box``: see :func:`_arrow_arrays`.
    """
    if blobs is None:
        blobs = _chunk_bytes(videos)
    try:
        return _assemble(_arrow_arrays(videos, [b for vb in blobs for b in vb], rel_root, schema_box), frame_sizes, fps)
    except _Malformed:
        pass
    enabled = gc.isenabled()
    gc.disable()  # the parsed dicts are short-lived: cyclic GC passes over them are pure overhead
    try:
        return _python_chunk(videos, blobs, rel_root, frame_sizes, fps)
    except InputError as exc:
        return exc.problem
    finally:
        if enabled:
            gc.enable()


def _lazy_chunks(videos: Iterable[VideoDir], first_files: int, files_per_chunk: int) -> Iterator[list[VideoDir]]:
    """Chunks of whole videos as the walk yields them: the first of about ``first_files`` files, then
    ``files_per_chunk``."""
    current: list[VideoDir] = []
    count, limit = 0, first_files
    for video in videos:
        current.append(video)
        count += len(video.files)
        if count >= limit:
            yield current
            current, count, limit = [], 0, files_per_chunk
    if current:
        yield current


def _chunks(videos: list[VideoDir], files_per_chunk: int) -> list[list[VideoDir]]:
    out, current, count = [], [], 0
    for video in videos:
        current.append(video)
        count += len(video.files)
        if count >= files_per_chunk:
            out.append(current)
            current, count = [], 0
    if current:
        out.append(current)
    return out


def parse_threads() -> int:
    """Threads that parse chunks: Arrow's CPU pool size (``OMP_NUM_THREADS`` when set), at most :data:`MAX_THREADS`."""
    return max(1, min(pa.cpu_count(), MAX_THREADS))


def _in_order(jobs: Iterable[tuple[list[VideoDir], Callable[[], Any]]],
              window: int) -> Iterator[tuple[list[VideoDir], Any]]:
    """``(chunk, result)`` of each job in submission order, at most ``window`` jobs in flight (bounded memory).

    ``jobs`` yields ``(chunk, submit)`` where ``submit()`` returns a future; it is pulled only when there is room,
    so work done while preparing a job (reading the chunk's files) overlaps the pool's work on the earlier ones."""
    pending: deque = deque()
    try:
        for chunk, submit in jobs:
            pending.append((chunk, submit()))
            if len(pending) >= window:
                done_chunk, future = pending.popleft()
                yield done_chunk, future.result()
        while pending:
            done_chunk, future = pending.popleft()
            yield done_chunk, future.result()
    finally:
        for _, future in pending:  # an error or an abandoned generator: drop the work not started yet
            future.cancel()


def iter_records(path: str | os.PathLike, *, split: str | None = None, progress: bool = False,
                 frame_sizes: dict[str, tuple[int, int]] | None = None, fps: float | dict[str, float] | None = None,
                 workers: int | None = None) -> Iterator[pa.Table]:
    """:func:`read_records` as a stream: one :data:`PERSON_SCHEMA` table per chunk of about
    :data:`FILES_PER_CHUNK` files, in tree order, read while the directory walk goes on.

    At most two chunks per parse thread are in flight, so memory does not grow with the number of files as long
    as the caller does not keep the tables. Raises :class:`InputError` (from the chunk where it is found, after the
    earlier chunks were yielded) naming the file and key of the first problem.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        yield read_records(path, split=split, frame_sizes=frame_sizes, fps=fps)
        return
    rel_root = path
    workers = 1 if workers is None else max(1, workers)
    if workers > 1:
        videos = list(iter_videos(path, split))
        total = sum(len(v.files) for v in videos)
        parallel = total >= PARALLEL_MIN_FILES
        chunks: Iterable[list[VideoDir]] = _chunks(videos, max(500, min(5000, total // (workers * 8) + 1)) if parallel
                                                   else FILES_PER_CHUNK)
    else:
        # Chunks come straight from the directory walk, so parsing starts while the listing goes on; a small
        # first chunk runs alone (schema discovery) before the others.
        parallel, total = False, None
        chunks = _lazy_chunks(iter_videos(path, split), FIRST_CHUNK_FILES, FILES_PER_CHUNK)
    bar = None
    if progress:
        from partwise.progress import bar as tqdm

        bar = tqdm(total=total, unit="file", desc="kinetics-tps")
    try:
        for chunk, result in _chunk_results(chunks, rel_root, frame_sizes, fps, workers if parallel else 1):
            if isinstance(result, Problem):
                raise InputError.from_problem(result)
            if bar is not None:
                bar.update(sum(len(v.files) for v in chunk))
            yield result
    finally:
        if bar is not None:
            bar.close()


def _chunk_results(chunks: Iterable[list[VideoDir]], rel_root: str, frame_sizes: dict | None, fps: Any,
                   processes: int) -> Iterator[tuple[list[VideoDir], pa.Table | Problem]]:
    """``(chunk, table or first problem)`` for each chunk, in order: on worker processes, on parse threads, or inline."""
    if processes > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # forkserver: forking a process that runs Arrow's thread pools is not safe.
        with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("forkserver")) as pool:
            jobs = ((chunk, lambda chunk=chunk: pool.submit(_read_chunk, chunk, rel_root, frame_sizes, fps))
                    for chunk in chunks)
            yield from _in_order(jobs, 2 * processes)
        return
    schema_box: list = [None]  # the JSON schema found on the first chunk, reused by the next ones
    threads = parse_threads()
    chunk_iter = iter(chunks)
    first = next(chunk_iter, None)
    if first is None:
        return
    yield first, _read_chunk(first, rel_root, frame_sizes, fps, None, schema_box)
    if threads == 1:
        for chunk in chunk_iter:
            yield chunk, _read_chunk(chunk, rel_root, frame_sizes, fps, None, schema_box)
        return
    from concurrent.futures import ThreadPoolExecutor

    # This thread reads the files (many small reads contend for the GIL); the pool parses (Arrow's JSON parser
    # releases the GIL), so the cores work without the start-up and pickling costs of processes.
    with ThreadPoolExecutor(max_workers=threads) as pool:
        jobs = ((chunk, lambda chunk=chunk: pool.submit(
                    _read_chunk, chunk, rel_root, frame_sizes, fps, _chunk_bytes(chunk), schema_box))
                for chunk in chunk_iter)
        yield from _in_order(jobs, 2 * threads)


def read_records(path: str | os.PathLike, *, split: str | None = None, progress: bool = False,
                 frame_sizes: dict[str, tuple[int, int]] | None = None, fps: float | dict[str, float] | None = None,
                 workers: int | None = None) -> pa.Table:
    """Person records (:data:`PERSON_SCHEMA`) of a Kinetics-TPS tree, per-frame file or ``*_part_result.json``.

    ``frame_sizes`` maps video id -> (width, height) to fill the normalized boxes; ``fps`` (one number or a dict
    per video) fills ``time_s``. Parsing uses :func:`parse_threads` threads; ``workers > 1`` instead spreads
    videos over processes (useful when the per-file Python fallback path dominates).
    Raises :class:`InputError` naming the file and key of the first problem.
    """
    path = os.fspath(path)
    if os.path.isfile(path):
        if frame_index(os.path.basename(path)) is not None:
            return _read_single_frame(path, split, frame_sizes, fps)
        from partwise.data.kinetics_tps.submission import read_part_result, records_from_part_result

        return records_from_part_result(read_part_result(path), split=split or "test", source=path,
                                        frame_sizes=frame_sizes, fps=fps)
    tables = list(iter_records(path, split=split, progress=progress, frame_sizes=frame_sizes, fps=fps,
                               workers=workers))
    if not tables:
        return PERSON_SCHEMA.empty_table()
    return pa.concat_tables(tables).combine_chunks()


def _read_single_frame(path: str, split: str | None, frame_sizes: dict | None, fps: Any) -> pa.Table:
    """Records of one per-frame file; class and video come from its folders when laid out as distributed."""
    frame = load_frame(path)
    folder = os.path.dirname(os.path.abspath(path))
    video_id = os.path.basename(folder)
    parent = os.path.dirname(folder)
    label_dir = os.path.dirname(parent) if os.path.basename(parent) == video_id else parent
    video = VideoDir(split or "train", os.path.basename(label_dir), video_id, folder, (path,))
    cols = _empty_columns()
    _collect(video, [frame], cols, "")
    return _columns_to_table(cols, frame_sizes, fps)
