"""``partwise eval METRIC ...``: each metric module provides ``add_arguments(parser)`` and ``run(args)``.

``run`` returns an :class:`~partwise.eval.report.EvalResult` (or a list of them, printed in order). Common options
``--json`` and ``--plot FILE.png`` are added here.
"""
from __future__ import annotations

import argparse
import importlib

from partwise.clihelp import examples

#: metric name -> (module, one-line help)
METRICS: dict[str, tuple[str, str]] = {
    "ava": ("partwise.eval.ava", "AVA frame mAP @ IoU 0.5 (official, mmaction2 or slowfast protocol; PaSta variant)"),
    "hico": ("partwise.eval.hico", "HICO-DET mAP: Full/Rare/Non-rare, Default and Known-Object"),
    "vcoco": ("partwise.eval.vcoco", "V-COCO role AP, scenario 1 and 2"),
    "tps": ("partwise.eval.tps", "Kinetics-TPS part-state-conditioned action score"),
    "pasta": ("partwise.eval.pasta", "PaSta and verb instance AP as Activity2Vec reports it"),
    "interactiveness": ("partwise.eval.interactiveness", "TIN binary interactiveness AP"),
}


#: examples in each metric's --help
EXAMPLES: dict[str, tuple[str, ...]] = {
    "ava": ("partwise eval ava --gt ava_val_v2.2.csv --pred ava_detections.csv "
            "--labelmap ava_action_list_v2.2_for_activitynet_2019.pbtxt",
            "partwise eval ava --gt ava_val_v2.2.csv --pred ava_detections.csv "
            "--labelmap ava_action_list_v2.2_for_activitynet_2019.pbtxt --plot ava_ap.png --no-progress",
            "partwise eval ava ... --json | jq .mAP"),
    "hico": ("partwise eval hico --help   (the ground-truth and detection options of your HICO-DET copy)",
             "partwise eval hico ... --plot hico_ap.png"),
    "vcoco": ("partwise eval vcoco --help   (ground truth and detections of V-COCO)",
              "partwise eval vcoco ... --json"),
    "tps": ("partwise eval tps --gt-parts gt_part_result.json --gt-videos gt_vid_result.json "
            "--pred-parts pred_part_result.json --pred-videos pred_vid_result.json",
            "partwise eval tps ... --plot tps.png"),
    "pasta": ("partwise eval pasta --help   (ground truth and detections as Activity2Vec writes them)",
              "partwise eval pasta ... --plot pasta_ap.png"),
    "interactiveness": ("partwise eval interactiveness --help",
                        "partwise eval interactiveness ... --json"),
}


def register(subparsers, only: str | None = None) -> None:
    """Add ``partwise eval`` and its metrics; ``only`` (the metric named on the command line, when known) imports
    just that metric's module: the others pull in scipy and pyarrow, which would triple the start-up of a small
    evaluation."""
    parser = subparsers.add_parser("eval", help="evaluate predictions with the official protocols",
                                   description="Evaluate predictions with the official protocols; one METRIC per "
                                               "call. mAP is printed as a percentage (36.44); --json keeps fractions.",
                                   **examples("partwise eval ava --gt ava_val_v2.2.csv --pred ava_detections.csv "
                                              "--labelmap ava_action_list_v2.2_for_activitynet_2019.pbtxt --plot ap.png",
                                              "partwise eval tps --gt-parts gt_part_result.json --gt-videos "
                                              "gt_vid_result.json --pred-parts pred_part_result.json --pred-videos "
                                              "pred_vid_result.json --json"))
    metric_parsers = parser.add_subparsers(dest="metric", metavar="METRIC")
    chosen = {only: METRICS[only]} if only in METRICS else METRICS
    for name, (module_path, help_text) in chosen.items():
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as exc:
            if exc.name == module_path:
                continue
            raise
        sub = metric_parsers.add_parser(name, help=help_text, description=help_text,
                                        **examples(*EXAMPLES.get(name, (f"partwise eval {name} --help",))))
        module.add_arguments(sub)
        if "--progress" in sub._option_string_actions:  # progress by default, as in every other command
            sub._option_string_actions["--progress"].help = "show progress (the default; kept for old scripts)"
            sub.set_defaults(progress=True)
            sub.add_argument("--no-progress", dest="progress", action="store_false", help="no progress output")
        else:
            sub.add_argument("--no-progress", action="store_true", help="no progress output (accepted everywhere)")
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
