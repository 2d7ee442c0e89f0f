"""Can a loss stop the default student's loops? Token-level unlikelihood (train.w_unlikelihood: push down the
probability of repeating the answer's earlier tokens where the teacher's answer does not, Welleck et al. 2019) beside
the default KD + CE, at the default budget: the default recipe on the default run's shards, once per weight. Every
student and the teacher answer the validation prompts greedily, as in the default report.

    python experiments/unlikelihood.py RUN VALIDATION_RUN

RUN holds the default run's shards (train and heldout); VALIDATION_RUN holds teacher shards of
prompts/validation.jsonl in shards/train. Choices are made on validation, in two stages:
1. the rule fixed before the first run: on validation prompts 1-60, the weight whose student meets the most of the
   default run's targets for a student that chats, then the lower validation KL. It kept 0: no weight met another
   target, and the KL rose slightly while the loops fell.
2. the rule fixed after stage 1, before the answers to validation prompts 61-120 were generated: on those prompts,
   the weight with the lowest repetition rate among those whose validation KL is at most 2% above the default's,
   if its repetition is at least 0.05 below the default's; else 0.
The held-out KL (teacher-forced on RUN's held-out shards) is reported beside them. Writes
docs/results/unlikelihood.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import (FIFTEEN_LAYERS, KD_AND_CE, NO_UPSAMPLE, ROOT, evaluate, heldout_kl, run_dir_with_shards, stage,
                    summary)
from default_run import QUALITY_TARGETS as TARGETS, goals

import results  # noqa: E402

WEIGHTS = (0.0, 0.5, 1.0)  # 0.0: the default recipe; 1.0: the weight of Welleck et al.
SECOND_HALF = slice(60, 120)  # validation prompts for stage 2
KL_SLACK, REPETITION_GAIN = 1.02, 0.05  # stage 2's rule


def main(argv: list[str]) -> int:
    run, val = Path(argv[0]), Path(argv[1])
    work = run.parent / f"{run.name}-unlikelihood"
    students = {}
    for w in WEIGHTS:
        exp = run_dir_with_shards(work / f"ul{w}", run / "shards" / "train")
        stage("train", f"run.dir={exp}", f"train.w_unlikelihood={w}", FIFTEEN_LAYERS, *KD_AND_CE, NO_UPSAMPLE)
        students[f"student_ul{w}"] = str(exp / "student")
    report = evaluate(work / "eval", students, "prompts/validation.jsonl", val / "shards" / "train",
                      "eval.speed_prompts=4", "eval.full_vocab_kl=false", train_shards=run / "shards" / "train")
    second = work / "validation_61_120.jsonl"
    second.write_text("".join((ROOT / "prompts" / "validation.jsonl").read_text().splitlines(True)[SECOND_HALF]))
    report2 = evaluate(work / "eval-61-120", students, str(second), val / "shards" / "train", "eval.speed_prompts=4",
                       "eval.full_vocab_kl=false", train_shards=run / "shards" / "train")
    rows, ranked = [], []
    for w in WEIGHTS:
        name = f"student_ul{w}"
        m, s = report["models"][name], summary(work / f"ul{w}" / "student")
        met = goals(report, None, name)
        m2 = report2["models"][name]
        rows.append([w, round(s["train_wall_s"]), round(s["train_wall_s"] / s["steps"], 2), m["heldout_kl"],
                     heldout_kl(Path(students[name]), run / "shards" / "heldout"), m["own_answer_reverse_kl"],
                     m["repetition_rate"], m["cutoff_rate"], m["mean_response_tokens"], m["exact_accuracy"],
                     sum(r[3] for r in met[:TARGETS]), m2["repetition_rate"], m2["cutoff_rate"],
                     m2["mean_response_tokens"], m2["exact_accuracy"]])
        ranked.append((-rows[-1][10], m["heldout_kl"], w))
        print(rows[-1], flush=True)
    stage1 = min(ranked)[2]
    base = report["models"]["student_ul0.0"]["heldout_kl"], report2["models"]["student_ul0.0"]["repetition_rate"]
    within = [w for w in WEIGHTS if report["models"][f"student_ul{w}"]["heldout_kl"] <= KL_SLACK * base[0]]
    best = min(within, key=lambda w: report2["models"][f"student_ul{w}"]["repetition_rate"])
    chosen = best if report2["models"][f"student_ul{best}"]["repetition_rate"] <= base[1] - REPETITION_GAIN else 0.0
    t, t2 = report["models"]["teacher"], report2["models"]["teacher"]
    rows.append(["teacher", None, None, t["heldout_kl"], None, t["own_answer_reverse_kl"], t["repetition_rate"],
                 t["cutoff_rate"], t["mean_response_tokens"], t["exact_accuracy"], None, t2["repetition_rate"],
                 t2["cutoff_rate"], t2["mean_response_tokens"], t2["exact_accuracy"]])
    results.record(
        "unlikelihood", "Token-level unlikelihood of repeats beside KD + CE, at the default budget",
        ["w_unlikelihood", "train (s)", "s/step", "validation KL", "held-out KL", "own-answer reverse KL",
         "repetition", "cut off", "answer tokens", "exact accuracy", f"targets met (of {TARGETS})",
         "repetition (61-120)", "cut off (61-120)", "answer tokens (61-120)", "exact accuracy (61-120)"], rows,
        f"python experiments/unlikelihood.py {run} {val}",
        {"weights": WEIGHTS, "stage1_choice": stage1, "chosen": chosen, "kl_slack": KL_SLACK,
         "repetition_gain": REPETITION_GAIN},
        f"Stage 1 (validation prompts 1-60; most targets met, then lower validation KL) chose {stage1}. Stage 2 "
        f"(fixed after stage 1; validation prompts 61-120, the (61-120) columns): the lowest repetition among weights "
        f"within {KL_SLACK - 1:.0%} of the default's validation KL, if at least {REPETITION_GAIN} below the "
        f"default's: chose {chosen}. Validation KL: teacher-forced on all 120 validation prompts; generation columns: "
        "greedy answers (at most 64 tokens); held-out KL: teacher-forced on the default run's held-out teacher "
        "answers, not used for any choice. Both KLs are over the teacher's top-k plus a tail class (lower bounds). "
        "Each student: the default recipe (30 steps of KD + CE on the default run's 240 answers) with the "
        "unlikelihood term added at that weight.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
