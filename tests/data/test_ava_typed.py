"""The typed streaming fast path of the AVA CSV reader (partwise.data.ava.typed) and the package's re-exports."""
import subprocess
import sys

import numpy as np
import pytest

from partwise.data import ava
from partwise.data.ava import typed
from partwise.data.ava.parse import _read_parsed
from partwise.errors import InputError

FIELDS = ("video_codes", "timestamp", "boxes", "action", "person_id", "score", "n_columns", "line")


def _write_rows(path, rng, n, *, videos=5, kind="det", actions=80):
    """n random well-formed 8-column rows, keyframe by keyframe; a few videos so blocks see different ones."""
    names = [f"vid{v:08d}xx" for v in range(videos)]
    lines = []
    for i in range(n):
        x1, y1 = rng.integers(0, 500, 2) / 1000
        x2, y2 = x1 + rng.integers(0, 400) / 1000, y1 + rng.integers(0, 400) / 1000
        last = f"{rng.random():.4f}" if kind == "det" else str(int(rng.integers(0, 30)))
        lines.append(f"{names[(i * videos) // n]},{902 + (i // 7) % 800:04d},{x1:.3f},{y1:.3f},{x2:.3f},{y2:.3f},"
                     f"{int(rng.integers(1, actions + 1))},{last}")
    path.write_text("\n".join(lines) + "\n")
    return lines


def _same(a, b):
    assert a.videos == b.videos and a.kind == b.kind and len(a) == len(b)
    for name in FIELDS:
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.shape == y.shape, name
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name


@pytest.mark.parametrize("kind", ["det", "gt"])
@pytest.mark.parametrize("block_size", [97, 1 << 12, 1 << 20])
def test_streaming_blocks_give_the_full_parsers_arrays(tmp_path, kind, block_size):
    path = tmp_path / "rows.csv"
    _write_rows(path, np.random.default_rng(3), 3000, kind=kind)
    fast = typed.read_typed(str(path), kind, None, block_size=block_size)
    assert fast is not None
    _same(fast, _read_parsed(str(path), kind, True, None))
    assert fast.line.dtype == np.int64 and fast.boxes.dtype == np.float64
    # the public reader takes the same path
    _same(ava.read_csv(path, kind=kind, keep_formats=False), fast)


def test_buffers_grow_past_a_low_estimate(tmp_path, monkeypatch):
    path = tmp_path / "det.csv"
    _write_rows(path, np.random.default_rng(4), 2500)
    monkeypatch.setattr(typed, "_estimate_rows", lambda _path: 3)
    fast = typed.read_typed(str(path), "det", None, block_size=512)
    _same(fast, _read_parsed(str(path), "det", True, None))


def test_keep_actions_and_compact_columns(tmp_path):
    path = tmp_path / "det.csv"
    _write_rows(path, np.random.default_rng(5), 2000)
    full = _read_parsed(str(path), "det", True, None)
    keep = [1, 3, 4, 80]
    fast = typed.read_typed(str(path), "det", None, keep_actions=keep, compact=True, block_size=300)
    rows = np.flatnonzero(np.isin(full.action, keep))
    assert 0 < rows.size < len(full)
    assert fast.line.dtype == np.int32 and fast.line.tolist() == full.line[rows].tolist()
    assert np.array_equal(fast.boxes, full.boxes[rows]) and np.array_equal(fast.score, full.score[rows])
    assert np.array_equal(fast.timestamp, full.timestamp[rows]) and np.array_equal(fast.action, full.action[rows])
    assert [fast.videos[c] for c in fast.video_codes] == [full.videos[c] for c in full.video_codes[rows]]
    # columns a detection file does not have take no memory and cannot be written to
    assert fast.person_id.strides == (0,) and (fast.person_id == -1).all() and not fast.person_id.flags.writeable
    assert fast.n_columns.strides == (0,) and (fast.n_columns == 8).all()
    # selecting rows still works on the broadcast columns
    assert len(fast.select(np.arange(5))) == 5


@pytest.mark.parametrize("bad_line, text", [
    ("vid00000000xx,0902,0.1,0.1,0.2,0.2,3", "7 fields"),          # optional score missing on one line
    ("vid00000000xx,0902,0.1,0.1,0.2,0.2,3,", "empty score"),       # empty field
    ("vid00000000xx,0902,0.1,nan,0.2,0.2,3,0.5", "NaN"),
    ("", "blank line"),
    ("vid00000000xx,0902", "2-column keyframe row"),
    (",0902,0.1,0.1,0.2,0.2,3,0.5", "empty video id"),
    ("vid00000000xx,0902,0.1,0.1,0.2,0.2,x,0.5", "non-numeric action"),
])
@pytest.mark.parametrize("precheck", [True, False])
def test_unusual_rows_late_in_the_file_fall_back_to_the_full_parser(tmp_path, monkeypatch, bad_line, text, precheck):
    if not precheck:  # as for a file above the pre-check size: found by the streaming parse itself
        monkeypatch.setattr(typed, "PRECHECK_BYTES", 0)
    path = tmp_path / "det.csv"
    lines = _write_rows(path, np.random.default_rng(6), 1500)
    lines.insert(1400, bad_line)
    path.write_text("\n".join(lines) + "\n")
    assert typed.read_typed(str(path), "det", None, block_size=256) is None, text
    # what the reader then says comes from the full parser, with its line number
    problems = ava.validate_csv(path, kind="det")
    if text in ("blank line", "7 fields", "2-column keyframe row"):  # valid rows of other field counts
        assert problems == []
        table = ava.read_csv(path, kind="det", keep_formats=False)
        fields = {"blank line": 8, "7 fields": 7, "2-column keyframe row": 2}[text]
        assert len(table) == 1500 + (text != "blank line") and table.n_columns.min() == fields
        return
    with pytest.raises(InputError) as raised:
        ava.read_csv(path, kind="det", keep_formats=False)
    assert raised.value.problem == problems[0] and problems[0].where == 1401


def test_a_file_without_the_optional_eighth_column_takes_the_full_parser(tmp_path):
    path = tmp_path / "boxes7.csv"
    path.write_text("vid00000000xx,0902,0.1,0.1,0.2,0.2,3\nvid00000000xx,0903,0.1,0.1,0.2,0.3,5\n")
    assert typed.read_typed(str(path), "det", None) is None
    table = ava.read_csv(path, kind="det", keep_formats=False)
    assert table.n_columns.tolist() == [7, 7] and np.isnan(table.score).all() and table.action.tolist() == [3, 5]


@pytest.mark.parametrize("bad, message", [
    ("0902,0.1,0.1,1.2,0.2,3", "x2=1.2 outside [0, 1]"),
    ("0902,0.3,0.1,0.2,0.2,3", "x2=0.2 < x1=0.3"),
    ("0902,0.1,0.1,0.2,0.2,81", "action id 81 not in 1..80"),
    # keyframes are keyed by whole microseconds in int64: 1e12 s or more is refused
    ("-12345678901234567890,0.1,0.1,0.2,0.2,3", "out of range (|t| < 1e+12 s)"),
    ("1e12,0.1,0.1,0.2,0.2,3", "out of range (|t| < 1e+12 s)"),
    ("inf,0.1,0.1,0.2,0.2,3", "timestamp is infinite"),
])
def test_range_problem_in_a_later_block_names_its_line(tmp_path, bad, message):
    """The streaming reader and the full parser give the same problem and line."""
    path = tmp_path / "det.csv"
    lines = _write_rows(path, np.random.default_rng(7), 1200)
    lines[1000] = f"vid00000004xx,{bad},0.5"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as fast:
        typed.read_typed(str(path), "det", None, block_size=200)
    assert fast.value.problem.where == 1001 and message in str(fast.value)
    assert ava.validate_csv(path, kind="det")[0] == fast.value.problem


def test_valid_actions_are_checked_in_every_block(tmp_path):
    path = tmp_path / "det.csv"
    lines = _write_rows(path, np.random.default_rng(8), 900, actions=87)
    path.write_text("\n".join(lines) + "\n")
    table = typed.read_typed(str(path), "det", range(1, 88), block_size=300)
    assert table.action.max() <= 87
    with pytest.raises(InputError, match="not in the given action ids"):
        typed.read_typed(str(path), "det", range(1, 10), block_size=300)


def test_package_reexports_every_former_name():
    for name in ava.__all__ + list(ava._WHERE):
        assert getattr(ava, name) is not None
    assert ava._GT_NAME.match("ava_val_v2.2.csv")
    with pytest.raises(AttributeError):
        ava.not_a_name  # noqa: B018


def test_table_import_loads_no_pyarrow():
    code = ("import sys; from partwise.data.ava import AvaCsv, keyframe_index; import partwise.eval.ava; "
            "print(sorted(m for m in sys.modules if m.startswith('pyarrow')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
