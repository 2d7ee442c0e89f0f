#!/usr/bin/env bash
# bash bench/train.sh [--steps N] [--warmup N]: time and peak memory of one training step, KD vs plain SFT,
# on the default student's size (SmolLM2 cut to 15 layers). Writes bench/results/train.json and bench/README.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DISTILL_VENV:-.venv}"
[[ "$VENV" == /* ]] || VENV="$ROOT/$VENV"
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[bench] FAILED: no virtualenv at $VENV (run: bash scripts/setup.sh)" >&2
  exit 1
fi
cd "$ROOT"
exec "$VENV/bin/python" bench/train.py "$@"
