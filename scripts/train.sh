#!/usr/bin/env bash
# bash scripts/train.sh [CONFIG (default configs/default.yaml)] [overrides...]
source "$(dirname "$0")/_common.sh"
run_stage train "${1:-configs/default.yaml}" "${@:2}"
