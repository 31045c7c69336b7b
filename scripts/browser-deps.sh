#!/usr/bin/env bash
# Install what the viewer's browser tests (tests/view/test_browser.py) need: Debian's chromium and chromium-driver
# (apt, needs root) and selenium in the project's venv. Without them those tests are skipped with a reason.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
fi
.venv/bin/python -c "import selenium" 2>/dev/null || .venv/bin/python -m pip install -q "selenium>=4.11"
