#!/usr/bin/env bash
# bash bench/generate.sh: the generate-stage bench on the default teacher (see bench/generate.py, bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi -L >/dev/null 2>&1 || export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
exec "${DISTILL_VENV:-.venv}/bin/python" bench/generate.py "$@"
