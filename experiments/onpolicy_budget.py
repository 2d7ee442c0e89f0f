"""Does the chosen on-policy variant gain from a larger on-policy budget? The same rounds after the same off-policy
KD student, with twice the rounds, or twice the samples per prompt (and twice the steps per round, so every sample
is trained on once), scored on the validation prompts.

    python experiments/onpolicy_budget.py RUN VALIDATION_RUN

Run after `python experiments/onpolicy.py RUN ...`: it reuses RUN-onpolicy's SFT-only, KD and KD-then-chosen
students and reads the chosen variant from docs/results/onpolicy.json. Writes docs/results/onpolicy_budget.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import evaluate, summary
from onpolicy import (CANDIDATES, PROMPTS_PER_ROUND, ROUNDS, STEPS_PER_ROUND, manifest_counts, onpolicy,
                      relative_to_sft, round_trend, teacher_tokens)

import results  # noqa: E402

BUDGETS = {  # name suffix -> overrides on top of the chosen variant
    "rounds_x2": [f"onpolicy.rounds={ROUNDS * 2}"],
    "samples_x2": ["onpolicy.samples_per_prompt=2", f"onpolicy.steps_per_round={STEPS_PER_ROUND * 2}"],
}


def main(argv: list[str]) -> int:
    run, val = Path(argv[0]), Path(argv[1])
    exp = run.parent / f"{run.name}-onpolicy"
    chosen = json.loads((results.RESULTS / "onpolicy.json").read_text())["config"]["chosen"]
    base = f"kd_then_{chosen}"
    for name in ("student_sft", "student", base):
        if not (exp / name / "train_summary.json").is_file():
            sys.exit(f"{exp / name}: not trained; run experiments/onpolicy.py {run} ... first")
    walls = {m: summary(exp / m)["wall_s"] for m in ("student_sft", "student")}
    walls[base] = walls["student"] + summary(exp / base)["wall_s"]
    for suffix, overrides in BUDGETS.items():
        walls[f"{base}_{suffix}"] = walls["student"] + onpolicy(exp, f"{base}_{suffix}", exp / "student",
                                                                *CANDIDATES[chosen], *overrides)
    report = evaluate(run.parent / f"{run.name}-onpolicy-budget-val", {m: str(exp / m) for m in walls},
                      "prompts/validation.jsonl", val / "shards" / "train", "eval.speed_prompts=4",
                      train_shards=run / "shards" / "train")
    offline = manifest_counts(run / "shards" / "train")["tokens"]
    sft = report["models"]["student_sft"]
    rows = []
    for name in walls:
        m, s = report["models"][name], summary(exp / name)
        budget = "off-policy only" if "onpolicy_config" not in s else (
            f"{s['onpolicy_config']['rounds']} rounds x {PROMPTS_PER_ROUND} prompts x "
            f"{s['onpolicy_config']['samples_per_prompt']} samples, {s['steps']} steps")
        rows.append([name, budget, teacher_tokens(exp / name, name, offline), round(walls[name]), m["heldout_kl"],
                     m["own_answer_reverse_kl"], relative_to_sft(m, sft), m["repetition_rate"], m["cutoff_rate"],
                     *round_trend(exp / name)])
    results.record(
        "onpolicy_budget", "A larger on-policy budget for the chosen variant, on the validation prompts",
        ["model", "on-policy budget", "teacher tokens", "wall (s)", "validation KL", "own-answer reverse KL",
         "mean of both vs SFT", "repetition", "cut off", "samples ending in EOS, first -> last round",
         "teacher logprob of the samples, first -> last round"], rows,
        f"python experiments/onpolicy_budget.py {run} {val}",
        {"chosen": chosen, "budgets": BUDGETS, "candidate": CANDIDATES[chosen]},
        f"Every on-policy row starts from the same off-policy KD student ({chosen}, chosen in "
        "docs/results/onpolicy_validation.json). Wall: the training stages' own time on this machine, KD included. "
        "Both KLs are over the teacher's top-k plus a tail class (lower bounds).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
