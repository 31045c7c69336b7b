"""``partwise synth OUT --seed S --videos N``: generate the synthetic part-state dataset (see
:mod:`partwise.synth.generator` for the world, the timeline and the layout)."""
from __future__ import annotations

import argparse
import re

from partwise.clihelp import examples


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected WxH such as 320x240, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def _people(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected K or MIN-MAX such as 2-4, got {text!r}")
    lo = int(match.group(1))
    hi = int(match.group(2)) if match.group(2) else lo
    if lo > hi:
        raise argparse.ArgumentTypeError(f"--people {text}: MIN is larger than MAX")
    return lo, hi


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth", help="generate synthetic videos of stick figures with part-state labels in the real formats",
        description="Generate short videos of articulated figures whose drawn poses carry their PaSta, AVA action "
                    "and Kinetics-TPS labels, written as AVA, HAKE-AVA, GIO and Kinetics-TPS annotations plus a "
                    "canonical truth.parquet. Deterministic per seed.",
        **examples("partwise synth demo/data --seed 0 --videos 4 --seconds 10",
                   "partwise synth /tmp/tiny --videos 1 --seconds 3 --size 160x120 --no-progress"))
    parser.add_argument("out", metavar="OUT", help="output folder (created; must be absent or empty)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--videos", type=int, default=4, help="number of videos (default 4)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each video in seconds (default 10)")
    parser.add_argument("--size", type=_size, default=(320, 240), metavar="WxH", help="frame size (default 320x240)")
    parser.add_argument("--people", type=_people, default=(2, 4), metavar="K|MIN-MAX",
                        help="people per video, fixed or a range (default 2-4)")
    parser.add_argument("--no-frames", action="store_true", help="do not extract frames/<vid>/img_%%05d.jpg")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_synth)


def cmd_synth(args: argparse.Namespace) -> int:
    from partwise.synth.generator import LAYOUT, SynthConfig, generate

    cfg = SynthConfig(seed=args.seed, videos=args.videos, seconds=args.seconds, width=args.size[0],
                      height=args.size[1], people=args.people, frames=not args.no_frames)
    from partwise.io import check_output

    check_output(args.out, "dir")
    summary = generate(args.out, cfg, progress=not args.no_progress, overwrite=args.overwrite)
    videos = summary["videos"]
    n_train = sum(v["split"] == "train" for v in videos)
    print(f"wrote {len(videos)} videos ({n_train} train, {len(videos) - n_train} val), "
          f"{summary['records']['keyframes']} keyframe persons, {summary['records']['tps_frames']} TPS frame persons "
          f"to {args.out}")
    print(LAYOUT.rstrip())
    return 0

