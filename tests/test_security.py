"""Safe loading and secrets: trust_remote_code is off unless switched on, pickle weights are refused unless allowed,
and an API key given through the environment never reaches a manifest, shard, log, report or config dump.

No engine starts here: vLLM's LLM is replaced by a recorder (only the arguments matter), and the OpenAI-compatible
teacher and judge are a small local HTTP server that returns well-formed answers and records the key it was sent.
(tests/test_generate.py also checks the key against a real `vllm serve`; tests/test_eval.py against an unreachable
judge endpoint.)
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
import zstandard

from distill import shards as sh
from distill.config import Config, load_config
from distill.errors import DistillError

REPO = Path(__file__).resolve().parent.parent
SECRET = "sk-distill-test-7Hq2ZpX9vL4mN8rT"


# ---- trust_remote_code ----------------------------------------------------------------------------------------


def test_trust_remote_code_is_off_by_default_and_in_every_shipped_config():
    cfg = Config()
    assert cfg.teacher.trust_remote_code is False and cfg.student.trust_remote_code is False
    assert cfg.student.allow_pickle is False
    for path in sorted((REPO / "configs").rglob("*.yaml")):
        if "accelerate" in path.parts:
            continue
        cfg = load_config(path)
        assert not cfg.teacher.trust_remote_code and not cfg.student.trust_remote_code, path
        assert not cfg.student.allow_pickle, path


def test_no_code_hardwires_trust_remote_code_or_pickle_loading():
    for folder in ("distill", "generate", "train", "eval"):
        for path in (REPO / folder).glob("*.py"):
            text = path.read_text()
            assert not re.search(r"trust_remote_code\s*=\s*True", text), path
            assert not re.search(r"weights_only\s*=\s*False", text), path


class Recorder:
    """Stands in for a constructor/loader: records its keyword arguments, then fails or returns a stub."""

    def __init__(self, result=None):
        self.calls, self.result = [], result

    def __call__(self, *args, **kwargs):
        self.calls.append(kwargs)
        if self.result is None:
            raise OSError("recorded")
        return self.result


def fake_vllm(monkeypatch) -> Recorder:
    """Replace the `vllm` module (LLM only) so that no engine starts and its arguments can be read."""
    llm = Recorder()
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=llm))
    return llm


@pytest.mark.parametrize("on", [False, True], ids=["default", "switched_on"])
def test_trust_remote_code_reaches_every_loader_only_when_switched_on(on, monkeypatch, tiny_teacher, tiny_student,
                                                                      tmp_path):
    import transformers

    from distill.eval.generation import start_model_engine
    from distill.eval.run import tokenizer_problem
    from distill.generate.backends import VllmBackend
    from distill.generate.run import teacher_tokenizer
    from distill.train.student import load_student, load_student_tokenizer

    flag = "true" if on else "false"
    cfg = load_config(None, [f"teacher.model={tiny_teacher}", f"teacher.trust_remote_code={flag}",
                             f"student.model={tiny_student}", f"student.trust_remote_code={flag}"])
    tok, model = Recorder(), Recorder()
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tok)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", model)
    llm = fake_vllm(monkeypatch)

    for call in (lambda: teacher_tokenizer(cfg), lambda: VllmBackend(cfg),
                 lambda: start_model_engine(str(tiny_teacher), cfg),
                 lambda: load_student(tiny_student, cfg), lambda: load_student_tokenizer(tiny_student, cfg)):
        with pytest.raises(DistillError):  # every loader turns the recorder's failure into its one-line error
            call()
    assert "cannot load its tokenizer" in tokenizer_problem(str(tiny_teacher), tmp_path, {}, cfg)
    calls = tok.calls + model.calls + llm.calls
    assert len(calls) == 6 and all(c["trust_remote_code"] is on for c in calls), calls
    assert model.calls[0]["use_safetensors"] is True  # no pickle unless student.allow_pickle


def test_eval_gives_each_model_its_own_roles_remote_code_switch(monkeypatch, tiny_teacher, tiny_student, tmp_path):
    """teacher.trust_remote_code=true must not run a student's (or any other model's) code."""
    from distill.eval.generation import start_model_engine

    cfg = load_config(None, [f"teacher.model={tiny_teacher}", "teacher.trust_remote_code=true",
                             "student.trust_remote_code=false"])
    llm = fake_vllm(monkeypatch)
    for where in (str(tiny_teacher), str(tiny_student)):
        with pytest.raises(DistillError):
            start_model_engine(where, cfg)
    assert [c["trust_remote_code"] for c in llm.calls] == [True, False]


# ---- pickle weights --------------------------------------------------------------------------------------------


def test_pickle_only_student_is_refused_by_the_train_stage_before_anything_is_unpickled(tmp_path, tiny_teacher,
                                                                                      tiny_student, monkeypatch):
    import torch
    from safetensors.torch import load_file

    from shard_factory import write_shard_set
    from distill.train.run import run
    from distill.train.student import load_student

    student = tmp_path / "pickled"
    shutil.copytree(tiny_student, student)
    torch.save(load_file(student / "model.safetensors"), student / "pytorch_model.bin")
    (student / "model.safetensors").unlink()
    write_shard_set(tiny_teacher, tmp_path / "run" / "shards" / "train", prompts=["Say hi.", "Name a fruit."])
    args = [f"run.dir={tmp_path / 'run'}", f"teacher.model={tiny_teacher}", f"student.model={student}",
            "student.from_teacher_layers=null", "train.max_steps=1", "train.report_to=none", "train.eval_fraction=0"]

    real_load = torch.load

    def no_unpickling(*a, **k):
        raise AssertionError("torch.load was called on a pickle the user did not allow")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(DistillError) as e:
        run(load_config(None, args))
    assert str(e.value) == (f"student.model {student}: only pickle weights (*.bin), which can run code when loaded; "
                            "convert them to safetensors or set student.allow_pickle=true if you trust the source")
    assert not (tmp_path / "run" / "student").exists()
    monkeypatch.setattr(torch, "load", real_load)
    model = load_student(student, load_config(None, args + ["student.allow_pickle=true"]))
    assert model.config.num_hidden_layers == 1


# ---- API keys ---------------------------------------------------------------------------------------------------


class FakeOpenAI:
    """A local OpenAI-compatible chat server. mode "ok": answers with top logprobs as token ids (vLLM's
    return_tokens_as_token_ids), or "A" to a judge prompt; mode "reject": 401 whose message echoes the key it got."""

    def __init__(self, mode: str = "ok"):
        self.mode, self.keys = mode, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Authorization", "").removeprefix("Bearer ")
                outer.keys.append(key)
                if outer.mode == "reject":
                    self._send(401, {"error": {"message": f"Incorrect API key provided: {key}", "type": "auth",
                                               "code": "invalid_api_key"}})
                    return
                self._send(200, outer.answer(body))

            def _send(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def answer(body: dict) -> dict:
        choices = []
        for i in range(body.get("n") or 1):
            if body.get("logprobs"):
                k, content = body.get("top_logprobs") or 1, []
                for t in range(body.get("max_tokens") or 4):
                    ids = [1000 + 37 * t + j + i for j in range(k)]
                    top = [{"token": f"token_id:{tid}", "logprob": -0.5 - j, "bytes": None} for j, tid in enumerate(ids)]
                    content.append({"token": top[0]["token"], "logprob": -0.5, "bytes": None, "top_logprobs": top})
                choice = {"index": i, "message": {"role": "assistant", "content": "some words"},
                          "finish_reason": "length", "logprobs": {"content": content}}
            else:  # the judge
                choice = {"index": i, "message": {"role": "assistant", "content": "A"}, "finish_reason": "stop"}
            choices.append(choice)
        return {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": body["model"], "choices": choices,
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_openai():
    servers = []

    def start(mode="ok"):
        servers.append(FakeOpenAI(mode))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def everything_written(folder: Path) -> str:
    """The text of every file under folder, zstd shards decompressed."""
    parts = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".zst":
            data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
        parts.append(data.decode("utf-8", "replace"))
    return "\n".join(parts)


def test_teacher_api_key_reaches_the_server_and_nothing_else(fake_openai, tiny_teacher, tmp_path, monkeypatch, capfd):
    from distill.generate.run import run

    server = fake_openai()
    corpus = tmp_path / "p.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Say {i}."}) + "\n" for i in range(3)))
    monkeypatch.setenv("DISTILL_TEST_TEACHER_KEY", SECRET)
    cfg = load_config(None, [f"run.dir={tmp_path / 'run'}", f"teacher.model={tiny_teacher}", "teacher.backend=openai",
                             f"teacher.base_url={server.url}", "teacher.api_key_env=DISTILL_TEST_TEACHER_KEY",
                             f"generate.prompts={corpus}", "generate.heldout_prompts=null", "generate.k=3",
                             "generate.max_tokens=4", "generate.shard_size=2"])
    run(cfg)
    assert server.keys == [SECRET] * 3  # the key was used...
    folder = tmp_path / "run" / "shards" / "train"
    assert sh.open_shard_set(folder)["teacher"]["backend"] == "openai"
    assert len(list(sh.read_examples(folder))) == 3
    out, err = capfd.readouterr()
    assert SECRET not in everything_written(tmp_path / "run") + out + err  # ...and written nowhere

    # A server that echoes the key in its error: the one-line error must not carry it into logs.
    reject = fake_openai("reject")
    cfg.teacher.base_url, cfg.run.dir = reject.url, str(tmp_path / "run2")
    with pytest.raises(DistillError) as e:
        run(cfg)
    assert reject.keys and reject.keys[0] == SECRET
    assert "AuthenticationError" in str(e.value) and SECRET not in str(e.value)
    out, err = capfd.readouterr()
    assert SECRET not in everything_written(tmp_path / "run2") + out + err


def _finished_generations(run_dir: Path, cfg, models: dict[str, Path]) -> None:
    """Generation files as eval writes them (settings included), so eval resumes them instead of starting vLLM."""
    from distill.eval.run import generation_settings, load_sets

    sets = load_sets(cfg)
    gens = run_dir / "eval" / "generations"
    gens.mkdir(parents=True)
    for name, where in models.items():
        rows = [{"set": s, "prompt_id": p.id, "category": None, "check": None, "prompt": p.messages[-1]["content"],
                 "response": f"{name} answers {p.id}", "response_token_count": 3, "finish_reason": "stop",
                 "prompt_token_count": 10} for s, ps in sets.items() for p in ps]
        (gens / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (gens / f"{name}.timing.json").write_text(json.dumps({
            "tokens": 3 * len(rows), "seconds": 1.0, "prompts": len(rows), "too_long": 0, "ttft_samples_s": [0.1],
            "tokens_per_s": 3.0, "ttft_s": 0.1, "params": None, "size_mb": None,
            "settings": generation_settings(str(where), sets, cfg)}))


@pytest.mark.parametrize("mode", ["ok", "reject"])
def test_judge_api_key_reaches_the_server_and_nothing_else(mode, fake_openai, tiny_teacher, tiny_student, tmp_path,
                                                           monkeypatch, capfd):
    import distill.eval.run as eval_run

    server = fake_openai(mode)
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text("".join(json.dumps({"id": f"h{i}", "prompt": f"Question {i}?"}) + "\n" for i in range(2)))
    run_dir = tmp_path / "run"
    models = {"a": tiny_teacher, "b": tiny_student}
    config = tmp_path / "eval.yaml"
    config.write_text(yaml.safe_dump({
        "run": {"dir": str(run_dir)}, "teacher": {"model": str(tiny_teacher)},
        "eval": {"prompts": [str(heldout)], "models": {k: str(v) for k, v in models.items()},
                 "judge": {"enabled": True, "backend": "openai", "base_url": server.url, "model": "judge",
                           "api_key_env": "DISTILL_TEST_JUDGE_KEY", "pairs": [["a", "b"]], "max_retries": 0}}}))
    cfg = load_config(config)
    _finished_generations(run_dir, cfg, models)
    monkeypatch.setenv("DISTILL_TEST_JUDGE_KEY", SECRET)
    monkeypatch.setattr(eval_run, "start_model_engine", lambda *a, **k: (_ for _ in ()).throw(AssertionError("engine")))
    out_dir = eval_run.run(cfg)
    assert server.keys and set(server.keys) == {SECRET}
    rows = [json.loads(line) for line in (out_dir / "judge" / "a_vs_b.jsonl").read_text().splitlines()]
    if mode == "ok":
        assert [(r["verdict_ab"], r["verdict_ba"]) for r in rows] == [("A", "A")] * 2
    else:
        assert all("AuthenticationError" in r["error"] for r in rows)
    plan = json.loads((out_dir / "run.json").read_text())
    assert plan["config"]["eval"]["judge"]["api_key_env"] == "DISTILL_TEST_JUDGE_KEY"  # the name is recorded
    out, err = capfd.readouterr()
    assert SECRET not in everything_written(tmp_path) + out + err  # run.json's config dump, judge files, report
