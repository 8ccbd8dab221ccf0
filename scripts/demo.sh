#!/usr/bin/env bash
# Install what is needed and open 参保通 on the demo county (built on first run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python main.py --demo "$@"
