"""Small run and store folders for the viewer: a synthetic 2 s H.264 clip with two people, no model needed."""
import json
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

W, H, FPS, SECONDS = 160, 120, 10, 2
VIDEO_ID = "clip"


def _person(video_id, t, pid, box, pasta, *, score, dataset, width=W, height=H, extra=None):
    x1, y1, x2, y2 = box
    kp = []
    for j in range(17):  # a vertical stick figure inside the box
        kp += [(x1 + x2) / 2 + (j % 2) * 4 - 2, y1 + (y2 - y1) * j / 17, 0.9]
    row = {"dataset": dataset, "split": None, "video_id": video_id, "time_s": float(t), "frame_index": int(t * FPS),
           "width": width, "height": height, "x1": x1 / width, "y1": y1 / height, "x2": x2 / width, "y2": y2 / height,
           "px1": x1, "py1": y1, "px2": x2, "py2": y2, "person_id": pid, "score": score, "actions": [],
           "action_vocab": None, "pasta": pasta, "pasta_vocab": "pasta93",
           "part_boxes": [{"part": "right_hand", "x1": x2 / width - 0.05, "y1": y1 / height + 0.3,
                           "x2": x2 / width, "y2": y1 / height + 0.4, "px1": x2 - 8, "py1": y1 + 36, "px2": x2,
                           "py2": y1 + 48, "state": "hold"}],
           "objects": [{"class_name": "cup", "class_id": 41, "action": None, "object_id": 1,
                        "x1": x2 / width, "y1": 0.4, "x2": min(1.0, x2 / width + 0.1), "y2": 0.5,
                        "px1": x2, "py1": 48.0, "px2": min(W, x2 + 16), "py2": 60.0}],
           "video_label": None, "source": f"{video_id}.mp4:{int(t * FPS)}", "keypoints": kp}
    row.update(extra or {})
    return row


def _rows(video_id, *, dataset, score):
    rows = []
    for t in range(SECONDS):
        rows.append(_person(video_id, t, 1, (10 + 10 * t, 20, 60 + 10 * t, 110), ["hand: hold", "head: inspect"],
                            score=score, dataset=dataset))
        rows.append(_person(video_id, t, 2, (90, 15, 140, 115), ["hand: wave", "head: inspect", "hip: sit in"],
                            score=score, dataset=dataset))
    return rows


def write_clip(path: Path) -> None:
    from partwise.data.video import write_video

    frames = np.zeros((FPS * SECONDS, H, W, 3), np.uint8)
    for i in range(len(frames)):
        frames[i, :, :, 0] = 40 + i * 5
        frames[i, 20:110, 10 + i: 60 + i, 1] = 200
    write_video(path, frames, fps=FPS)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory):
    """A `partwise run`-like folder: persons.parquet, run.json, index.html, videos/clip/annotated.mp4 and an image."""
    from partwise.infer.outputs import RESULT_SCHEMA

    out = tmp_path_factory.mktemp("viewrun") / "out"
    (out / "videos" / VIDEO_ID).mkdir(parents=True)
    write_clip(out / "videos" / VIDEO_ID / "annotated.mp4")
    rows = [dict(r, track_id=r["person_id"], pasta_scores=[0.9, 0.8, 0.7][:len(r["pasta"])])
            for r in _rows(VIDEO_ID, dataset="partwise-run", score=0.9)]
    img = _person("photo.png", 0, 1, (10, 10, 50, 100), ["hand: hold", "foot: walk"], score=0.8,
                  dataset="partwise-run", extra={"track_id": 1, "pasta_scores": [0.6, 0.5]})
    img["source"] = "/somewhere/else/photo.png:0"  # the original is outside PATH: the annotated copy is served
    rows.append(img)
    (out / "videos" / "photo.png").mkdir()
    from PIL import Image
    Image.new("RGB", (W, H), (30, 60, 90)).save(out / "videos" / "photo.png" / "annotated.jpg")
    table = pa.Table.from_pylist([{k: r.get(k) for k in RESULT_SCHEMA.names} for r in rows], schema=RESULT_SCHEMA)
    pq.write_table(table, out / "persons.parquet")
    (out / "run.json").write_text(json.dumps({"persons_from": "boxes", "model": "synthetic", "warnings": ["synthetic model"]}))
    (out / "index.html").write_text("<html>report</html>")
    return out


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory):
    """A store with ground truth (score null) and predictions for the same video, and the video itself under it."""
    from partwise.data.records import PERSON_SCHEMA, conform

    root = tmp_path_factory.mktemp("viewstore") / "store"
    (root / "persons").mkdir(parents=True)
    (root / "videos").mkdir()
    write_clip(root / "videos" / f"{VIDEO_ID}.mp4")
    sources = []
    for name, score in (("gt", None), ("pred", 0.7)):
        rows = _rows(VIDEO_ID, dataset=f"synthetic-{name}", score=score)
        table = conform(pa.Table.from_pylist(rows))
        shard = f"persons/{name}-00000.parquet"
        pq.write_table(table.cast(PERSON_SCHEMA), root / shard)
        sources.append({"id": name, "format": "synthetic", "path": f"/x/{name}", "datasets": [f"synthetic-{name}"],
                        "splits": [], "rows": table.num_rows, "shards": [shard], "ingested_at": "2026-01-01T00:00:00Z"})
    (root / "manifest.json").write_text(json.dumps({"schema_version": 1, "sources": sources}))
    return root


class Running:
    def __init__(self, path):
        from partwise.view.server import serve

        self.server = serve(path)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.port = self.server.port
        self.url = self.server.url

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.server.collection.close()


@pytest.fixture
def serve_path():
    running = []

    def start(path):
        r = Running(path)
        running.append(r)
        return r

    yield start
    for r in running:
        r.close()
