#!/usr/bin/env bash
# Set up (if needed) and run the test suite. The pose extra (mediapipe, offline BlazePose) is installed so that its
# tests run; set EXTRAS=dev to skip it (those tests are then skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=${EXTRAS:-dev,pose} bash scripts/setup.sh
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
.venv/bin/python -m pytest tests "$@"
