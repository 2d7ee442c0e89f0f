"""KD against SFT-only with the learning rate tuned for each recipe: does KD pull ahead of SFT where the step is
larger? The goal is a held-out KL of at most 0.8x the SFT-only student's at the default budget; the comparison in
experiments/kd_over_sft.py gave every recipe the default run's learning rate (3e-4), which was tuned for neither.

At 18 of the teacher's 30 layers (the default), 30 steps on the default run's 240 teacher answers, no unlikelihood
term: SFT-only (CE), KD + CE (the default weights, 0.5 each) and KD alone (the top-k divergence, no CE), each at
learning rates 1e-4, 3e-4 and 1e-3.

    python experiments/kd_lr.py RUN VALIDATION_RUN

Run after experiments/kd_over_sft.py, whose 18-layer students at 3e-4 (runs/exp-depth/L18/student_sft and
student_kd) it reuses. The rule, fixed before the run: each recipe keeps the learning rate with the lowest validation
KL; the KD recipe with the lowest validation KL at its learning rate is compared with SFT-only at its own. Held-out
KLs are reported, never used to choose. Writes docs/results/kd_lr.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import NO_UPSAMPLE, ROOT, heldout_kl, run_dir_with_shards, stage
from kd_over_sft import RECIPES as KD_OVER_SFT_RECIPES

import results  # noqa: E402

LAYERS = 18
LEARNING_RATES = (1e-4, 3e-4, 1e-3)
DEFAULT_LR = 3e-4  # the default run's; its students are kd_over_sft's, under their names there
# SFT-only and KD + CE as kd_over_sft trains them (the same names, so its students at 3e-4 are reused), and KD alone.
RECIPES = {name: KD_OVER_SFT_RECIPES[name] for name in ("student_sft", "student_kd")}
RECIPES["student_kd_only"] = ("KD alone", ["train.w_ce=0", "train.w_kd=1.0", "train.w_unlikelihood=0"])


def output_name(recipe: str, lr: float) -> str:
    return recipe if lr == DEFAULT_LR else f"{recipe}_lr{lr:g}"


def main(argv: list[str]) -> int:
    run, val = Path(argv[0]), Path(argv[1])
    folder = run_dir_with_shards(ROOT / "runs" / "exp-depth" / f"L{LAYERS}", run / "shards" / "train")
    scores = {}  # (recipe, lr) -> (validation KL, held-out KL)
    for recipe, (_, overrides) in RECIPES.items():
        for lr in LEARNING_RATES:
            name = output_name(recipe, lr)
            stage("train", f"run.dir={folder}", f"student.from_teacher_layers={LAYERS}", f"train.output_name={name}",
                  f"train.lr={lr}", NO_UPSAMPLE, *overrides)
            scores[recipe, lr] = (heldout_kl(folder / name, val / "shards" / "train"),
                                  heldout_kl(folder / name, run / "shards" / "heldout"))
            print(recipe, lr, scores[recipe, lr], flush=True)
    best_lr = {recipe: min(LEARNING_RATES, key=lambda lr: scores[recipe, lr][0]) for recipe in RECIPES}
    best_kd = min((r for r in RECIPES if r != "student_sft"), key=lambda r: scores[r, best_lr[r]][0])
    sft_val, sft_heldout = scores["student_sft", best_lr["student_sft"]]
    rows = []
    for recipe, (label, _) in RECIPES.items():
        for lr in LEARNING_RATES:
            v, h = scores[recipe, lr]
            chosen = "chosen lr" if lr == best_lr[recipe] else ""
            if recipe == best_kd and chosen:
                chosen = "chosen lr, best KD recipe"
            rows.append([label, f"{lr:g}", v, h, v / sft_val, h / sft_heldout, h / scores["student_sft", lr][1],
                         chosen])
    results.record(
        "kd_lr", "KD against SFT-only, each recipe at its own learning rate (18 layers, 30 steps)",
        ["recipe", "learning rate", "validation KL", "held-out KL", "validation KL / SFT-only's (at its lr)",
         "held-out KL / SFT-only's (at its lr; goal <= 0.8)", "held-out KL / SFT-only's at the same lr",
         "chosen on validation"],
        rows, f"python experiments/kd_lr.py {run} {val}", {"layers": LAYERS, "learning_rates": LEARNING_RATES},
        "Every student: 18 layers chosen by drop_one_kl, 30 steps on the default run's 240 teacher answers, the "
        "default schedule (cosine, 5% warm-up), no unlikelihood term; only the loss weights and the learning rate "
        "differ. Ratios are against the SFT-only student at the learning rate chosen for it, except the one that "
        "says 'at the same lr'. KLs: teacher-forced, top-k plus tail over the teacher's sampled answers (lower "
        "bounds); validation: prompts/validation.jsonl (where every choice is made); held-out: the default run's "
        "held-out answers (reported only).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
