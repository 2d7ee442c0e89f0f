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


def stage(name: str, *overrides: str) -> float:
    """`distill <name> configs/default.yaml overrides...`; returns its wall time in seconds."""
    start = time.time()
    subprocess.run([DISTILL, name, CONFIG, *overrides], check=True, cwd=ROOT)
    return time.time() - start


def run_dir_with_shards(run: Path, shards: Path, heldout: Path | None = None) -> Path:
    """A run folder whose shards/train (and shards/heldout) are links to existing shard sets."""
    (run / "shards").mkdir(parents=True, exist_ok=True)
    for name, target in (("train", shards), ("heldout", heldout)):
        link = run / "shards" / name
        if target is not None and not link.exists():
            os.symlink(Path(target).resolve(), link)
    return run


def evaluate(run: Path, models: dict[str, str], prompts: str, heldout_shards: Path, *overrides: str) -> dict:
    """`distill eval` on the given models against a prompt set and its teacher shards; the report's models."""
    run_dir_with_shards(run, heldout_shards, heldout_shards)
    listing = "{" + ", ".join(f"{k}: {v}" for k, v in models.items()) + "}"
    stage("eval", f"run.dir={run}", f"eval.models={listing}", f"eval.prompts=[{prompts}]", *overrides)
    return json.loads((run / "eval" / "report.json").read_text())


def summary(model_dir: Path) -> dict:
    return json.loads((Path(model_dir) / "train_summary.json").read_text())
