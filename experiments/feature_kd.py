"""Logit KD alone vs logit KD plus feature (layer-wise) distillation against an online teacher, at equal steps and
at equal wall time, at the default budget and a longer one.

    python experiments/feature_kd.py RUN VALIDATION_RUN [student overrides ...]

The feature weight is chosen on the validation shards; every row reports the held-out teacher shards. Writes
docs/results/feature_kd.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common import (FIFTEEN_LAYERS, KD_AND_CE, NO_UPSAMPLE, ROOT, WITHOUT_UNLIKELIHOOD, run_dir_with_shards, stage,
                    summary)

import results  # noqa: E402

from distill.losses import HELDOUT_KL  # noqa: E402
from distill.scoring import evaluate_on_shards  # noqa: E402

WEIGHTS = (0.1, 1.0)  # feature weights tried on validation (cosine loss)
BUDGETS = (30, 60)  # steps: the default run's and a longer one (60 of a 60-step schedule)


def kl(model_dir: Path, shards: Path) -> float:
    rows = evaluate_on_shards(model_dir, shards, HELDOUT_KL, 512, 1024)
    return sum(r["kl_sum"] for r in rows) / sum(r["tokens"] for r in rows)


def train(work: Path, run: Path, name: str, steps: int, *overrides: str) -> dict:
    exp = run_dir_with_shards(work / name, run / "shards" / "train")
    seconds = stage("train", f"run.dir={exp}", WITHOUT_UNLIKELIHOOD, FIFTEEN_LAYERS, *KD_AND_CE, NO_UPSAMPLE,
                    f"train.max_steps={steps}", f"train.save_steps={max(steps // 2, 1)}",
                    *overrides)
    return {"name": name, "steps": steps, "wall_s": seconds, "train_s": summary(exp / "student")["train_wall_s"],
            "dir": exp / "student"}


def main(argv: list[str]) -> int:
    run, val, student = Path(argv[0]), Path(argv[1]), argv[2:]
    work = run.parent / f"{run.name}-features"
    val_shards, heldout = val / "shards" / "train", run / "shards" / "heldout"
    rows, weight = [], None
    for steps in BUDGETS:
        kd = train(work, run, f"kd-{steps}", steps, *student)
        kd["val_kl"] = kl(kd["dir"], val_shards)
        tried = [train(work, run, f"kdf{w}-{steps}", steps, *student, f"train.w_feature={w}")
                 for w in ([weight] if weight else WEIGHTS)]  # the weight is chosen once, at the default budget
        for t in tried:
            t["val_kl"] = kl(t["dir"], val_shards)
        best = min(tried, key=lambda t: t["val_kl"])  # chosen on validation
        weight = weight or float(best["name"][3:].split("-")[0])
        equal_wall = round(best["train_s"] / (kd["train_s"] / steps))
        kd_wall = train(work, run, f"kd-{steps}-wall", equal_wall, *student)
        kd_wall["val_kl"] = kl(kd_wall["dir"], val_shards)
        for t, label in ((kd, "logit KD"), (best, f"logit KD + features (w_feature {weight})"),
                         (kd_wall, "logit KD, equal wall time")):
            rows.append([steps, label, t["steps"], round(t["train_s"], 1), round(t["train_s"] / t["steps"], 2),
                         t["val_kl"], kl(t["dir"], heldout)])
            print(rows[-1], flush=True)
    results.record(
        "feature_kd", "Logit KD alone vs logit KD + feature distillation (online teacher, cosine loss)",
        ["budget (steps)", "recipe", "steps", "training (s)", "s/step", "validation KL", "held-out KL"], rows,
        f"python experiments/feature_kd.py {run} {val} {' '.join(student)}".strip(),
        {"student": student, "feature_weights_tried": WEIGHTS, "feature_loss": "cosine"},
        "Held-out KL: top-k-plus-tail KL(teacher || student) per answer token (a lower bound of the full KL). The "
        "feature weight is the one with the lowest validation KL; 'equal wall time' trains logit KD alone for as many "
        "steps as fit in the feature run's training time.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
