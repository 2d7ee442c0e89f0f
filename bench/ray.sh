#!/usr/bin/env bash
# bash bench/ray.sh: generation on a local Ray pool (1 and 2 workers) vs one process, default teacher
# (see bench/ray.py, bench/README.md). About 10-15 minutes on a 2-core CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi -L >/dev/null 2>&1 || export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
exec "${DISTILL_VENV:-.venv}/bin/python" bench/ray.py "$@"
