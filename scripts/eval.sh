#!/usr/bin/env bash
# bash scripts/eval.sh [CONFIG (default configs/default.yaml)] [overrides...]
source "$(dirname "$0")/_common.sh"
run_stage eval "${1:-configs/default.yaml}" "${@:2}"
