"""On-policy rounds end to end on tiny models (real vLLM engines for the student and the teacher, real training):
rounds write ordinary shard sets that say the student wrote the answers, the student's engine takes the new weights
between rounds, a killed run resumes where it stopped, and bad starts are refused before the first round."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import build_tiny_llama
from distill import shards as sh
from distill.config import load_config
from distill.errors import DistillError

pytestmark = pytest.mark.slow

PROMPTS = [f"Tell me one thing about {w}." for w in ("rain", "maps", "tea", "owls", "salt", "trains", "bees", "glass")]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("onpolicy")
    teacher = build_tiny_llama(root / "teacher", layers=2, hidden=128, seed=0)  # head_dim 32: vLLM's CPU kernels
    student = build_tiny_llama(root / "student", layers=1, hidden=128, seed=1)
    corpus = root / "prompts.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"p{i}", "prompt": p, "category": "misc"}) + "\n"
                              for i, p in enumerate(PROMPTS)))
    return {"teacher": teacher, "student": student, "corpus": corpus}


def make_cfg(models, run_dir: Path, *extra):
    return load_config(None, [
        f"run.dir={run_dir}", f"teacher.model={models['teacher']}", "teacher.max_model_len=512",
        f"generate.prompts={models['corpus']}", "generate.k=5", f"onpolicy.init={models['student']}",
        "onpolicy.rounds=2", "onpolicy.prompts_per_round=4", "onpolicy.max_tokens=8", "onpolicy.steps_per_round=2",
        "train.batch_size=2", "train.report_to=none", "train.logging_steps=1", "train.max_seq_len=256", *extra])


def test_two_rounds_then_resume_after_a_kill_between_and_within_rounds(models, tmp_path, monkeypatch):
    from distill.onpolicy.run import run

    run_dir = tmp_path / "run"
    # Killed at the start of step 3: round 0 (steps 1-2) is done and checkpointed, round 1's answers are scored.
    monkeypatch.setenv("DISTILL_STOP_AFTER_STEP", "3")
    with pytest.raises(KeyboardInterrupt):
        run(make_cfg(models, run_dir, "onpolicy.loss=sampled_token", "train.save_steps=1"))
    out = run_dir / "student_onpolicy"
    round0 = {p.name: p.read_bytes() for p in (out / "rounds" / "round-000").iterdir()}
    assert (out / "checkpoints" / "checkpoint-3").is_dir() or (out / "checkpoints" / "checkpoint-2").is_dir()
    assert (sh.read_manifest(out / "rounds" / "round-001") or {}).get("complete")
    monkeypatch.delenv("DISTILL_STOP_AFTER_STEP")

    summary = run(make_cfg(models, run_dir, "onpolicy.loss=sampled_token", "train.save_steps=1"))
    assert summary["rounds"] == 2 and summary["steps"] == 4 and summary["teacher_tokens"] > 0
    # The first round's data was not made again, and each round says who wrote its answers, with what weights.
    assert {p.name: p.read_bytes() for p in (out / "rounds" / "round-000").iterdir()} == round0
    manifests = [sh.read_manifest(out / "rounds" / f"round-{r:03d}") for r in (0, 1)]
    for r, m in enumerate(manifests):
        assert m["responses"]["by"] == "model" and m["responses"]["model"] == "student" and m["responses"]["round"] == r
        assert m["mode"] == "score" and m["complete"]
    assert manifests[0]["responses"]["weights_sha256"] != manifests[1]["responses"]["weights_sha256"]
    assert (out / "model.safetensors").is_file() and (out / "train_summary.json").is_file()
    log = json.loads((out / "train_log.json").read_text())
    assert any("on_estimate" in h for h in log)  # the per-token reverse-KL estimate is logged
    # A rerun with the same settings does nothing.
    assert run(make_cfg(models, run_dir, "onpolicy.loss=sampled_token", "train.save_steps=1"))["steps"] == 4


def test_a_mixed_run_reloads_the_students_weights_in_place(models, tmp_path):
    from distill.onpolicy.run import run
    from shard_factory import write_shard_set

    write_shard_set(models["teacher"], tmp_path / "run" / "shards" / "train", k=5, max_new_tokens=6)
    summary = run(make_cfg(models, tmp_path / "run", "onpolicy.lmbda=0.5", "onpolicy.loss=reverse_kl"))
    assert summary["engine_reloads"] == 2 and summary["engine_restarts"] == 0
    # lmbda 0.5: each round trains on its 4 student answers and as many stored teacher answers.
    assert [(r["round"], r["rows"]) for r in summary["round_log"]] == [(0, 8), (1, 8)]
    assert summary["mixture"]["prompts_drawn"] == {"misc": 8}  # 2 rounds of 4 prompts, all of the corpus' category
    assert sum(task["records"] for task in summary["mixture"]["stored_answers"].values()) == 12


def test_a_student_with_another_tokenizer_is_refused_before_the_first_round(models, tmp_path):
    from transformers import AutoTokenizer

    from distill.onpolicy.run import run

    other = build_tiny_llama(tmp_path / "other", layers=1, hidden=128, seed=2)
    tok = AutoTokenizer.from_pretrained(other)
    tok.add_tokens(["<extra>"])
    tok.save_pretrained(other)
    with pytest.raises(DistillError, match="tokenizer differs from the teacher's"):
        run(make_cfg(models, tmp_path / "run", f"onpolicy.init={other}"))
    assert not (tmp_path / "run" / "student_onpolicy" / "rounds").exists()


def test_a_round_whose_scoring_fails_keeps_the_earlier_rounds(models, tmp_path, monkeypatch):
    import distill.onpolicy.rounds as rounds
    from distill.onpolicy.run import run

    real = rounds.score_answers
    calls = []

    def fail_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("teacher engine died")
        return real(*args, **kwargs)

    monkeypatch.setattr(rounds, "score_answers", fail_second)
    run_dir = tmp_path / "run"
    with pytest.raises(DistillError) as e:
        run(make_cfg(models, run_dir))
    assert str(e.value).startswith("round 1: sampling or scoring failed (RuntimeError: teacher engine died)")
    assert "rerun the same command to resume" in str(e.value)
    out = run_dir / "student_onpolicy"
    assert sh.read_manifest(out / "rounds" / "round-000")["complete"]
    assert not (out / "rounds" / "round-001").exists()
    monkeypatch.setattr(rounds, "score_answers", real)
    assert run(make_cfg(models, run_dir))["rounds"] == 2
