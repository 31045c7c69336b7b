"""``partwise eval METRIC ...``: each metric module provides ``add_arguments(parser)`` and ``run(args)``.

``run`` returns an :class:`~partwise.eval.report.EvalResult` (or a list of them, printed in order). Common options
``--json`` and ``--plot FILE.png`` are added here.
"""
from __future__ import annotations

import argparse
import importlib

#: metric name -> (module, one-line help)
METRICS: dict[str, tuple[str, str]] = {
    "ava": ("partwise.eval.ava", "AVA frame mAP @ IoU 0.5 (official, mmaction2 or slowfast protocol; PaSta variant)"),
    "hico": ("partwise.eval.hico", "HICO-DET mAP: Full/Rare/Non-rare, Default and Known-Object"),
    "vcoco": ("partwise.eval.vcoco", "V-COCO role AP, scenario 1 and 2"),
    "tps": ("partwise.eval.tps", "Kinetics-TPS part-state-conditioned action score"),
    "pasta": ("partwise.eval.pasta", "PaSta and verb instance AP as Activity2Vec reports it"),
    "interactiveness": ("partwise.eval.interactiveness", "TIN binary interactiveness AP"),
}


def register(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="evaluate predictions with the official protocols")
    metric_parsers = parser.add_subparsers(dest="metric", metavar="METRIC")
    for name, (module_path, help_text) in METRICS.items():
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as exc:
            if exc.name == module_path:
                continue
            raise
        sub = metric_parsers.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
        sub.add_argument("--plot", metavar="FILE.png", help="write per-class AP bars and PR curves")
        sub.set_defaults(func=_runner(module))
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _runner(module):
    def run(args: argparse.Namespace) -> int:
        results = module.run(args)
        if not isinstance(results, (list, tuple)):
            results = [results]
        if args.json:
            import json

            if len(results) == 1:
                print(results[0].to_json())
            else:
                print(json.dumps([r.to_json_dict() for r in results]))
        else:
            print("\n\n".join(r.format_table() for r in results))
        if args.plot:
            results[0].plot(args.plot)
        return 0

    return run
