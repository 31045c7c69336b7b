"""The ``partwise`` command line: a thin layer over the package.

Each command group lives beside the code it drives and contributes ``register(subparsers)``; commands set
``func(args) -> int``. Errors derived from :class:`partwise.errors.PartwiseError` print one line and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys

#: module providing ``register(subparsers)`` for each command group, imported on demand.
COMMAND_GROUPS: dict[str, str] = {
    "data": "partwise.data.cli",
    "synth": "partwise.synth.cli",
    "eval": "partwise.eval.cli",
    "models": "partwise.models.cli",
    "weights": "partwise.models.weights_cli",
    "train": "partwise.train.cli",
    "run": "partwise.infer.cli",
    "view": "partwise.view.cli",
}


def build_parser(groups: list[str] | None = None, subcommand: str | None = None) -> argparse.ArgumentParser:
    """The parser of the given command groups (all by default). ``subcommand``: the word after the group on the
    command line, passed to a group whose ``register`` takes ``only`` so that it imports just that subcommand."""
    parser = argparse.ArgumentParser(
        prog="partwise", description="Part-level human activity understanding. `partwise COMMAND --help` for each.",
        epilog="examples:\n  partwise run examples/real/vtest_0000_0149.mp4 --out runs/street\n"
               "  partwise synth demo/data --videos 4 --seconds 10\n  bash scripts/demo.sh",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"partwise {__import__('partwise').__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in groups or COMMAND_GROUPS:
        try:
            module = importlib.import_module(COMMAND_GROUPS[name])
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("partwise"):
                continue  # command group not built yet
            raise
        if subcommand is not None and "only" in inspect.signature(module.register).parameters:
            module.register(subparsers, only=subcommand)
        else:
            module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from partwise.errors import PartwiseError

    argv = sys.argv[1:] if argv is None else argv
    # Import only the group that is asked for: start-up stays fast and one group's import errors don't hide another.
    groups = [argv[0]] if argv and argv[0] in COMMAND_GROUPS else None
    subcommand = argv[1] if groups and len(argv) > 1 and not argv[1].startswith("-") else None
    parser = build_parser(groups, subcommand)
    args, extra = parser.parse_known_args(argv)
    # Commands with ``key=value`` overrides take them in any position, also after options.
    if extra and isinstance(getattr(args, "overrides", None), list) and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides.extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PartwiseError as exc:
        print(f"partwise: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # before OSError, its base class: output piped into `head` and closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        # A file-system error on a path the user gave (a directory where a file is expected, a dangling link, a
        # loop, no permission) that no reader turned into an InputError: still one line naming the file, exit 2.
        if exc.filename is None:
            raise
        where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else exc.filename
        print(f"partwise: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("partwise: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
