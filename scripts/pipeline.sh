#!/usr/bin/env bash
# Set up (idempotent), then the whole pipeline: generate -> train (KD) -> train (SFT-only ablation) -> eval.
#   bash scripts/pipeline.sh [CONFIG (default configs/default.yaml)] [section.key=value ...]
# Each stage skips work whose output is already complete, so rerunning after a failure continues.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONFIG="${1:-configs/default.yaml}"
(( $# )) && shift

bash "$HERE/setup.sh"
source "$HERE/_common.sh"
run_stage pipeline "$CONFIG" "$@"
