#!/usr/bin/env bash
# The whole pipeline: setup -> generate -> train (KD) -> train (SFT-only ablation) -> eval.
#   bash scripts/pipeline.sh [CONFIG (default configs/default.yaml)] [section.key=value ...]
# Each stage skips work whose output is already complete, so rerunning after a failure continues.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONFIG="${1:-configs/default.yaml}"
(( $# )) && shift

bash "$HERE/setup.sh"
source "$HERE/_common.sh"
trap 'echo "[pipeline] FAILED at the stage above; fix it and rerun the same command to continue" >&2' ERR

start=$SECONDS
echo "[pipeline] config=$CONFIG overrides=$*"
run_stage generate "$CONFIG" "$@"
run_stage train "$CONFIG" "$@"
# Ablation: the same data and steps with no KD term, so the report can show what the soft targets add.
run_stage train "$CONFIG" "$@" train.output_name=student_sft train.w_ce=1.0 train.w_kd=0.0
run_stage eval "$CONFIG" "$@"
echo "[pipeline] done in $((SECONDS - start)) s"
