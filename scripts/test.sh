#!/usr/bin/env bash
# Set up (if needed) and run the test suite. The pose extra (mediapipe, offline BlazePose) is installed so that its
# tests run; set EXTRAS=dev to skip it (those tests are then skipped). The viewer's browser tests need Debian's
# chromium + chromium-driver and selenium: scripts/browser-deps.sh installs them when missing (BROWSER_DEPS=0 skips
# that; the browser tests then skip with a reason).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=${EXTRAS:-dev,pose} bash scripts/setup.sh
if [ "${BROWSER_DEPS:-1}" != 0 ]; then
    bash scripts/browser-deps.sh || echo "test: browser dependencies not installed; the browser tests will be skipped"
fi
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
.venv/bin/python -m pytest tests "$@"
