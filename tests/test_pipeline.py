"""The whole default pipeline, end to end, at a small size: `bash scripts/pipeline.sh` on the default SmolLM2
teacher and config, shrunk by overrides to a handful of prompts and steps. It guards the stage boundaries
(shards -> train -> eval) and the report keys the README promises; a second run must skip every stage."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEACHER = ROOT / "models" / "smollm2-135m-instruct"
MODEL_NAMES = {"teacher", "student", "student_init", "student_sft"}
REPORT_KEYS = {"heldout_kl", "top1_agreement", "exact_accuracy", "params", "tokens_per_s"}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (TEACHER / "config.json").is_file(),
                       reason=f"default teacher not prepared at {TEACHER} (run: bash scripts/setup.sh)"),
]


def pipeline(run_dir: Path) -> subprocess.CompletedProcess:
    small = [f"run.dir={run_dir}", "generate.max_prompts=8", "generate.heldout_max_prompts=6", "generate.max_tokens=24",
             "generate.shard_size=4", "train.max_steps=3", "train.batch_size=4", "train.eval_steps=2",
             "train.save_steps=2", "train.logging_steps=1", "eval.max_prompts=6", "eval.max_tokens=24",
             "train.sft_baseline=true",
             # Every one of the 8 answers once: upsampled draws (with replacement) of so few rows can leave the 3 steps
             # too few distinct answers to move the student, which the KL check below needs.
             "train.upsample={}"]
    return subprocess.run(["bash", str(ROOT / "scripts" / "pipeline.sh"), "configs/default.yaml", *small],
                           cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=1500)


def test_default_pipeline_end_to_end(tmp_path):
    run_dir = tmp_path / "run with space"
    proc = pipeline(run_dir)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]

    manifest = json.loads((run_dir / "shards" / "train" / "manifest.json").read_text())
    assert manifest["counts"]["records"] == 8 and manifest["k"] == 20
    for name in ("student", "student_sft"):
        summary = json.loads((run_dir / name / "train_summary.json").read_text())
        assert summary["steps"] == 3, summary
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert set(report["models"]) == MODEL_NAMES, report["models"].keys()
    for name, row in report["models"].items():
        assert REPORT_KEYS <= set(row), (name, row)
        assert row["heldout_kl"] is not None and row["tokens_per_s"] > 0, (name, row)
    assert report["models"]["teacher"]["heldout_kl"] < 0.01  # the teacher against its own shards
    # Training moved the pruned student towards the teacher, even in 3 steps.
    assert report["models"]["student"]["heldout_kl"] < report["models"]["student_init"]["heldout_kl"]
    assert "top-1 agreement" in out and "[pipeline] done in" in out  # the headline table, then the summary
    # Library logs go to RUN/logs/<stage>.log, not to the terminal.
    noise = [ln for ln in out.splitlines() if re.match(r"^\(?(EngineCore|Worker|INFO|WARNING|DEBUG)\b", ln)
             or "Loading safetensors" in ln or "it/s]Loading weights" in ln]
    assert not noise, noise[:10]
    for stage in ("generate", "train", "eval"):  # training may have nothing to say; the vLLM engines always do
        assert (run_dir / "logs" / f"{stage}.log").is_file(), stage
    for stage in ("generate", "eval"):
        assert "vllm" in (run_dir / "logs" / f"{stage}.log").read_text(), stage
    assert (run_dir / "eval" / "report.md").is_file() and list((run_dir / "eval").glob("*.png"))

    # A rerun finds every stage complete and redoes nothing.
    def stamps():  # eval rebuilds its report and the logs grow: everything else must stay untouched
        return {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")
                if p.is_file() and "eval" not in p.parts and "logs" not in p.parts}

    before = stamps()
    proc = pipeline(run_dir)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "generations already done" in out, out[-6000:]
    after = stamps()
    assert after == before, sorted(str(p) for p in set(after) ^ set(before) | {p for p in before if before[p] != after.get(p)})
