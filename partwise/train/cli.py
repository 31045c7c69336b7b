"""``partwise train CONFIG.yaml [key=value ...] [--resume]``: train a task (one process, or under
``torchrun --nproc_per_node N``), evaluate on the validation split, write ``model.pt`` (see :mod:`partwise.train.tasks`)."""
from __future__ import annotations

import argparse

from partwise.clihelp import examples


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model from a YAML config (one process or torchrun DDP), resumable",
        description="Train the task a YAML config names (ava_detector, st_activity2vec, ...). Every key can be "
                    "overridden as key.sub=value. The config is validated before any work starts. Writes "
                    "run.out_dir/{checkpoint.pt, metrics.csv, loss.png, model.pt, eval.json, eval_*.png}. Run the "
                    "same command under 'torchrun --nproc_per_node N -m partwise train ...' for DDP.",
        **examples("partwise train configs/synth_st_activity2vec.yaml data.root=demo/data run.out_dir=demo/model",
                   "partwise train configs/synth_st_activity2vec.yaml run.max_steps=10 --check",
                   "torchrun --nproc_per_node 2 -m partwise train configs/ava_slowonly.yaml --resume"))
    parser.add_argument("config", metavar="CONFIG.yaml", help="task config (see configs/)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. run.max_steps=10")
    parser.add_argument("--resume", action="store_true", help="continue from run.out_dir/checkpoint.pt")
    parser.add_argument("--no-eval", action="store_true", help="skip the end-of-run evaluation")
    parser.add_argument("--check", action="store_true", help="validate the config and build the model, then stop")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from partwise.train.tasks import format_summary, load_task, run_task

    runner = load_task(args.config, args.overrides)
    if args.check:
        model = runner.build_model()
        print(f"{args.config}: ok ({runner.name}, {sum(p.numel() for p in model.parameters()):,} parameters)")
        return 0
    summary = run_task(runner, resume=args.resume, progress=not args.no_progress, evaluate=not args.no_eval)
    text = format_summary(summary)
    if text:
        print(text)
    return 0
