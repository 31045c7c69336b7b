#!/usr/bin/env bash
# The main job on a fresh machine, offline after setup: set up, run `partwise run` with its real default on a real
# street clip (people, tracks, poses, part states) and show the annotated video; then make a synthetic dataset,
# ingest it into a Parquet store and print its statistics, train a small
# ST-Activity2Vec on its training videos (250 steps, under two minutes on a laptop CPU), then run `partwise run` on a
# held-out clip -- people from the shipped synthetic person detector, part states and actions from the model just
# trained, the video's class from the shipped synthetic video classifier -- and show where the annotated video and the
# tables are, a few rows, and the AVA frame mAP of the output against the clip's ground truth.
#
#   bash scripts/demo.sh            # results under demo/ (DEMO_DIR=... to change); re-running reuses what exists
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
DEMO_DIR=${DEMO_DIR:-demo}
DATA="$DEMO_DIR/data"
MODEL_DIR="$DEMO_DIR/model"
OUT="$DEMO_DIR/run"

if [ ! -x .venv/bin/partwise ]; then
    bash scripts/setup.sh
fi
PY=.venv/bin/python
PARTWISE=.venv/bin/partwise

echo "== 1/6 real footage: partwise run with its real default on a 15 s street clip (examples/real)"
# People and keypoints from Google's MoveNet MultiPose (embedded, Apache-2.0; plus CenterNet person boxes and
# MoveNet SinglePose crops when setup installed them), tracked; part boxes and kinematic part states per person.
REAL_OUT="$DEMO_DIR/real"
"$PARTWISE" run examples/real/vtest_0000_0149.mp4 --out "$REAL_OUT" --tps-json --overwrite --no-progress
"$PY" - "$REAL_OUT" <<'EOF'
import collections
import sys
from pathlib import Path

import av
import pyarrow.parquet as pq

out = Path(sys.argv[1])
rows = pq.read_table(out / "persons.parquet").to_pylist()
per_second = collections.Counter(int(r["time_s"]) for r in rows)
tracks = collections.Counter(r["track_id"] for r in rows)
print(f"{len(rows)} person rows at {len(per_second)} keyframes (people per keyframe: "
      f"{' '.join(str(per_second[t]) for t in sorted(per_second))}); {len(tracks)} tracks")
legs = collections.Counter(s for r in rows for s in r["kinematic"] if s.split(":")[0].endswith(("leg", "foot")))
print("leg and foot states:", ", ".join(f"{s} {n}" for s, n in legs.most_common(6)))
video = out / "videos" / "vtest_0000_0149" / "annotated.mp4"
with av.open(str(video)) as container:
    for i, frame in enumerate(container.decode(video=0)):
        if i == 90:
            frame.to_image().save(out / "frame_0090.png")
            break
print(f"annotated video: {video}\nstill frame:     {out / 'frame_0090.png'}\nsummary page:    {out / 'index.html'}")
EOF

echo "== 2/6 synthetic videos (stick figures whose drawn poses are their labels)"
if [ ! -f "$DATA/synth.json" ]; then
    "$PARTWISE" synth "$DATA" --seed 0 --videos 4 --seconds 10 --no-progress | head -n 1
else
    echo "reusing $DATA"
fi
VAL_VIDEO=$("$PY" -c "import json,sys; s=json.load(open(sys.argv[1])); print(next(v['video_id'] for v in s['videos'] if v['split']=='val'))" "$DATA/synth.json")

echo "== 3/6 ingest its HAKE-AVA PaSta and Kinetics-TPS annotations into a Parquet store; statistics"
rm -rf "$DEMO_DIR/store"
"$PARTWISE" data ingest hake-ava "$DATA/hake_ava" --out "$DEMO_DIR/store" --no-progress
"$PARTWISE" data ingest kinetics-tps "$DATA/kinetics_tps" --out "$DEMO_DIR/store" --no-progress
"$PARTWISE" data stats "$DEMO_DIR/store" | head -n 40
echo "people whose hand holds something, by video:"
"$PARTWISE" data query "$DEMO_DIR/store" "SELECT video_id, count(*) AS persons FROM persons
    WHERE list_contains(pasta, 'hand: hold') GROUP BY video_id ORDER BY video_id"

echo "== 4/6 train a small ST-Activity2Vec on the training videos (250 steps)"
if [ ! -f "$MODEL_DIR/model.pt" ]; then
    "$PARTWISE" train configs/synth_st_activity2vec.yaml "data.root=$DATA" "run.out_dir=$MODEL_DIR" run.max_steps=250
else
    echo "reusing $MODEL_DIR/model.pt"
fi

echo "== 5/6 partwise run on the held-out clip $VAL_VIDEO"
# --timestamp-start 900: report keyframe times on the AVA clock (900 s + seconds into the clip), as the GT CSV does
"$PARTWISE" run "$DATA/videos/$VAL_VIDEO.mp4" --out "$OUT" --model "$MODEL_DIR/model.pt" \
    --detector synth-person-detector --video-model synth-video-classifier --timestamp-start 900 \
    --ava-csv --tps-json --overwrite --no-progress

echo "== 6/6 results"
echo "annotated video: $OUT/videos/$VAL_VIDEO/annotated.mp4"
echo "summary page:    $OUT/index.html"
echo "tables:          $OUT/persons.parquet  $OUT/persons.jsonl"
echo "AVA detections:  $OUT/ava_detections.csv"
echo "Kinetics-TPS:    $OUT/kinetics_tps/pred_part_result.json  $OUT/kinetics_tps/pred_vid_result.json"
"$PY" - "$OUT/persons.parquet" "$OUT/kinetics_tps/pred_vid_result.json" "$DATA/kinetics_tps/gt_vid_result.json" <<'EOF'
import json
import sys

import pyarrow.parquet as pq

from partwise import vocab

ava80 = vocab.load("ava80")
rows = pq.read_table(sys.argv[1]).to_pylist()
predicted, truth = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
for video, label in predicted.items():
    print(f"video class of {video}: predicted {label!r}, ground truth {truth.get(video, '?')!r}")
print(f"\n{len(rows)} person rows; the first six:")
print(f"{'time':>6} {'track':>5}  {'top part states':<58} actions")
for r in rows[:6]:
    states = ", ".join(f"{s} {p:.2f}" for s, p in zip(r["pasta"][:3], r["pasta_scores"][:3]))
    actions = ", ".join(ava80.name_of(a) for a in r["actions"]) or "-"
    print(f"{r['time_s']:>6.0f} {r['track_id']:>5}  {states:<58} {actions}")
EOF
echo
echo "AVA frame mAP of the output against the clip's ground truth (60 classes, official protocol):"
"$PARTWISE" eval ava --gt "$DATA/ava/ava_val_v2.2.csv" --pred "$OUT/ava_detections.csv" \
    --labelmap "$DATA/ava/ava_action_list_v2.2_for_activitynet_2019.pbtxt" --json \
    | "$PY" -c "import json,sys; r=json.load(sys.stdin); print(f\"  action mAP {100 * r['mAP']:.2f} (%) over the classes present\")"
echo "(step 3 printed the label-frequency prior of the training run for comparison)"
