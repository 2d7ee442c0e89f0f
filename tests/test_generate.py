"""End to end: the generate stage on a tiny random teacher with the real vLLM CPU engine.

Engine starts cost ~20-30 s each, so one offline engine serves the whole module (run.run takes a started
backend); the OpenAI test shuts it down before it starts `vllm serve` (never two engines at once).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import zstandard

from configs import generate_config
from conftest import REPO, build_tiny_llama
from distill import shards as sh
from distill.config import load_config
from distill.errors import DistillError
from distill.generate.backends import VllmBackend, request_seed
from distill.generate.run import engine_batch_invariant, run

PY = sys.executable
N_PROMPTS = 20


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    # head_dim 32: vLLM's CPU attention has no kernel for the shared tiny_teacher's head_dim 16.
    return build_tiny_llama(tmp_path_factory.mktemp("gen") / "tiny-vllm-teacher", layers=2, hidden=128, seed=0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gen") / "prompts.jsonl"
    topics = ["rivers", "bread", "the moon", "chess", "bees", "volcanoes", "trains", "tea", "glass", "owls"]
    with open(path, "w") as f:
        for i in range(N_PROMPTS):
            f.write(json.dumps({"id": f"p{i:02d}", "prompt": f"Write one sentence about {topics[i % 10]} ({i})."}) + "\n")
    return path


def make_cfg(teacher, corpus, run_dir, *extra):
    return generate_config(teacher, corpus, run_dir, "teacher.max_model_len=1024", *extra)


@pytest.fixture(scope="module")
def engine(teacher):
    cfg = make_cfg(teacher, "unused", "unused")
    backend = VllmBackend(cfg)
    yield backend
    backend.close()


def shard_folder(run_dir) -> Path:
    return Path(run_dir) / "shards" / "train"


def shard_bytes(run_dir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(shard_folder(run_dir).glob("shard-*"))}


def test_end_to_end_and_rerun_is_noop(engine, teacher, corpus, tmp_path, capsys):
    from transformers import AutoTokenizer

    cfg = make_cfg(teacher, corpus, tmp_path)
    run(cfg, backend=engine)
    folder = shard_folder(tmp_path)
    manifest = sh.open_shard_set(folder)
    assert manifest["complete"] and len(manifest["shards"]) == 4 and manifest["counts"]["records"] == N_PROMPTS
    assert manifest["teacher"]["weights_sha256"] and manifest["teacher"]["logits_size"] == 49152
    assert manifest["k"] == 5 and manifest["logprobs_mode"] == "raw_logprobs"
    tok = AutoTokenizer.from_pretrained(teacher)
    examples = list(sh.read_examples(folder))
    assert [e.prompt_id for e in examples] == [f"p{i:02d}" for i in range(N_PROMPTS)]
    for e in examples:
        text = tok.apply_chat_template(e.messages, tokenize=False, add_generation_prompt=True)
        assert e.prompt_token_ids.tolist() == tok(text, add_special_tokens=False)["input_ids"]
        assert e.response == tok.decode(e.response_token_ids.tolist(), skip_special_tokens=True)
        assert 1 <= len(e.response_token_ids) <= 8 and e.finish_reason in ("stop", "length")
        assert e.topk.ids.shape[0] == len(e.response_token_ids) and 5 <= e.topk.ids.shape[1] <= 6
        assert e.topk.ids.max() < len(tok) and (e.topk.probs.sum(1) <= 1.001).all()
    assert "[generate] train: 20 prompts, 20 records" in capsys.readouterr().out

    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    run(cfg, backend=engine)
    assert "already complete" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes

    # The CLI: a complete folder exits 0 without starting an engine.
    config = tmp_path / "run.yaml"
    config.write_text(f"run: {{dir: {tmp_path}}}\nteacher: {{model: {teacher}, max_model_len: 1024}}\n"
                      f"generate: {{prompts: {corpus}, heldout_prompts: null, k: 5, max_tokens: 8, shard_size: 6}}\n")
    out = subprocess.run([PY, "-m", "distill.generate", str(config)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "already complete" in out.stdout, out.stderr[-2000:]
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes


def test_resume_after_crash_matches_uninterrupted(engine, teacher, corpus, tmp_path, monkeypatch):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    run(make_cfg(teacher, corpus, whole, "generate.temperature=0"), backend=engine)
    cfg = make_cfg(teacher, corpus, broken, "generate.temperature=0")
    monkeypatch.setenv("DISTILL_FAIL_AFTER_SHARDS", "2")
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(cfg, backend=engine)
    monkeypatch.delenv("DISTILL_FAIL_AFTER_SHARDS")
    folder = shard_folder(broken)
    manifest = sh.read_manifest(folder)
    assert not manifest["complete"] and [e["index"] for e in manifest["shards"]] == [0, 1]
    # Crash between renaming shard 1 into place and rewriting the manifest, plus a stray temp file.
    manifest["shards"] = manifest["shards"][:1]
    sh.write_manifest(folder, manifest)
    (folder / ".shard-00002.jsonl.zst.tmp-99999").write_bytes(b"partial")
    kept = {p.name: p.stat().st_mtime_ns for p in folder.glob("shard-*")}
    run(cfg, backend=engine)
    assert not list(folder.glob(".*tmp-*"))
    assert all(( folder / name).stat().st_mtime_ns == t for name, t in kept.items())  # adopted, not rewritten
    ids = [e.prompt_id for e in sh.read_examples(folder)]
    assert ids == [f"p{i:02d}" for i in range(N_PROMPTS)]
    assert shard_bytes(broken) == shard_bytes(whole)


def test_mismatch_and_overwrite(engine, teacher, corpus, tmp_path, tmp_path_factory):
    run(make_cfg(teacher, corpus, tmp_path, "generate.max_prompts=6"), backend=engine)
    other = build_tiny_llama(tmp_path_factory.mktemp("gen") / "other", layers=2, hidden=128, seed=1)
    with pytest.raises(DistillError, match=r"different teacher.*teacher\.name.*overwrite=true"):
        run(make_cfg(other, corpus, tmp_path, "generate.max_prompts=6"), backend=engine)
    with pytest.raises(DistillError, match=r"k: 5 in the folder vs 4 now"):
        run(make_cfg(teacher, corpus, tmp_path, "generate.max_prompts=6", "generate.k=4"), backend=engine)
    run(make_cfg(teacher, corpus, tmp_path, "generate.max_prompts=6", "generate.k=4", "generate.overwrite=true"),
        backend=engine)
    manifest = sh.open_shard_set(shard_folder(tmp_path))
    assert manifest["k"] == 4 and manifest["counts"]["records"] == 6


def test_too_long_skip_and_fail(engine, teacher, tmp_path):
    from transformers import AutoTokenizer

    corpus = tmp_path / "p.jsonl"
    corpus.write_text(json.dumps({"prompt": "Short one."}) + "\n" + json.dumps({"prompt": "word " * 300}) + "\n")
    tok = AutoTokenizer.from_pretrained(teacher)
    short = len(tok.apply_chat_template([{"role": "user", "content": "Short one."}], tokenize=False,
                                        add_generation_prompt=True))  # chars >= tokens
    limit = f"teacher.max_model_len={short + 50}"
    run(make_cfg(teacher, corpus, tmp_path / "skip", limit), backend=engine)
    manifest = sh.open_shard_set(shard_folder(tmp_path / "skip"))
    assert manifest["counts"]["skipped_too_long"] == 1 and manifest["counts"]["records"] == 1
    with pytest.raises(DistillError, match=rf"{corpus}:2: prompt is \d+ tokens, too long"):
        run(make_cfg(teacher, corpus, tmp_path / "fail", limit, "generate.too_long=fail"), backend=engine)


def test_scoring_mode(engine, teacher, tmp_path):
    from transformers import AutoTokenizer

    corpus = tmp_path / "scored.jsonl"
    answers = ["Paris is the capital of France.", "Bees make honey from nectar."]
    with open(corpus, "w") as f:
        f.write(json.dumps({"messages": [{"role": "user", "content": "Capital of France?"},
                                         {"role": "assistant", "content": answers[0]}]}) + "\n")
        f.write(json.dumps({"prompt": "What do bees make?", "response": answers[1]}) + "\n")
    run(make_cfg(teacher, corpus, tmp_path, "generate.mode=score", "generate.codec=plain"), backend=engine)
    tok = AutoTokenizer.from_pretrained(teacher)
    examples = list(sh.read_examples(shard_folder(tmp_path)))
    assert len(examples) == 2
    for e, answer in zip(examples, answers):
        expected = tok(answer, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        assert e.response == answer and e.response_token_ids.tolist() == expected and e.finish_reason == "given"
        assert e.topk.ids.shape == (len(expected), 5) and e.topk.sampled_logprobs.max() <= 0
        assert e.messages[-1]["role"] == "user"


def test_references_are_scored_and_the_rest_sampled(engine, teacher, tmp_path, monkeypatch, capsys):
    """generate.references: training prompts with a reference get it, scored; the others and every held-out prompt
    are sampled; an interrupted run resumes to the same shards."""
    from transformers import AutoTokenizer

    corpus = tmp_path / "mixed.jsonl"
    rows = [{"id": f"r{i}", "prompt": f"What is {i} plus {i}?", "answer": str(2 * i)} if i % 2 else
            {"id": f"r{i}", "prompt": f"Write one sentence about number {i}.", "response": "not an answer to score"}
            for i in range(8)]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    extra = ("generate.references=answer", f"generate.heldout_prompts={corpus}", "generate.codec=plain")
    run(make_cfg(teacher, corpus, tmp_path / "once", *extra), backend=engine)
    assert "(4 prompts answered by their 'answer' field, scored)" in capsys.readouterr().out
    tok = AutoTokenizer.from_pretrained(teacher)
    manifest = sh.open_shard_set(shard_folder(tmp_path / "once"))
    assert manifest["responses"] == {"by": "teacher", "references": {"column": "answer", "prompts": 4}}
    for ex in sh.read_examples(shard_folder(tmp_path / "once")):
        row = rows[int(ex.prompt_id[1:])]
        if "answer" in row:
            expected = tok(row["answer"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            assert ex.finish_reason == "given" and ex.response == row["answer"]
            assert ex.response_token_ids.tolist() == expected and ex.topk.ids.shape == (len(expected), 5)
        else:  # a `response` field is not a reference: the teacher answers
            assert ex.finish_reason in ("stop", "length") and ex.response != row["response"]
    heldout = tmp_path / "once" / "shards" / "heldout"
    assert sh.open_shard_set(heldout)["responses"] == {"by": "teacher"}
    assert all(ex.finish_reason != "given" for ex in sh.read_examples(heldout))
    # Killed after the first shard, then resumed: the same bytes as the uninterrupted run.
    monkeypatch.setenv("DISTILL_FAIL_AFTER_SHARDS", "1")
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(make_cfg(teacher, corpus, tmp_path / "resumed", *extra), backend=engine)
    monkeypatch.delenv("DISTILL_FAIL_AFTER_SHARDS")
    run(make_cfg(teacher, corpus, tmp_path / "resumed", *extra), backend=engine)
    assert shard_bytes(tmp_path / "resumed") == shard_bytes(tmp_path / "once")
    # Bad input, refused before the engine is asked for anything.
    with pytest.raises(DistillError, match=rf"generate.references: no training prompt of {corpus} has a 'gold' field"):
        run(make_cfg(teacher, corpus, tmp_path / "bad", "generate.references=gold"), backend=engine)
    with pytest.raises(DistillError, match="generate.references: only for generate.mode=generate"):
        make_cfg(teacher, corpus, tmp_path / "bad", "generate.references=answer", "generate.mode=score")


def test_config_errors(teacher, corpus, tmp_path):
    with pytest.raises(DistillError, match="generate.k: must be at most 1000, got 5000"):
        run(make_cfg(teacher, corpus, tmp_path, "generate.k=5000"))
    # The CLI turns errors into one line on stderr and exit status 1.
    config = tmp_path / "run.yaml"
    config.write_text(f"run: {{dir: {tmp_path}}}\nteacher: {{model: {tmp_path}/no-such-model}}\n"
                      f"generate: {{prompts: {corpus}, heldout_prompts: null}}\n")
    out = subprocess.run([PY, "-m", "distill.generate", str(config)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == f"error: teacher.model {tmp_path}/no-such-model: no such model folder"


def records(run_dir) -> list[str]:
    """Every record line of a run's shards, in order, whatever the shard boundaries."""
    return [line for data in shard_bytes(run_dir).values()
            for line in zstandard.ZstdDecompressor().decompress(data, max_output_size=1 << 30).decode().splitlines()]


def test_request_seed_is_stable_and_depends_on_both_parts():
    # The scheme docs/shard-format.md states: 63 bits of sha256("<seed>:<prompt_id>"), big-endian.
    assert request_seed(0, "p00") == 7622877144343726835
    seeds = {request_seed(s, pid) for s in (0, 1) for pid in ("p00", "p01")}
    assert len(seeds) == 4 and all(0 <= x < 2**63 for x in seeds)


def test_sampled_records_do_not_depend_on_the_batching(engine, teacher, corpus, tmp_path):
    """Per-record seeds: at temperature 1, shards of 6 prompts and one shard of 20 hold the same records."""
    run(make_cfg(teacher, corpus, tmp_path / "six", "generate.temperature=1.0"), backend=engine)
    run(make_cfg(teacher, corpus, tmp_path / "all", "generate.temperature=1.0", "generate.shard_size=20"),
        backend=engine)
    assert len(shard_bytes(tmp_path / "six")) == 4 and len(shard_bytes(tmp_path / "all")) == 1
    sampling = sh.open_shard_set(shard_folder(tmp_path / "six"))["sampling"]
    cfg = make_cfg(teacher, corpus, tmp_path / "six")
    assert sampling["seed_scheme"] == "per_record" and sampling["batch_invariant"] == engine_batch_invariant(cfg)
    if sampling["batch_invariant"]:
        assert records(tmp_path / "six") == records(tmp_path / "all")
    else:  # CUDA or several CPU threads: the same prompts, not necessarily the same bits
        assert [json.loads(r)["id"] for r in records(tmp_path / "six")] == [
            json.loads(r)["id"] for r in records(tmp_path / "all")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_openai_backend_matches_offline(engine, teacher, corpus, tmp_path, capfd):
    key = "sk-test-3f9a1c77e2d54b1b"
    short = tmp_path / "short.jsonl"
    short.write_text("".join(corpus.read_text().splitlines(keepends=True)[:4]))
    # Sampled, not greedy: the server takes each request's seed, so it must answer as the offline engine did.
    args = ("generate.temperature=1.0", "generate.shard_size=2")
    run(make_cfg(teacher, short, tmp_path / "offline", *args), backend=engine)
    engine.close()  # one engine at a time on this machine

    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    env = {k: v for k, v in os.environ.items() if k != "VLLM_CPU_KVCACHE_SPACE"}  # `distill serve` sets its own
    server = subprocess.Popen(  # `distill serve` on a model folder; what follows `--` goes to vLLM's server
        [PY, "-m", "distill.cli", "serve", str(teacher), "--port", str(port), "--max-model-len", "1024",
         "--", "--max-logprobs", "20", "--api-key", key], stdout=log, stderr=subprocess.STDOUT, env=env,
        start_new_session=True)
    try:
        deadline = time.time() + 240
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.time() < deadline, "distill serve did not come up in 240 s"
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models",
                                             headers={"Authorization": f"Bearer {key}"})
                urllib.request.urlopen(req, timeout=5)
                break
            except OSError:
                time.sleep(2)
        os.environ["DISTILL_TEST_KEY"] = key
        try:
            run(make_cfg(teacher, short, tmp_path / "remote", *args, "teacher.backend=openai",
                         f"teacher.base_url=http://127.0.0.1:{port}/v1", "teacher.api_key_env=DISTILL_TEST_KEY",
                         f"teacher.served_model_name={teacher.name}"))  # `distill serve` names it after its folder
        finally:
            del os.environ["DISTILL_TEST_KEY"]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # its own session: also ends the engine processes it spawned
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
        log.close()
    offline = list(sh.read_examples(shard_folder(tmp_path / "offline")))
    remote = list(sh.read_examples(shard_folder(tmp_path / "remote")))
    assert [e.prompt_id for e in remote] == [e.prompt_id for e in offline]
    for a, b in zip(offline, remote):
        assert a.prompt_token_ids.tolist() == b.prompt_token_ids.tolist()
        assert a.response_token_ids.tolist() == b.response_token_ids.tolist()
        assert b.topk.ids.shape == a.topk.ids.shape and (b.topk.ids.max() < 49152)
    manifest = sh.open_shard_set(shard_folder(tmp_path / "remote"))
    assert manifest["teacher"]["backend"] == "openai" and manifest["teacher"]["weights_sha256"] is None
    seen = (shard_folder(tmp_path / "remote") / sh.MANIFEST).read_text()
    for p in shard_folder(tmp_path / "remote").glob("shard-*"):
        seen += zstandard.ZstdDecompressor().stream_reader(p.open("rb")).read().decode()
    out, err = capfd.readouterr()
    assert key not in seen + out + err


@pytest.mark.slow
def test_default_size_rerun_resume_and_rebatching_give_the_same_records(default_teacher, tmp_path, monkeypatch):
    """The default run's training corpus (240 prompts, 64 tokens, temperature 0.7, shards of 64) three more ways:
    killed after two shards and resumed by a new process (a new engine), and as one shard of 240 prompts (13k prompt
    tokens in one call: the batch size at which per-request seeds crashed the CPU engine under chunked prefill).
    The first must equal the uninterrupted run byte for byte (shards and manifest), the second record for record."""
    corpus = tmp_path / "train.jsonl"
    corpus.write_bytes((REPO / "prompts" / "train.jsonl").read_bytes())  # a frozen copy: the file may be edited
    args = [f"teacher.model={default_teacher}", f"generate.prompts={corpus}", "generate.heldout_prompts=null"]

    def cfg(name, *extra):
        return load_config(REPO / "configs" / "default.yaml", [*args, f"run.dir={tmp_path / name}", *extra])

    backend = VllmBackend(cfg("whole"))
    try:
        run(cfg("whole"), backend=backend)
        monkeypatch.setenv("DISTILL_FAIL_AFTER_SHARDS", "2")
        with pytest.raises(RuntimeError, match="simulated crash"):
            run(cfg("resumed"), backend=backend)
        monkeypatch.delenv("DISTILL_FAIL_AFTER_SHARDS")
        run(cfg("one_batch", "generate.shard_size=240"), backend=backend)
    finally:
        backend.close()
    assert len(sh.read_manifest(shard_folder(tmp_path / "resumed"))["shards"]) == 2
    out = subprocess.run([PY, "-m", "distill.generate", str(REPO / "configs" / "default.yaml"), *args,
                          f"run.dir={tmp_path / 'resumed'}"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    whole = shard_bytes(tmp_path / "whole")
    assert len(whole) == 4 and sh.open_shard_set(shard_folder(tmp_path / "whole"))["counts"]["records"] == 240
    assert shard_bytes(tmp_path / "resumed") == whole
    assert (shard_folder(tmp_path / "resumed") / sh.MANIFEST).read_bytes() == (
        shard_folder(tmp_path / "whole") / sh.MANIFEST).read_bytes()
    assert records(tmp_path / "one_batch") == records(tmp_path / "whole")
