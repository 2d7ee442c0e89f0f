"""A catalogue of bad inputs, each of which must stop its stage with ONE line naming the file/line/field at fault,
before any engine starts, and without harming anything already written.

Each case: (name, stage, how the bad input is made, the one-line error substring it must produce). The substring
may hold {fields} filled from the paths the case made (see Env.fmt). `make_<name>` below builds the input and
returns a Trial: the action (a stage entry point, in-process, or the `python -m <stage>` command line), and the
paths that must be byte-for-byte unchanged afterwards. An autouse fixture makes any engine start fail the test.
The decoder's property-based test lives in tests/test_shards.py (test_decode_topk_never_returns_wrong_data).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from distill import shards as sh
from distill.config import load_config
from distill.errors import DistillError
from fault_helpers import FakeBackend
from shard_factory import write_shard_set

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable

CATALOGUE = [
    # ---- generate: the prompt corpus ----
    ("corpus_malformed_json", "generate", 'line 2 of the corpus is `{"prompt": "x"` (no closing brace)',
     "{corpus}:2: malformed JSON (Expecting ',' delimiter"),
    ("corpus_wrong_field_type", "generate", 'a record {"prompt": 5}',
     "{corpus}:1: field 'prompt' should be str, got int"),
    ("corpus_messages_wrong_shape", "generate", 'a record {"messages": [{"role": "user"}]} (no content)',
     "{corpus}:1: messages[0] should be an object with string 'role' and 'content'"),
    ("corpus_empty_prompt", "generate", 'a record {"prompt": ""}', "{corpus}:2: the prompt is empty"),
    ("corpus_whitespace_prompt", "generate", 'a record {"prompt": " \\n\\t "}', "{corpus}:2: the prompt is empty"),
    ("corpus_invalid_utf8", "generate", "line 2 holds the byte 0xE9 alone (latin-1 'e acute')",
     "{corpus}:2: invalid UTF-8 at byte 15"),
    ("corpus_duplicate_id", "generate", 'id "a" on line 1 and on line 3 with another prompt',
     "{corpus}:3: id 'a' is also used by {corpus}:1 with different content"),
    ("corpus_empty_file", "generate", "a corpus file holding only blank lines", "{corpus}: the corpus holds no prompts"),
    ("corpus_missing", "generate", "generate.prompts names a file that does not exist",
     "{tmp}/no-such.jsonl: no such file or folder"),
    ("prompt_too_long", "generate", "line 3 is ~600 tokens with teacher.max_model_len=256, generate.too_long=fail",
     "{corpus}:3: prompt is {n} tokens, too long for teacher.max_model_len=256"),
    ("score_mode_without_response", "generate", "generate.mode=score on a corpus whose line 2 has no response",
     "{corpus}:2: generate.mode=score needs a response for every prompt"),
    # ---- generate: settings and the output folder ----
    ("k_zero", "generate", "generate.k=0", "config key generate.k: must be at least 1, got 0"),
    ("k_above_limit", "generate", "generate.k=5000", "config key generate.k: must be at most 1000, got 5000"),
    ("teacher_missing", "generate", "teacher.model names a folder that does not exist",
     "teacher.model {tmp}/no-such-model: no such model folder"),
    ("openai_without_base_url", "generate", "teacher.backend=openai and no teacher.base_url",
     "config key teacher.base_url is required when teacher.backend is openai"),
    ("folder_of_another_teacher", "generate", "run.dir already holds shards generated with another teacher",
     "output folder {folder} holds shards from a different teacher/tokenizer/corpus/settings: teacher.name: "),
    ("torn_manifest", "generate", "the output folder's manifest.json is cut in half (not an atomic write)",
     "{folder}/manifest.json: not valid JSON"),
    # ---- train: the shards and the student ----
    ("shard_cut_short", "train", "the last 20 bytes of shard-00001 are cut off",
     "{shard}: {size} bytes but the manifest says {want}: the shard is cut short or changed"),
    ("shard_flipped_byte", "train", "byte 10 of shard-00001 is flipped",
     "{shard}: fails its sha256 checksum: the shard is corrupt"),
    ("shard_nan_logprob", "train", "record 2 of a plain shard has NaN as a top-k logprob (manifest updated)",
     "{shard}:2: NaN or infinite logprob in the teacher's top-k"),
    ("shard_inf_logprob", "train", "record 1 of a plain shard has Infinity as its sampled logprob (manifest updated)",
     "{shard}:1: NaN or infinite logprob in the teacher's top-k"),
    ("shard_missing_field", "train", "record 1 of a plain shard has no 'response_token_ids' (manifest updated)",
     "{shard}:1: record has no field 'response_token_ids'"),
    ("shards_unfinished", "train", "the manifest says complete=false (generation was interrupted)",
     "{folder}: generation has not finished (manifest complete=false); rerun generate to resume"),
    ("student_other_tokenizer", "train", "student.model is a model whose tokenizer has one extra token",
     "student tokenizer differs from the teacher's ({folder}/manifest.json): vocab 49152 vs 49153 tokens"),
    ("student_missing", "train", "student.model names a folder that does not exist",
     "student.model {tmp}/nope: no such model folder"),
    ("student_no_weights", "train", "student.model is a folder with config.json but no weights",
     "student.model {tmp}/empty-student: no model weights (*.safetensors) in the folder"),
    ("student_soft_capped_logits", "train", "student.model is a Gemma 2 model, which soft-caps its logits",
     "student {tmp}/softcap-student: Gemma2ForCausalLM does more to its logits than its output layer"),
    # ---- train: feature distillation and multi-task mixtures ----
    ("feature_layer_missing", "train", "train.w_feature=1 with train.feature_layers={0: 9} (the teacher has 2 layers)",
     "train.feature_layers: teacher layer 9 does not exist (the teacher has 2)"),
    ("feature_widths_without_projection", "train", "a width-32 student, a width-64 teacher, feature_projection=false",
     "train.feature_projection: the student's hidden size 32 differs from the teacher's 64"),
    ("feature_teacher_not_loadable", "train", "train.w_feature=1 with an OpenAI-compatible (remote) teacher",
     "train.w_feature: the feature loss needs the teacher loaded in the training process"),
    ("mixture_unknown_task", "train", "train.mixture names a task no shard record has",
     "train.mixture.poetry: no task of that name in the training shards"),
    ("mixture_negative_weight", "config", "train.mixture={a: {weight: -1}}",
     "config key train.mixture.a.weight: must be at least 0, got -1.0"),
    ("mixture_weights_sum_to_zero", "config", "train.mixture={a: {weight: 0}}",
     "config key train.mixture: the task weights sum to 0"),
    ("upsample_not_positive", "config", "train.upsample={arithmetic: 0}",
     "config key train.upsample.arithmetic: must be above 0, got 0"),
    # ---- config (any stage) ----
    ("config_student_model_missing", "config", "student.from_teacher_layers=null and no student.model",
     "config key student.model is required unless student.from_teacher_layers is set"),
    ("config_unknown_key", "config", "train.lrr=1e-3 (typo)", "unknown config key train.lrr; did you mean train.lr?"),
    ("config_wrong_type", "config", "train.max_steps=abc", "config key train.max_steps: expected an integer, got str 'abc'"),
    ("config_bad_choice", "config", "train.kd_loss=kl", "config key train.kd_loss: 'kl' is not one of forward_kl"),
    ("cli_unknown_key_in_yaml", "cli", "`distill generate` on a YAML file with generate.temprature: 0",
     "unknown config key generate.temprature; did you mean generate.temperature?"),
    ("cli_wrong_type_in_yaml", "cli", "`distill train` on a YAML file with train.lr: fast",
     "config key train.lr: expected a number, got str 'fast'"),
    ("cli_invalid_yaml", "cli", "`distill eval` on a YAML file whose line 2 is `  dir: a: b`",
     "{config}:2: invalid YAML (mapping values are not allowed here)"),
    # ---- eval ----
    ("eval_empty_heldout", "eval", "eval.prompts names an empty file", "{heldout}: the corpus holds no prompts"),
    ("eval_missing_named_model", "eval", "eval.models names a folder that does not exist",
     "eval.models.mine: {tmp}/no-such-model does not exist"),
    ("eval_bad_check", "eval", 'held-out line 1 has check {"kind": "number"} (no answer)',
     "{heldout}:1: check.answer: missing (required for kind 'number')"),
    ("eval_judge_openai_without_base_url", "eval", "eval.judge.enabled=true, backend=openai, no base_url",
     "config key eval.judge.base_url is required when eval.judge.backend is openai"),
]


@dataclass
class Trial:
    action: Callable[[], str]  # returns the one-line error message
    protect: list[Path] = field(default_factory=list)  # files/folders that must be unchanged afterwards


class Env:
    def __init__(self, tmp: Path, teacher: Path, shards: Path):
        self.tmp, self.teacher, self.shards = tmp, teacher, shards
        self.fmt = {"tmp": str(tmp)}

    def corpus(self, lines: list, name: str = "prompts.jsonl") -> Path:
        path = self.tmp / name
        data = b"".join((x if isinstance(x, bytes) else json.dumps(x).encode()) + b"\n" for x in lines)
        path.write_bytes(data)
        self.fmt["corpus"] = str(path)
        return path

    def gen_cfg(self, corpus: Path | str, *extra: str):
        self.fmt["folder"] = str(self.tmp / "run" / "shards" / "train")
        return load_config(None, [f"run.dir={self.tmp / 'run'}", f"teacher.model={self.teacher}",
                                  f"generate.prompts={corpus}", "generate.heldout_prompts=null", "generate.k=5",
                                  "generate.max_tokens=4", "generate.shard_size=2", *extra])

    def train_cfg(self, *extra: str, shards: Path | None = None):
        folder = self.tmp / "run" / "shards" / "train"
        if not folder.exists():
            shutil.copytree(shards or self.shards, folder)
        self.fmt["folder"] = str(folder)
        return load_config(None, [f"run.dir={self.tmp / 'run'}", f"teacher.model={self.teacher}",
                                  "student.from_teacher_layers=1", "train.max_steps=1", "train.batch_size=4",
                                  "train.report_to=none", "train.eval_fraction=0", *extra])

    def eval_cfg(self, *extra: str):
        heldout = self.tmp / "heldout.jsonl"
        if not heldout.exists():
            heldout.write_text(json.dumps({"id": "h1", "prompt": "What is 2 + 2?"}) + "\n")
        self.fmt["heldout"] = str(heldout)
        return load_config(None, [f"run.dir={self.tmp / 'run'}", f"teacher.model={self.teacher}",
                                  f"eval.prompts=[{heldout}]", f"eval.models={{teacher: {self.teacher}}}", *extra])


def error_of(fn, *args) -> str:
    with pytest.raises(DistillError) as e:
        fn(*args)
    return str(e.value)


def gen(cfg) -> str:
    from distill.generate.run import run

    return error_of(run, cfg)


def train(cfg) -> str:
    from distill.train.run import run

    return error_of(run, cfg)


def evaluate(cfg) -> str:
    from distill.eval.run import run

    return error_of(run, cfg)


def config(*overrides: str) -> str:
    return error_of(load_config, None, list(overrides))


def cli(stage: str, path: Path) -> str:
    out = subprocess.run([PY, "-m", f"distill.{stage}", str(path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-2000:]
    return lines[0][len("error: "):]


# ---- makers: generate ------------------------------------------------------------------------------------------


def make_corpus_malformed_json(env):
    return Trial(lambda: gen(env.gen_cfg(env.corpus([{"prompt": "ok"}, b'{"prompt": "x"', {"prompt": "y"}]))))


def make_corpus_wrong_field_type(env):
    return Trial(lambda: gen(env.gen_cfg(env.corpus([{"prompt": 5}]))))


def make_corpus_messages_wrong_shape(env):
    return Trial(lambda: gen(env.gen_cfg(env.corpus([{"messages": [{"role": "user"}]}]))))


def make_corpus_empty_prompt(env):
    return Trial(lambda: gen(env.gen_cfg(env.corpus([{"prompt": "ok"}, {"prompt": ""}]))))


def make_corpus_whitespace_prompt(env):
    return Trial(lambda: gen(env.gen_cfg(env.corpus([{"prompt": "ok"}, {"prompt": " \n\t "}]))))


def make_corpus_invalid_utf8(env):
    return Trial(lambda: gen(env.gen_cfg(env.corpus([{"prompt": "ok"}, b'{"prompt": "caf\xe9"}']))))


def make_corpus_duplicate_id(env):
    lines = [{"id": "a", "prompt": "one"}, {"id": "b", "prompt": "two"}, {"id": "a", "prompt": "three"}]
    return Trial(lambda: gen(env.gen_cfg(env.corpus(lines))))


def make_corpus_empty_file(env):
    return Trial(lambda: gen(env.gen_cfg(env.corpus([b"", b"  "]))))


def make_corpus_missing(env):
    return Trial(lambda: gen(env.gen_cfg(env.tmp / "no-such.jsonl")))


def make_prompt_too_long(env):
    from transformers import AutoTokenizer

    long = "word " * 600
    tok = AutoTokenizer.from_pretrained(env.teacher)
    env.fmt["n"] = len(tok.apply_chat_template([{"role": "user", "content": long}], add_generation_prompt=True,
                                               tokenize=True, return_dict=False))
    corpus = env.corpus([{"prompt": "a"}, {"prompt": "b"}, {"prompt": long}])
    # Shard 0 would be fine: the check must still come before the engine starts and before any shard.
    return Trial(lambda: gen(env.gen_cfg(corpus, "teacher.max_model_len=256", "generate.too_long=fail")))


def make_score_mode_without_response(env):
    corpus = env.corpus([{"prompt": "a", "response": "b"}, {"prompt": "c"}])
    return Trial(lambda: gen(env.gen_cfg(corpus, "generate.mode=score")))


def make_k_zero(env):
    return Trial(lambda: config("generate.k=0"))


def make_k_above_limit(env):
    return Trial(lambda: config("generate.k=5000"))


def make_teacher_missing(env):
    corpus = env.corpus([{"prompt": "a"}])
    return Trial(lambda: gen(env.gen_cfg(corpus, f"teacher.model={env.tmp}/no-such-model")))


def make_openai_without_base_url(env):
    return Trial(lambda: config("teacher.backend=openai"))


def _existing_shards(env, teacher: Path) -> Path:
    """A finished shard folder in run.dir, written by generate itself (FakeBackend stands in for the engine)."""
    from distill.generate.run import run

    corpus = env.corpus([{"id": f"p{i}", "prompt": f"prompt {i}"} for i in range(4)])
    run(env.gen_cfg(corpus, f"teacher.model={teacher}"), backend=FakeBackend())
    folder = env.tmp / "run" / "shards" / "train"
    assert sh.open_shard_set(folder)["complete"]
    return corpus


def make_folder_of_another_teacher(env):
    other = env.tmp / "other-teacher"
    shutil.copytree(env.teacher, other)
    corpus = _existing_shards(env, other)
    return Trial(lambda: gen(env.gen_cfg(corpus)), protect=[env.tmp / "run" / "shards"])


def make_torn_manifest(env):
    corpus = _existing_shards(env, env.teacher)
    manifest = env.tmp / "run" / "shards" / "train" / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[: manifest.stat().st_size // 2])
    return Trial(lambda: gen(env.gen_cfg(corpus)), protect=[env.tmp / "run" / "shards"])


# ---- makers: train -----------------------------------------------------------------------------------------------


def _shard_path(env, name="shard-00001.jsonl.zst") -> Path:
    env.train_cfg()  # copies the shards into the run folder
    path = env.tmp / "run" / "shards" / "train" / name
    env.fmt["shard"] = str(path)
    return path


def make_shard_cut_short(env):
    path = _shard_path(env)
    env.fmt["want"] = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-20])
    env.fmt["size"] = path.stat().st_size
    return Trial(lambda: train(env.train_cfg()), protect=[env.tmp / "run" / "shards"])


def make_shard_flipped_byte(env):
    path = _shard_path(env)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    return Trial(lambda: train(env.train_cfg()), protect=[env.tmp / "run" / "shards"])


def _edit_plain_record(env, line: int, edit) -> None:
    folder = env.tmp / "run" / "shards" / "train"
    write_shard_set(env.teacher, folder, codec="plain", prompts=["What is 2 + 2?", "Name a colour."], shard_size=2)
    path = folder / "shard-00000.jsonl"
    env.fmt["shard"] = str(path)
    lines = path.read_text().splitlines()
    record = json.loads(lines[line - 1])
    edit(record)
    lines[line - 1] = json.dumps(record)  # allow_nan: a bare NaN/Infinity, as a broken writer would write it
    path.write_text("\n".join(lines) + "\n")
    manifest = json.loads((folder / "manifest.json").read_text())  # the checksum matches: only decoding can tell
    data = path.read_bytes()
    manifest["shards"][0].update(bytes=len(data), sha256=sh.sha256_bytes(data))
    (folder / "manifest.json").write_text(json.dumps(manifest))


def make_shard_nan_logprob(env):
    _edit_plain_record(env, 2, lambda r: r["topk_logprobs"][0].__setitem__(1, float("nan")))
    return Trial(lambda: train(env.train_cfg()), protect=[env.tmp / "run" / "shards"])


def make_shard_inf_logprob(env):
    _edit_plain_record(env, 1, lambda r: r["sampled_logprobs"].__setitem__(0, float("inf")))
    return Trial(lambda: train(env.train_cfg()), protect=[env.tmp / "run" / "shards"])


def make_shard_missing_field(env):
    _edit_plain_record(env, 1, lambda r: r.pop("response_token_ids"))
    return Trial(lambda: train(env.train_cfg()), protect=[env.tmp / "run" / "shards"])


def make_shards_unfinished(env):
    env.train_cfg()
    path = env.tmp / "run" / "shards" / "train" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["complete"] = False
    path.write_text(json.dumps(manifest))
    return Trial(lambda: train(env.train_cfg()), protect=[env.tmp / "run" / "shards"])


def make_student_other_tokenizer(env):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    student = env.tmp / "other-vocab"
    shutil.copytree(env.teacher, student)
    tok = AutoTokenizer.from_pretrained(student)
    tok.add_tokens(["<bad_inputs_extra_token>"])
    tok.save_pretrained(student)
    model = AutoModelForCausalLM.from_pretrained(student)
    model.resize_token_embeddings(len(tok))
    model.save_pretrained(student, safe_serialization=True)
    cfg = env.train_cfg(f"student.model={student}", "student.from_teacher_layers=null")
    return Trial(lambda: train(cfg), protect=[env.tmp / "run" / "shards", student])


def make_student_missing(env):
    cfg = env.train_cfg(f"student.model={env.tmp}/nope", "student.from_teacher_layers=null")
    return Trial(lambda: train(cfg), protect=[env.tmp / "run" / "shards"])


def make_student_no_weights(env):
    student = env.tmp / "empty-student"
    student.mkdir()
    shutil.copy(env.teacher / "config.json", student / "config.json")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(env.teacher / name, student / name)
    cfg = env.train_cfg(f"student.model={student}", "student.from_teacher_layers=null")
    return Trial(lambda: train(cfg), protect=[env.tmp / "run" / "shards"])


def make_student_soft_capped_logits(env):
    import torch
    from transformers import AutoTokenizer, Gemma2Config, Gemma2ForCausalLM

    student = env.tmp / "softcap-student"
    tok = AutoTokenizer.from_pretrained(env.teacher)
    config = Gemma2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=16, final_logit_softcapping=1.0,
                          pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    Gemma2ForCausalLM(config).save_pretrained(student, safe_serialization=True)
    tok.save_pretrained(student)
    cfg = env.train_cfg(f"student.model={student}", "student.from_teacher_layers=null")
    return Trial(lambda: train(cfg), protect=[env.tmp / "run" / "shards", student])


# ---- makers: config and command line ----------------------------------------------------------------------------


def make_feature_layer_missing(env):
    cfg = env.train_cfg("train.w_feature=1", "train.feature_layers={0: 9}")
    return Trial(lambda: train(cfg), protect=[env.tmp / "run" / "shards"])


def make_feature_widths_without_projection(env):
    from conftest import build_tiny_llama

    student = build_tiny_llama(env.tmp / "narrow", layers=1, hidden=32, seed=1)
    cfg = env.train_cfg(f"student.model={student}", "student.from_teacher_layers=null", "train.w_feature=1",
                        "train.feature_layers={0: 1}", "train.feature_projection=false")
    return Trial(lambda: train(cfg), protect=[env.tmp / "run" / "shards"])


def make_feature_teacher_not_loadable(env):
    cfg = env.train_cfg("train.w_feature=1", "teacher.backend=openai", "teacher.base_url=http://127.0.0.1:9/v1",
                        f"student.model={env.teacher}", "student.from_teacher_layers=null")
    return Trial(lambda: train(cfg), protect=[env.tmp / "run" / "shards"])


def make_mixture_unknown_task(env):
    cfg = env.train_cfg("train.mixture={poetry: {weight: 1}}")
    return Trial(lambda: train(cfg), protect=[env.tmp / "run" / "shards"])


def make_mixture_negative_weight(env):
    return Trial(lambda: config("train.mixture={a: {weight: -1}}"))


def make_mixture_weights_sum_to_zero(env):
    return Trial(lambda: config("train.mixture={a: {weight: 0}}"))


def make_upsample_not_positive(env):
    return Trial(lambda: config("train.upsample={arithmetic: 0}"))


def make_config_student_model_missing(env):
    return Trial(lambda: config("student.from_teacher_layers=null"))


def make_config_unknown_key(env):
    return Trial(lambda: config("train.lrr=1e-3"))


def make_config_wrong_type(env):
    return Trial(lambda: config("train.max_steps=abc"))


def make_config_bad_choice(env):
    return Trial(lambda: config("train.kd_loss=kl"))


def _yaml(env, text: str) -> Path:
    path = env.tmp / "c.yaml"
    path.write_text(text)
    env.fmt["config"] = str(path)
    return path


def make_cli_unknown_key_in_yaml(env):
    return Trial(lambda: cli("generate", _yaml(env, "generate:\n  temprature: 0\n")))


def make_cli_wrong_type_in_yaml(env):
    return Trial(lambda: cli("train", _yaml(env, "train:\n  lr: fast\n")))


def make_cli_invalid_yaml(env):
    return Trial(lambda: cli("eval", _yaml(env, "run:\n  dir: a: b\n")))


# ---- makers: eval ----------------------------------------------------------------------------------------------


def make_eval_empty_heldout(env):
    heldout = env.tmp / "heldout.jsonl"
    heldout.write_text("\n")
    return Trial(lambda: evaluate(env.eval_cfg()))


def make_eval_missing_named_model(env):
    return Trial(lambda: evaluate(env.eval_cfg(f"eval.models={{mine: {env.tmp}/no-such-model}}")))


def make_eval_bad_check(env):
    heldout = env.tmp / "heldout.jsonl"
    heldout.write_text(json.dumps({"prompt": "2 + 2?", "check": {"kind": "number"}}) + "\n")
    return Trial(lambda: evaluate(env.eval_cfg()))


def make_eval_judge_openai_without_base_url(env):
    return Trial(lambda: config("eval.judge.enabled=true", "eval.judge.backend=openai"))


# ---- the test ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shards(tiny_teacher, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bad") / "shards"
    write_shard_set(tiny_teacher, out)
    return out


@pytest.fixture(autouse=True)
def no_engine(monkeypatch):
    """A bad input must be refused before any engine (a 30 s start) is started."""
    import distill.eval.run as eval_run
    import generate.run

    def refuse(*args, **kwargs):
        raise AssertionError("an engine was started for a bad input")

    monkeypatch.setattr(generate.run, "make_backend", refuse)
    monkeypatch.setattr(eval_run, "start_model_engine", refuse)


def snapshot(paths: list[Path]) -> dict:
    files = {}
    for p in paths:
        for f in ([p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())):
            files[str(f)] = f.read_bytes()
    return files


def test_catalogue_is_complete():
    names = [c[0] for c in CATALOGUE]
    assert len(names) == len(set(names)) >= 20
    assert {c[1] for c in CATALOGUE} == {"generate", "train", "eval", "config", "cli"}
    assert all(f"make_{n}" in globals() for n in names)


@pytest.mark.parametrize("name,stage,how,expected", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_bad_input(name, stage, how, expected, tmp_path, tiny_teacher, shards):
    env = Env(tmp_path, tiny_teacher, shards)
    trial = globals()[f"make_{name}"](env)
    before = snapshot(trial.protect)
    assert before or not trial.protect
    message = trial.action()
    assert "\n" not in message and message == message.strip(), f"not one line: {message!r}"
    assert expected.format(**env.fmt) in message, f"{how}: got {message!r}"
    assert snapshot(trial.protect) == before, "the refused run changed files that were already written"
