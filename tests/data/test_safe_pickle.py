"""The restricted unpickler (partwise.data.safe_pickle)."""
import os
import pickle

import numpy as np
import pytest

from partwise.data import safe_pickle
from partwise.errors import InputError


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _CallsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_os_system_reduce_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"a,0902": _RunsCommand(marker)}))
    with pytest.raises(InputError) as info:
        safe_pickle.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: refusing to unpickle forbidden global ")
    assert message.endswith(f".system") and os.system.__module__ in message
    assert not marker.exists()


def test_builtin_eval_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"x.pkl: refusing to unpickle forbidden global builtins.eval"):
        safe_pickle.loads(pickle.dumps(_CallsEval()), "x.pkl")


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_proposals_dict_round_trips(tmp_path, protocol):
    proposals = {
        "_-Z6wFjXtGQ,0902": np.array([[0.202, 0.15, 0.744, 0.985, 0.281325], [0.076, 0.051, 0.554, 0.975, 0.994488]]),
        "_-Z6wFjXtGQ,0903": np.zeros((0, 5), np.float32),
        "meta": {"n": 2, "names": ("a", "b"), "scale": np.float64(0.5), "raw": b"\x00\xff", "list": [1, 2.5, None]},
    }
    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps(proposals, protocol=protocol))
    back = safe_pickle.load(path)
    assert list(back) == list(proposals)
    for key in ("_-Z6wFjXtGQ,0902", "_-Z6wFjXtGQ,0903"):
        assert back[key].dtype == proposals[key].dtype and np.array_equal(back[key], proposals[key])
    assert back["meta"] == proposals["meta"]


def test_numpy_core_module_spelling_is_accepted():
    # protocol 2 names globals as text lines: rewrite numpy 2's module names to numpy 1's
    data = pickle.dumps({"k": np.arange(6, dtype=np.float64).reshape(2, 3)}, protocol=2)
    old_style = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\n_reconstruct" in old_style
    back = safe_pickle.loads(old_style, "old.pkl")
    assert np.array_equal(back["k"], np.arange(6.0).reshape(2, 3))


def test_truncated_or_garbage_file(tmp_path):
    data = pickle.dumps({"k": np.zeros((3, 5))}, protocol=4)
    with pytest.raises(InputError, match=r"t.pkl: not a valid pickle file"):
        safe_pickle.loads(data[: len(data) // 2], "t.pkl")
    with pytest.raises(InputError, match=r"g.pkl: not a valid pickle file"):
        safe_pickle.loads(b"this is not a pickle", "g.pkl")
    with pytest.raises(InputError, match="cannot read file"):
        safe_pickle.load(tmp_path / "missing.pkl")
