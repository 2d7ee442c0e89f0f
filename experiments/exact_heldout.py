"""Exact accuracy on every checkable held-out prompt, with its uncertainty.

The default report checks the answers to the 22 of its 60 held-out prompts that carry a content check: one answer
moves the figure by 0.045, and the teacher itself gets 3 right. Here the same models, with the report's settings
(greedy, eval.max_tokens), answer all 110 checkable prompts of prompts/heldout.jsonl, and each score comes with its
95% Wilson interval, overall and per task. It chooses nothing; it says how far the default student's exact accuracy
is from the teacher's, and how sure that distance is.

    python experiments/exact_heldout.py [RUN (default runs/default)]

RUN is a finished default run (its student, student_init and training shards). Writes docs/results/exact_heldout.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import ROOT, evaluate, exact_passes

import results  # noqa: E402
from distill.eval.metrics import wilson_interval  # noqa: E402

HELDOUT = ROOT / "prompts" / "heldout.jsonl"
MODELS = ("teacher", "student", "student_init")


def write_checkable(source: Path, target: Path) -> int:
    """The prompts of `source` that carry a content check, as a prompt file of their own; how many."""
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if json.loads(line).get("check")]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


def score_row(label: str, m: dict, teacher: dict) -> list:
    """label, checked, passed, exact accuracy, 95% interval, share of the teacher's accuracy (m and teacher: a
    report's text metrics)."""
    low, high = wilson_interval(m["exact_passed"], m["exact_checked"])
    share = m["exact_accuracy"] / teacher["exact_accuracy"] if teacher["exact_accuracy"] else None
    return [label, m["exact_checked"], m["exact_passed"], m["exact_accuracy"], f"{low:.3f}-{high:.3f}", share]


def main(argv: list[str]) -> int:
    run = Path(argv[0]) if argv else ROOT / "runs" / "default"
    work = ROOT / "runs" / "exact-heldout"
    prompts = work / "checkable_heldout.jsonl"
    n = write_checkable(HELDOUT, prompts)
    report = evaluate(work, {m: str(run / m) for m in MODELS[1:]}, str(prompts), None, "eval.max_prompts=null",
                      "eval.full_vocab_kl=false", "eval.speed_prompts=4", train_shards=run / "shards" / "train")
    models = report["models"]
    rows = []
    for name in MODELS:
        rows.append(score_row(f"{name}, all tasks", models[name], models["teacher"]))
    for task in sorted(t for t, v in models["teacher"]["tasks"].items() if v["exact_checked"]):
        for name in MODELS:
            rows.append(score_row(f"{name}, {task}", models[name]["tasks"][task], models["teacher"]["tasks"][task]))
    command = f"python experiments/exact_heldout.py {run.relative_to(ROOT) if run.is_relative_to(ROOT) else run}"
    passes = {name: exact_passes(work, name) for name in MODELS}
    results.record(
        "exact_heldout", f"Exact accuracy on all {n} checkable held-out prompts (the default report checks 22 of them)",
        ["model, task", "checked", "passed", "exact accuracy", "95% interval (Wilson)", "share of the teacher's"],
        rows, command, json.loads((work / "eval" / "run.json").read_text())["config"],
        f"Greedy answers of at most {report['settings']['max_tokens']} tokens, as in the default report; each answer "
        f"checked by eval.checks. Floor (the best score of answers that ignore the question, e.g. always 'yes'): "
        f"{report['degenerate_floor']:.3f}. The student's passing answers are in this file (exact_passes).",
        extra={"degenerate_floor": report["degenerate_floor"], "exact_passes": passes})
    for row in rows:
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
