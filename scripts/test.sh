#!/usr/bin/env bash
# Install what the tests need and run the whole suite (GUI tests offscreen).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"
