"""SFT-only vs off-policy KD vs off-policy KD followed by on-policy rounds vs pure on-policy from the undistilled
student, with their teacher tokens and wall time, on held-out forward KL, the on-policy metric (reverse KL on the
model's own answers, scored by the teacher), top-1 agreement and exact accuracy.

    python experiments/onpolicy.py RUN VALIDATION_RUN [student overrides ...]
    python experiments/onpolicy.py RUN --chosen NAME [student overrides ...]

RUN holds the default run's shards (`distill generate configs/default.yaml run.dir=RUN`, or a finished default run);
VALIDATION_RUN holds teacher shards of prompts/validation.jsonl in shards/train. The on-policy settings are chosen on
the validation prompts (docs/results/onpolicy_validation.json); --chosen NAME skips that search and takes the variant
it chose, for a rerun of the held-out table alone. The table reports the held-out prompts; KD is trained twice more,
at about the wall time and about the teacher tokens of KD followed by the chosen rounds (the latter on more teacher
answers of the same training prompts, in RUN-equal-tokens). Writes docs/results/onpolicy.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import (FIFTEEN_LAYERS, KD_AND_CE, NO_UPSAMPLE, WITHOUT_UNLIKELIHOOD, evaluate, run_dir_with_shards, stage,
                    summary)

import results  # noqa: E402

ROUNDS, PROMPTS_PER_ROUND, STEPS_PER_ROUND = 4, 32, 4  # 128 student answers: about half the offline answers
CANDIDATES = {  # on-policy variants tried on validation, after off-policy KD: the loss, then why it loses
    "reverse_kl": ["onpolicy.loss=reverse_kl", "onpolicy.lmbda=1.0"],
    "sampled_token": ["onpolicy.loss=sampled_token", "onpolicy.lmbda=1.0"],
    # the rounds' learning rate: train.lr (3e-4) suits a student far from the teacher, not fine-tuning a KD one
    "reverse_kl_lr3e-5": ["onpolicy.loss=reverse_kl", "onpolicy.lmbda=1.0", "onpolicy.lr=3e-5"],
    # a weak student sampling at temperature 1 writes text no greedy answer resembles
    "reverse_kl_lr3e-5_t0.7": ["onpolicy.loss=reverse_kl", "onpolicy.lmbda=1.0", "onpolicy.lr=3e-5",
                               "onpolicy.temperature=0.7"],
    # GKD's mixture: half the rows are the stored teacher answers (KD + CE), which teach the student to stop
    "reverse_kl_lr3e-5_lmbda0.5": ["onpolicy.loss=reverse_kl", "onpolicy.lmbda=0.5", "onpolicy.lr=3e-5"],
}


def onpolicy(exp: Path, name: str, init: Path, *overrides: str) -> float:
    """Run (or finish) on-policy rounds into exp/name; the stage's own wall time, from its summary."""
    stage("onpolicy", f"run.dir={exp}", WITHOUT_UNLIKELIHOOD, FIFTEEN_LAYERS, *KD_AND_CE, NO_UPSAMPLE,
          f"onpolicy.output_name={name}",
          f"onpolicy.init={init}", f"onpolicy.rounds={ROUNDS}", f"onpolicy.prompts_per_round={PROMPTS_PER_ROUND}",
          f"onpolicy.steps_per_round={STEPS_PER_ROUND}", *overrides)
    return summary(exp / name)["wall_s"]


def train(exp: Path, name: str, *overrides: str) -> float:
    """Train (or finish) exp/name; the stage's own wall time, from its summary (a rerun finds it done)."""
    stage("train", f"run.dir={exp}", WITHOUT_UNLIKELIHOOD, FIFTEEN_LAYERS, *KD_AND_CE, NO_UPSAMPLE,
          f"train.output_name={name}", *overrides)
    return summary(exp / name)["wall_s"]


def main(argv: list[str]) -> int:
    quick = "--no-equal-wall" in argv  # leave out the equal-wall KD student (saves its ~90 steps and its eval)
    argv = [a for a in argv if a != "--no-equal-wall"]
    run, student = Path(argv[0]), argv[2:]
    chosen = argv[2] if len(argv) > 2 and argv[1] == "--chosen" else None
    if chosen:
        if chosen not in CANDIDATES:
            sys.exit(f"--chosen {chosen}: not one of the variants ({', '.join(CANDIDATES)})")
        student = argv[3:]
    exp = run_dir_with_shards(run.parent / f"{run.name}-onpolicy", run / "shards" / "train", run / "shards" / "heldout")
    walls = {"student_sft": train(exp, "student_sft", *student, "train.w_ce=1.0", "train.w_kd=0.0"),
             "student": train(exp, "student", *student)}
    best = chosen or choose_on_validation(run, Path(argv[1]), student, exp, walls)
    if chosen:
        walls[f"kd_then_{best}"] = walls["student"] + onpolicy(exp, f"kd_then_{best}", exp / "student",
                                                               *CANDIDATES[best])
    walls[f"pure_{best}"] = onpolicy(exp, f"pure_{best}", exp / "student_init", *CANDIDATES[best],
                                     f"onpolicy.rounds={ROUNDS * 2}")
    folders = {m: exp / m for m in walls}
    keep = ["student_sft", "student", f"kd_then_{best}", f"pure_{best}"]
    if not quick:
        extra = round(walls[f"kd_then_{best}"] / walls["student"] * 30)
        walls["student_equal_wall"] = train(exp, "student_equal_wall", *student, f"train.max_steps={extra}")
        folders["student_equal_wall"] = exp / "student_equal_wall"
        keep.insert(2, "student_equal_wall")
    offline = manifest_counts(run / "shards" / "train")
    target = teacher_tokens(folders[f"kd_then_{best}"], f"kd_then_{best}", offline["tokens"])
    folders["student_equal_tokens"], walls["student_equal_tokens"] = train_equal_tokens(run, exp, student, target,
                                                                                        offline)
    keep.insert(2, "student_equal_tokens")
    final = evaluate(exp, {m: str(folders[m]) for m in keep}, "prompts/heldout.jsonl", run / "shards" / "heldout",
                     train_shards=run / "shards" / "train")
    flags = (f" --chosen {chosen}" if chosen else "") + (" --no-equal-wall" if quick else "")
    record(run, argv[1] if not chosen else None, student, folders, keep, final, walls, best, offline["tokens"],
           flags)
    return 0


def choose_on_validation(run: Path, val: Path, student: list[str], exp: Path, walls: dict) -> str:
    """Every candidate after off-policy KD, scored on the validation prompts; the best by both KLs vs SFT-only."""
    for name, overrides in CANDIDATES.items():
        walls[f"kd_then_{name}"] = walls["student"] + onpolicy(exp, f"kd_then_{name}", exp / "student", *overrides)
    models = {m: str(exp / m) for m in walls}
    report = evaluate(run.parent / f"{run.name}-onpolicy-val", models, "prompts/validation.jsonl",
                      val / "shards" / "train", "eval.speed_prompts=4", train_shards=run / "shards" / "train")
    sft = report["models"]["student_sft"]
    best = min(CANDIDATES, key=lambda n: relative_to_sft(report["models"][f"kd_then_{n}"], sft))
    record_validation(run, val, student, exp, report, best, lambda m: relative_to_sft(m, sft))
    return best


def relative_to_sft(m: dict, sft: dict) -> float:
    """The mean of both KLs (held-out and own-answer) relative to SFT-only's, as the goal states them."""
    return (m["heldout_kl"] / sft["heldout_kl"] + m["own_answer_reverse_kl"] / sft["own_answer_reverse_kl"]) / 2


def manifest_counts(shards: Path) -> dict:
    return json.loads((shards / "manifest.json").read_text())["counts"]


def train_equal_tokens(run: Path, exp: Path, student: list[str], target: int, offline: dict) -> tuple[Path, float]:
    """Off-policy KD on about `target` teacher tokens: more teacher answers of the same training prompts (the
    corpus' order, so the first prompts are the run's), one pass over them as the KD row makes over its own, from
    the same pruned student."""
    more = run.parent / f"{run.name}-equal-tokens"
    answers = round(offline["records"] * target / offline["tokens"])
    stage("generate", f"run.dir={more}", f"generate.max_prompts={answers}", "generate.heldout_prompts=null")
    steps = round(30 * answers / offline["records"])
    wall = train(more, "student_equal_tokens", *student, f"student.model={exp / 'student_init'}",
                 "student.from_teacher_layers=null", f"train.max_steps={steps}")
    return more / "student_equal_tokens", wall


def round_trend(folder: Path) -> list:
    """From an on-policy run's rounds: the share of sampled answers ending in EOS and the teacher's mean logprob
    per token of them, each as 'first -> last round' (n/a for a model trained off-policy only)."""
    from distill import shards as sh

    rounds = sorted((folder / "rounds").glob("round-*"))
    if not rounds:
        return ["n/a", "n/a"]
    stats = []
    for r in (rounds[0], rounds[-1]):
        examples = list(sh.read_examples(r))
        tokens = sum(len(e.topk.sampled_logprobs) for e in examples)
        stats.append((sum(e.finish_reason == "stop" for e in examples) / len(examples),
                      sum(float(e.topk.sampled_logprobs.sum()) for e in examples) / tokens))
    return [f"{stats[0][0]:.2f} -> {stats[1][0]:.2f}", f"{stats[0][1]:.2f} -> {stats[1][1]:.2f}"]


def record_validation(run, val, student, exp, report: dict, best: str, relative) -> None:
    """Every variant tried, on the validation prompts: where the choice was made, and the search for why it loses."""
    rows = []
    for name, m in report["models"].items():
        if name == "teacher":
            continue
        settings = " ".join(o.split(".", 1)[1] for o in CANDIDATES.get(name.removeprefix("kd_then_"), []))
        rows.append([name, settings or "off-policy only", m["heldout_kl"], m["own_answer_reverse_kl"],
                     relative(m), m["repetition_rate"], m["cutoff_rate"], m["mean_response_tokens"],
                     *round_trend(exp / name)])
    results.record(
        "onpolicy_validation", "On-policy variants after off-policy KD, on the validation prompts (where choices are "
        "made)", ["model", "on-policy settings", "validation KL", "own-answer reverse KL", "mean of both vs SFT",
                  "repetition", "cut off", "answer tokens", "samples ending in EOS, first -> last round",
                  "teacher logprob of the samples, first -> last round"], rows,
        f"python experiments/onpolicy.py {run} {val} {' '.join(student)}".strip(),
        {"rounds": ROUNDS, "prompts_per_round": PROMPTS_PER_ROUND, "steps_per_round": STEPS_PER_ROUND,
         "candidates": CANDIDATES, "chosen": best},
        f"Each variant: {ROUNDS} rounds x {PROMPTS_PER_ROUND} prompts x {STEPS_PER_ROUND} steps from the off-policy "
        f"KD student (train.lr 3e-4 unless the settings say otherwise; student temperature 1.0 unless they say "
        f"otherwise). Chosen (lowest mean of both KLs relative to SFT-only): {best}. Both KLs are over the "
        "teacher's top-k plus a tail class (lower bounds). The last two columns read the rounds' training data: "
        "the share of the student's sampled answers that it ended itself (the rest hit onpolicy.max_tokens) and the "
        "teacher's mean logprob per token of those answers (its own greedy answers score about -0.7).")


def teacher_tokens(folder: Path, name: str, offline_tokens: int) -> int:
    """Tokens the teacher wrote or scored for a model: its training shards, or its rounds (after KD's shards)."""
    s = summary(folder)
    if "shards" in s:  # off-policy training
        return manifest_counts(Path(s["shards"]))["tokens"]
    return s.get("teacher_tokens", 0) + (offline_tokens if name.startswith("kd_then") else 0)


def record(run, val, student, folders, keep, final, walls, best, offline, flags="") -> None:
    sft = final["models"]["student_sft"]
    rows = []
    for name in keep:
        m = final["models"][name]
        rows.append([name, teacher_tokens(folders[name], name, offline), round(walls[name]), m["heldout_kl"],
                     m["heldout_kl"] / sft["heldout_kl"], m["own_answer_reverse_kl"],
                     m["own_answer_reverse_kl"] / sft["own_answer_reverse_kl"], m["own_answer_teacher_logprob"],
                     m["top1_agreement"], m["exact_accuracy"], m["repetition_rate"], m["mean_response_tokens"]])
    teacher = final["models"]["teacher"]
    rows.append(["teacher (floor)", None, None, teacher["heldout_kl"], None, teacher["own_answer_reverse_kl"], None,
                 teacher["own_answer_teacher_logprob"], teacher["top1_agreement"], teacher["exact_accuracy"],
                 teacher["repetition_rate"], teacher["mean_response_tokens"]])
    results.record(
        "onpolicy", "Off-policy KD vs on-policy distillation (held-out prompts)",
        ["model", "teacher tokens", "wall (s)", "held-out KL", "vs SFT", "own-answer reverse KL", "vs SFT",
         "own-answer teacher logprob", "top-1", "exact accuracy", "repetition", "answer tokens"], rows,
        " ".join(["python experiments/onpolicy.py", str(run), *([str(val)] if val else []), *student]) + flags,
        {"student": student, "rounds": ROUNDS, "prompts_per_round": PROMPTS_PER_ROUND,
         "steps_per_round": STEPS_PER_ROUND, "candidates": CANDIDATES, "chosen": best},
        f"On-policy variant chosen on the validation prompts: {best} (docs/results/onpolicy_validation.json). "
        "student_equal_wall: KD trained for about the wall time of KD plus the chosen rounds; student_equal_tokens: "
        "KD on more teacher answers of the same training prompts, about the teacher tokens of KD plus the chosen "
        "rounds, one pass as the KD row makes. Both KLs are over the teacher's top-k plus a tail class (lower bounds "
        "of the full KLs). Teacher tokens: tokens the teacher wrote or scored for the student's training; wall: the "
        "training stages' own time on this machine (for on-policy rows, the off-policy KD stage they start from "
        "included; generating the teacher's answers is not counted).")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
