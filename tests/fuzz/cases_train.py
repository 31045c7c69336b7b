"""Fuzz cases for ``partwise train`` and ``partwise models inspect`` (issue 13), run by :func:`fuzzer.run_all`
with the same promise as the file cases (exit 0 or 2, one error line naming the file or key, no traceback,
nothing written outside OUT, no pickle code run):

* **config**: a shipped synthetic config with one mutation -- a value of another type or range at a random key
  (NaN, infinity, negative, 20 digits, a list for a section, a mapping for a number, null, NUL), a renamed or
  deleted key, deep nesting, a YAML alias bomb, bytes damage (truncation, bad bytes, not UTF-8) -- or one
  command-line ``key=value`` override with such a value; then ``partwise train CONFIG --check``;
* **inspect**: a partwise ``model.pt`` or the mmaction2 fixture checkpoint with bytes damage, keys dropped,
  tensors re-shaped, integer keys, non-tensor values, or replaced by a malicious pickle;
* **resume**: a one-step training run's ``checkpoint.pt`` with bytes damage or one entry replaced, then
  ``partwise train ... --resume`` (the run folder must be unchanged when refused).
"""
from __future__ import annotations

import copy
import pickle
import random
import shutil
from pathlib import Path

from tests.fuzz.fuzzer import Case, Marker, mutate_bytes

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ["synth_ava_slowonly.yaml", "synth_st_activity2vec.yaml", "synth_activity2vec_small.yaml",
           "synth_tin.yaml", "synth_person_detector.yaml", "synth_video_classifier.yaml"]
MMACTION2 = ROOT / "tests" / "fixtures" / "mmaction2_slowonly_r50_w16" / "checkpoint.pth"

BAD_VALUES: list = ["str", float("nan"), float("inf"), float("-inf"), -1, -0.5, 0, 10 ** 20, -(10 ** 20), None, [],
                    {}, True, [[1]], {"zzz": 1}, "a\0b", "12345678901234567890", 1e308, "__DEEP__", "__BOMB__"]
BAD_TEXT = ["nan", ".nan", ".inf", "-.inf", "-1", "0", "1e400", "12345678901234567890", "[1, [2]]", "{a: 1}", "",
            "null", "!!binary aGk=", "!!python/object/apply:os.system [true]", "*alias", "[" * 3000 + "]" * 3000,
            "\u00e9", "a\0b", "true", "[]"]
TINY = ["run.batch_size=2", "data.scale_range=[64,72]", "data.test_short_side=64", "data.crop=0",
        "model.backbone.base_channels=4", "--no-progress", "--no-eval"]
BOMB = "[" + ", ".join(["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [
    f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]) + "]"


def _paths(value, prefix=()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    return out


def _dump(values: dict) -> str:
    import yaml

    text = yaml.safe_dump(values, allow_unicode=True, sort_keys=False)
    return text.replace("'__DEEP__'", "[" * 3000 + "]" * 3000).replace("'__BOMB__'", BOMB)


def _mutate_config(values: dict, rng: random.Random) -> tuple[str, dict | None]:
    paths = _paths(values)
    path = rng.choice(paths)
    parent = values
    for key in path[:-1]:
        parent = parent[key]
    kind = rng.random()
    if kind < 0.1:
        parent.pop(path[-1])
        return f"delete {'.'.join(map(str, path))}", values
    if kind < 0.2:
        parent[rng.choice(["zzz", "lrr", 7, "", "run"])] = parent.pop(path[-1])
        return f"rename {'.'.join(map(str, path))}", values
    new = rng.choice(BAD_VALUES)
    parent[path[-1]] = copy.deepcopy(new)
    return f"set {'.'.join(map(str, path))}={str(new)[:20]!r}", values


def config_cases(synth: Path, rng: random.Random, n: int) -> list[Case]:
    """``n`` ``partwise train CONFIG --check`` cases, a third of them with a bad override instead of a bad file."""
    import yaml

    cases = []
    for i in range(n):
        name = CONFIGS[i % len(CONFIGS)]
        text = (ROOT / "configs" / name).read_text()
        sub = random.Random(rng.random())
        values = yaml.safe_load(text)
        state: dict = {}
        override = data = None
        if sub.random() < 0.33:
            key = ".".join(map(str, sub.choice(_paths(values))))
            override = f"{key}={sub.choice(BAD_TEXT)}"
            state["what"] = f"override {override[:60]!r}"
        elif sub.random() < 0.25:
            state["what"], data = mutate_bytes(text.encode(), sub)
        else:
            state["what"], mutated = _mutate_config(values, sub)
            data = _dump(mutated).encode("utf-8", "surrogatepass")

        def prepare(case_dir: Path, data=data, override=override) -> None:
            (case_dir / "in").mkdir()
            if override is None:
                (case_dir / "in" / "c.yaml").write_bytes(data)
            else:
                shutil.copy(ROOT / "configs" / name, case_dir / "in" / "c.yaml")

        def argv(case_dir: Path, override=override) -> list[str]:
            return ["train", str(case_dir / "in" / "c.yaml"), f"data.root={synth}",
                    f"run.out_dir={case_dir / 'out' / 'result'}", "--check", *([override] if override else [])]

        named = ["c.yaml"] + ([override.split("=", 1)[0]] if override else [])
        case = Case(f"train-config {i}: {name} {state['what']}", argv=argv, prepare=prepare, named=named,
                    out="out/result")
        case.state = state  # type: ignore[attr-defined]
        cases.append(case)
    return cases


def _save(obj, path: Path) -> None:
    import torch

    torch.save(obj, path)


def _mutate_weights(source: Path, target: Path, rng: random.Random, marker: str) -> str:
    """One mutation of the checkpoint ``source`` written to ``target``."""
    import torch

    kind = rng.randrange(8)
    if kind <= 1:
        what, data = mutate_bytes(source.read_bytes(), rng)
        target.write_bytes(data)
        return what
    if kind == 2:
        target.write_bytes(pickle.dumps({"state_dict": {"w": Marker(marker)}}))
        return "pickle-reduce"
    if kind == 3:
        _save({"state_dict": {"w": Marker(marker)}}, target)
        return "torch.save-reduce"
    ckpt = torch.load(source, map_location="cpu", weights_only=True)
    state = next((ckpt[k] for k in ("state_dict", "model") if isinstance(ckpt.get(k), dict)), ckpt)
    keys = list(state)
    if kind == 4:
        for key in rng.sample(keys, max(1, int(len(keys) * rng.random()))):
            state.pop(key)
        what = "drop keys"
    elif kind == 5:
        key = rng.choice(keys)
        value = state[key]
        shape = list(value.shape) if hasattr(value, "shape") else [1]
        shape = shape[:-1] if shape and rng.random() < 0.5 else shape + [rng.randint(0, 3)]
        state[key] = torch.zeros(shape)
        what = f"reshape {key} -> {shape}"
    elif kind == 6:
        state[rng.choice([0, 7, -1, 2.5, (1, 2)])] = torch.zeros(1)
        what = "non-string key"
    else:
        key = rng.choice(keys)
        state[key] = rng.choice([1, "x", None, [1, 2], {"a": torch.zeros(1)}, float("nan")])
        what = f"non-tensor value at {key}"
    _save(ckpt, target)
    return what


def inspect_cases(model_file: Path, rng: random.Random, n: int) -> list[Case]:
    """``n`` ``partwise models inspect`` cases on a damaged partwise model file or mmaction2 checkpoint."""
    cases = []
    for i in range(n):
        source = MMACTION2 if i % 2 else model_file
        sub = random.Random(rng.random())
        state: dict = {}
        flags = sub.choice([[], ["--keys"], ["--json"]])

        def prepare(case_dir: Path, source=source, sub=sub, state=state) -> None:
            (case_dir / "in").mkdir()
            state["what"] = _mutate_weights(source, case_dir / "in" / "w.pt", sub, str(case_dir / "PICKLE_RAN"))

        case = Case(f"inspect {i}: {source.name}", prepare=prepare, named=["w.pt"],
                    argv=lambda d, flags=flags: ["models", "inspect", str(d / "in" / "w.pt"), *flags])
        case.state = state  # type: ignore[attr-defined]
        cases.append(case)
    return cases


def train_once(synth: Path, out: Path) -> Path:
    """A one-step run of the synthetic AVA detector into ``out``; its folder (checkpoint.pt, model.pt, ...)."""
    from partwise.cli import main

    code = main(["train", str(ROOT / "configs" / "synth_ava_slowonly.yaml"), f"data.root={synth}",
                 f"run.out_dir={out}", "run.max_steps=1", *TINY])
    assert code == 0, "the training run the resume cases start from failed"
    return out


def resume_cases(synth: Path, trained: Path, rng: random.Random, n: int) -> list[Case]:
    """``n`` ``partwise train ... --resume`` cases from a damaged copy of ``trained``'s checkpoint.pt. The whole
    run folder is OUT: a refused resume must leave it unchanged."""
    import torch

    cases = []
    for i in range(n):
        sub = random.Random(rng.random())
        state: dict = {}

        def prepare(case_dir: Path, sub=sub, state=state) -> None:
            run = case_dir / "out" / "run"
            shutil.copytree(trained, run)
            target = run / "checkpoint.pt"
            if sub.random() < 0.5:
                state["what"] = _mutate_weights(trained / "checkpoint.pt", target, sub, str(case_dir / "PICKLE_RAN"))
                return
            ckpt = torch.load(trained / "checkpoint.pt", weights_only=True)
            key = sub.choice(sorted(ckpt))
            ckpt[key] = sub.choice([None, 1, "x", [], {}, float("nan"), torch.zeros(2), [{"a": 1}], -3])
            state["what"] = f"{key}={str(ckpt[key])[:20]}"
            _save(ckpt, target)

        case = Case(f"resume {i}", prepare=prepare, named=["checkpoint.pt"], out="out/run",
                    argv=lambda d: ["train", str(ROOT / "configs" / "synth_ava_slowonly.yaml"), f"data.root={synth}",
                                    f"run.out_dir={d / 'out' / 'run'}", "run.max_steps=2", *TINY, "--resume"])
        case.state = state  # type: ignore[attr-defined]
        cases.append(case)
    return cases
