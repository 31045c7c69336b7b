import os
import stat

import pytest

from partwise.errors import PartwiseError
from partwise.io import OutputExistsError, atomic_dir, atomic_write


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
