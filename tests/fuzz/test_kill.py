"""A process killed mid-write (SIGKILL at a random moment) leaves no half-written output (issue 13).

``partwise data ingest``, ``partwise run`` and ``partwise train`` (checkpoints every step) run as real processes
and are killed after a random delay drawn from the seed; then every file at a final name in the output folder must
be whole (each one is read back by its format's reader), an output that existed before must still be there
(the previous complete version, or the new one), and the same command run again must succeed. Temporary files
(``.NAME.XXXX.tmp``) a kill leaves are never read under a final name; the training run deletes them when it
starts again.

Default: one kill per command (seed ``PARTWISE_FUZZ_SEED``, 0), ``partwise run`` left out (it loads the video models
and runs to the end twice: ~30 s of the default suite). ``--fuzz-long`` / ``PARTWISE_FUZZ_LONG=1``: four per command,
``run`` included (the later ones over a complete result, with ``--overwrite``).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
CONFIG = ROOT / "configs" / "synth_ava_slowonly.yaml"
TINY = ["run.batch_size=2", "data.scale_range=[64,72]", "data.test_short_side=64", "data.crop=0",
        "model.backbone.base_channels=4", "run.checkpoint_every=1", "--no-progress", "--no-eval"]


def _long(config) -> bool:
    return bool(config.getoption("--fuzz-long", default=False)) or os.environ.get("PARTWISE_FUZZ_LONG") == "1"


def _kills(config) -> int:
    return 4 if _long(config) else 1


def _rng(name: str) -> random.Random:
    return random.Random(f"{os.environ.get('PARTWISE_FUZZ_SEED', '0')}:{name}")


def _partwise(*argv, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "partwise", *map(str, argv)], cwd=cwd, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]


def _kill_after(proc: subprocess.Popen, delay: float, ready=lambda: True, wait: float = 300) -> bool:
    """SIGKILL ``proc`` (and its children) ``delay`` seconds after ``ready()`` first holds (the work under test has
    begun: start-up takes seconds, more on a loaded machine); False when it had already finished."""
    deadline = time.monotonic() + wait
    while not ready() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            proc.communicate()
            return False
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    return True


def _changed(path: Path):
    """A ``ready`` test: ``path`` was (re)written since now."""
    before = path.stat().st_mtime_ns if path.exists() else None
    return lambda: path.exists() and path.stat().st_mtime_ns != before


def _check_whole(folder: Path) -> list[str]:
    """Every file at a final name under ``folder`` read back whole by its format's reader; the temporary files
    (hidden ``.*.tmp``) are listed, not read. Returns those temporary names."""
    import pyarrow.parquet as pq
    import torch
    from PIL import Image

    temporaries = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") and (part.endswith(".tmp") or ".old." in part) for part in rel.parts):
            temporaries.append(str(rel))
            continue
        if not path.is_file():
            continue
        data = path.read_bytes()
        suffix = path.suffix
        try:
            if suffix == ".parquet":
                pq.read_table(path)
            elif suffix == ".json":
                json.loads(data)
            elif suffix == ".jsonl":
                [json.loads(line) for line in data.decode().splitlines() if line.strip()]
            elif suffix in (".csv", ".html"):
                text = data.decode()
                assert suffix != ".html" or text.rstrip().endswith("</html>"), "html cut short"
                assert suffix != ".csv" or text.endswith("\n"), "csv cut short"
            elif suffix == ".pt":
                state = torch.load(path, weights_only=True)
                if path.name == "checkpoint.pt":
                    assert state["step"] == len(state["history"])
            elif suffix in (".png", ".jpg"):
                with Image.open(path) as image:
                    image.load()
            elif suffix == ".mp4":
                import av

                with av.open(str(path)) as container:
                    assert sum(1 for _ in container.decode(video=0)) > 0
        except Exception as exc:  # noqa: BLE001 - any reader failure is a half-written file
            pytest.fail(f"half-written {rel} after a kill: {type(exc).__name__}: {exc}", pytrace=False)
    return temporaries


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    from partwise.synth.generator import SynthConfig, generate

    root = tmp_path_factory.mktemp("kill") / "synth"
    generate(root, SynthConfig(seed=0, videos=2, seconds=4, width=128, height=96, frames=False))
    return root


def test_kill_during_ingest(tmp_path, synth, request):
    rng = _rng("ingest")
    out = tmp_path / "store"
    argv = ["data", "ingest", "hake-ava", synth / "hake_ava", "--out", out, "--no-progress"]
    _finish(_partwise(*argv, cwd=tmp_path))  # the previous complete store
    previous = sorted(p.name for p in (out / "persons").iterdir())

    def temporaries() -> set:
        return {p.name for p in tmp_path.iterdir() if p.name.startswith(".store.")}

    for _ in range(_kills(request.config)):
        # re-ingesting the same source replaces its shards: killed while the new store is built or swapped in
        # (ready: a temporary store this run started appears beside the old one)
        before = temporaries()
        _kill_after(_partwise(*argv, cwd=tmp_path), rng.uniform(0.0, 0.3), ready=lambda: temporaries() - before)
        assert out.is_dir(), "the store vanished"  # old or new, never missing (the swap has no window)
        _check_whole(out)
        assert json.loads((out / "manifest.json").read_text())["sources"]
        _finish(_partwise("data", "query", out, "SELECT count(*) AS n FROM persons", cwd=tmp_path))
    _finish(_partwise(*argv, cwd=tmp_path))
    _check_whole(out)
    assert sorted(p.name for p in (out / "persons").iterdir()) == previous


def test_kill_during_run(tmp_path, synth, request):
    """The first run killed at a random moment, then run to the end; in long mode, runs with ``--overwrite``
    killed over that complete result, which must stay. Long mode only."""
    if not _long(request.config):
        pytest.skip("long mode only (--fuzz-long / PARTWISE_FUZZ_LONG=1)")
    rng = _rng("run")
    video = sorted((synth / "videos").glob("*.mp4"))[0]
    out = tmp_path / "out"
    argv = ["run", video, "--out", out, "--no-progress"]
    _kill_after(_partwise(*argv, cwd=tmp_path), rng.uniform(0.0, 3.0), ready=out.exists)
    if out.exists():
        _check_whole(out)
    _finish(_partwise(*argv, cwd=tmp_path))
    _check_whole(out)
    assert (out / "persons.parquet").is_file() and (out / "run.json").is_file()
    for _ in range(_kills(request.config) - 1):
        _kill_after(_partwise(*argv, "--overwrite", cwd=tmp_path), rng.uniform(0.0, 3.0),
                    ready=_changed(out / "videos" / video.stem / "annotated.mp4"))
        _check_whole(out)
        assert (out / "videos" / video.stem / "persons.parquet").is_file(), "the previous result vanished"


def test_kill_during_training(tmp_path, synth, request):
    rng = _rng("train")
    out = tmp_path / "run"
    argv = ["train", CONFIG, f"data.root={synth}", f"run.out_dir={out}", "run.max_steps=6", *TINY]
    checkpoint = out / "checkpoint.pt"
    for _ in range(_kills(request.config)):
        ready = _changed(checkpoint)  # after a checkpoint: the next kill lands in a step or a checkpoint write
        proc = _partwise(*argv, *(["--resume"] if checkpoint.exists() else []), cwd=tmp_path)
        _kill_after(proc, rng.uniform(0.0, 1.0), ready=ready)
        if out.exists():
            _check_whole(out)
    _finish(_partwise(*argv, *(["--resume"] if (out / "checkpoint.pt").exists() else []), cwd=tmp_path))
    assert not _check_whole(out), "a finished run leaves no temporary files"
    import torch

    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 6 and len(state["history"]) == 6
    shutil.rmtree(out)
