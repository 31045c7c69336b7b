import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from partwise import io as pio
from partwise.errors import PartwiseError
from partwise.io import InterruptedSwapError, OutputExistsError, atomic_dir, atomic_write, recover_dir


def test_atomic_write_replaces_and_keeps_nothing_on_error(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]
    with atomic_write(target) as fh:
        fh.write("new")
    assert target.read_text() == "new"
    mode = stat.S_IMODE(os.stat(target).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_atomic_dir(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError):
        with atomic_dir(out) as tmp:
            (tmp / "x").write_text("1")
            raise ValueError
    assert not out.exists() and os.listdir(tmp_path) == []
    with atomic_dir(out) as tmp:
        (tmp / "x").write_text("1")
    assert (out / "x").read_text() == "1"
    with pytest.raises(OutputExistsError) as err:
        with atomic_dir(out):
            pass
    assert isinstance(err.value, PartwiseError) and isinstance(err.value, FileExistsError)
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "y").write_text("2")
    assert sorted(os.listdir(out)) == ["y"] and sorted(os.listdir(tmp_path)) == ["out"]


# ------------------------------------------------------------------------------------- directory swap: kills, recovery

REPO = Path(__file__).resolve().parents[1]

#: Prepended to a script run by :func:`run_killed`: ``MODE`` (``exchange``: atomic exchange; ``renames``: the
#: two-rename fallback) and ``STEP`` come from argv; the process SIGKILLs itself at that step of the swap, or where
#: the script calls ``checkpoint(STEP)`` (``while-building``: inside the ``atomic_dir`` block).
KILL_HARNESS = r'''
import os, signal, sys
import partwise.io as pio

MODE, STEP = sys.argv[1], sys.argv[2]


def checkpoint(name):
    if name == STEP:
        os.kill(os.getpid(), signal.SIGKILL)


if MODE == "renames":
    pio._exchange = lambda a, b: False
_exchange, _replace, _remove = pio._exchange, os.replace, pio._remove
_dir_renames = []


def exchange(a, b):
    done = _exchange(a, b)
    if done:
        checkpoint("after-exchange")
    return done


def replace(a, b):
    _replace(a, b)
    if os.path.isdir(b):  # count directory renames only (atomic_write renames files)
        _dir_renames.append(b)
        checkpoint(f"after-rename-{len(_dir_renames)}")


def remove(path):
    if STEP == "while-deleting-old":
        files = sorted(p for p in path.rglob("*") if p.is_file())
        if files:
            files[0].unlink()  # a part is gone, the rest is left
        checkpoint("while-deleting-old")
    _remove(path)


pio._exchange, os.replace, pio._remove = exchange, replace, remove
'''

#: the steps of a swap per mode, and which directory a reader finds after a kill there
KILL_STEPS = {
    "exchange": {"while-building": "old", "after-exchange": "new", "after-rename-1": "new",
                 "while-deleting-old": "new"},
    "renames": {"while-building": "old", "after-rename-1": "old", "after-rename-2": "new",
                "while-deleting-old": "new"},
}
KILL_CASES = [(mode, step, expected) for mode, steps in KILL_STEPS.items() for step, expected in steps.items()]


def exchange_supported(directory: Path) -> bool:
    a, b = directory / ".exchange-a", directory / ".exchange-b"
    a.mkdir()
    b.mkdir()
    try:
        return pio._exchange(a, b)
    finally:
        a.rmdir()
        b.rmdir()


def run_killed(script: str, mode: str, step: str, workdir: Path) -> subprocess.CompletedProcess:
    """Run ``KILL_HARNESS + script`` in a fresh interpreter that kills itself at ``step``; assert it was killed."""
    path = workdir / f"killed_{mode}_{step}.py"
    path.write_text(KILL_HARNESS + script)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(path), mode, step], capture_output=True, text=True, cwd=workdir,
                          env=env, timeout=120)
    assert done.returncode == -9, (done.returncode, done.stderr)
    return done


def backups(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}.old."))


@pytest.mark.parametrize("mode,step,expected", KILL_CASES)
def test_kill_at_every_step_of_the_swap_leaves_old_or_new(tmp_path, mode, step, expected):
    if mode == "exchange" and not exchange_supported(tmp_path):
        pytest.skip("no atomic directory exchange on this system")
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a", "b", "c"):
        (out / name).write_text("old")
    script = f'''
from pathlib import Path
with pio.atomic_dir(Path({str(out)!r}), overwrite=True) as tmp:
    (tmp / "a").write_text("new")
    checkpoint("while-building")
    (tmp / "b").write_text("new")
'''
    run_killed(script, mode, step, tmp_path)
    recover_dir(out)  # what every reader of such a directory does first
    content = {p.name: p.read_text() for p in out.iterdir()}
    assert content == ({"a": "old", "b": "old", "c": "old"} if expected == "old" else {"a": "new", "b": "new"})
    # the next swap succeeds and cleans up the backups of the killed one
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "a").write_text("newer")
    assert {p.name: p.read_text() for p in out.iterdir()} == {"a": "newer"}
    assert backups(tmp_path, "out") == []


def test_two_renames_fallback_swaps_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(pio, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "x").write_text("1")
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "y").write_text("2")
    assert sorted(os.listdir(out)) == ["y"] and sorted(os.listdir(tmp_path)) == ["out"]


def test_exchange_swaps_two_directories(tmp_path):
    if not exchange_supported(tmp_path):
        pytest.skip("no atomic directory exchange on this system")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "in_a").write_text("")
    (tmp_path / "b").mkdir()
    assert pio._exchange(tmp_path / "a", tmp_path / "b")
    assert os.listdir(tmp_path / "b") == ["in_a"] and os.listdir(tmp_path / "a") == []
    with pytest.raises(FileNotFoundError):
        pio._exchange(tmp_path / "a", tmp_path / "missing")


def test_recover_dir(tmp_path):
    out = tmp_path / "out"
    assert recover_dir(out) is False  # nothing there, nothing to do
    backup = tmp_path / ".out.old.12345"
    backup.mkdir()
    (backup / "x").write_text("kept")
    assert recover_dir(out) is True
    assert (out / "x").read_text() == "kept" and backups(tmp_path, "out") == []
    assert recover_dir(out) is False  # present: untouched
    # a backup beside an existing directory is a leftover: readers leave it, the next swap deletes it
    backup.mkdir()
    assert recover_dir(out) is False and backup.is_dir()
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "y").write_text("")
    assert not backup.exists() and os.listdir(out) == ["y"]


def test_recover_dir_refuses_to_guess_between_backups(tmp_path):
    for pid in (111, 222):
        (tmp_path / f".out.old.{pid}").mkdir()
    with pytest.raises(InterruptedSwapError, match=r"out: missing, .* 2 copies beside it \(\.out\.old\.111, "
                                                   r"\.out\.old\.222\); rename the one to keep to out") as err:
        recover_dir(tmp_path / "out")
    assert isinstance(err.value, PartwiseError)
    with pytest.raises(InterruptedSwapError):
        with atomic_dir(tmp_path / "out"):
            pass
    assert sorted(os.listdir(tmp_path)) == [".out.old.111", ".out.old.222"]  # nothing lost


def test_atomic_dir_recovers_before_checking_for_an_existing_output(tmp_path):
    (tmp_path / ".out.old.12345").mkdir()
    (tmp_path / ".out.old.12345" / "x").write_text("old")
    with pytest.raises(OutputExistsError):  # the recovered directory is not empty
        with atomic_dir(tmp_path / "out"):
            pass
    assert (tmp_path / "out" / "x").read_text() == "old"


def test_failed_second_rename_puts_the_old_directory_back(tmp_path, monkeypatch):
    monkeypatch.setattr(pio, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("old")
    real_replace = os.replace

    def replace(a, b):
        if Path(a).name.endswith(".tmp") and Path(b) == out:
            raise OSError("simulated failure")
        return real_replace(a, b)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="simulated failure"):
        with atomic_dir(out, overwrite=True) as tmp:
            (tmp / "x").write_text("new")
    assert (out / "x").read_text() == "old" and sorted(os.listdir(tmp_path)) == ["out"]
