"""The project's fuzz engine: mutate valid files from ``partwise synth`` and run every reader/command in-process.

Each *case* copies one format's folder from a pristine synthetic dataset into its own directory, applies one
mutation (truncation, bad bytes, non-UTF-8, wrong JSON types, huge/NaN/Infinity/negative numbers, 20-digit
integers, deep nesting, empty files, a directory / dangling symlink / symlink loop where a file is expected,
malicious pickles, ``../`` names, bad output paths), runs one command through :func:`partwise.cli.main` and checks
the promise:

* exit status 2, or 0 when the mutation happens to be valid (some mutations must fail: see ``Case.must_fail``);
* no traceback (no ``Traceback`` / ``Exception ignored`` in the output, no exception escaping ``main``);
* on failure, stderr is one line ``partwise: error: ...`` (``validate``: its problem count line) naming the file;
* nothing half-written: the output path absent after a failure, no temporary files left beside it;
* nothing written outside OUT (the case tree is snapshotted before and after; the command runs with the case's
  own working directory);
* no pickle code executed (malicious pickles create a marker file when unpickled unsafely).

Everything derives from the seed: the same seed gives the same cases.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

#: format CLI name -> folder of the synthetic dataset holding it
FORMAT_DIRS = {
    "ava": "ava", "hake-ava": "hake_ava", "gio": "gio", "kinetics-tps": "kinetics_tps",
    "hake-image": "hake_image", "hake-instance": "hake_instance", "hico-det": "hico_det",
}

BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "-1", "-0.5", "12345678901234567890",
               "-12345678901234567890", "1e400", "-1e400", "abc", "", "1.5", "0x10", "1e20", "\u00e9"]
DEEP = 100_000

CATEGORIES = ("tracebacks", "wrong exit", "half-written", "outside-writes", "pickle-exec", "unclear")


# ----------------------------------------------------------------------------------------------- the dataset

def make_dataset(root: Path, seed: int = 0) -> Path:
    """Generate the pristine synthetic dataset (every format) under ``root/synth``; returns that folder."""
    import pyarrow as pa

    from partwise.data import formats
    from partwise.synth.generator import SynthConfig, generate

    out = root / "synth"
    generate(out, SynthConfig(frames=False, seed=seed, videos=2, seconds=8, width=160, height=120))
    hico = formats.get_format("hico-det").read_records(str(out / "hico_det"))
    for name in ("hake-image", "hake-instance"):
        table = hico.set_column(hico.schema.get_field_index("dataset"), "dataset",
                                pa.array([name] * hico.num_rows, pa.string()))
        formats.get_format(name).write_records(table, out / FORMAT_DIRS[name])
    return out


# ------------------------------------------------------------------------------------------------- mutations

class Marker:
    """Pickled, it unpickles to ``open(path, "w")``: the marker file appears if the unpickler runs code."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _json_paths(value, prefix=()) -> list[tuple]:
    paths = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            paths += _json_paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            paths += _json_paths(v, prefix + (i,))
    return paths


def _set(value, path: tuple, new):
    if not path:
        return new
    container = value
    for key in path[:-1]:
        container = container[key]
    container[path[-1]] = new
    return value


_JSON_VALUES: list = ["str", float("nan"), float("inf"), float("-inf"), -1, -1.5, 10 ** 20, -(10 ** 20), None, [], {},
                      True, "__DEEP_LIST__", "__DEEP_DICT__", "\ud800", "img_x", 1.5, "12345678901234567890"]


def mutate_json(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    try:
        value = json.loads(data)
    except ValueError:
        return "json-unparsable-truncate", data[: len(data) // 2]
    kind = rng.random()
    paths = _json_paths(value)
    path = rng.choice(paths)
    if kind < 0.15 and isinstance(value, dict) and value:
        # rename a key somewhere
        containers = [p for p in paths if p and isinstance(_get(value, p[:-1]), dict)]
        if containers:
            p = rng.choice(containers)
            parent = _get(value, p[:-1])
            parent[rng.choice(["zzz", "img_x", "img_-1", "img_99999999999999999999", ""])] = parent.pop(p[-1])
            return f"json-rename-key {'/'.join(map(str, p))}", json.dumps(value).encode()
    new = rng.choice(_JSON_VALUES)
    value = _set(value, path, new)
    text = json.dumps(value, allow_nan=True)
    text = text.replace('"__DEEP_LIST__"', "[" * DEEP + "]" * DEEP)
    text = text.replace('"__DEEP_DICT__"', '{"a":' * DEEP + "1" + "}" * DEEP)
    return f"json-set {'/'.join(map(str, path)) or '<root>'}={str(new)[:20]!r}", text.encode("utf-8", "surrogatepass")


def _get(value, path):
    for key in path:
        value = value[key]
    return value


def mutate_text(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    lines = data.split(b"\n")
    k = rng.randrange(len(lines))
    fields = lines[k].split(b",")
    j = rng.randrange(len(fields))
    bad = rng.choice(BAD_NUMBERS).encode("utf-8")
    choice = rng.random()
    if choice < 0.8:
        fields[j] = bad
        what = f"field {k + 1}:{j + 1}={bad.decode()!r}"
    elif choice < 0.9:
        fields.append(bad)
        what = f"extra field line {k + 1}"
    else:
        del fields[j]
        what = f"drop field line {k + 1}:{j + 1}"
    lines[k] = b",".join(fields)
    return what, b"\n".join(lines)


def mutate_bytes(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    choice = rng.randrange(5)
    if choice == 0 and data:
        n = rng.randrange(len(data))
        return f"truncate {n}", data[:n]
    if choice == 1:
        return "empty", b""
    if choice == 2 and data:
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        return "bad bytes", bytes(buf)
    if choice == 3:
        n = rng.randrange(len(data) + 1)
        return "non-utf8", data[:n] + rng.choice([b"\xff", b"\xe9", b"\xc3", b"\x80\x80", b"\xed\xa0\x80"]) + data[n:]
    return "nul bytes", data[: len(data) // 3] + b"\x00" * 8 + data[len(data) // 3:]


def mutate_pickle(path: Path, rng: random.Random, marker: str) -> tuple[str, bytes]:
    import numpy as np

    choice = rng.randrange(6)
    if choice == 0:
        return "pickle-reduce-open", pickle.dumps(Marker(marker))
    if choice == 1:
        return "pickle-nested-reduce", pickle.dumps({"a,0902": Marker(marker)})
    if choice == 2:
        return "pickle-ragged", pickle.dumps({"a,0902": [[0.1, 0.2, 0.3, 0.4, 0.9], [0.1, 0.2]]})
    if choice == 3:
        return "pickle-wrong-shape", pickle.dumps({"a,0902": np.zeros((3, 2))})
    if choice == 4:
        return "pickle-nan-box", pickle.dumps({"a,0902": np.array([[float("nan"), 0, 1, 1, 0.9]])})
    return "pickle-not-dict", pickle.dumps([1, 2, 3], protocol=rng.randint(0, 5))


# ------------------------------------------------------------------------------------------------------ cases

@dataclass
class Case:
    name: str
    argv: Callable[[Path], list[str]]  # case dir -> argv
    prepare: Callable[[Path], None]  # case dir -> mutate the inputs
    named: list[str] = field(default_factory=list)  # one of these must appear in a failure message
    must_fail: bool = False
    out: str | None = None  # relative output path under the case dir that may be written


@dataclass
class Result:
    case: Case
    rc: int | None
    stdout: str
    stderr: str
    failures: list[str]
    known_open: list[str] = field(default_factory=list)


def _copy_format(case_dir: Path, synth: Path, fmt: str) -> Path:
    src = synth / FORMAT_DIRS[fmt]
    dst = case_dir / "in" / FORMAT_DIRS[fmt]
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _present(synth: Path, fmt: str, name: str) -> str:
    """``name``, or its training-split file when the synthetic set has no such split (a small set, some seeds)."""
    if (synth / FORMAT_DIRS[fmt] / name).exists():
        return name
    for val, train in (("_val", "_train"), ("test_hico", "trainval_hico")):
        if val in name and (synth / FORMAT_DIRS[fmt] / name.replace(val, train)).exists():
            return name.replace(val, train)
    return name


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix not in (".jpg", ".mp4"))


def file_cases(synth: Path, rng: random.Random, n: int) -> list[Case]:
    """``n`` cases: a mutated file of one format, then validate / ingest / convert / eval on it."""
    cases = []
    fmts = list(FORMAT_DIRS)
    for i in range(n):
        fmt = fmts[i % len(fmts)]
        files = _files(synth / FORMAT_DIRS[fmt])
        target_rel = rng.choice(files).relative_to(synth / FORMAT_DIRS[fmt])
        sub_rng = random.Random(rng.random())
        structural = sub_rng.random() < 0.12
        command = sub_rng.choice(["validate", "ingest", "ingest", "convert", "validate"])
        if fmt == "ava" and sub_rng.random() < 0.25:
            command = "eval"
        if target_rel.suffix == ".pkl" and command != "validate":
            command = "validate"
        cases.append(_file_case(synth, fmt, target_rel, sub_rng, structural, command, i))
    return cases


def _file_case(synth: Path, fmt: str, target_rel: Path, rng: random.Random, structural: bool, command: str,
               index: int) -> Case:
    state = {}

    def prepare(case_dir: Path) -> None:
        root = _copy_format(case_dir, synth, fmt)
        target = root / target_rel
        state["what"] = _apply(target, rng, structural, str(case_dir / "PICKLE_RAN"))

    def argv(case_dir: Path) -> list[str]:
        root = case_dir / "in" / FORMAT_DIRS[fmt]
        if fmt == "hico-det" and target_rel.parent.name == "annotations":
            # a folder with anno_bbox.mat is read from the .mat alone (documented); the JSON files are read
            # when their own folder is given
            root = root / "annotations"
        out = case_dir / "out" / "result"
        if command == "validate":
            return ["data", "validate", fmt, str(root)]
        if command == "ingest":
            return ["data", "ingest", fmt, str(root), "--out", str(out), "--no-progress"]
        if command == "convert":
            dst = "hake-instance" if fmt != "hake-instance" else "ava"
            return ["data", "convert", fmt, str(root), dst, str(out)]
        val = root / "ava_val_v2.2.csv"
        return ["eval", "ava", "--gt", str(val), "--pred", str(root / target_rel if target_rel.suffix == ".csv"
                                                               and "excluded" not in target_rel.name else val),
                "--labelmap", str(root / "ava_action_list_v2.2_for_activitynet_2019.pbtxt"),
                "--exclusions", str(root / "ava_val_excluded_timestamps_v2.2.csv"), "--profile", "mmaction2"]

    case = Case(name=f"{index}:{command} {fmt} {target_rel}", argv=argv, prepare=prepare,
                named=[target_rel.name, target_rel.parent.name or FORMAT_DIRS[fmt]],
                out="out/result" if command in ("ingest", "convert") else None)
    case.state = state  # type: ignore[attr-defined]
    # a broken file where one is expected must fail -- where the command reads that file (ingest/convert do not
    # read the label map)
    # (eval reads the val exclusions only; no command reads Kinetics-TPS's frame-count lists: not their input; only
    # validate reads its name lists list/*.txt and the evaluator's *_result.json beside the annotation folders)
    case.must_fail = structural and (command == "validate" or target_rel.suffix != ".pbtxt") and not (
        command == "eval" and "excluded" in target_rel.name and "_val_" not in target_rel.name) and not (
        fmt == "kinetics-tps" and target_rel.name.endswith("_flist.csv")) and not (
        fmt == "kinetics-tps" and command != "validate" and target_rel.parent.name == "list") and not (
        fmt == "kinetics-tps" and command != "validate" and target_rel.name.endswith(("_part_result.json",
                                                                                      "_vid_result.json")))
    return case


def _apply(target: Path, rng: random.Random, structural: bool, marker: str) -> str:
    if structural:
        kind = rng.choice(["dir", "dangling-symlink", "symlink-loop"])
        target.unlink()
        if kind == "dir":
            target.mkdir()
        elif kind == "dangling-symlink":
            target.symlink_to(target.parent / "does-not-exist")
        else:
            target.symlink_to(target.name)
        return kind
    data = target.read_bytes()
    if target.suffix == ".pkl":
        what, new = mutate_pickle(target, rng, marker)
    elif rng.random() < 0.35:
        what, new = mutate_bytes(data, rng)
    elif target.suffix == ".json":
        what, new = mutate_json(data, rng)
    elif target.suffix in (".csv", ".txt", ".pbtxt"):
        what, new = mutate_text(data, rng)
    else:
        what, new = mutate_bytes(data, rng)
    target.write_bytes(new)
    return what


#: out-of-range values the record model must refuse (issue 13, class 4): (format, file, CSV field, values)
RANGE_CSV = [
    ("ava", "ava_val_v2.2.csv", 1, ["12345678901234567890", "-5", "nan", "inf"]),
    ("ava", "ava_val_v2.2.csv", 2, ["nan", "inf", "-inf", "0.99"]),
    ("hake-ava", "video_pasta_val.csv", 1, ["12345678901234567890", "-5", "nan"]),
    ("hake-ava", "video_pasta_val.csv", 2, ["nan", "inf", "0.99"]),
    ("gio", "DIO_val.csv", 1, ["12345678901234567890", "-5"]),
    ("gio", "DIO_val.csv", 2, ["nan", "0.99"]),
    ("gio", "DIO_val.csv", 6, ["nan", "inf", "0.99"]),
]
#: JSON files whose first box ([4 numbers]) and first "width" get out-of-range values
RANGE_JSON = [("kinetics-tps", None), ("hake-instance", "hake-instance-level.json"),
              ("hake-image", "hake-image-level.json"), ("hico-det", "annotations/test_hico.json")]
RANGE_JSON_VALUES = [("box0", float("nan")), ("box0", float("inf")), ("box0", 1e9), ("box2", -1e9),
                     ("width", -1), ("height", -5)]


def _first_path(value, want) -> tuple | None:
    """Depth-first path of the first JSON node for which ``want(key, node)`` holds."""
    stack = [((), None, value)]
    while stack:
        path, key, node = stack.pop()
        if want(key, node):
            return path
        if isinstance(node, dict):
            stack.extend(reversed([(path + (k,), k, v) for k, v in node.items()]))
        elif isinstance(node, list):
            stack.extend(reversed([(path + (i,), i, v) for i, v in enumerate(node)]))
    return None


def _is_box(key, node) -> bool:
    return (isinstance(node, list) and len(node) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in node))


def range_cases(synth: Path) -> list[Case]:
    """Values out of range (NaN/Infinity boxes, inverted boxes, negative or 20-digit times, negative sizes) in
    otherwise valid files: ``validate`` and ``ingest`` must both refuse them (exit 2, naming the file)."""
    cases: list[Case] = []

    def command(kind, fmt, root_rel):
        def argv(d: Path) -> list[str]:
            root = d / "in" / FORMAT_DIRS[fmt] / root_rel
            if kind == "validate":
                return ["data", "validate", fmt, str(root)]
            return ["data", "ingest", fmt, str(root), "--out", str(d / "out/result"), "--no-progress"]
        return argv

    for fmt, name, index, values in RANGE_CSV:
        name = _present(synth, fmt, name)
        for value in values:
            def prepare(case_dir: Path, fmt=fmt, name=name, index=index, value=value) -> None:
                target = _copy_format(case_dir, synth, fmt) / name
                lines = target.read_text().split("\n")
                fields = lines[0].split(",")
                fields[index] = value
                lines[0] = ",".join(fields)
                target.write_text("\n".join(lines))
            for kind in ("validate", "ingest"):
                cases.append(Case(f"range {kind} {fmt} {name} field {index + 1}={value}", prepare=prepare,
                                  argv=command(kind, fmt, ""), must_fail=True, named=[name],
                                  out="out/result" if kind == "ingest" else None))
    for fmt, name in RANGE_JSON:
        if name is not None:
            name = _present(synth, fmt, name)
        if name is None:
            name = str(next(p for p in _files(synth / FORMAT_DIRS[fmt]) if p.name.startswith("img_"))
                       .relative_to(synth / FORMAT_DIRS[fmt]))
        root_rel = "annotations" if fmt == "hico-det" else ""
        value = json.loads((synth / FORMAT_DIRS[fmt] / name).read_bytes())
        for what, new in RANGE_JSON_VALUES:
            if what.startswith("box"):
                path = _first_path(value, _is_box)
                path = None if path is None else path + (int(what[-1]),)
            else:
                path = _first_path(value, lambda k, v, what=what: k == what)
            if path is None:
                continue

            def prepare(case_dir: Path, fmt=fmt, name=name, path=path, new=new) -> None:
                target = _copy_format(case_dir, synth, fmt) / name
                data = _set(json.loads(target.read_bytes()), path, new)
                target.write_text(json.dumps(data, allow_nan=True))
            for kind in ("validate", "ingest"):
                cases.append(Case(f"range {kind} {fmt} {name} {'/'.join(map(str, path))}={new!r}", prepare=prepare,
                                  argv=command(kind, fmt, root_rel), must_fail=True, named=[Path(name).name],
                                  out="out/result" if kind == "ingest" else None))
    return cases


def fixed_cases(synth: Path) -> list[Case]:
    """Option and path cases: traversal names, bad output paths, empty folders, wrong-format folders, ``--fps nan``."""
    cases: list[Case] = []
    video = next((synth / "videos").glob("*.mp4"))

    def nothing(case_dir: Path) -> None:
        pass

    def copy(fmt):
        return lambda case_dir: _copy_format(case_dir, synth, fmt)

    for split in ("../evil", "../../evil", "a/../../evil", "/ABS/evil", "..", "a/b"):
        cases.append(Case(f"convert --split {split}", prepare=copy("hake-ava"), must_fail=True, out="out/result",
                          argv=lambda d, s=split: ["data", "convert", "hake-ava", str(d / "in/hake_ava/video_pasta_val.csv"),
                                                   "ava", str(d / "out/result"), "--split", s.replace("/ABS", str(d))],
                          named=["--split"]))
    for template in ("../x_{:05d}.jpg", "../../x_{:05d}.jpg", "/ABS/x_{:05d}.jpg", "sub/../../x{}.jpg", "x{}/../../../y.jpg"):
        cases.append(Case(f"frames --template {template}", prepare=nothing, must_fail=True, out="out/result",
                          argv=lambda d, t=template: ["data", "frames", str(video), str(d / "out/result"), "--fps", "1",
                                                      "--end", "900.5", "--no-progress", "--template",
                                                      t.replace("/ABS", str(d))],
                          named=["--template"]))
    # an output path that is a file, a dangling symlink, a loop, or under a file
    def bad_out(kind):
        def prepare(case_dir: Path) -> None:
            _copy_format(case_dir, synth, "hake-ava")
            out = case_dir / "out" / "result"
            out.parent.mkdir(parents=True, exist_ok=True)
            if kind == "file":
                out.write_text("x")
            elif kind == "dangling":
                out.symlink_to(case_dir / "out" / "nowhere")
            elif kind == "loop":
                out.symlink_to("result")
            elif kind == "under-file":
                (case_dir / "out" / "f").write_text("x")
        return prepare

    for kind in ("file", "dangling", "loop", "under-file"):
        def out_path(d, kind=kind):
            return str(d / "out" / ("f/result" if kind == "under-file" else "result"))
        cases.append(Case(f"ingest --out {kind}", prepare=bad_out(kind), must_fail=True, out="out",
                          argv=lambda d, o=out_path: ["data", "ingest", "hake-ava", str(d / "in/hake_ava"),
                                                      "--out", o(d), "--no-progress"],
                          named=["result"]))
        cases.append(Case(f"frames OUT {kind}", prepare=bad_out(kind), must_fail=True, out="out",
                          argv=lambda d, o=out_path: ["data", "frames", str(video), o(d), "--fps", "1", "--end", "900.5",
                                                      "--no-progress"],
                          named=["result"]))
        cases.append(Case(f"convert OUT {kind}", prepare=bad_out(kind), must_fail=kind != "dangling", out="out",
                          argv=lambda d, o=out_path: ["data", "convert", "hake-ava", str(d / "in/hake_ava"), "ava",
                                                      o(d)],
                          named=["result"]))
    # empty folders and another format's folder: nothing to read must not be "valid" / 0 persons
    for fmt in FORMAT_DIRS:
        def empty(case_dir: Path) -> None:
            (case_dir / "in" / "empty").mkdir(parents=True)
        cases.append(Case(f"validate {fmt} empty folder", prepare=empty, must_fail=True, named=["empty"],
                          argv=lambda d, f=fmt: ["data", "validate", f, str(d / "in/empty")]))
        cases.append(Case(f"ingest {fmt} empty folder", prepare=empty, must_fail=True, named=["empty"], out="out/result",
                          argv=lambda d, f=fmt: ["data", "ingest", f, str(d / "in/empty"), "--out",
                                                 str(d / "out/result"), "--no-progress"]))
        other = "ava" if fmt != "ava" else "hake-ava"
        cases.append(Case(f"validate {fmt} on {other} folder", prepare=copy(other), must_fail=True,
                          named=[FORMAT_DIRS[other]],
                          argv=lambda d, f=fmt, o=other: ["data", "validate", f, str(d / "in" / FORMAT_DIRS[o])]))
    for fps in ("nan", "inf", "-1", "0"):
        cases.append(Case(f"run --fps {fps}", prepare=nothing, must_fail=True, named=["--fps"], out="out/result",
                          argv=lambda d, f=fps: ["run", str(video), "--out", str(d / "out/result"), "--fps", f]))
    return cases


# ------------------------------------------------------------------------------------------------- execution

def _snapshot(root: Path, skip: Path | None) -> dict[str, tuple]:
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if skip is not None and (here == skip or skip in here.parents):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = here / name
            if skip is not None and p == skip:
                continue
            try:
                st = os.lstat(p)
            except OSError:
                continue
            # directories: existence only (an entry written inside shows up as an entry of its own)
            snap[str(p)] = (st.st_mode,) if os.path.isdir(p) and not os.path.islink(p) else (
                st.st_size, st.st_mtime_ns, st.st_mode)
    return snap


def _leftovers(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return [str(p) for p in folder.rglob("*") if p.name.endswith(".tmp") or ".old." in p.name]


def run_case(case: Case, case_dir: Path, watch_root: Path) -> Result:
    from partwise.cli import main

    case_dir.mkdir(parents=True)
    (case_dir / "cwd").mkdir()
    case.prepare(case_dir)
    out_path = case_dir / case.out if case.out else None
    out_existed = out_path is not None and os.path.lexists(out_path)
    out_before = _snapshot(out_path, None) if out_path is not None and out_path.is_dir() else {}
    before = _snapshot(watch_root, out_path)
    argv = case.argv(case_dir)
    stdout, stderr = io.StringIO(), io.StringIO()
    failures: list[str] = []
    known_open: list[str] = []
    rc: int | None = None
    old_cwd = os.getcwd()
    try:
        os.chdir(case_dir / "cwd")
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                rc = main(argv)
            except SystemExit as exc:  # argparse
                rc = exc.code if isinstance(exc.code, int) else 2
            except BaseException as exc:  # noqa: BLE001 - anything escaping main is the bug we look for
                import traceback
                failures.append(f"tracebacks: {type(exc).__name__} escaped main: "
                                f"{traceback.format_exception_only(type(exc), exc)[-1].strip()[:300]}")
    finally:
        os.chdir(old_cwd)
    out, err = stdout.getvalue(), stderr.getvalue()
    if "Traceback" in out + err or "Exception ignored" in err:
        failures.append("tracebacks: traceback printed: " + err.strip().splitlines()[-1][:300])
    if rc is not None and rc not in (0, 2):
        failures.append(f"wrong exit: exit {rc}")
    elif rc == 0 and case.must_fail and getattr(case, "known_open", False):
        known_open.append(f"{case.name}: exit 0 (expected 2)")
    elif rc == 0 and case.must_fail:
        failures.append(f"wrong exit: exit 0 (expected 2); stdout: {out.strip()[-200:]!r}")
    if rc == 2 and not any("tracebacks" in f for f in failures):
        lines = [line for line in err.splitlines() if line.strip()]
        error_lines = [line for line in lines if line.startswith("partwise: error:")
                       or (argv[:2] == ["data", "validate"] and line.startswith("partwise: "))
                       or ": error: " in line]  # argparse: "partwise data: error: ..."
        others = [line for line in lines if not line.startswith("partwise") and not line.startswith("usage:")
                  and not line.startswith("  ") and ": error: " not in line]
        if not error_lines or others or len(error_lines) > 1:
            failures.append(f"unclear: stderr not one error line: {err.strip()[:300]!r}")
        elif case.named and not any(n and n in out + err for n in case.named):
            failures.append(f"unclear: message names none of {case.named}: {(out + err).strip()[:300]!r}")
    # half-written output
    if out_path is not None:
        if rc != 0:
            now = _snapshot(out_path, None) if out_path.is_dir() else {}
            if os.path.lexists(out_path) and not out_existed:
                failures.append(f"half-written: {out_path} exists after exit {rc}")
            elif out_existed and now != out_before:
                failures.append(f"half-written: {out_path} changed after exit {rc}")
        left = _leftovers(out_path.parent)
        if left:
            failures.append(f"half-written: leftovers {left[:3]}")
    after = _snapshot(watch_root, out_path)
    # creating the folders above OUT is part of writing OUT
    allowed = {str(p) for p in out_path.parents} if out_path is not None else set()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k) and k not in allowed)
    marker = case_dir / "PICKLE_RAN"
    if marker.exists():
        failures.append("pickle-exec: the malicious pickle ran code")
        changed = [c for c in changed if c != str(marker)]
    if changed:
        failures.append(f"outside-writes: {changed[:3]}")
    return Result(case, rc, out, err, failures, known_open)


def run_all(cases: list[Case], work: Path, watch_root: Path) -> list[Result]:
    results = []
    limit = sys.getrecursionlimit()
    for k, case in enumerate(cases):
        case_dir = work / f"case{k:05d}"
        try:
            results.append(run_case(case, case_dir, watch_root))
        finally:
            sys.setrecursionlimit(limit)
            shutil.rmtree(case_dir, ignore_errors=True)
    return results


def summary(results: list[Result]) -> str:
    counts = {c: 0 for c in CATEGORIES}
    failed = 0
    for r in results:
        if r.failures:
            failed += 1
        for c in {f.split(":")[0] for f in r.failures}:
            counts[c] += 1
    return (f"fuzz: {len(results)} cases, {failed} failures (tracebacks {counts['tracebacks']}, "
            f"wrong exit {counts['wrong exit']}, half-written {counts['half-written']}, "
            f"outside-writes {counts['outside-writes']}, pickle-exec {counts['pickle-exec']}, "
            f"unclear {counts['unclear']}); known open {sum(bool(r.known_open) for r in results)}")


def describe(result: Result) -> str:
    what = getattr(result.case, "state", {}).get("what", "")
    return f"[{result.case.name}] {what} -> exit {result.rc}: " + "; ".join(result.failures)


def build_cases(synth: Path, seed: int, n_file_cases: int) -> list[Case]:
    rng = random.Random(seed)
    return fixed_cases(synth) + range_cases(synth) + file_cases(synth, rng, n_file_cases)


if __name__ == "__main__":  # python -m tests.fuzz.fuzzer [SEED] [N]: run outside pytest, print every failure
    import tempfile

    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synth = make_dataset(tmp, seed)
        cases = build_cases(synth, seed, n)
        work = tmp / "cases"
        work.mkdir()
        results = run_all(cases, work, tmp)
        for r in results:
            if r.failures:
                print(describe(r))
        print(summary(results))
    _ = math  # noqa
