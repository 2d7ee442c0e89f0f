"""Can decoding stop the default student's loops? The teacher and the default student answer the validation prompts
greedily at several of vLLM's repetition penalties (eval.repetition_penalty, the same for both models): repetition,
cut-off rate, answer length, exact accuracy and the teacher's judgement of the answers, with one answer to read.

    python experiments/decoding.py RUN VALIDATION_RUN

RUN is a finished default run (`bash scripts/pipeline.sh`; its student is scored); VALIDATION_RUN holds teacher
shards of prompts/validation.jsonl in shards/train. Writes docs/results/decoding.json. Nothing is chosen here: the
default stays greedy with no penalty, and the table says why.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import evaluate

import results  # noqa: E402

PENALTIES = [1.0, 1.1, 1.2]
EXAMPLE_CHARS = 160


def main(argv: list[str]) -> int:
    run, val = Path(argv[0]), Path(argv[1])
    out = run.parent / f"{run.name}-decoding"
    rows = []
    for penalty in PENALTIES:
        report = evaluate(out, {"student": str(run / "student")}, "prompts/validation.jsonl",
                          val / "shards" / "train", f"eval.repetition_penalty={penalty}", "eval.speed_prompts=4",
                          "eval.full_vocab_kl=false", train_shards=run / "shards" / "train")
        for name in ("teacher", "student"):
            m = report["models"][name]
            first = json.loads((out / "eval" / "generations" / f"{name}.jsonl").open().readline())
            example = " ".join(first["response"].split())
            rows.append([name, penalty, m["repetition_rate"], m["cutoff_rate"], m["mean_response_tokens"],
                         m["exact_accuracy"], m["own_answer_reverse_kl"], m["own_answer_teacher_logprob"],
                         example[:EXAMPLE_CHARS] + ("..." if len(example) > EXAMPLE_CHARS else "")])
    prompt = first["prompt"]
    results.record(
        "decoding", "Greedy answers at vLLM repetition penalties, the same for teacher and student (validation prompts)",
        ["model", "repetition penalty", "repetition", "cut off", "answer tokens", "exact accuracy",
         "own-answer reverse KL", "own-answer teacher logprob", f"answer to \"{prompt}\""], rows,
        f"python experiments/decoding.py {run} {val}", {"penalties": PENALTIES, "student": str(run / "student")},
        "Repetition: the share of word 3-grams that repeat an earlier one; cut off: answers that hit eval.max_tokens. "
        "The own-answer columns are the teacher's judgement of each model's answers at that penalty (reverse KL over "
        "its top-k plus tail, a lower bound; its mean logprob per token). The default keeps greedy decoding with no "
        "penalty (eval.repetition_penalty=1.0): the table shows what a penalty does to both models.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
