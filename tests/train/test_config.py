from dataclasses import dataclass, field

import pytest

from partwise.errors import ConfigError
from partwise.train.config import apply_overrides, load_config
from partwise.train.engine import OptimConfig, RunConfig


@dataclass
class Data:
    root: str
    clip_len: int = 8


@dataclass
class Task:
    data: Data
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    classes: list[int] = field(default_factory=list)
    note: str | None = None


def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_loads_nested_with_overrides(tmp_path):
    path = write(tmp_path, "data: {root: /d}\noptim: {lr: 1}\nclasses: [1, 2]\n")
    cfg = load_config(Task, path, ["optim.lr=0.5", "run.max_steps=7", "data.clip_len=4"])
    assert cfg.data.root == "/d" and cfg.data.clip_len == 4 and cfg.optim.lr == 0.5 and isinstance(cfg.optim.lr, float)
    assert cfg.run.max_steps == 7 and cfg.classes == [1, 2] and cfg.note is None


@pytest.mark.parametrize("text,overrides,message", [
    ("data: {root: /d}\noptim: {lrr: 1}\n", [], "optim.lrr: unknown key"),
    ("data: {root: /d}\noptim: {lr: fast}\n", [], "optim.lr: expected a number, got 'fast'"),
    ("data: {root: /d}\nrun: {max_steps: 1.5}\n", [], "run.max_steps: expected an integer"),
    ("data: {clip_len: 4}\n", [], "data.root: required key is missing"),
    ("data: {root: /d}\nclasses: [1, x]\n", [], "classes[1]: expected an integer"),
    ("data: {root: /d}\n", ["run.amp=maybe"], "run.amp: expected true or false"),
    ("data: [\n", [], "invalid YAML"),
])
def test_bad_configs_are_one_line_errors(tmp_path, text, overrides, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(Task, path, overrides)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_override_syntax():
    assert apply_overrides({"a": {"b": 1}}, ["a.c=[1, 2]", "d=x"]) == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    with pytest.raises(ConfigError):
        apply_overrides({}, ["novalue"])
