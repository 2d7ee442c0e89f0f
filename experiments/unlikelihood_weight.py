"""Would a heavier unlikelihood term stop the 18-layer student's loops? The default recipe (18 layers chosen by
drop_one_kl, KD + CE, 30 steps on the default run's 240 teacher answers) with the token-level unlikelihood weight
at 1 (the default when this ran), 2, 4 and 8. The term costs no extra time per step, so any weight fits the
default run's budget. Every student and the teacher answer the validation prompts greedily, as in the default
report.

    python experiments/unlikelihood_weight.py RUN VALIDATION_RUN

RUN holds the default run's shards (train and heldout); VALIDATION_RUN holds teacher shards of
prompts/validation.jsonl in shards/train. The weight-1 student is the 18-layer student of
experiments/student_depth.py (the same recipe and shards; trained here if absent). The rule, fixed before the run:
the weight whose student meets the most of the five quality targets on validation; among ties, the lowest
repetition among weights whose validation KL is at most 5% above weight 1's, if it is at least 0.03 below
weight 1's repetition; else weight 1. It chose 8, the default since. The held-out KL is reported beside them, not
used. Writes docs/results/unlikelihood_weight.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import KD_AND_CE, NO_UPSAMPLE, ROOT, evaluate, heldout_kl, run_dir_with_shards, stage, summary
from default_run import QUALITY_TARGETS as TARGETS, goals

import results  # noqa: E402

WEIGHTS = (1.0, 2.0, 4.0, 8.0)
DEFAULT = 1.0  # the default when this ran
KL_SLACK, REPETITION_GAIN = 1.05, 0.03  # the tie-break of the rule


def main(argv: list[str]) -> int:
    run, val = Path(argv[0]), Path(argv[1])
    work = ROOT / "runs" / "exp-ulweight"
    folders = {w: ROOT / "runs" / "exp-depth" / "L18" if w == DEFAULT else work / f"ul{w}" for w in WEIGHTS}
    students = {}
    for w, folder in folders.items():
        run_dir_with_shards(folder, run / "shards" / "train")
        stage("train", f"run.dir={folder}", f"train.w_unlikelihood={w}", *KD_AND_CE, NO_UPSAMPLE)
        students[f"student_ul{w}"] = str(folder / "student")
    report = evaluate(work / "eval", students, "prompts/validation.jsonl", val / "shards" / "train",
                      "eval.speed_prompts=4", "eval.full_vocab_kl=false", train_shards=run / "shards" / "train")
    rows, met = [], {}
    for w in WEIGHTS:
        name = f"student_ul{w}"
        m, s = report["models"][name], summary(folders[w] / "student")
        met[w] = sum(r[3] for r in goals(report, None, name)[:TARGETS])
        rows.append([w, round(s["train_wall_s"]), m["heldout_kl"],
                     heldout_kl(Path(students[name]), run / "shards" / "heldout"), m["own_answer_reverse_kl"],
                     m["repetition_rate"], m["cutoff_rate"], m["mean_response_tokens"], m["exact_accuracy"], met[w]])
        print(rows[-1], flush=True)
    models = report["models"]
    kl = {w: models[f"student_ul{w}"]["heldout_kl"] for w in WEIGHTS}
    rep = {w: models[f"student_ul{w}"]["repetition_rate"] for w in WEIGHTS}
    most = [w for w in WEIGHTS if met[w] == max(met.values())]
    if len(most) == 1:
        chosen = most[0]
    else:
        within = [w for w in most if kl[w] <= KL_SLACK * kl[DEFAULT]] or [DEFAULT]
        best = min(within, key=rep.get)
        chosen = best if rep[best] <= rep[DEFAULT] - REPETITION_GAIN else DEFAULT
    t = models["teacher"]
    rows.append(["teacher", None, t["heldout_kl"], None, t["own_answer_reverse_kl"], t["repetition_rate"],
                 t["cutoff_rate"], t["mean_response_tokens"], t["exact_accuracy"], None])
    results.record(
        "unlikelihood_weight", "Heavier token-level unlikelihood on the 18-layer default student (validation prompts)",
        ["w_unlikelihood", "train (s)", "validation KL", "held-out KL", "own-answer reverse KL", "repetition",
         "cut off", "answer tokens", "exact accuracy", f"targets met (of {TARGETS})"], rows,
        f"python experiments/unlikelihood_weight.py {run} {val}",
        {"weights": WEIGHTS, "chosen": chosen, "kl_slack": KL_SLACK, "repetition_gain": REPETITION_GAIN},
        f"Each student: the default recipe (18 layers, 30 steps of KD + CE on the default run's 240 answers) with "
        f"the unlikelihood term at that weight. The rule, fixed before the run: most quality targets met on "
        f"validation; among ties, the lowest repetition within {KL_SLACK - 1:.0%} of weight 1's validation KL (the "
        f"default then), if at least {REPETITION_GAIN} below its repetition: chose {chosen}. Validation KL: "
        "teacher-forced on the validation prompts' sampled teacher answers; held-out KL: on the default run's "
        "held-out teacher answers, not used for the choice. Both are over the teacher's top-k plus a tail class "
        "(lower bounds). Generation columns: greedy answers of at most 64 tokens.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
