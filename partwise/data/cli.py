"""``partwise data ...``: ingest annotations into a Parquet store, query it with SQL, validate and convert formats,
extract video frames.

Output contract of ``partwise data query DIR SQL --json`` (other tools parse it): one JSON object per result row on
stdout and nothing else (ASCII, non-ASCII characters escaped); lists are JSON arrays, structs objects, NULL, NaN and
infinities ``null``, timestamps ISO 8601 strings, bytes base64 strings, maps lists of ``[key, value]`` pairs.
Column names must be unique for ``--json`` (rename with ``AS``). Errors go to stderr as one line
``partwise: error: ...`` with exit status 2.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as _dt
import decimal
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa

from partwise.clihelp import examples
from partwise.data import formats
from partwise.errors import ConfigError, InputError, PartwiseError

_FORMAT_HELP = "one of: " + ", ".join(formats.FORMATS)


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="ingest, query, validate and convert datasets; extract frames",
                                   description=__doc__.split("\n\n")[0],
                                   **examples("partwise data ingest hake-ava demo/data/hake_ava --out demo/store",
                                              "partwise data stats demo/store",
                                              "partwise data frames clip.mp4 frames/ --fps 1"))
    commands = parser.add_subparsers(dest="data_command", metavar="COMMAND")

    p = commands.add_parser("ingest", help="read an annotation source into a Parquet store (adds to or replaces "
                                           "the source in an existing store)",
                            **examples("partwise data ingest hake-ava demo/data/hake_ava --out demo/store",
                                       "partwise data ingest kinetics-tps demo/data/kinetics_tps --out demo/store "
                                       "--no-progress"))
    p.add_argument("format", metavar="FORMAT", help=_FORMAT_HELP)
    p.add_argument("path", metavar="PATH", help="annotation folder or file as the dataset distributes it")
    p.add_argument("--out", required=True, metavar="DIR", help="store directory (created if absent)")
    p.add_argument("--split", metavar="S", help="split name for files whose name does not say it")
    p.add_argument("--with-pasta", metavar="PASTA_PATH",
                   help="format gio only: also read this HAKE-AVA PaSta folder/file and store the joint view")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ingest)

    p = commands.add_parser("stats", help="counts per dataset/split, per part state, per action; long tail",
                            **examples("partwise data stats demo/store", "partwise data stats demo/store --json"))
    p.add_argument("store", metavar="DIR", help="a store folder (written by `partwise data ingest`)")
    p.add_argument("--json", action="store_true", help="one JSON object {table: [rows...]} instead of tables")
    p.set_defaults(func=cmd_stats)

    p = commands.add_parser("query", help="run a read-only SQL query over the views persons, pasta_labels, "
                                          "action_labels",
                            description="Run one read-only DuckDB query (SELECT, WITH, FROM, DESCRIBE, SHOW, "
                                        "SUMMARIZE, EXPLAIN) over the store's views persons, pasta_labels, "
                                        "action_labels and the table vocabularies. The query reads the store's "
                                        "shards and no other file, and writes none.",
                            **examples("partwise data query demo/store \"SELECT video_id, count(*) FROM persons "
                                       "GROUP BY video_id\"",
                                       "partwise data query demo/store \"SELECT * FROM persons WHERE "
                                       "list_contains(pasta, 'hand: hold') LIMIT 5\" --json"))
    p.add_argument("store", metavar="DIR", help="a store folder (written by `partwise data ingest`)")
    p.add_argument("sql", metavar="SQL", help="one read-only DuckDB statement, quoted as one argument")
    p.add_argument("--json", action="store_true", help="print one JSON object per row and nothing else")
    p.set_defaults(func=cmd_query)

    p = commands.add_parser("validate", help="list every problem of an annotation source (exit 2 if any)",
                            **examples("partwise data validate ava demo/data/ava/ava_val_v2.2.csv",
                                       "partwise data validate hake-ava demo/data/hake_ava"))
    p.add_argument("format", metavar="FORMAT", help=_FORMAT_HELP)
    p.add_argument("path", metavar="PATH", help="annotation folder or file as the dataset distributes it")
    p.set_defaults(func=cmd_validate)

    p = commands.add_parser("convert", help="read one format and write another",
                            **examples("partwise data convert hake-ava demo/data/hake_ava ava converted/",
                                       "partwise data convert vcoco-official v-coco/data/vcoco/vcoco_test.json "
                                       "vcoco vcoco_test_gt.json"))
    p.add_argument("src_format", metavar="FROM", help="source format, " + _FORMAT_HELP
                   + "; or vcoco-official (the V-COCO release files, converted to TO = vcoco)")
    p.add_argument("path", metavar="PATH", help="source annotation folder or file")
    p.add_argument("dst_format", metavar="TO", help="target format, " + _FORMAT_HELP
                   + "; or vcoco (partwise's V-COCO GT JSON, from vcoco-official)")
    p.add_argument("out", metavar="OUT", help="output file or folder")
    p.add_argument("--split", metavar="S")
    p.set_defaults(func=cmd_convert)

    p = commands.add_parser("frames", help="extract a video's frames as JPEG files",
                            **examples("partwise data frames clip.mp4 frames/clip --fps 1",
                                       "partwise data frames clip.mp4 frames/clip --start 900 --end 910"))
    p.add_argument("video", metavar="VIDEO", help="a video file (anything PyAV decodes)")
    p.add_argument("out", metavar="OUT", help="output folder")
    p.add_argument("--fps", type=float, metavar="F", help="frames per second to keep (default: every frame)")
    p.add_argument("--start", type=float, metavar="S", help="start time in seconds")
    p.add_argument("--end", type=float, metavar="E", help="end time in seconds")
    p.add_argument("--template", default="img_{:05d}.jpg", help="file name template (default: %(default)s)")
    p.add_argument("--start-index", type=int, default=1, metavar="N", help="number of the first file (default: 1)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_frames)

    parser.set_defaults(func=lambda args: parser.print_help() or 2)


# --------------------------------------------------------------------------------------------------------- commands

@contextlib.contextmanager
def _streaming_memory_pool() -> Iterator[None]:
    """Arrow's jemalloc pool (else the system one) while an ingest runs, unless ``ARROW_DEFAULT_MEMORY_POOL``
    names one. A streamed ingest allocates and frees tens of MB per chunk; Arrow's default mimalloc pool takes
    that memory in transparent huge pages and zeroes 2 MiB pages over and over (some 8 % of a Kinetics-TPS ingest's
    CPU time in ``perf``), jemalloc reuses it (``benchmarks/ingest.py``)."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        yield
        return
    previous = pa.default_memory_pool()
    pool = None
    for make in (pa.jemalloc_memory_pool, pa.system_memory_pool):
        try:
            pool = make()
            break
        except NotImplementedError:  # not built into this pyarrow
            continue
    if pool is not None:
        pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def cmd_ingest(args: argparse.Namespace) -> int:
    from partwise.data import store
    from partwise.io import check_output, safe_name

    if args.split is not None:
        safe_name(args.split, "--split")
    check_output(args.out, "dir")

    with _streaming_memory_pool():
        entry = store.ingest(args.format, args.path, args.out, split=args.split, progress=not args.no_progress,
                             with_pasta=args.with_pasta)
    manifest = store.read_manifest(args.out)
    total = sum(s["rows"] for s in manifest["sources"])
    print(f"ingested {entry['rows']:,} persons ({_names(entry['datasets'])}; splits {_names(entry['splits'])}) "
          f"from {args.path} into {args.out} (store: {len(manifest['sources'])} sources, {total:,} persons)")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from partwise.data import store

    tables = store.stats(args.store)
    if args.json:
        print(json.dumps({name: [_json_safe(row) for row in table.to_pylist()] for name, table in tables.items()}))
        return 0
    titles = {
        "splits": "persons, keyframes and videos per dataset and split",
        "pasta": "persons per part state",
        "actions": "persons per action",
        "tail_summary": "long tail: classes with fewer than 10 / 100 examples",
        "long_tail": "long tail: classes by examples, with cumulative share",
    }
    sections = [f"{title}\n{format_table(tables[name])}" for name, title in titles.items()]
    print("\n\n".join(sections))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from partwise.data import store

    batches = store.iter_query(args.store, args.sql)
    if args.json:
        write = sys.stdout.write
        for batch in batches:
            _check_unique_names(batch.schema.names)
            for row in batch.to_pylist():
                write(json_row(row))
                write("\n")
        return 0
    batches = list(batches)
    table = pa.Table.from_batches(batches) if batches else pa.table({})
    print(format_table(table))
    print(f"({table.num_rows:,} row{'s' if table.num_rows != 1 else ''})")
    return 0


def _check_unique_names(names: list[str]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"query: repeated column name(s) {', '.join(repeated)}; rename them with AS for --json")


def cmd_validate(args: argparse.Namespace) -> int:
    from partwise.data.store import load_format

    module = load_format(args.format)
    if not Path(args.path).exists():
        raise InputError(args.path, None, "no such file or directory")
    problems = module.validate(args.path)
    if not problems:
        # what ingest reads must pass too: the record model's range/finite checks (records.check_values)
        from partwise.data.store import read_source

        try:
            read_source(args.format, args.path)
        except InputError as exc:
            problems = [exc.problem]
    for problem in problems:
        print(problem)
    if problems:
        print(f"partwise: {len(problems)} problem{'s' if len(problems) != 1 else ''} in {args.path}", file=sys.stderr)
        return 2
    print(f"OK: {args.path} is valid {args.format}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from partwise.data.store import load_format, read_source

    if args.src_format == VCOCO_OFFICIAL:
        return _convert_vcoco(args)
    from partwise.io import check_output, safe_name

    target = load_format(args.dst_format)
    if not hasattr(target, "write_records"):
        raise ConfigError(f"format {args.dst_format!r} cannot be written")
    if args.split is not None:
        safe_name(args.split, "--split")
    check_output(args.out, "file" if Path(args.out).suffix else "dir")
    table = read_source(args.src_format, args.path, split=args.split)
    try:
        target.write_records(table, args.out)
    except PartwiseError:
        raise
    except (NotImplementedError, ValueError, KeyError) as exc:
        reason = exc.args[0] if exc.args else type(exc).__name__
        raise ConfigError(f"cannot write {args.dst_format} from {args.src_format} records: {reason}") from None
    print(f"converted {table.num_rows:,} persons from {args.src_format} {args.path} to {args.dst_format} {args.out}")
    if args.dst_format == "gio" and not any(len(objs) for objs in table.column("objects").to_pylist()):
        print(f"partwise: warning: the {args.src_format} records carry no interacting objects: the gio files are empty",
              file=sys.stderr)
    return 0


#: ``partwise data convert vcoco-official PATH vcoco OUT.json``: the official V-COCO release files (a
#: ``vcoco_<split>.json`` with ``instances_vcoco_all_2014.json`` and ``vcoco_<split>.ids`` beside it or in its
#: parent/``splits``, or the release's ``data`` folder with ``--split``) -> partwise's V-COCO GT JSON.
VCOCO_OFFICIAL = "vcoco-official"


def _convert_vcoco(args: argparse.Namespace) -> int:
    from partwise.data.vcoco_official import convert

    if args.dst_format != "vcoco":
        raise ConfigError(f"format {VCOCO_OFFICIAL!r} converts only to 'vcoco' (partwise's V-COCO GT JSON)")
    from partwise.io import check_output, safe_name

    if args.split is not None:
        safe_name(args.split, "--split")
    check_output(args.out, "file")
    data = convert(args.path, args.out, args.split)
    persons = sum(len(im["persons"]) for im in data["images"])
    print(f"converted {len(data['images']):,} images ({persons:,} persons) from {VCOCO_OFFICIAL} {args.path} "
          f"to vcoco {args.out}")
    return 0


def cmd_frames(args: argparse.Namespace) -> int:
    try:
        from partwise.data.video import extract_frames
    except ModuleNotFoundError as exc:
        if exc.name == "partwise.data.video":
            raise ConfigError("frame extraction (partwise.data.video) is not available in this installation") from None
        raise
    if not Path(args.video).is_file():
        raise InputError(args.video, None, "no such video file")
    if args.fps is not None and not 0 < args.fps < math.inf:
        raise ConfigError(f"--fps must be a positive number, got {args.fps}")
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise ConfigError(f"--end ({args.end}) must be after --start ({args.start})")
    from partwise.io import check_output, safe_name

    try:
        safe_name(args.template.format(args.start_index), "--template", folders=True)
    except (IndexError, KeyError, ValueError) as exc:
        raise ConfigError(f"--template {args.template!r}: not a format string with one number field ({exc})") from None
    check_output(args.out, "dir")
    options = {"overwrite": True} if args.overwrite else {}
    count = extract_frames(args.video, args.out, fps=args.fps, start=args.start, end=args.end,
                           name_template=args.template, start_index=args.start_index,
                           progress=not args.no_progress, **options)
    print(f"wrote {count:,} frames to {args.out}")
    return 0


# ----------------------------------------------------------------------------------------------------------- output

def json_row(row: dict) -> str:
    """One result row as a JSON object: NaN/inf -> null, dates ISO strings, bytes base64 (see the module docstring)."""
    try:
        return json.dumps(row, allow_nan=False, default=_json_default)
    except ValueError:  # a NaN or infinity somewhere: rare, so only then walk the row
        return json.dumps(_json_safe(row), allow_nan=False, default=_json_default)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return _json_safe(float(value))
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def format_table(table: pa.Table, max_width: int = 60) -> str:
    """A pyarrow table as aligned text: header, rule, one line per row; numbers right-aligned, long cells cut."""
    if table.num_columns == 0:
        return "(no columns)"
    names = table.column_names
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in table.schema.types]
    rows = [[_cell(v, max_width) for v in row.values()] for row in _rows(table)]
    widths = [max([len(n), *(len(r[k]) for r in rows)]) for k, n in enumerate(names)]

    def line(cells: Iterable[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(cells, widths, numeric)).rstrip()

    return "\n".join([line(names), line("-" * w for w in widths), *(line(r) for r in rows)])


def _rows(table: pa.Table) -> Iterable[dict]:
    # positional values: a result may repeat a column name
    columns = [table.column(k).to_pylist() for k in range(table.num_columns)]
    for values in zip(*columns):
        yield dict(enumerate(values))


def _cell(value: Any, max_width: int) -> str:
    if value is None:
        text = "NULL"
    elif isinstance(value, float):
        text = "NaN" if math.isnan(value) else f"{value:.6g}"
    elif isinstance(value, (list, dict, tuple)):
        text = json.dumps(_json_safe(value), default=_json_default, ensure_ascii=False)
    else:
        text = str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= max_width else text[: max_width - 3] + "..."


def _names(values: list) -> str:
    return ", ".join(str(v) for v in values) if values else "none"
