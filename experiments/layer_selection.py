"""Which layers should a depth-pruned student keep? Every selection method of train/prune.py, at two sizes, scored
untrained and after the default training, on the held-out teacher shards (reported) and the validation shards (the
ones to choose by).

    python experiments/layer_selection.py RUN VALIDATION_RUN [--train]

RUN holds the default run's shards (distill generate configs/default.yaml run.dir=RUN); VALIDATION_RUN holds teacher
shards of prompts/validation.jsonl in shards/train. Writes docs/results/layer_selection.json (untrained) and, with
--train, docs/results/layer_selection_trained.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import results  # noqa: E402
from common import KD_AND_CE, NO_UPSAMPLE, WITHOUT_UNLIKELIHOOD  # noqa: E402

from distill.config import load_config  # noqa: E402
from distill.losses import HELDOUT_KL  # noqa: E402
from distill.scoring import evaluate_on_shards  # noqa: E402

# (layers kept, methods): greedy_kl costs about (L + N)(L - N)/2 passes of the layers after the removed one, about
# 20 minutes for 30 -> 10 on this machine, so it runs at the larger size only.
METHODS = {10: ("even", "block_influence", "drop_one_kl", "contiguous"),
           15: ("even", "block_influence", "drop_one_kl", "greedy_kl", "contiguous")}
# trained at the default budget: the old default (10 even), and at 15 layers even against the chosen method
# (greedy_kl starts where drop_one_kl does, at thirty times the selection cost; block_influence starts higher)
TRAINED = {10: ("even",), 15: ("even", "drop_one_kl")}
CALIBRATION_RECORDS = 8  # what these tables were measured with (the default run now uses 4: configs/default.yaml)


def score(model_dir: Path, shards: Path) -> tuple[float, float]:
    rows = evaluate_on_shards(model_dir, shards, HELDOUT_KL, 512, 1024)
    tokens = sum(r["tokens"] for r in rows)
    return sum(r["kl_sum"] for r in rows) / tokens, sum(r["top1_agree"] for r in rows) / tokens


def untrained(run: Path, val: Path, work: Path) -> list[dict]:
    from distill.train.student import make_student_from_teacher

    cfg = load_config(ROOT / "configs" / "default.yaml")
    out = []
    for n, methods in METHODS.items():
        for method in methods:
            folder = work / f"{method}-{n}" / "student_init"
            start = time.time()
            make_student_from_teacher(cfg.teacher.model, n, folder, method, run / "shards" / "train",
                                      CALIBRATION_RECORDS, cfg.train.max_seq_len)
            record = json.loads((folder / "student_init.json").read_text())
            val_kl, val_top1 = score(folder, val / "shards" / "train")
            kl, top1 = score(folder, run / "shards" / "heldout")
            out.append({"layers": n, "method": method, "kept": record["kept_layers"], "val_kl": val_kl,
                        "val_top1": val_top1, "heldout_kl": kl, "heldout_top1": top1,
                        "select_s": record["selection"].get("seconds", time.time() - start)})
            print(json.dumps(out[-1]), flush=True)
    return out


def trained(run: Path, val: Path, work: Path) -> list[dict]:
    out = []
    for n, methods in TRAINED.items():
        for method in methods:
            exp = work / f"{method}-{n}"
            if not (exp / "shards").exists():
                (exp / "shards").mkdir(parents=True)
                os.symlink((run / "shards" / "train").resolve(), exp / "shards" / "train")
            cmd = [str(ROOT / ".venv" / "bin" / "distill"), "train", str(ROOT / "configs" / "default.yaml"),
                   f"run.dir={exp}", f"student.from_teacher_layers={n}", f"student.layer_selection={method}",
                   f"student.calibration_records={CALIBRATION_RECORDS}", WITHOUT_UNLIKELIHOOD, *KD_AND_CE, NO_UPSAMPLE]
            start = time.time()
            subprocess.run(cmd, check=True, cwd=ROOT)
            summary = json.loads((exp / "student" / "train_summary.json").read_text())
            val_kl, val_top1 = score(exp / "student", val / "shards" / "train")
            kl, top1 = score(exp / "student", run / "shards" / "heldout")
            out.append({"layers": n, "method": method, "steps": summary["steps"], "val_kl": val_kl,
                        "val_top1": val_top1, "heldout_kl": kl, "heldout_top1": top1,
                        "train_s": summary["train_wall_s"], "wall_s": time.time() - start})
            print(json.dumps(out[-1]), flush=True)
    return out


def main(argv: list[str]) -> int:
    run, val = Path(argv[0]), Path(argv[1])
    work = run.parent / f"{run.name}-layers"
    command = f"python experiments/layer_selection.py {run} {val}"
    if "--train" in argv:  # the trained comparison only; the untrained one is its own run
        rows = trained(run, val, work)
        results.record(
            "layer_selection_trained", "The same students after the default training (30 steps, KD + CE)",
            ["layers kept", "method", "steps", "validation KL", "held-out KL", "held-out top-1", "training (s)"],
            [[r["layers"], r["method"], r["steps"], r["val_kl"], r["heldout_kl"], r["heldout_top1"],
              round(r["train_s"], 1)] for r in rows],
            command + " --train", {"config": "configs/default.yaml"},
            "Each student trained by `distill train configs/default.yaml` with its layer selection; scored as above.")
        return 0
    rows = untrained(run, val, work)
    even = {r["layers"]: r["heldout_kl"] for r in rows if r["method"] == "even"}
    results.record(
        "layer_selection", "Untrained students cut from SmolLM2-135M-Instruct (30 layers): which layers to keep",
        ["layers kept", "method", "validation KL", "held-out KL", "vs even", "held-out top-1", "selection (s)",
         "kept layers"],
        [[r["layers"], r["method"], r["val_kl"], r["heldout_kl"], f"{r['heldout_kl'] / even[r['layers']]:.2f}x",
          r["heldout_top1"], round(r["select_s"], 1), " ".join(map(str, r["kept"]))] for r in rows],
        command, {"calibration_records": CALIBRATION_RECORDS,
                  "teacher": load_config(ROOT / "configs" / "default.yaml").teacher.model},
        "KL is the top-k-plus-tail KL(teacher || student) per answer token (a lower bound of the full KL) on the "
        "teacher's held-out answers; the validation column is the same on prompts/validation.jsonl, where choices are "
        f"made. Calibration: the first {CALIBRATION_RECORDS} records of the training shards.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
