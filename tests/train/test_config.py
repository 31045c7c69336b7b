from dataclasses import dataclass, field

import pytest

from partwise.errors import ConfigError
from partwise.train.config import MAX_VALUES, apply_overrides, check_range, coerce, load_config, load_yaml
from partwise.train.engine import OptimConfig, RunConfig, ScheduleConfig


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


@pytest.mark.parametrize("value, tp, message", [
    (float("nan"), float, "x: expected a finite number, got nan"),
    (float("inf"), float, "x: expected a finite number, got inf"),
    (10 ** 20, float, None),  # a big integer is a finite number
    (10 ** 400, float, "x: expected a finite number"),
    (2 ** 63, int, "x: 9223372036854775808 is out of range"),
    (-(2 ** 63) + 1, int, None),
    ("a\0b", str, "x: NUL character"),
    ([1], dict, "x: expected a mapping"),
    ({"a": 1}, list, "x: expected a list"),
])
def test_coerce_refuses_values_no_setting_can_hold(value, tp, message):
    if message is None:
        coerce(value, tp, "x")
        return
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        coerce(value, tp, "x")


def test_check_range():
    check_range("k", 0.5, 0, 1)
    for value, low, high, message in [(-1, 0, None, "k: expected a value at least 0, got -1"),
                                      (2.0, 0, 1, "k: expected a value between 0 and 1, got 2.0"),
                                      (float("nan"), None, None, "k: expected a finite number, got nan")]:
        with pytest.raises(ConfigError, match=message):
            check_range("k", value, low, high)


@pytest.mark.parametrize("cls, kwargs, message", [
    (OptimConfig, {"lr": -0.1}, "optim.lr: expected a value at least 0"),
    (OptimConfig, {"name": "adam"}, "optim.name: unknown optimizer 'adam'"),
    (OptimConfig, {"nesterov": True, "momentum": 0.0}, "optim.nesterov: Nesterov momentum needs"),
    (ScheduleConfig, {"restart_mult": 0}, "schedule.restart_mult: expected a value at least 1"),
    (ScheduleConfig, {"milestones": [3, -1]}, r"schedule.milestones\[1\]: expected a value at least 0"),
    (ScheduleConfig, {"min_lr_factor": 1.5}, "schedule.min_lr_factor: expected a value between 0 and 1"),
    (RunConfig, {"batch_size": 0}, "run.batch_size: expected a value at least 1"),
    (RunConfig, {"seed": 2 ** 32}, "run.seed: expected a value between 0 and"),
    (RunConfig, {"out_dir": ""}, "run.out_dir: expected a folder path"),
])
def test_engine_sections_refuse_meaningless_values(cls, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        cls(**kwargs)


def test_overrides_nested_too_deeply_or_into_a_value():
    with pytest.raises(ConfigError, match="override a.b: the value is nested too deeply"):
        apply_overrides({}, ["a.b=" + "[" * 10_000 + "]" * 10_000])
    with pytest.raises(ConfigError, match="override 'a.b.c=1': a.b is an int in the config, not a mapping"):
        apply_overrides({"a": {"b": 3}}, ["a.b.c=1"])
    with pytest.raises(ConfigError, match="override 'a..b=1': empty key name"):
        apply_overrides({}, ["a..b=1"])
    # text that is not YAML stays the plain string, as before
    assert apply_overrides({}, ["a=[unclosed"]) == {"a": "[unclosed"}


def test_alias_bomb_is_refused_without_expanding_it(tmp_path):
    levels = ["x0: &x0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]" for i in range(1, 9)]  # 10**9 values
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(levels) + "\n")
    with pytest.raises(ConfigError, match=f"bomb.yaml: more than {MAX_VALUES:,} values once its aliases"):
        load_yaml(path)
    path.write_text("a: &a [1, 2]\nb: *a\n")  # a small alias is fine
    assert load_yaml(path) == {"a": [1, 2], "b": [1, 2]}
