"""Do the loops go away when the student is penalised for its own? Sequence-level unlikelihood (Welleck et al. 2019):
in on-policy rounds the student answers training prompts, and beside the reverse KL to the teacher it is pushed away
from every token that completes a 4-gram it already wrote in that answer (train.w_unlikelihood on on-policy rows).
Every variant starts from the default student (KD + CE + token-level unlikelihood, the default recipe on the default
run's shards) and runs the on-policy setting chosen in docs/results/onpolicy_validation.json; they differ only in
that weight, in how the student samples and in the rounds' learning rate. Every model answers the validation
prompts greedily.

    python experiments/onpolicy_unlikelihood.py RUN VALIDATION_RUN

RUN holds the default run's shards (train and heldout); VALIDATION_RUN holds teacher shards of
prompts/validation.jsonl in shards/train. The rule, fixed before the run: on the validation prompts, the variant
with the lowest repetition among those whose validation KL is at most 2% above the starting student's, if its
repetition is at least 0.05 below the starting student's; else none. The held-out KL (teacher-forced on RUN's
held-out shards) is reported beside them and used for nothing. The last two variants were added after the first
three had run (the rule did not change). The chosen variant and the starting student are then scored on the
held-out prompts. Writes docs/results/onpolicy_unlikelihood.json and onpolicy_unlikelihood_heldout.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from common import (FIFTEEN_LAYERS, KD_AND_CE, NO_UPSAMPLE, UNLIKELIHOOD_WEIGHT_1, evaluate, heldout_kl,
                    run_dir_with_shards, stage, summary)
from default_run import QUALITY_TARGETS as TARGETS, goals

import results  # noqa: E402

from distill import shards as sh  # noqa: E402
from distill.losses import repeated_ngram_tokens  # noqa: E402

# The on-policy setting chosen on validation (docs/results/onpolicy_validation.json), at its budget there.
CHOSEN = ["onpolicy.loss=reverse_kl", "onpolicy.lmbda=1.0", "onpolicy.lr=3e-5", "onpolicy.temperature=0.7",
          "onpolicy.rounds=4", "onpolicy.prompts_per_round=32", "onpolicy.steps_per_round=4"]
VARIANTS = {  # name: what differs from CHOSEN
    "rounds": ["train.w_unlikelihood=0"],  # the rounds alone: what on-policy does without the penalty
    "rounds_ul1.0": ["train.w_unlikelihood=1.0"],  # Welleck et al.'s weight
    # greedy answers: the loops the report measures, which sampling at 0.7 only partly shows
    "rounds_ul1.0_greedy": ["train.w_unlikelihood=1.0", "onpolicy.temperature=0"],
    # added after the three above moved nothing in 16 steps at 3e-5: the off-policy stage's larger steps, or a
    # penalty four times as strong
    "rounds_ul1.0_greedy_lr3e-4": ["train.w_unlikelihood=1.0", "onpolicy.temperature=0", "onpolicy.lr=3e-4"],
    "rounds_ul4.0_greedy": ["train.w_unlikelihood=4.0", "onpolicy.temperature=0"],
}
KL_SLACK, REPETITION_GAIN = 1.02, 0.05


def repeated_share(folder: Path) -> list:
    """The share of the student's sampled tokens that complete a repeated 4-gram: first round -> last round."""
    shares = []
    for r in (sorted((folder / "rounds").glob("round-*"))[i] for i in (0, -1)):
        marks = [repeated_ngram_tokens(t, torch.zeros_like(t))[1]
                 for t in (torch.as_tensor(e.response_token_ids) for e in sh.read_examples(r))]
        shares.append(sum(int(m.sum()) for m in marks) / sum(len(m) for m in marks))
    return f"{shares[0]:.2f} -> {shares[1]:.2f}"


def main(argv: list[str]) -> int:
    run, val = Path(argv[0]), Path(argv[1])
    exp = run_dir_with_shards(run.parent / f"{run.name}-onpolicy-unlikelihood", run / "shards" / "train")
    # the default student of the time
    stage("train", f"run.dir={exp}", FIFTEEN_LAYERS, UNLIKELIHOOD_WEIGHT_1, *KD_AND_CE, NO_UPSAMPLE)
    students = {"student": str(exp / "student")}
    for name, overrides in VARIANTS.items():
        stage("onpolicy", f"run.dir={exp}", FIFTEEN_LAYERS, *KD_AND_CE, NO_UPSAMPLE, f"onpolicy.output_name={name}",
              *CHOSEN, *overrides)
        students[name] = str(exp / name)
    report = evaluate(exp / "eval-validation", students, "prompts/validation.jsonl", val / "shards" / "train",
                      "eval.speed_prompts=4", "eval.full_vocab_kl=false", train_shards=run / "shards" / "train")
    models = report["models"]
    start = models["student"]
    rows = []
    for name, folder in students.items():
        m = models[name]
        rounds = name != "student"
        rows.append([name, " ".join(o.split(".", 1)[1] for o in VARIANTS.get(name, [])) or "off-policy only",
                     round(summary(Path(folder))["wall_s"]) if rounds else None, m["heldout_kl"],
                     heldout_kl(Path(folder), run / "shards" / "heldout"), m["own_answer_reverse_kl"],
                     m["repetition_rate"], m["cutoff_rate"], m["mean_response_tokens"], m["exact_accuracy"],
                     sum(r[3] for r in goals(report, None, name)[:TARGETS]),
                     repeated_share(Path(folder)) if rounds else "n/a"])
        print(rows[-1], flush=True)
    within = [n for n in VARIANTS if models[n]["heldout_kl"] <= KL_SLACK * start["heldout_kl"]]
    best = min(within, key=lambda n: models[n]["repetition_rate"], default=None)
    chosen = best if best and models[best]["repetition_rate"] <= start["repetition_rate"] - REPETITION_GAIN else None
    t = models["teacher"]
    rows.append(["teacher", "n/a", None, t["heldout_kl"], None, t["own_answer_reverse_kl"], t["repetition_rate"],
                 t["cutoff_rate"], t["mean_response_tokens"], t["exact_accuracy"], None, "n/a"])
    results.record(
        "onpolicy_unlikelihood", "Sequence-level unlikelihood on the student's own answers, in on-policy rounds "
        "after the default student (validation prompts)",
        ["model", "differs by", "rounds (s)", "validation KL", "held-out KL", "own-answer reverse KL", "repetition",
         "cut off", "answer tokens", "exact accuracy", f"targets met (of {TARGETS})",
         "sampled tokens completing a repeated 4-gram, first -> last round"], rows,
        f"python experiments/onpolicy_unlikelihood.py {run} {val}",
        {"chosen_onpolicy": CHOSEN, "variants": VARIANTS, "kl_slack": KL_SLACK, "repetition_gain": REPETITION_GAIN,
         "chosen": chosen},
        f"Every rounds row: the default student, then {' '.join(o.split('.', 1)[1] for o in CHOSEN)} (the on-policy "
        "setting chosen in docs/results/onpolicy_validation.json), with the differences listed. The rule, fixed "
        f"before the run: the lowest repetition among variants within {KL_SLACK - 1:.0%} of the starting student's "
        f"validation KL, if at least {REPETITION_GAIN} below its repetition: chose {chosen or 'none'}. Rounds (s): "
        "the on-policy stage's own wall time on this machine. Validation KL: teacher-forced on the validation "
        "prompts' sampled teacher answers; held-out KL: on the default run's held-out teacher answers, not used for "
        "the choice. Both are over the teacher's top-k plus a tail class (lower bounds). Generation columns: greedy "
        "answers of at most 64 tokens.")
    if chosen:
        report_heldout(run, val, exp, {"student": students["student"], chosen: students[chosen]})
    return 0


def report_heldout(run: Path, val: Path, exp: Path, students: dict[str, str]) -> None:
    """The starting student and the chosen variant on the held-out prompts, as the default report scores them."""
    report = evaluate(exp / "eval-heldout", students, "prompts/heldout.jsonl", run / "shards" / "heldout",
                      "eval.speed_prompts=4", "eval.full_vocab_kl=false", train_shards=run / "shards" / "train")
    models = report["models"]
    keys = ["heldout_kl", "own_answer_reverse_kl", "own_answer_teacher_logprob", "repetition_rate", "cutoff_rate",
            "mean_response_tokens", "exact_accuracy"]
    results.record(
        "onpolicy_unlikelihood_heldout", "The variant chosen on validation, on the held-out prompts",
        ["model", "held-out KL", "own-answer reverse KL", "own-answer teacher logprob", "repetition", "cut off",
         "answer tokens", "exact accuracy"], [[name, *(models[name][k] for k in keys)] for name in
                                              [*students, "teacher"]],
        f"python experiments/onpolicy_unlikelihood.py {run} {val}", {"models": students},
        "Greedy answers of at most 64 tokens to the default run's 60 held-out prompts; KLs over the teacher's top-k "
        "plus a tail class (lower bounds). Nothing was chosen on these numbers.")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
