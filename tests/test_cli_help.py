"""Every command's --help has examples; `partwise eval` takes --no-progress (issue 14, item 5)."""
from __future__ import annotations

import pytest

from partwise.cli import build_parser, main

COMMANDS = [[], ["data"], ["data", "ingest"], ["data", "stats"], ["data", "query"], ["data", "validate"],
            ["data", "convert"], ["data", "frames"], ["synth"], ["eval"], ["eval", "ava"], ["eval", "hico"],
            ["eval", "vcoco"], ["eval", "tps"], ["eval", "pasta"], ["eval", "interactiveness"], ["models"],
            ["models", "list"], ["models", "inspect"], ["weights"], ["weights", "install"], ["weights", "list"],
            ["train"], ["run"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "partwise")
def test_help_has_examples(command: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(command + ["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "example" in text.lower()
    assert "partwise" in text.split("example", 1)[-1] or "partwise" in text.lower().split("example", 1)[-1]


@pytest.mark.parametrize("metric", ["ava", "hico", "vcoco", "tps", "pasta", "interactiveness"])
def test_eval_accepts_no_progress(metric: str) -> None:
    parser = build_parser(["eval"])
    required = {"ava": ["--gt", "g", "--pred", "p"], "tps": ["--gt-parts", "a", "--gt-videos", "b",
                                                             "--pred-parts", "c", "--pred-videos", "d"]}
    try:
        args, _ = parser.parse_known_args(["eval", metric, *required.get(metric, []), "--no-progress"])
    except SystemExit:  # a metric with other required options: --no-progress must still be known
        args = None
    action = parser._subparsers._group_actions[0].choices["eval"]._subparsers._group_actions[0].choices[metric]
    assert "--no-progress" in action._option_string_actions
    if args is not None and hasattr(args, "progress"):
        assert args.progress is False


def test_eval_progress_flag_still_accepted() -> None:
    parser = build_parser(["eval"])
    args = parser.parse_args(["eval", "ava", "--gt", "g", "--pred", "p", "--progress"])
    assert args.progress is True
    args = parser.parse_args(["eval", "ava", "--gt", "g", "--pred", "p"])
    assert args.progress is True
    args = parser.parse_args(["eval", "ava", "--gt", "g", "--pred", "p", "--no-progress"])
    assert args.progress is False
