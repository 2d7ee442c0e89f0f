#!/usr/bin/env bash
# bash scripts/onpolicy.sh [CONFIG (default configs/default.yaml)] [overrides...]: on-policy rounds from a trained
# student (RUN/student unless onpolicy.init says otherwise).
source "$(dirname "$0")/_common.sh"
run_stage onpolicy "${1:-configs/default.yaml}" "${@:2}"
