"""How far is the default student from chatting, as the budget grows? The default recipe (layers chosen by
drop_one_kl, KD + CE, the default lr and schedule) at 1x, 2x and 4x the default run's budget: steps and teacher
answers scaled together, so every budget is one pass over fresh answers (steps x 8). Every student and the teacher
answer the validation prompts greedily, as in the default report; the table shows the default run's targets for a
student that chats at each budget.

    python experiments/budget.py VALIDATION_RUN

VALIDATION_RUN holds teacher shards of prompts/validation.jsonl in shards/train. The teacher's answers for the
largest budget are generated once (on Ray, two engines: the same records as the local executor, faster); each budget
trains on them with train.max_steps set, which takes steps x 8 of them. Nothing is chosen here. Writes
docs/results/budget.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import FIFTEEN_LAYERS, KD_AND_CE, NO_UPSAMPLE, ROOT, WITHOUT_UNLIKELIHOOD, evaluate, stage, summary
from default_run import QUALITY_TARGETS, goals

import results  # noqa: E402

SCALES = (1, 2, 4)
DEFAULT_STEPS, BATCH = 30, 8  # configs/default.yaml


def main(argv: list[str]) -> int:
    val = Path(argv[0])
    work = ROOT / "runs" / "exp-budget"
    answers = DEFAULT_STEPS * BATCH * max(SCALES)
    stage("generate", f"run.dir={work}", f"generate.max_prompts={answers}", "generate.heldout_prompts=null",
          "generate.executor=ray")
    students = {}
    for scale in SCALES:
        steps = DEFAULT_STEPS * scale
        stage("train", f"run.dir={work}", f"train.output_name=student_x{scale}", f"train.max_steps={steps}",
              f"train.eval_steps={steps // 2}", f"train.save_steps={steps // 2}", WITHOUT_UNLIKELIHOOD, FIFTEEN_LAYERS,
              *KD_AND_CE, NO_UPSAMPLE)
        students[f"student_x{scale}"] = str(work / f"student_x{scale}")
    report = evaluate(work / "eval", students, "prompts/validation.jsonl", val / "shards" / "train",
                      "eval.speed_prompts=4", "eval.full_vocab_kl=false", train_shards=work / "shards" / "train")
    rows = []
    for scale in SCALES:
        name = f"student_x{scale}"
        m, s = report["models"][name], summary(work / name)
        met = goals(report, None, name)
        rows.append([f"{scale}x", DEFAULT_STEPS * scale, s["tokens"], round(s["train_wall_s"]), m["heldout_kl"],
                     m["mean_response_tokens"], m["repetition_rate"], m["cutoff_rate"], m["exact_accuracy"],
                     *(r[2] for r in met[2:5]), sum(r[3] for r in met[:QUALITY_TARGETS])])
        print(rows[-1], flush=True)
    t = report["models"]["teacher"]
    rows.append(["teacher", None, None, None, t["heldout_kl"], t["mean_response_tokens"], t["repetition_rate"],
                 t["cutoff_rate"], t["exact_accuracy"], None, None, None, None])
    results.record(
        "budget", "The default recipe at 1x, 2x and 4x the default budget (validation prompts)",
        ["budget", "steps (= answers / 8)", "training tokens", "train (s)", "validation KL", "answer tokens",
         "repetition", "cut off", "exact accuracy", "repetition - teacher's (goal <= 0.05)",
         "cut off - teacher's (goal <= 0.05)", "exact accuracy / teacher's (goal >= 0.5)", "targets met (of 5)"],
        rows, f"python experiments/budget.py {val}", {"scales": SCALES, "answers_generated": answers},
        "Each budget trains one pass over steps x 8 teacher answers of the training prompts (the default run: 30 "
        "steps, 240 answers). Targets (of the default run's, without speed and wall time): validation KL <= 2.0, "
        "answer length >= 0.7x the teacher's, repetition and cut-off no more than the teacher's + 0.05, exact "
        "accuracy >= half the teacher's. Validation KL: top-k plus tail over the teacher's sampled validation "
        "answers (a lower bound of the full KL). Greedy answers, at most 64 tokens.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
