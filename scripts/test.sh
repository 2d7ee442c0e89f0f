#!/usr/bin/env bash
# Set up the environment (idempotent) and run the test suite from the repo root.
#   bash scripts/test.sh [pytest args]      (default: -q tests --durations=15)
# The durations list names the slowest tests: CI must stay well inside 90 minutes, and this says where time goes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
VENV="${DISTILL_VENV:-.venv}"
[[ "$VENV" == /* ]] || VENV="$ROOT/$VENV"
(( $# )) || set -- -q tests --durations=15
rc=0
"$VENV/bin/python" -m pytest "$@" || rc=$?
if (( rc == 5 )); then
  echo "[test] FAILED: pytest collected no tests (args: $*)" >&2
  exit 1
fi
exit "$rc"
