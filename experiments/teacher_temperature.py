"""Sequence-level KD: should the teacher's training answers be greedy instead of sampled? For each teacher
temperature, the teacher answers the default run's 240 training prompts and a student is trained on those shards by
the default recipe (layers chosen on them, 30 steps of KD + CE); then every student and the teacher answer the
validation prompts greedily, as in the default report.

    python experiments/teacher_temperature.py VALIDATION_RUN

VALIDATION_RUN holds teacher shards of prompts/validation.jsonl in shards/train (sampled at the default 0.7, the
same ruler for every student). The choice, made here on validation before any held-out number: the temperature whose
student meets the most of the default run's targets for a student that chats, then the lower validation KL. Writes
docs/results/teacher_temperature.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import FIFTEEN_LAYERS, KD_AND_CE, NO_UPSAMPLE, ROOT, WITHOUT_UNLIKELIHOOD, evaluate, stage, summary
from default_run import QUALITY_TARGETS as TARGETS, goals

import results  # noqa: E402

from distill.shards import read_examples  # noqa: E402

TEMPERATURES = (0.0, 0.7)  # 0.0: greedy answers (sequence-level KD); 0.7: the default run's until this experiment


def main(argv: list[str]) -> int:
    val = Path(argv[0])
    work = ROOT / "runs" / "exp-teacher-temperature"
    students = {}
    for t in TEMPERATURES:
        run = work / f"t{t}"
        stage("generate", f"run.dir={run}", f"generate.temperature={t}", "generate.heldout_prompts=null")
        stage("train", f"run.dir={run}", WITHOUT_UNLIKELIHOOD, FIFTEEN_LAYERS, *KD_AND_CE, NO_UPSAMPLE)
        students[f"student_t{t}"] = str(run / "student")
    report = evaluate(work / "eval", students, "prompts/validation.jsonl", val / "shards" / "train",
                      "eval.speed_prompts=4", "eval.full_vocab_kl=false",
                      train_shards=work / f"t{TEMPERATURES[0]}" / "shards" / "train")  # every arm: the same prompts
    rows, ranked = [], []
    for t in TEMPERATURES:
        name = f"student_t{t}"
        m, met = report["models"][name], goals(report, None, name)
        examples = list(read_examples(work / f"t{t}" / "shards" / "train"))
        ended = sum(e.finish_reason == "stop" for e in examples) / len(examples)
        rows.append([t, sum(len(e.response_token_ids) for e in examples), ended,
                     round(summary(work / f"t{t}" / "student")["train_wall_s"]), m["heldout_kl"],
                     m["own_answer_reverse_kl"], m["repetition_rate"], m["cutoff_rate"], m["mean_response_tokens"],
                     m["exact_accuracy"], sum(r[3] for r in met[:TARGETS])])
        ranked.append((-rows[-1][-1], m["heldout_kl"], t))
        print(rows[-1], flush=True)
    chosen = min(ranked)[2]
    tm = report["models"]["teacher"]
    rows.append(["teacher", None, None, None, tm["heldout_kl"], tm["own_answer_reverse_kl"], tm["repetition_rate"],
                 tm["cutoff_rate"], tm["mean_response_tokens"], tm["exact_accuracy"], None])
    results.record(
        "teacher_temperature", "Teacher answers sampled or greedy: the default recipe on each (validation prompts)",
        ["teacher temperature", "training tokens", "training answers that end", "train (s)", "validation KL",
         "own-answer reverse KL", "repetition", "cut off", "answer tokens", "exact accuracy",
         f"targets met (of {TARGETS})"], rows,
        f"python experiments/teacher_temperature.py {val}", {"temperatures": TEMPERATURES, "chosen": chosen},
        f"Chosen on validation: temperature {chosen} (most targets met, then lower validation KL). Every student "
        "answers greedily; the validation KL is over the teacher's sampled (T 0.7) validation answers, top-k plus "
        "tail (a lower bound). 'Training answers that end': the share of teacher answers that reached their end "
        "within generate.max_tokens.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
