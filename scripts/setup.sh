#!/usr/bin/env bash
# Create .venv and install partwise into it. torch is pinned in the same pip command as everything that depends on
# it: an unpinned torch pulls several GB of CUDA wheels on a CPU machine.
#   EXTRAS: optional extras to install (default "dev"; scripts/test.sh adds "pose" for the mediapipe tests).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
EXTRAS=${EXTRAS:-dev}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==${TORCH_VERSION}" -e ".[${EXTRAS}]"
echo "partwise installed in $(pwd)/.venv (extras: ${EXTRAS})"
