#!/usr/bin/env bash
# bash scripts/generate.sh [CONFIG (default configs/default.yaml)] [overrides...]
source "$(dirname "$0")/_common.sh"
run_stage generate "${1:-configs/default.yaml}" "${@:2}"
