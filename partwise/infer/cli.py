"""``partwise run INPUT --out DIR``: people, tracks, part boxes, part states, actions and activity vectors from
videos or images (see :mod:`partwise.infer.pipeline` for the steps and :mod:`partwise.infer.outputs` for the files).

Exit status: 0 when every input was processed (or already done), 1 when any input failed (each failure is one
``partwise: error: ...`` line on stderr; the other inputs' results are still written), 2 for a usage error.
"""
from __future__ import annotations

import argparse

from partwise.clihelp import examples
from partwise.progress import add_verbose_option


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="part states, actions and tracks for people in videos or images",
        description="Find people (from --boxes, a --detector, or the pose extra), track them, compute part boxes "
                    "and kinematic part states (pose extra), run a model (ST-Activity2Vec, an AVA detector or "
                    "Activity2Vec), classify each video (--video-model), and write Parquet/JSONL rows, an annotated "
                    "video per input and an HTML summary. Models are checkpoint files or names from `partwise "
                    "models list`. Offline: nothing is downloaded.",
        **examples("partwise run examples/real/vtest_0000_0149.mp4 --out runs/street",
                   "partwise run examples/real/basketball1.png --out runs/img --pose mediapipe --no-progress",
                   "partwise run clips/ --out runs/ava --model demo/model/model.pt --detector synth-person-detector "
                   "--ava-csv",
                   "partwise run clips/ --out runs/eval --model synth-st-activity2vec --boxes gt.csv --gt gt.csv"))
    parser.add_argument("input", metavar="INPUT", help="a video, an image, or a folder of videos/images")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (results are added to it)")
    parser.add_argument("--model", metavar="CKPT|NAME",
                        help="st_activity2vec, ava_detector (mmaction2 AVA too) or activity2vec (HAKE's too) "
                             "checkpoint, or a known name (e.g. synth-st-activity2vec; see `partwise models list`)")
    parser.add_argument("--boxes", metavar="FILE", help="person boxes: AVA CSV (GT or detections) or proposals .pkl")
    parser.add_argument("--detector", metavar="CKPT|NAME",
                        help="person_detector checkpoint or name (e.g. synth-person-detector): people without --boxes")
    parser.add_argument("--detector-threshold", type=float, default=0.3,
                        help="minimum --detector person score (default 0.3)")
    parser.add_argument("--video-model", metavar="CKPT|NAME",
                        help="video_classifier checkpoint or name (e.g. synth-video-classifier): each input's class "
                             "(run.json, index.html, and pred_vid_result.json with --tps-json)")
    parser.add_argument("--fps", type=float, default=1.0, help="keyframes per second without --boxes (default 1, AVA)")
    parser.add_argument("--box-threshold", type=float, default=0.9,
                        help="minimum --boxes score (default 0.9, mmaction2's person_det_score_thr)")
    parser.add_argument("--max-people", type=int, default=50,
                        help="people per keyframe at most, the most confident (default 50; a note says when "
                             "keyframes reach it)")
    parser.add_argument("--pose", choices=("auto", "movenet", "mediapipe", "none"), default="auto",
                        help="people and keypoints without --boxes/--detector, and the pose for part boxes and "
                             "kinematic states: auto = movenet (MoveNet MultiPose, embedded; plus CenterNet person "
                             "boxes and SinglePose crops when installed), mediapipe (the optional pose extra), none")
    parser.add_argument("--pose-fps", type=float, default=2.5, help="pose samples per second near keyframes")
    parser.add_argument("--objects", default="auto", metavar="auto|none|NAME",
                        help="COCO objects the body parts touch (hand on a ball): auto (default: centernet when "
                             "installed by `partwise weights install centernet`), none, or a CenterNet weights name")
    parser.add_argument("--object-threshold", type=float, default=0.4,
                        help="minimum object score (default 0.4: lower adds false objects on real footage)")
    parser.add_argument("--topk", type=int, default=5, help="PaSta states kept per person (default 5)")
    parser.add_argument("--state-thr", type=float, default=0.3, dest="label_state_thr", metavar="P",
                        help="annotated video: part states drawn when scoring at least P (default 0.3; states "
                             "without a score, the kinematic ones, always)")
    parser.add_argument("--action-thr", type=float, default=0.5, dest="label_action_thr", metavar="P",
                        help="annotated video: actions drawn when scoring at least P (default 0.5)")
    parser.add_argument("--top-k", type=int, default=3, dest="label_top_k", metavar="K",
                        help="annotated video: at most K part states and K actions per person (default 3; "
                             "--topk is how many PaSta states the rows keep)")
    parser.add_argument("--timestamp-start", type=float, default=None,
                        help="time of the first frame in --boxes' clock (default: 900 for AVA-style files, else 0)")
    parser.add_argument("--gt", metavar="FILE",
                        help="ground truth, an AVA CSV (video,time,x1,y1,x2,y2,action[,person]): after the run, "
                             "person detection AP@0.5 and, with a --model giving actions, AVA frame mAP (official "
                             "protocol) go into run.json and index.html (with the AP chart). Its video ids must be "
                             "the inputs' file stems and its times the run's keyframe times (--boxes from an AVA "
                             "file, or --timestamp-start)")
    parser.add_argument("--labelmap", metavar="MAP.pbtxt", dest="gt_labelmap",
                        help="the classes --gt's action mAP evaluates (default: the shipped AVA v2.2 60-class list)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--tps-json", action="store_true", help="also write the Kinetics-TPS submission JSON")
    parser.add_argument("--ava-csv", action="store_true", help="also write AVA detection CSVs (actions, PaSta)")
    parser.add_argument("--no-video", action="store_true", help="do not write annotated videos")
    parser.add_argument("--overwrite", action="store_true", help="recompute inputs whose results already exist")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_verbose_option(parser)
    parser.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    """A thin layer on the Python API (:func:`partwise.api.run_to_folder`, what ``partwise.run(..., out=DIR)``
    runs); a model trained on synthetic data prints one ``partwise: warning: ...`` line on stderr before any input
    is processed (the pipeline's default ``warn``)."""
    from partwise.api import run_to_folder
    from partwise.infer.pipeline import distributed_rank

    options = dict(fps=args.fps, model=args.model, boxes=args.boxes, detector=args.detector,
                   detector_threshold=args.detector_threshold, video_model=args.video_model,
                   box_threshold=args.box_threshold,
                   max_people=args.max_people, pose=args.pose, pose_fps=args.pose_fps, topk=args.topk,
                   timestamp_start=args.timestamp_start, video=not args.no_video,
                   objects=args.objects, object_threshold=args.object_threshold,
                   label_state_thr=args.label_state_thr, label_action_thr=args.label_action_thr,
                   label_top_k=args.label_top_k, gt=args.gt, gt_labelmap=args.gt_labelmap,
                   progress=not args.no_progress)
    summary = run_to_folder(args.input, args.out, workers=args.workers, tps_json=args.tps_json,
                            ava_csv=args.ava_csv, overwrite=args.overwrite, **options)
    rank, world = distributed_rank()
    where = f"rank {rank} of {world}: " if world > 1 else ""
    print(f"{where}{len(summary.done)} processed, {len(summary.skipped)} already done, {len(summary.failed)} failed")
    if rank == 0:
        for name, path in summary.merged.items():
            print(f"{name}: {path}")
        for note in summary.notes:
            print(f"note: {note}")
    for vid, error in summary.failed:  # the failed inputs, last (also in run.json "failed"); exit status 1
        print(f"failed: {vid}: {error}")
    return 1 if summary.failed else 0
