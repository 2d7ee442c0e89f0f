"""KD against SFT-only at the same depth: the goal is a held-out KL of at most 0.8x the SFT-only student's at the
default budget. At 15 and 18 of the teacher's 30 layers (the old and the new default), three students from the same
pruned start, 30 steps on the default run's 240 teacher answers: SFT-only (CE at weight 1, as in the on-policy
experiment), KD + CE, and KD + CE + unlikelihood at weight 1 and 8 (earlier default recipes; experiments/kd_alone.py
measures the default, KD alone + unlikelihood 8).

    python experiments/kd_over_sft.py RUN VALIDATION_RUN

Run after experiments/student_depth.py, whose default-recipe students (runs/exp-depth/L*/student) it reuses.
RUN holds the default run's shards (train and heldout); VALIDATION_RUN holds teacher shards of
prompts/validation.jsonl in shards/train. The best KD recipe at each depth is chosen on validation KL; the ratio is
reported on the held-out shards. Writes docs/results/kd_over_sft.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import KD_AND_CE, NO_UPSAMPLE, ROOT, UNLIKELIHOOD_WEIGHT_1, heldout_kl, run_dir_with_shards, stage

import results  # noqa: E402

DEPTHS = (15, 18)
RECIPES = {"student_sft": ("SFT-only (CE)", ["train.w_ce=1.0", "train.w_kd=0", "train.w_unlikelihood=0"]),
           "student_kd": ("KD + CE", ["train.w_unlikelihood=0", *KD_AND_CE]),
           "student": ("KD + CE + unlikelihood 1 (an earlier default)", [UNLIKELIHOOD_WEIGHT_1, *KD_AND_CE]),
           "student_ul8": ("KD + CE + unlikelihood 8 (an earlier default)", ["train.w_unlikelihood=8.0", *KD_AND_CE])}
KD_RECIPES = [name for name in RECIPES if name != "student_sft"]


def main(argv: list[str]) -> int:
    run, val = Path(argv[0]), Path(argv[1])
    rows = []
    for n in DEPTHS:
        folder = run_dir_with_shards(ROOT / "runs" / "exp-depth" / f"L{n}", run / "shards" / "train")
        scores = {}
        for name, (_, overrides) in RECIPES.items():
            stage("train", f"run.dir={folder}", f"student.from_teacher_layers={n}", f"train.output_name={name}",
                  NO_UPSAMPLE, *overrides)
            scores[name] = (heldout_kl(folder / name, val / "shards" / "train"),
                            heldout_kl(folder / name, run / "shards" / "heldout"))
        best = min(KD_RECIPES, key=lambda name: scores[name][0])  # chosen on validation
        sft_val, sft_heldout = scores["student_sft"]
        for name, (label, _) in RECIPES.items():
            v, h = scores[name]
            rows.append([n, label, v, h, v / sft_val, h / sft_heldout, "chosen" if name == best else ""])
            print(rows[-1], flush=True)
    results.record(
        "kd_over_sft", "KD against SFT-only at the same depth, default budget (30 steps)",
        ["layers kept", "recipe", "validation KL", "held-out KL", "validation KL / SFT-only's",
         "held-out KL / SFT-only's (goal <= 0.8)", "best KD recipe on validation"],
        rows, f"python experiments/kd_over_sft.py {run} {val}", {"depths": DEPTHS},
        "Every student: layers chosen by drop_one_kl, 30 steps on the default run's 240 teacher answers, the default "
        "lr and schedule; only the loss weights differ. KLs: teacher-forced, top-k plus tail over the teacher's "
        "sampled answers (lower bounds); validation: prompts/validation.jsonl (where the KD recipe is chosen); "
        "held-out: the default run's held-out answers (reported, not used for any choice).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
