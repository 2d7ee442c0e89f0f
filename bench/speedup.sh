#!/usr/bin/env bash
# bash bench/speedup.sh [RUN] [--pairs N]: the run's student against its teacher, timed in turns (bench/speedup.py).
# About 8 minutes on a 2-core CPU machine for the default 5 pairs.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${DISTILL_VENV:-.venv}/bin/python" bench/speedup.py "$@"
