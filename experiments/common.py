"""Shared steps of the experiment scripts: run a stage through the `distill` command, score models, read reports.

Every experiment chooses on the validation prompts (prompts/validation.jsonl, shards in VALIDATION_RUN/shards/train)
and reports on the held-out prompts; results go to docs/results/ through scripts/results.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DISTILL = str(ROOT / ".venv" / "bin" / "distill")
CONFIG = str(ROOT / "configs" / "default.yaml")
sys.path.insert(0, str(ROOT / "scripts"))

from distill.config import load_config  # noqa: E402

TEACHER = load_config(CONFIG).teacher.model  # the default run's teacher, which every experiment distils
# The recipe that the tables of the scripts passing this were measured with: from before the unlikelihood term became
# the default (README, "Unlikelihood"), so that their commands still reproduce them.
WITHOUT_UNLIKELIHOOD = "train.w_unlikelihood=0"
# The student the tables of the scripts passing this were measured with: 15 of the teacher's 30 layers, from before
# the default kept 18 (README, "Depth").
FIFTEEN_LAYERS = "student.from_teacher_layers=15"
# The unlikelihood weight of the default recipe before weight 8 became the default (README, "Unlikelihood"), for the
# scripts whose tables were measured with it.
UNLIKELIHOOD_WEIGHT_1 = "train.w_unlikelihood=1.0"
# The loss weights of the default recipe before KD alone became the default (README, "KD alone"), for the scripts
# whose tables were measured with them.
KD_AND_CE = ("train.w_ce=0.5", "train.w_kd=0.5")
# No task drawn more often than its share, as before the default drew the checkable tasks twice as often (README,
# "Multi-task mixtures"), for every script measured before that.
NO_UPSAMPLE = "train.upsample={}"


def stage(name: str, *overrides: str) -> float:
    """`distill <name> configs/default.yaml overrides...`; returns its wall time in seconds."""
    start = time.time()
    subprocess.run([DISTILL, name, CONFIG, *overrides], check=True, cwd=ROOT)
    return time.time() - start


def run_dir_with_shards(run: Path, shards: Path | None, heldout: Path | None = None) -> Path:
    """A run folder whose shards/train and shards/heldout are links to existing shard sets (None: no link)."""
    (run / "shards").mkdir(parents=True, exist_ok=True)
    for name, target in (("train", shards), ("heldout", heldout)):
        link = run / "shards" / name
        if target is not None and not link.exists():
            os.symlink(Path(target).resolve(), link)
    return run


def evaluate(run: Path, students: dict[str, str], prompts: str, heldout_shards: Path, *overrides: str,
             train_shards: Path | None = None) -> dict:
    """`distill eval` on the teacher and the given students against a prompt set and its teacher shards; the
    report. train_shards: what the students were trained on, for eval's check that no scored prompt was trained on."""
    run_dir_with_shards(run, train_shards, heldout_shards)
    listing = "{" + ", ".join(f"{k}: {v}" for k, v in {"teacher": TEACHER, **students}.items()) + "}"
    stage("eval", f"run.dir={run}", f"eval.models={listing}", f"eval.prompts=[{prompts}]", *overrides)
    return json.loads((run / "eval" / "report.json").read_text())


def summary(model_dir: Path) -> dict:
    return json.loads((Path(model_dir) / "train_summary.json").read_text())


def heldout_kl(model_dir: Path, shards: Path) -> float:
    """A model's teacher-forced KL (top-k plus tail, a lower bound) on a shard set, token-weighted."""
    from distill.losses import HELDOUT_KL
    from distill.scoring import evaluate_on_shards

    rows = evaluate_on_shards(model_dir, shards, HELDOUT_KL, 512, 1024)
    return sum(r["kl_sum"] for r in rows) / sum(r["tokens"] for r in rows)


def exact_passes(eval_run: Path, model: str) -> list[dict]:
    """The checkable prompts whose answer passed its check in an eval run (run.dir=eval_run): prompt and answer,
    so a results file shows what an exact-accuracy figure is made of."""
    from distill.eval.metrics import passes_check
    from distill.files import read_jsonl

    rows = read_jsonl(Path(eval_run) / "eval" / "generations" / f"{model}.jsonl")
    return [{"prompt": r["prompt"], "answer": r["response"]} for r in rows if r.get("check") and passes_check(r)]
