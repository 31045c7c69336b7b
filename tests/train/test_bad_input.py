"""``partwise train`` with bad input (issue 13): wrong config types and values, bad overrides, missing configs,
``--resume`` with a checkpoint that is corrupt, truncated, of another model, or not a checkpoint at all (a
malicious pickle must not run), and a bad ``truth.parquet``. The promise each time: exit 2, one stderr line
``partwise: error: ...`` naming the file and the key, no traceback, nothing written or changed in ``run.out_dir``."""
import os
import pickle
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from partwise.cli import main

CONFIGS = Path(__file__).parents[2] / "configs"
SYNTH = CONFIGS / "synth_ava_slowonly.yaml"
#: the synthetic AVA detector at a size a CPU trains one step of in about a second
TINY = ["run.batch_size=2", "data.scale_range=[64,72]", "data.test_short_side=64", "data.crop=0",
        "model.backbone.base_channels=4", "--no-progress", "--no-eval"]


class Marker:
    """Unpickled by a loader that runs code, it creates the file ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _train(capsys, *argv) -> tuple[int, str]:
    try:
        code = main(["train", *map(str, argv)])
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


def _assert_one_line(code: int, err: str, *names: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("partwise: error: "), err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def _snapshot(folder: Path) -> dict:
    return {p.name: (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.iterdir()} if folder.is_dir() else {}


# --------------------------------------------------------------------------------------------- config values

DEEP = "[" * 5000 + "]" * 5000
BOMB = "".join(f"- &a{i} [" + ", ".join([f"*a{i - 1}" if i else "1"] * 10) + "]\n" for i in range(8))


@pytest.mark.parametrize("override, message", [
    ("optim.lr=.nan", "optim.lr: expected a finite number, got nan"),
    ("optim.lr=.inf", "optim.lr: expected a finite number, got inf"),
    ("optim.lr=-.inf", "optim.lr: expected a finite number"),
    ("optim.lr=-0.1", "optim.lr: expected a value at least 0"),
    ("optim.lr=1e400", "optim.lr: expected a number"),
    ("optim.momentum=.nan", "optim.momentum: expected a finite number"),
    ("optim.weight_decay=-1", "optim.weight_decay: expected a value at least 0"),
    ("optim.name=adam", "optim.name: unknown optimizer 'adam'"),
    ("optim=fast", "optim: expected a mapping, got 'fast'"),
    ("optim={lr: 0.1, speed: 2}", "optim.speed: unknown key"),
    ("schedule.name=linear", "schedule.name: unknown schedule 'linear'"),
    ("schedule.warmup_steps=-1", "schedule.warmup_steps: expected a value at least 0"),
    ("schedule.gamma=.nan", "schedule.gamma: expected a finite number"),
    ("schedule.min_lr_factor=2", "schedule.min_lr_factor: expected a value between 0 and 1"),
    ("schedule.milestones=[1, -4]", "schedule.milestones[1]: expected a value at least 0"),
    ("schedule.milestones=[[1]]", "schedule.milestones[0]: expected an integer"),
    ("schedule.restart_mult=0", "schedule.restart_mult: expected a value at least 1"),
    ("run.max_steps=-5", "run.max_steps: expected a value at least 0"),
    ("run.batch_size=0", "run.batch_size: expected a value at least 1"),
    ("run.num_workers=-1", "run.num_workers: expected a value at least 0"),
    ("run.checkpoint_every=-1", "run.checkpoint_every: expected a value at least 0"),
    ("run.seed=-1", "run.seed: expected a value between 0 and"),
    ("run.seed=123456789012345678901234567890", "run.seed: 123456789012345678901234567890 is out of range"),
    ("run.max_steps=1e3", "run.max_steps: expected an integer"),
    ("run.grad_clip=.nan", "run.grad_clip: expected a finite number"),
    ("run.amp=fp8", "run.amp: expected true or false"),
    ("run=[1, 2]", "run: expected a mapping"),
    ("model.backbone=[8]", "model.backbone: expected a mapping"),
    ("model.backbone.depth=fifty", "model.backbone.depth: expected an integer, got 'fifty'"),
    ("data.root=[1]", "data.root: expected a string"),
])
def test_bad_values_are_one_line_before_any_work(capsys, tmp_path, synth_root, override, message):
    out = tmp_path / "run"
    code, err = _train(capsys, SYNTH, f"data.root={synth_root}", f"run.out_dir={out}", *TINY, override)
    _assert_one_line(code, err, message, str(SYNTH))
    assert not out.exists() and sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize("override, message", [
    ("optim.lr.value=1", "optim.lr is a float in the config, not a mapping"),
    ("optim..lr=1", "empty key name"),
    ("=1", "empty key name"),
    ("schedule.milestones=" + DEEP, "override schedule.milestones: the value is nested too deeply"),
    ("run.out_dir=a\0b", "run.out_dir: NUL character"),
])
def test_bad_overrides_name_the_override(capsys, tmp_path, synth_root, override, message):
    code, err = _train(capsys, SYNTH, f"data.root={synth_root}", f"run.out_dir={tmp_path / 'run'}", "--check", override)
    _assert_one_line(code, err, message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text, message", [
    ("- 1\n- 2\n", "the config must be a mapping"),
    ("just words\n", "the config must be a mapping"),
    ("task: ava_detector\nmodel: {backbone: {depth: abc}}\ndata: {root: x}\n",
     "model.backbone.depth: expected an integer"),
    ("task: ava_detector\nmodel: [1, 2]\ndata: {root: x}\n", "model: expected a mapping"),
    ("task: ava_detector\ndata: {root: x}\nunknown_section: {a: 1}\n", "unknown_section: unknown key"),
    ("task: ava_detector\ndata: {root: x}\n7: 1\n", "7: unknown key"),
    ("task: ava_detector\ndata: {root: x}\nrun: {max_steps: .nan}\n", "run.max_steps: expected an integer"),
    ("task: ava_detector\ndata: {root: x}\noptim: {lr: .nan}\n", "optim.lr: expected a finite number"),
    ("task: ava_detector\ndata: {root: x}\noptim: {lr: !!python/object/apply:os.system [true]}\n", "invalid YAML"),
    ("task: ava_detector\ndata: {root: x}\nschedule:\n  milestones:\n" + "".join("    " + line + "\n"
                                                                            for line in BOMB.splitlines()),
     "more than 100,000 values once its aliases are expanded"),
    ("task: ava_detector\ndata: {root: x}\nrun: " + DEEP + "\n", "nested more than"),
    ("task: ava_detector\n  data: [\n", "invalid YAML"),
    ("task: ava_detector\ndata: {root: x}\noptim:\n  lr: 0.1\n  lr: 0.01\n", "line 5: key 'lr' given twice"),
    ("task: ava_detector\ndata: {root: x}\ntask: ava_detector\n", "line 3: key 'task' given twice"),
    ("", "task: required key is missing"),
])
def test_bad_yaml_names_the_file(capsys, tmp_path, text, message):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    code, err = _train(capsys, config, f"run.out_dir={tmp_path / 'run'}", "--check")
    _assert_one_line(code, err, message, str(config))
    assert sorted(os.listdir(tmp_path)) == ["c.yaml"]


def test_missing_unreadable_and_non_utf8_configs(capsys, tmp_path):
    code, err = _train(capsys, tmp_path / "nope.yaml")
    _assert_one_line(code, err, str(tmp_path / "nope.yaml"), "cannot read config")
    code, err = _train(capsys, tmp_path)
    _assert_one_line(code, err, str(tmp_path), "cannot read config")
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    code, err = _train(capsys, tmp_path / "loop.yaml")
    _assert_one_line(code, err, str(tmp_path / "loop.yaml"))
    (tmp_path / "latin1.yaml").write_bytes(b"task: ava_d\xe9tector\n")
    code, err = _train(capsys, tmp_path / "latin1.yaml")
    _assert_one_line(code, err, str(tmp_path / "latin1.yaml"), "not UTF-8")


@pytest.mark.parametrize("value", ["[ava_detector]", "{a: 1}", "!!set {a, b}"])
def test_task_of_another_type(capsys, tmp_path, value):
    config = tmp_path / "c.yaml"
    config.write_text(f"task: {value}\n")
    code, err = _train(capsys, config, "--check")
    _assert_one_line(code, err, "task:", str(config))


# ------------------------------------------------------------------------------------------------- --resume

@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_root) -> Path:
    """A run folder after one step: checkpoint.pt, model.pt, metrics.csv, loss.png."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", str(SYNTH), f"data.root={synth_root}", f"run.out_dir={out}", "run.max_steps=1",
                 *TINY]) == 0
    return out


def _resume_args(synth_root, out):
    return [SYNTH, f"data.root={synth_root}", f"run.out_dir={out}", "run.max_steps=2", *TINY, "--resume"]


def _edit(fn):
    def make(path: Path, good: dict) -> None:
        fn(good)
        torch.save(good, path)
    return make


def _first(mapping: dict) -> str:
    return next(iter(mapping))


RESUME_CASES = {
    "text file": (lambda p, g: p.write_text("not a checkpoint\n"), "not a torch checkpoint"),
    "empty file": (lambda p, g: p.write_bytes(b""), "not a torch checkpoint"),
    "truncated to half": (lambda p, g: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), ""),
    "truncated tail": (lambda p, g: p.write_bytes(p.read_bytes()[:-64]), ""),
    "plain pickle that runs code": (lambda p, g: p.write_bytes(pickle.dumps(Marker(p.parent / "RAN"))), ""),
    "torch.save of code": (lambda p, g: torch.save({"model": Marker(p.parent / "RAN")}, p), "refused"),
    "a list": (lambda p, g: torch.save([1, 2], p), "expected a dict checkpoint"),
    "model.pt in its place": (lambda p, g: shutil.copy(p.parent / "model.pt", p), "a partwise model file"),
    "no optimizer": (_edit(lambda g: g.pop("optimizer")), "optimizer: missing"),
    "step a string": (_edit(lambda g: g.__setitem__("step", "1")), "step: expected int"),
    "step and history disagree": (_edit(lambda g: g.__setitem__("step", 7)), "step: 7 steps but 1 history rows"),
    "history of numbers": (_edit(lambda g: g.__setitem__("history", [3])), "history[0]"),
    "no rng": (_edit(lambda g: g.__setitem__("rng", [])), "rng: empty"),
    "rng of another kind": (_edit(lambda g: g.__setitem__("rng", [{"torch": 5}])), "rng: cannot restore"),
    "integer parameter name": (_edit(lambda g: g["model"].__setitem__(3, torch.zeros(1))), "model: key 3 (int)"),
    "parameter of another shape": (_edit(lambda g: g["model"].__setitem__(_first(g["model"]), torch.zeros(2))),
                                   "in the file"),
    "parameter missing": (_edit(lambda g: g["model"].pop(_first(g["model"]))), "missing from the file"),
    "parameter not a tensor": (_edit(lambda g: g["model"].__setitem__(_first(g["model"]), "w")), "str in the file"),
    "extra parameter": (_edit(lambda g: g["model"].__setitem__("net.extra.weight", torch.zeros(1))),
                        "model.net.extra.weight: not a parameter of the model"),
    "NaN weights": (_edit(lambda g: g["model"][_first(g["model"])].fill_(float("nan"))), "non-finite values"),
    "optimizer groups": (_edit(lambda g: g["optimizer"].__setitem__("param_groups", [])), "optimizer: cannot restore"),
    "optimizer state shape": (_edit(lambda g: g["optimizer"]["state"][0].__setitem__("exp_avg", torch.zeros(2))),
                              "optimizer: cannot restore: state[0].exp_avg"),
    "optimizer lr NaN": (_edit(lambda g: g["optimizer"]["param_groups"][0].__setitem__("lr", float("nan"))),
                         "optimizer: cannot restore: param_groups lr nan"),
    "scheduler epoch": (_edit(lambda g: g["scheduler"].__setitem__("last_epoch", "x")), "scheduler: cannot restore"),
    "scheduler extra entry": (_edit(lambda g: g["scheduler"].__setitem__("optimizer", 1)), "unknown entry 'optimizer'"),
    "another task": (_edit(lambda g: g["config"].__setitem__("task", "tin")), "a checkpoint of task 'tin'"),
    "a folder": (lambda p, g: p.unlink() or p.mkdir(), ""),
    "a dangling link": (lambda p, g: p.unlink() or p.symlink_to(p.parent / "gone.pt"), "checkpoint not found"),
}


@pytest.mark.parametrize("name", list(RESUME_CASES))
def test_resume_from_a_bad_checkpoint(capsys, tmp_path, synth_root, trained, name):
    make, message = RESUME_CASES[name]
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    checkpoint = out / "checkpoint.pt"
    make(checkpoint, torch.load(checkpoint, weights_only=True))
    before = _snapshot(out)
    code, err = _train(capsys, *_resume_args(synth_root, out))
    _assert_one_line(code, err, str(checkpoint), message)
    assert _snapshot(out) == before, "a refused resume must leave the run folder as it was"
    assert not (out / "RAN").exists(), "the checkpoint's pickle ran code"


def test_resume_from_another_architecture(capsys, tmp_path, synth_root, trained):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    code, err = _train(capsys, *_resume_args(synth_root, out), "model.backbone.base_channels=8")
    line = _assert_one_line(code, err, str(out / "checkpoint.pt"), "a checkpoint of another model or config")
    assert "model.net." in line


def test_resume_still_works_and_clears_stale_temporaries(capsys, tmp_path, synth_root, trained):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    (out / ".checkpoint.pt.abc123.tmp").write_bytes(b"half")  # what a run killed while saving leaves
    code, err = _train(capsys, *_resume_args(synth_root, out))
    assert code == 0, err
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2 and len(state["history"]) == 2
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------------------- bad truth.parquet

def _truth_root(tmp_path: Path, synth_root: Path, make) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    for name in ("videos", "frames", "ava"):
        (root / name).symlink_to(synth_root / name)
    truth = synth_root / "truth.parquet"
    make(root / "truth.parquet", pq.read_table(truth), truth.read_bytes())
    return root


def _column(table: pa.Table, name: str, values) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


TRUTH_CASES = {
    "truncated": lambda p, t, raw: p.write_bytes(raw[: len(raw) // 2]),
    "empty": lambda p, t, raw: p.write_bytes(b""),
    "a text file": lambda p, t, raw: p.write_text("video_id,split\n"),
    "corrupt pages": lambda p, t, raw: p.write_bytes(raw[:300] + b"\xff\xff\xff" + raw[303:]),
    "no split column": lambda p, t, raw: pq.write_table(t.drop_columns(["split"]), p),
    "split of integers": lambda p, t, raw: pq.write_table(_column(t, "split", pa.array(range(t.num_rows))), p),
    "another table": lambda p, t, raw: pq.write_table(pa.table({"a": [1, 2]}), p),
    "a folder": lambda p, t, raw: p.mkdir(),
}


@pytest.mark.parametrize("name", list(TRUTH_CASES))
def test_bad_truth_parquet(capsys, tmp_path, synth_root, name):
    root = _truth_root(tmp_path, synth_root, TRUTH_CASES[name])
    out = tmp_path / "run"
    code, err = _train(capsys, SYNTH, f"data.root={root}", "data.annotations=truth.parquet", "data.format=records",
                       f"run.out_dir={out}", "run.max_steps=1", *TINY)
    _assert_one_line(code, err, "truth.parquet")
    assert not out.exists()


def test_bad_truth_parquet_video_classifier(capsys, tmp_path, synth_root):
    root = _truth_root(tmp_path, synth_root, TRUTH_CASES["split of integers"])
    code, err = _train(capsys, CONFIGS / "synth_video_classifier.yaml", f"data.root={root}",
                       f"run.out_dir={tmp_path / 'run'}", "run.max_steps=1", "--no-progress", "--no-eval")
    _assert_one_line(code, err, "truth.parquet")


def test_override_meeting_a_bad_section_names_the_file(capsys, tmp_path, synth_root):
    config = tmp_path / "c.yaml"
    config.write_text("task: ava_detector\ndata: {root: x}\nrun: 5\n")
    code, err = _train(capsys, config, "run.max_steps=1", "--check")
    _assert_one_line(code, err, "run is an int in the config", str(config))


@pytest.mark.parametrize("config, override", [
    ("synth_st_activity2vec.yaml", "model.backbone.depth=0"), ("synth_st_activity2vec.yaml", "model.dropout=2.0"),
    ("synth_ava_slowonly.yaml", "model.backbone.depth=18"), ("synth_ava_slowonly.yaml", "model.dropout=-0.5"),
    ("synth_ava_slowonly.yaml", "model.dropout=nan"),
])
def test_model_values_the_model_refuses(capsys, tmp_path, synth_root, config, override):
    """Values the model constructor would refuse (resnet3d depth, ``nn.Dropout``'s p) are config errors naming the
    file and the key, also under ``--check``."""
    code, err = _train(capsys, CONFIGS / config, f"data.root={synth_root}", "--check", override)
    _assert_one_line(code, err, override.split("=")[0] + ":", config)
