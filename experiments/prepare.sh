#!/usr/bin/env bash
# The teacher shards the experiment scripts read, made with the default run's settings (configs/default.yaml):
#   runs/exp      RUN: 240 training answers (shards/train) and 60 held-out answers (shards/heldout)
#   runs/exp-val  VALIDATION_RUN: answers to prompts/validation.jsonl (shards/train), where choices are made
# Then, e.g., `python experiments/kd_alone.py runs/exp runs/exp-val`. A finished shard set is kept as it is
# (generation resumes), so running this again costs only the engine starts.
#   bash experiments/prepare.sh [RUN] [VALIDATION_RUN]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUN="${1:-runs/exp}"
VAL="${2:-runs/exp-val}"
.venv/bin/distill generate configs/default.yaml "run.dir=$RUN"
.venv/bin/distill generate configs/default.yaml "run.dir=$VAL" generate.prompts=prompts/validation.jsonl \
  generate.heldout_prompts=null
