# Sourced by the stage scripts (generate.sh, train.sh, eval.sh): finds the repo root and the venv, and defines
# run_stage <stage> <config> [overrides...], which runs `distill <stage>` (the CPU engine defaults and the routing
# of library logs to RUN/logs/ are the command's own, so the scripts add nothing to its environment).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DISTILL_VENV:-.venv}"
[[ "$VENV" == /* ]] || VENV="$ROOT/$VENV"
DISTILL="$VENV/bin/distill"

# A relative config path is taken from the current directory, else from the repo root.
run_stage() {
  local stage="$1" config="$2"
  shift 2
  if [[ ! -f "$config" && "$config" != /* && -f "$ROOT/$config" ]]; then config="$ROOT/$config"; fi
  if [[ ! -f "$config" ]]; then
    echo "[$stage] FAILED: config file not found: $config" >&2
    return 1
  fi
  if [[ ! -x "$DISTILL" ]]; then
    echo "[$stage] FAILED: no distill command at $DISTILL (run: bash scripts/setup.sh)" >&2
    return 1
  fi
  echo "[$stage] config=$config overrides=$*"
  "$DISTILL" "$stage" "$config" "$@"
}
