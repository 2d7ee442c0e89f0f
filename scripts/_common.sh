# Sourced by the stage scripts (generate.sh, train.sh, eval.sh): finds the repo root and the venv
# python, and defines run_stage <python-module> <config> [overrides...].
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DISTILL_VENV:-.venv}"
[[ "$VENV" == /* ]] || VENV="$ROOT/$VENV"
PY="$VENV/bin/python"
nvidia-smi -L >/dev/null 2>&1 || export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
# vLLM's INFO lines would bury the stages' own progress and summaries; set VLLM_LOGGING_LEVEL=INFO to see them.
export VLLM_LOGGING_LEVEL="${VLLM_LOGGING_LEVEL:-WARNING}"

# A relative config path is taken from the current directory, else from the repo root.
run_stage() {
  local module="$1" config="$2"
  shift 2
  if [[ ! -f "$config" && "$config" != /* && -f "$ROOT/$config" ]]; then config="$ROOT/$config"; fi
  if [[ ! -f "$config" ]]; then
    echo "[$module] FAILED: config file not found: $config" >&2
    return 1
  fi
  if [[ ! -x "$PY" ]]; then
    echo "[$module] FAILED: no virtualenv at $VENV (run: bash scripts/setup.sh)" >&2
    return 1
  fi
  echo "[$module] config=$config overrides=$*"
  "$PY" -m "$module" "$config" "$@"
}
