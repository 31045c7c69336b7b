"""The optional ``keypoints`` record column: typed, nullable, kept by the store, absent in old files."""
from __future__ import annotations

import sys
import types

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from partwise.data import formats, store
from partwise.data.records import (KEYPOINT_VALUES, PERSON_SCHEMA, PersonRecord, RecordBuilder, conform,
                                   records_to_table, table_to_records)

#: 17 (x, y, score) triples with distinct, float32-exact values
POSE = [float(v) for v in np.arange(KEYPOINT_VALUES) * 0.25]


def _table() -> pa.Table:
    builder = RecordBuilder()
    builder.append(dataset="kp", split="train", video_id="v", time_s=902.0, x1=0.1, y1=0.1, x2=0.5, y2=0.9,
                   person_id=0, keypoints=POSE)
    builder.append(dataset="kp", split="train", video_id="v", time_s=902.0, x1=0.5, y1=0.1, x2=0.9, y2=0.9,
                   person_id=1)  # a person without pose
    return builder.to_table()


@pytest.fixture
def kp_format(monkeypatch, tmp_path):
    """A fake format ``kp`` whose reader returns :func:`_table` (any path)."""
    module = types.ModuleType("fake_kp_format")
    module.read_records = lambda path, *, split=None, progress=False: _table()
    module.validate = lambda path: []
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(formats.FORMATS, "kp", module.__name__)
    (tmp_path / "in.txt").write_text("x")
    return tmp_path


def test_column_is_a_nullable_float32_list():
    field = PERSON_SCHEMA.field("keypoints")
    assert field.nullable and field.type == pa.list_(pa.float32())
    table = _table()
    assert table.column("keypoints").to_pylist() == [POSE, None]


def test_records_round_trip_and_default_to_null():
    records = table_to_records(_table())
    assert records[0].keypoints == POSE and records[1].keypoints is None
    assert PersonRecord(dataset="d", video_id="v").keypoints is None
    assert records_to_table(records).column("keypoints").to_pylist() == [POSE, None]


def test_tables_without_the_column_conform_to_null():
    old = _table().drop_columns(["keypoints"])
    conformed = conform(old)
    assert conformed.schema == PERSON_SCHEMA and conformed.column("keypoints").null_count == 2


def test_store_keeps_keypoints(kp_format):
    out = kp_format / "store"
    store.ingest("kp", kp_format / "in.txt", out, progress=False)
    result = store.query(out, "SELECT person_id, keypoints FROM persons ORDER BY person_id")
    rows = result.to_pylist()
    assert rows[0]["keypoints"] == POSE and rows[1]["keypoints"] is None
    # the 14th keypoint's score (index 13*3+2) queried in SQL (DuckDB lists are 1-based)
    score = store.query(out, "SELECT keypoints[13 * 3 + 3] AS s FROM persons WHERE person_id = 0").column("s")
    assert score.to_pylist() == [POSE[13 * 3 + 2]]


def test_store_reads_shards_written_before_the_column(kp_format):
    out = kp_format / "store"
    entry = store.ingest("kp", kp_format / "in.txt", out, progress=False)
    shard = out / entry["shards"][0]
    pq.write_table(pq.read_table(shard).drop_columns(["keypoints"]), shard)  # an older partwise's shard
    rows = store.query(out, "SELECT * FROM persons").to_pylist()
    assert len(rows) == 2 and all(r.get("keypoints") is None for r in rows)
