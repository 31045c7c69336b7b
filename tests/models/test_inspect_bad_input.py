"""``partwise models inspect`` with files that are not (whole) weights files (issue 13): truncated or corrupt
checkpoints, malicious pickles (never run), state dicts with integer keys or no tensors, partial weights of a known
source, other formats (.npz, JSON, a plain zip), folders, links and missing paths. The promise: exit 2, one stderr
line ``partwise: error: PATH...: reason``, no traceback, no code run."""
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from partwise.cli import main
from partwise.models.checkpoint import save_model
from partwise.models.person_detector import PersonDetector, PersonDetectorConfig


class Marker:
    """Unpickled by a loader that runs code, it creates the file ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(PersonDetector(PersonDetectorConfig()), path)
    return path


def _save(obj):
    return lambda path, good: torch.save(obj, path)


def _bytes(fn):
    return lambda path, good: path.write_bytes(fn(good.read_bytes()))


def _npz(path, good):
    with open(path, "wb") as fh:
        np.savez(fh, weight=np.zeros(3))


def _plain_zip(path, good):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("weights.txt", "1 2 3")


CASES = {
    "truncated to 10 bytes": (_bytes(lambda b: b[:10]), "not a torch checkpoint"),
    "truncated to half": (_bytes(lambda b: b[: len(b) // 2]), ""),
    "tail cut": (_bytes(lambda b: b[:-40]), ""),
    "empty": (_bytes(lambda b: b""), "not a torch checkpoint"),
    "a text file": (lambda p, g: p.write_text("weights\n"), "not a torch checkpoint"),
    "a JSON file": (lambda p, g: p.write_text(json.dumps({"conv.weight": [1, 2]})), "not a torch checkpoint"),
    "a NumPy .npz": (_npz, "a NumPy .npz archive, not a torch checkpoint"),
    "a plain zip": (_plain_zip, "a zip archive, not a torch checkpoint"),
    "plain pickle with __reduce__": (lambda p, g: p.write_bytes(pickle.dumps({"w": Marker(p.parent / "RAN")})), ""),
    "torch.save with __reduce__": (lambda p, g: torch.save({"w": Marker(p.parent / "RAN")}, p), "refused"),
    "integer keys": (_save({1: torch.zeros(3), 2: torch.ones(2)}), "key 1 (int) is not a name"),
    "integer keys in a state_dict": (_save({"state_dict": {0: torch.zeros(3)}}), "state dict: key 0 (int)"),
    "no tensors": (_save({"a": 1, "b": "x", "c": [1, 2]}), "no tensors in it"),
    "nested dicts, no tensors": (_save({"state_dict": {"a": {"b": torch.zeros(2)}}}), "no tensors in it"),
    "an empty dict": (_save({}), "no tensors in it: not a weights file (empty)"),
    "a list": (_save([torch.zeros(1)]), "expected a dict checkpoint"),
    "a tensor": (_save(torch.zeros(3)), "expected a dict checkpoint"),
    "partial mmaction2 detector": (_save({"state_dict": {"backbone.conv1.conv.weight": torch.zeros(8, 3, 1, 7, 7),
                                                         "roi_head.bbox_head.fc_cls.weight": torch.zeros(81, 16)}}),
                                   "looks like mmaction2 weights, but its model cannot be inferred"),
    "partial mmaction2 recognizer": (_save({"state_dict": {"backbone.conv1.conv.weight": torch.zeros(8, 3, 1, 7, 7),
                                                           "cls_head.fc_cls.weight": torch.zeros(4, 16)}}),
                                     "looks like mmaction2 weights"),
    "mmaction2 meta, no backbone conv": (_save({"state_dict": {"backbone.x": torch.zeros(2)}, "meta": {}}),
                                         "looks like mmaction2 weights"),
    "partial CLIP": (_save({"visual.conv1.weight": torch.zeros(64, 3, 16, 16), "visual.proj": torch.zeros(64, 32)}),
                     "looks like openai_clip weights"),
    "partwise file of an unknown family": (_save({"format": "partwise", "family": [1], "config": {},
                                                  "state_dict": {"w": torch.zeros(1)}}), "family: unknown"),
    "partwise file without a config": (_save({"format": "partwise", "family": "tin", "config": 5,
                                              "state_dict": {"w": torch.zeros(1)}}),
                                       "config: expected the model config"),
    "a folder": (lambda p, g: p.mkdir(), "a folder, not a checkpoint file"),
    "a dangling link": (lambda p, g: p.symlink_to(p.parent / "gone.pt"), "checkpoint not found"),
    "a link loop": (lambda p, g: p.symlink_to(p.name), ""),
    "nothing there": (lambda p, g: None, "checkpoint not found"),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("flags", [[], ["--keys", "--json"]], ids=["text", "json"])
def test_inspect_bad_file(capsys, tmp_path, model_file, name, flags):
    make, message = CASES[name]
    path = tmp_path / "weights.pt"
    make(path, model_file)
    before = sorted(p.name for p in tmp_path.iterdir())
    try:
        code = main(["models", "inspect", str(path), *flags])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"partwise: error: {path}"), captured.err
    assert message in lines[0] and "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "RAN").exists(), "the pickle ran code"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_inspect_lists_non_tensor_entries_and_still_reads_good_files(capsys, tmp_path, model_file):
    assert main(["models", "inspect", str(model_file)]) == 0
    out = capsys.readouterr().out
    assert "source: partwise" in out and "family: person_detector" in out
    path = tmp_path / "mixed.pt"
    torch.save({"conv.weight": torch.zeros(2, 3), "epoch": 7, "note": "x"}, path)
    assert main(["models", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "keys: 1  parameters: 6" in out and "non-tensor entries: 2 (epoch: int, note: str)" in out
    assert main(["models", "inspect", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["non_tensors"] == {"epoch": "int", "note": "str"}
