"""Would a deeper student chat better within the budget? The default recipe of the time (layers chosen by
drop_one_kl, KD + CE + unlikelihood at weight 1, 30 steps on the default run's 240 teacher answers) with 15 (the
default then), 18 and 21 of the teacher's 30 layers. Every student and the teacher answer the validation prompts
greedily and are timed as in the default report, so the table shows the default run's targets, speed-up
included, at each depth.

    python experiments/student_depth.py RUN VALIDATION_RUN

RUN holds the default run's shards in shards/train; VALIDATION_RUN holds teacher shards of prompts/validation.jsonl
in shards/train. The rule, fixed before the run: the depth that meets the most targets (the five quality targets
and speed-up >= 1.5), ties to the lower validation KL, becomes the default if the default run then still fits its
15 minutes. Writes docs/results/student_depth.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import KD_AND_CE, NO_UPSAMPLE, ROOT, UNLIKELIHOOD_WEIGHT_1, evaluate, run_dir_with_shards, stage, summary
from default_run import goals

import results  # noqa: E402

DEPTHS = (15, 18, 21)


def main(argv: list[str]) -> int:
    run, val = Path(argv[0]), Path(argv[1])
    work = ROOT / "runs" / "exp-depth"
    students = {}
    for n in DEPTHS:
        folder = run_dir_with_shards(work / f"L{n}", run / "shards" / "train")
        stage("train", f"run.dir={folder}", f"student.from_teacher_layers={n}", UNLIKELIHOOD_WEIGHT_1, *KD_AND_CE,
              NO_UPSAMPLE)
        students[f"student_L{n}"] = str(folder / "student")
    report = evaluate(work / "eval", students, "prompts/validation.jsonl", val / "shards" / "train",
                      "eval.full_vocab_kl=false", train_shards=run / "shards" / "train")
    rows = []
    for n in DEPTHS:
        name = f"student_L{n}"
        m, s = report["models"][name], summary(work / f"L{n}" / "student")
        met = goals(report, None, name)
        rows.append([n, round(m["params"] / 1e6, 1), round(s["train_wall_s"]), m["heldout_kl"],
                     m["mean_response_tokens"], m["repetition_rate"], m["cutoff_rate"], m["exact_accuracy"],
                     m["speedup_vs_teacher"], sum(r[3] for r in met)])
        print(rows[-1], flush=True)
    t = report["models"]["teacher"]
    rows.append(["teacher (30)", round(t["params"] / 1e6, 1), None, t["heldout_kl"], t["mean_response_tokens"],
                 t["repetition_rate"], t["cutoff_rate"], t["exact_accuracy"], 1.0, None])
    results.record(
        "student_depth", "The default recipe with 15, 18 and 21 of the teacher's 30 layers (validation prompts)",
        ["layers kept", "params (M)", "train (s)", "validation KL", "answer tokens", "repetition", "cut off",
         "exact accuracy", "speed-up", "targets met (of 6)"],
        rows, f"python experiments/student_depth.py {run} {val}", {"depths": DEPTHS},
        "Each student: the teacher's layers chosen by drop_one_kl, trained by the default recipe (30 steps on the "
        "default run's 240 teacher answers). Targets: validation KL <= 2.0, answer length >= 0.7x the teacher's, "
        "repetition and cut-off no more than the teacher's + 0.05, exact accuracy >= half the teacher's, speed-up "
        ">= 1.5 (median of 3 timed runs, each model generating the same prompts to exactly 64 tokens). "
        "Validation KL: top-k plus tail over the teacher's sampled validation answers (a lower bound of the full "
        "KL). Greedy answers, at most 64 tokens.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
