"""End to end: the eval stage with the real vLLM CPU engine on tiny random models.

One full run (3 engine starts: student, student_init, then the teacher, whose engine also judges) serves the
module; the other tests reuse its files (resume, rebuild, an unreachable judge endpoint) or stop before any
engine starts (user errors). Models use head_dim 32: vLLM's CPU attention has no kernel for conftest's tiny
models (head_dim 16 and 8), so this module builds its own with build_tiny_llama.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED, build_tiny_llama
from distill.config import load_config
from distill.errors import DistillError
from shard_factory import PROMPTS, write_shard_set

PY = sys.executable
KEYS = ["heldout_kl", "heldout_kl_full", "top1_agreement", "heldout_nll", "own_answer_reverse_kl",
        "own_answer_teacher_logprob", "exact_accuracy", "rouge_l", "params", "size_mb", "tokens_per_s",
        "tokens_per_s_min", "tokens_per_s_max", "ttft_s", "engine_peak_rss_mb", "mean_response_tokens",
        "repetition_rate", "empty_rate", "cutoff_rate", "tasks"]
HELDOUT = [
    {"id": "h1", "category": "arithmetic", "prompt": "What is 2 + 2?", "check": {"kind": "number", "answer": 4, "tolerance": 0}},
    {"id": "h2", "category": "format", "prompt": "Answer yes or no: is ice cold?", "check": {"kind": "yes_no", "answer": "yes"}},
    {"id": "h3", "category": "explanation", "prompt": "Why is the ocean salty?"},
    {"id": "h4", "category": "lists", "prompt": "Name two planets.",
     "check": [{"kind": "bullets", "count": 2}, {"kind": "all_words", "items": [["mars", "venus", "earth", "jupiter"]]}]},
    {"id": "h5", "category": "writing", "prompt": "Write a short poem about rain."},
    {"id": "h6", "category": "arithmetic", "prompt": PROMPTS[2]},  # also a training prompt: overlap 1
]
SECRET = "sk-test-secret-do-not-write"


def build_other_vocab_model(out: Path) -> Path:
    """A student whose vocabulary has one extra token: the shards' ids cannot be trusted for it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    build_tiny_llama(out, layers=1, hidden=128, seed=2)
    tok = AutoTokenizer.from_pretrained(out)
    tok.add_tokens(["<eval_test_extra_token>"])
    tok.save_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    model.resize_token_embeddings(len(tok))
    model.save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("eval")
    run_dir = root / "run"
    teacher = build_tiny_llama(root / "teacher", layers=2, hidden=128, seed=0)
    build_tiny_llama(run_dir / "student", layers=1, hidden=128, seed=1)
    build_other_vocab_model(run_dir / "student_init")
    (run_dir / "student" / "train_summary.json").write_text("{}")  # what train/ writes last
    (run_dir / "student_init" / "student_init.json").write_text("{}")
    write_shard_set(teacher, run_dir / "shards" / "train", prompts=PROMPTS[:8])
    write_shard_set(teacher, run_dir / "shards" / "heldout", prompts=[p["prompt"] for p in HELDOUT[:5]])
    heldout = root / "heldout.jsonl"
    heldout.write_text("".join(json.dumps(p) + "\n" for p in HELDOUT))
    return {"root": root, "run_dir": run_dir, "teacher": teacher, "heldout": heldout}


def make_cfg(env, *extra, run_dir=None):
    return load_config(None, [
        f"run.dir={run_dir or env['run_dir']}", f"teacher.model={env['teacher']}", "teacher.max_model_len=512",
        f"eval.prompts=[{env['heldout']}]", "eval.max_tokens=16", "eval.n_examples=2", "train.max_seq_len=256",
        "eval.judge.enabled=true", *extra])


@pytest.fixture(scope="module")
def full(env) -> Path:
    from distill.eval.run import run

    return run(make_cfg(env))


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def test_full_run_report(full, capsys):
    report = json.loads((full / "report.json").read_text())
    models = report["models"]
    assert list(models) == ["teacher", "student", "student_init"]
    for name, m in models.items():
        assert all(k in m for k in KEYS), name
        assert m["params"] > 0 and m["size_mb"] > 0 and m["tokens_per_s"] > 0 and m["ttft_s"] > 0
        rows = read_jsonl(full / "generations" / f"{name}.jsonl")
        assert len(rows) == len(HELDOUT)
        assert {"set", "prompt_id", "category", "check", "response", "response_token_count", "response_token_ids",
                "finish_reason"} <= set(rows[0])
        timing = json.loads((full / "generations" / f"{name}.timing.json").read_text())
        # Speed: 3 runs of the same fixed-length work; the report shows their median and spread.
        runs = timing["tokens_per_s_runs"]
        assert len(runs) == 3 and min(runs) > 0 and timing["speed_tokens_per_run"] == timing["speed_prompts"] * 16
        assert m["tokens_per_s_min"] <= m["tokens_per_s"] <= m["tokens_per_s_max"]
        assert m["engine_peak_rss_mb"] > 100  # the engine worker holds at least the 1 GiB KV cache reservation
    # the teacher scored on its own shards: KL only from the stored top-k's rounding
    assert models["teacher"]["heldout_kl"] < 0.01 and models["teacher"]["top1_agreement"] > 0.95
    assert models["student"]["heldout_kl"] > 0.01 and models["student"]["heldout_nll"] > 0
    # Full-vocabulary KL beside the top-k one: exactly 0 for the teacher, never below the top-k lower bound.
    assert models["teacher"]["heldout_kl_full"] == pytest.approx(0.0, abs=1e-5)
    assert models["student"]["heldout_kl_full"] >= models["student"]["heldout_kl"] - 1e-3
    # Own answers scored by the teacher: its own are the floor (reverse KL 0 up to the stored rounding).
    assert models["teacher"]["own_answer_reverse_kl"] < 0.01 < models["student"]["own_answer_reverse_kl"]
    assert models["student"]["own_answer_teacher_logprob"] < models["teacher"]["own_answer_teacher_logprob"] <= 0
    own = json.loads((full / "own_answers" / "student" / "manifest.json").read_text())
    assert own["responses"]["by"] == "model" and own["responses"]["model"] == "student" and own["mode"] == "score"
    assert models["student_init"]["own_answer_reverse_kl"] is None  # another vocabulary: the teacher cannot score it
    assert set(models["student"]["tasks"]) >= {h["category"] for h in HELDOUT}  # + "(none)": shards without tasks
    assert report["degenerate_floor"] is not None and set(report["degenerate_panel"]) >= {"always_yes", "empty",
                                                                                          "random_tokens"}
    assert models["teacher"]["rouge_l"] is None and models["student"]["rouge_l"] is not None
    assert models["teacher"]["exact_accuracy"] is not None  # 3 checkable prompts
    assert len(read_jsonl(full / "teacher_forced" / "student.jsonl")) == 5

    # incompatible tokenizer: teacher-forced metrics skipped with a reason, the rest kept
    assert models["student_init"]["heldout_kl"] is None and models["student_init"]["top1_agreement"] is None
    assert "tokenizer" in report["skipped"]["student_init"]
    assert models["student_init"]["rouge_l"] is not None and models["student_init"]["tokens_per_s"] > 0
    assert "not evaluated" in report["skipped"]["student_sft"]  # optional default model that does not exist

    assert report["overlap"]["checked"] and report["overlap"]["sets"] == {"heldout": 1}

    # judge through the teacher's vLLM engine
    pair = report["judge"]["pairs"]["student_vs_student_init"]
    assert pair["n"] == len(HELDOUT) and 0 <= pair["ci_low"] <= pair["win_rate"] <= pair["ci_high"] <= 1
    assert "student_vs_student_sft" in report["judge"]["missing"]
    assert len(read_jsonl(full / "judge" / "student_vs_student_init.jsonl")) == len(HELDOUT)

    # charts are real PNGs
    import matplotlib.image

    assert "chart_heldout_kl.png" in report["charts"] and "kl_per_prompt.png" in report["charts"]
    for name in report["charts"]:
        assert (full / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert matplotlib.image.imread(full / name).ndim == 3

    md = (full / "report.md").read_text()
    assert md.splitlines()[2] == "Answers: greedy, repetition penalty 1, at most 16 tokens, the same for every model."
    assert md.splitlines()[4].startswith("| model | held-out KL (top-k+tail, >=) | full-vocab KL |")
    assert "lower bound" in md and "Exact-accuracy floor" in md
    assert "undistilled" in md and "SFT-only" in md


LOOP_TOKENS = (40001, 40002, 40003)  # ordinary word pieces of SmolLM2's vocabulary, in no test prompt


def build_looping_llama(out: Path) -> Path:
    """A tiny Llama whose greedy answer is one token over and over: whatever the input, its logits are 3.0, 2.4 and
    1.8 times the same positive number on LOOP_TOKENS and 0 elsewhere (residual dimension 0 holds a constant 1 that
    no layer writes to, and the output reads nothing else)."""
    import torch
    from transformers import LlamaForCausalLM

    build_tiny_llama(out, layers=1, hidden=128, seed=2)
    model = LlamaForCausalLM.from_pretrained(out, dtype=torch.float32)
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 1.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0] = 0.0
            layer.mlp.down_proj.weight[0] = 0.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        head = torch.zeros_like(model.model.embed_tokens.weight)
        for token, logit in zip(LOOP_TOKENS, (3.0, 2.4, 1.8)):
            head[token, 0] = logit
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(head)
    model.save_pretrained(out)
    return out


def test_repetition_penalty_reaches_every_answer_and_the_report(env, tmp_path):
    """eval.repetition_penalty is vLLM's, applied to the answers the report scores: a model that loops on one token
    greedily cycles through its three candidates under a penalty of 2 (3.0 / 2 < 2.4, then 2.4 / 2 < 1.8 ...)."""
    from distill.eval.run import run

    looper = build_looping_llama(tmp_path / "looper")

    def answers(penalty):
        out = run(make_cfg(env, f"eval.models={{looper: {looper}}}", f"eval.repetition_penalty={penalty}",
                           "eval.judge.enabled=false", "eval.full_vocab_kl=false", run_dir=tmp_path / "run"))
        report = json.loads((out / "report.json").read_text())
        assert report["settings"]["repetition_penalty"] == penalty
        assert f"repetition penalty {penalty:g}," in (out / "report.md").read_text()
        return [r["response_token_ids"] for r in read_jsonl(out / "generations" / "looper.jsonl")]

    assert all(ids == [LOOP_TOKENS[0]] * 16 for ids in answers(1.0))
    assert all(set(ids) == set(LOOP_TOKENS) for ids in answers(2.0))  # a changed setting generates again


def test_rebuild_gives_identical_numbers(full, env):
    from distill.eval.report import build_report

    before = (full / "report.json").read_text()
    build_report(full)
    assert (full / "report.json").read_text() == before
    out = subprocess.run([PY, "-m", "distill.eval.report", str(env["run_dir"])], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"[eval] report: {full / 'report.md'}" in out.stdout and "speed-up vs teacher" in out.stdout
    assert json.loads((full / "report.json").read_text()) == json.loads(before)


def test_resume_runs_no_model(full, env, monkeypatch):
    import distill.eval.run as eval_run
    import distill.scoring as scoring

    def refuse(*args, **kwargs):
        raise AssertionError("a finished model was run again")

    monkeypatch.setattr(eval_run, "start_model_engine", refuse)
    monkeypatch.setattr(scoring, "evaluate_on_shards", refuse)
    stamps = {p: p.stat().st_mtime_ns for p in (full / "generations").iterdir()}
    eval_run.run(make_cfg(env))
    assert stamps == {p: p.stat().st_mtime_ns for p in (full / "generations").iterdir()}


def test_a_model_the_loss_cannot_score_is_skipped_with_the_reason(full, env, tmp_path, monkeypatch):
    import distill.eval.run as eval_run
    import distill.scoring as scoring
    from distill.errors import DistillError

    run_dir = tmp_path / "run"
    shutil.copytree(env["run_dir"], run_dir)  # generations resume; the student's teacher-forced scores do not
    out = run_dir / full.relative_to(env["run_dir"])
    for path in (out / "teacher_forced").glob("student.*"):
        path.unlink()

    def soft_capped(model, name):  # what train.checks.check_logits_path says of a Gemma 2 student
        raise DistillError(f"{name}: Gemma2ForCausalLM does more to its logits than its output layer")

    monkeypatch.setattr(eval_run, "start_model_engine", lambda *a, **k: (_ for _ in ()).throw(AssertionError("engine")))
    monkeypatch.setattr(scoring, "check_logits_path", soft_capped)
    report = json.loads((eval_run.run(make_cfg(env, run_dir=run_dir)) / "report.json").read_text())
    student = report["models"]["student"]
    assert student["heldout_kl"] is None and student["rouge_l"] is not None and student["tokens_per_s"] > 0
    assert "does more to its logits than its output layer" in report["skipped"]["student"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_unreachable_judge_endpoint_is_reported_missing(full, env, tmp_path, monkeypatch, capsys):
    import distill.eval.run as eval_run

    run_dir = tmp_path / "run"
    shutil.copytree(env["run_dir"], run_dir)  # generations resume (same weights); the judge settings changed
    monkeypatch.setattr(eval_run, "start_model_engine", lambda *a, **k: (_ for _ in ()).throw(AssertionError("engine")))
    monkeypatch.setenv("EVAL_TEST_KEY", SECRET)
    cfg = make_cfg(env, "eval.judge.backend=openai", f"eval.judge.base_url=http://127.0.0.1:{closed_port()}/v1",
                   "eval.judge.max_retries=1", "eval.judge.api_key_env=EVAL_TEST_KEY", "eval.judge.model=judge",
                   run_dir=run_dir)
    out = eval_run.run(cfg)
    report = json.loads((out / "report.json").read_text())
    assert "did not answer after 1 retries" in report["judge"]["missing"]["student_vs_student_init"]
    assert report["judge"]["pairs"] == {}
    assert not (out / "judge" / "student_vs_student_init.jsonl").exists()  # the old vLLM verdicts are gone
    assert "missing" in (out / "report.md").read_text()
    assert "reported missing" in capsys.readouterr().err
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".md"):
            assert SECRET not in path.read_text()


def test_user_errors_before_any_engine(env, tmp_path):
    from distill.eval.run import run

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DistillError, match="no prompts"):
        run(make_cfg(env, f"eval.prompts=[{env['heldout']}, {empty}]"))
    with pytest.raises(DistillError, match="eval.max_prompts: must be at least 1"):
        make_cfg(env, "eval.max_prompts=0")
    with pytest.raises(DistillError, match=r"eval\.models\.student: .*does not exist"):
        run(make_cfg(env, f"eval.models={{teacher: {env['teacher']}, student: {tmp_path / 'nope'}}}"))
    with pytest.raises(DistillError, match="model student: .*does not exist"):
        run(make_cfg(env, run_dir=tmp_path / "empty-run"))  # default student missing (not optional)

    # the command line: one-line error, exit 1
    config = tmp_path / "c.yaml"
    config.write_text(f"run:\n  dir: {env['run_dir']}\nteacher:\n  model: {env['teacher']}\neval:\n  prompts: [{empty}]\n")
    out = subprocess.run([PY, "-m", "distill.eval", str(config)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1


def test_ctrl_c_says_rerun_resumes(monkeypatch, capsys, env):
    import distill.eval.run as eval_run
    from distill.cli import stage_main

    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(eval_run, "run", interrupted)
    config = env["root"] / "ctrl-c.yaml"
    config.write_text(f"run:\n  dir: {env['run_dir']}\n")
    assert stage_main("eval", [str(config)]) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err


def test_overlap_counts_training_prompts(env):
    from distill.eval.run import load_sets, overlap_counts

    sets = load_sets(make_cfg(env))
    assert overlap_counts(sets, env["run_dir"] / "shards" / "train")["sets"] == {"heldout": 1}
    unchecked = overlap_counts(sets, env["root"] / "no-shards")
    assert unchecked["checked"] is False


@pytest.mark.skipif(not (SHARED / "prompts" / "mt_bench.jsonl").is_file(), reason="../shared is not present")
def test_mt_bench_as_heldout_set(env):
    from distill.eval import metrics
    from distill.eval.run import load_sets, overlap_counts

    source = SHARED / "prompts" / "mt_bench.jsonl"
    sets = load_sets(make_cfg(env, f"eval.prompts=[{source}, {env['heldout']}]"))
    assert list(sets) == ["mt_bench", "heldout"] and len(sets["mt_bench"]) == 80
    first = json.loads(source.read_text().splitlines()[0])
    p = sets["mt_bench"][0]
    assert p.messages == [{"role": "user", "content": first["turns"][0]}] and p.meta["category"] == first["category"]
    assert overlap_counts(sets, env["run_dir"] / "shards" / "train")["sets"] == {"mt_bench": 0, "heldout": 1}
    rows = [{"check": p.meta.get("check"), "response": "x"} for p in sets["mt_bench"]]
    assert metrics.exact_accuracy(rows) == (None, 0)


def test_report_from_handmade_files(tmp_path):
    """Every headline number recomputed from files written by hand (no model): KL, speed-up, the KD sentences."""
    from distill.eval.report import build_report

    out = tmp_path / "eval"
    for sub in ("generations", "teacher_forced", "judge"):
        (out / sub).mkdir(parents=True)
    names = ["teacher", "student", "student_init", "student_sft"]
    plan = {"models": {n: f"/models/{n}" for n in names}, "teacher": "teacher",
            "sets": {"s": {"source": "s.jsonl", "prompts": 2}}, "overlap": {"checked": True, "sets": {"s": 0}},
            "skipped": {}, "settings": {}, "n_examples": 1,
            "judge": {"enabled": True, "backend": "vllm", "model": "j", "ci": "Wilson", "missing": {},
                      "pairs": [["student", "student_init"]]}}
    (out / "run.json").write_text(json.dumps(plan))
    kl = {"teacher": 0.0, "student": 2.0, "student_init": 8.0, "student_sft": 2.5}
    speeds = {"teacher": [10.0, 9.0, 12.0], "student": [50.0, 40.0, 60.0], "student_init": [50.0, 49.0, 51.0],
              "student_sft": [25.0, 25.0, 30.0]}
    answers = {"teacher": ["the answer is 4", "yes it is"], "student": ["the answer is 4", "no"],
               "student_init": ["5", "maybe"], "student_sft": ["answer 4", "yes"]}
    for n in names:
        rows = [{"set": "s", "prompt_id": "a", "prompt": "2+2?", "check": {"kind": "number", "answer": 4, "tolerance": 0},
                 "response": answers[n][0], "response_token_count": 4, "finish_reason": "stop"},
                {"set": "s", "prompt_id": "b", "prompt": "Cold?", "check": {"kind": "yes_no", "answer": "yes"},
                 "response": answers[n][1], "response_token_count": 6, "finish_reason": "length"}]
        (out / "generations" / f"{n}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (out / "generations" / f"{n}.timing.json").write_text(json.dumps(
            {"tokens_per_s_runs": speeds[n], "ttft_samples_s": [0.3, 0.1, 0.2], "params": 1000, "size_mb": 1.0}))
        # 10 + 30 tokens; KL sums chosen so the token-weighted mean is kl[n]
        tf = [{"id": "a/0", "prompt_id": "a", "tokens": 10, "kl_sum": kl[n] * 10, "nll_sum": 1.0, "top1_agree": 5},
              {"id": "b/0", "prompt_id": "b", "tokens": 30, "kl_sum": kl[n] * 30, "nll_sum": 3.0, "top1_agree": 15}]
        (out / "teacher_forced" / f"{n}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tf))
        (out / "teacher_forced" / f"{n}.json").write_text("{}")
    verdicts = [{"set": "s", "prompt_id": "a", "verdict_ab": "A", "verdict_ba": "B", "outcome": "win"},
                {"set": "s", "prompt_id": "b", "verdict_ab": "A", "verdict_ba": "A", "outcome": "tie"}]
    (out / "judge" / "student_vs_student_init.jsonl").write_text("".join(json.dumps(r) + "\n" for r in verdicts))

    report, headline = build_report(tmp_path)  # a run dir works too
    m = report["models"]
    assert m["student"]["heldout_kl"] == 2.0 and m["student"]["heldout_nll"] == 0.1 and m["student"]["top1_agreement"] == 0.5
    assert m["student"]["tokens_per_s"] == 50.0 and m["student"]["speedup_vs_teacher"] == 5.0  # ratio of medians
    assert (m["student"]["tokens_per_s_min"], m["student"]["tokens_per_s_max"]) == (40.0, 60.0)
    assert m["student"]["ttft_s"] == 0.2 and m["student"]["cutoff_rate"] == 0.5 and m["student"]["mean_response_tokens"] == 5.0
    assert m["student"]["exact_accuracy"] == 0.5 and m["student_init"]["exact_accuracy"] == 0.0  # "no" is wrong
    assert (m["student"]["exact_passed"], m["student"]["exact_checked"]) == (1, 2)
    assert m["teacher"]["exact_accuracy"] == 1.0
    assert m["student"]["rouge_l"] == 0.5  # 1.0 on "the answer is 4", 0.0 on "no" vs "yes it is"
    assert m["teacher"]["rouge_l"] is None
    sentence = report["comparison"]["sentence"]
    assert "closer to the teacher than the undistilled one" in sentence and "2.000 vs 8.000" in sentence
    assert "-6.000, -75.0%" in sentence and "KD beat SFT-only" in sentence and "2.000 vs 2.500, ratio 0.80" in sentence
    pair = report["judge"]["pairs"]["student_vs_student_init"]
    assert pair["win_rate"] == 0.75 and pair["wins"] == 1 and pair["ties"] == 1 and pair["n"] == 2
    assert "5.00x" in headline and headline.splitlines()[0].split()[:3] == ["model", "held-out", "KL"]
    assert "50.0 (40.0-60.0)" in headline
    md = (out / "report.md").read_text()
    assert md.index("| model | held-out KL") < md.index("closer to the teacher") < md.index("## All metrics")
