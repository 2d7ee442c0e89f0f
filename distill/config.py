"""Run configuration: one YAML file per run plus dotted command-line overrides.

Every setting and its default lives in the dataclasses below; nothing else in the project invents defaults.
Load with `load_config(path, ["train.lr=1e-4", ...])`. Unknown keys, wrong types and malformed overrides
raise DistillError with a one-line message naming the key (and the nearest known key for typos).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distill.errors import DistillError


@dataclass
class RunConfig:
    dir: str = "runs/default"  # every output of the run lives under this folder
    seed: int = 0


@dataclass
class TeacherConfig:
    model: str = "models/smollm2-135m-instruct"  # local folder or hub id (vllm backend)
    backend: str = "vllm"  # vllm | openai (any OpenAI-compatible server, e.g. `vllm serve`)
    base_url: str | None = None  # openai backend: e.g. http://127.0.0.1:8000/v1
    api_key_env: str = "OPENAI_API_KEY"  # name of the environment variable holding the key; never the key
    served_model_name: str | None = None  # openai backend: model name on the server (default: teacher.model)
    tokenizer: str | None = None  # openai backend: local tokenizer folder (default: teacher.model)
    dtype: str = "auto"  # auto = float32 on CPU (no fast bf16 there), bfloat16 on GPU
    max_model_len: int = 2048
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1
    enforce_eager: bool = True  # skips graph compilation: ~37 s vs ~120 s engine start on CPU
    gpu_memory_utilization: float = 0.85  # GPU only; on CPU the KV cache size comes from VLLM_CPU_KVCACHE_SPACE
    trust_remote_code: bool = False
    request_timeout_s: float = 600.0  # openai backend
    max_retries: int = 3  # openai backend


@dataclass
class GenerateConfig:
    prompts: str = "prompts/train.jsonl"  # file, folder of files, or a `datasets` hub id
    heldout_prompts: str | None = "prompts/heldout.jsonl"  # also given teacher shards, for eval
    split: str = "train"  # for hub datasets
    columns: dict[str, str] = field(default_factory=dict)  # our name -> corpus column, e.g. {prompt: question}
    max_prompts: int | None = None  # cap on the training corpus (after dedup); None = all
    heldout_max_prompts: int | None = None  # cap on the held-out corpus; None = all
    mode: str = "generate"  # generate: sample answers | score: top-k over the corpus' own responses
    k: int = 20
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    n: int = 1  # samples per prompt
    seed: int = 0
    stop: list[str] = field(default_factory=list)
    logprobs_mode: str = "raw_logprobs"  # raw_logprobs (model distribution) | processed_logprobs (after temperature/top-p)
    codec: str = "compact"  # compact (quantised binary, zstd) | plain (JSON lists, human-readable)
    prob_step: float = 1.6e-4  # compact codec: probability step; each kept entry is off by <= step/2
    shard_size: int = 128  # records per shard
    too_long: str = "skip"  # prompt longer than the context: skip (and count) | fail
    overwrite: bool = False  # start over in an output folder that already holds shards


@dataclass
class StudentConfig:
    model: str | None = None  # any HF causal LM (folder or hub id); ignored when from_teacher_layers is set
    from_teacher_layers: int | None = 10  # make the student from the teacher, keeping N evenly spaced layers
    trust_remote_code: bool = False  # also covers every non-teacher model that eval loads
    allow_pickle: bool = False  # allow loading *.bin (pickle) weights; safetensors only by default


@dataclass
class LoraConfig:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    merge: bool = True  # merge the adapter into a full model folder at the end (vLLM-servable)


@dataclass
class TrainConfig:
    output_name: str = "student"  # model folder under run.dir
    w_ce: float = 0.5  # weight of cross-entropy on the teacher's response tokens
    w_kd: float = 0.5  # weight of the top-k KD term
    kd_loss: str = "forward_kl"  # forward_kl | reverse_kl | jsd | skew_forward_kl | skew_reverse_kl
    kd_temperature: float = 1.0
    jsd_beta: float = 0.5
    skew_alpha: float = 0.1
    tail: str = "bucket"  # mass outside the top-k: bucket (1 - sum top-k as one class) | renormalize
    chunk_rows: int = 1024  # response positions per loss chunk (bounds the logits memory)
    lr: float = 2e-4
    max_steps: int = 60  # <= 0: use epochs
    epochs: float = 1.0
    batch_size: int = 8
    grad_accum: int = 1
    max_seq_len: int = 1024
    too_long: str = "truncate"  # truncate (and count) | fail
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    lr_scheduler: str = "cosine"
    eval_fraction: float = 0.05  # held-out split of the training shards for in-training evaluation
    eval_steps: int = 20
    save_steps: int = 20
    save_total_limit: int = 1  # checkpoints kept (the newest); each holds weights + optimizer state, ~3x the model
    keep_checkpoints: bool = False  # once the final model is saved; a finished run never resumes from them
    logging_steps: int = 5
    report_to: str = "tensorboard"  # none | tensorboard | trackio
    precision: str = "fp32"  # fp32 | bf16 | fp16
    gradient_checkpointing: bool = False
    resume: bool = True  # continue from the newest complete checkpoint in the output folder
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass
class JudgeConfig:
    enabled: bool = False  # off by default: the default 135M teacher is too small to judge well
    backend: str = "vllm"  # vllm (local model) | openai
    model: str | None = None  # default: teacher.model
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_tokens: int = 8
    max_retries: int = 4
    pairs: list[list[str]] = field(default_factory=lambda: [["student", "student_init"], ["student", "student_sft"]])


@dataclass
class EvalConfig:
    prompts: list[str] = field(default_factory=lambda: ["prompts/heldout.jsonl"])
    # name -> model folder or hub id. Empty: teacher, student, student_init, student_sft from this run.
    models: dict[str, str] = field(default_factory=dict)
    max_prompts: int | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    n_examples: int = 4  # side-by-side examples in the report
    judge: JudgeConfig = field(default_factory=JudgeConfig)


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


CHOICES = {
    "teacher.backend": ("vllm", "openai"),
    "generate.mode": ("generate", "score"),
    "generate.logprobs_mode": ("raw_logprobs", "processed_logprobs"),
    "generate.codec": ("compact", "plain"),
    "generate.too_long": ("skip", "fail"),
    "train.kd_loss": ("forward_kl", "reverse_kl", "jsd", "skew_forward_kl", "skew_reverse_kl"),
    "train.tail": ("bucket", "renormalize"),
    "train.too_long": ("truncate", "fail"),
    "train.report_to": ("none", "tensorboard", "trackio"),
    "train.precision": ("fp32", "bf16", "fp16"),
    "eval.judge.backend": ("vllm", "openai"),
}


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Read a YAML run config, apply `a.b.c=value` overrides, and check every key and type."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DistillError(f"{path}: config file not found")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            raise DistillError(f"{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
        if not isinstance(raw, dict):
            raise DistillError(f"{path}: expected a mapping of sections at the top level")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DistillError(f"override {item!r}: expected key=value, e.g. train.lr=1e-4")
        try:
            parsed = yaml.safe_load(value) if value != "" else ""
        except yaml.YAMLError:
            parsed = value
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise DistillError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = parsed
    cfg = _build(Config, raw, prefix="")
    _check_choices(cfg)
    return cfg


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "config"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DistillError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            near = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"; did you mean {prefix}{near[0]}?" if near else f"; known keys: {', '.join(fields)}"
            raise DistillError(f"unknown config key {prefix}{key}{hint}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, prefix=f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, hint, f"{prefix}{key}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against a type hint; allow int -> float. Raise a one-line error naming the key."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except DistillError as e:
                errors.append(e)
        raise errors[0]
    if origin is list:
        if not isinstance(value, list):
            raise DistillError(f"config key {key}: expected a list, got {_show(value)}")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise DistillError(f"config key {key}: expected a mapping, got {_show(value)}")
        return {str(k): _coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if hint is float:
        if isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DistillError(f"config key {key}: expected a number, got {_show(value)}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DistillError(f"config key {key}: expected an integer, got {_show(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise DistillError(f"config key {key}: expected true or false, got {_show(value)}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise DistillError(f"config key {key}: expected a string, got {_show(value)}")
        return value
    raise TypeError(f"unsupported type hint {hint} for {key}")


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _check_choices(cfg: Config) -> None:
    for key, allowed in CHOICES.items():
        node = cfg
        for part in key.split("."):
            node = getattr(node, part)
        if node not in allowed:
            raise DistillError(f"config key {key}: {node!r} is not one of {', '.join(allowed)}")
    g = cfg.generate
    if g.k < 1:
        raise DistillError(f"config key generate.k: must be at least 1, got {g.k}")
    if g.n < 1 or g.shard_size < 1 or g.max_tokens < 1:
        raise DistillError("config keys generate.n, generate.shard_size and generate.max_tokens must be at least 1")
    if not 0 < g.prob_step < 0.01:
        raise DistillError(f"config key generate.prob_step: must be in (0, 0.01), got {g.prob_step}")
    if cfg.teacher.backend == "openai" and not cfg.teacher.base_url:
        raise DistillError("config key teacher.base_url is required when teacher.backend is openai")
    if cfg.student.model is None and cfg.student.from_teacher_layers is None:
        raise DistillError("config key student.model is required unless student.from_teacher_layers is set")
    if cfg.student.from_teacher_layers is not None and cfg.student.from_teacher_layers < 1:
        raise DistillError("config key student.from_teacher_layers: must be at least 1")
    judge = cfg.eval.judge
    if judge.enabled and judge.backend == "openai" and not judge.base_url:
        raise DistillError("config key eval.judge.base_url is required when eval.judge.backend is openai")
    t = cfg.train
    if t.kd_temperature <= 0:
        raise DistillError(f"config key train.kd_temperature: must be positive, got {t.kd_temperature}")
    if not 0 < t.jsd_beta < 1:
        raise DistillError(f"config key train.jsd_beta: must be in (0, 1), got {t.jsd_beta}")
    if not 0 <= t.skew_alpha < 1:
        raise DistillError(f"config key train.skew_alpha: must be in [0, 1), got {t.skew_alpha}")
    if t.w_ce < 0 or t.w_kd < 0 or t.w_ce + t.w_kd == 0:
        raise DistillError("config keys train.w_ce and train.w_kd: must be >= 0 and not both 0")
    if t.save_steps < 1 or t.save_total_limit < 1:
        raise DistillError("config keys train.save_steps and train.save_total_limit: must be at least 1 "
                           "(resume needs a checkpoint)")


# Where each stage reads and writes, derived from run.dir so that stages agree without passing paths around.
@dataclass
class RunPaths:
    root: Path

    def shards(self, corpus: str) -> Path:  # corpus: "train" or "heldout"
        return self.root / "shards" / corpus

    @property
    def student_init(self) -> Path:
        return self.root / "student_init"

    def model(self, name: str) -> Path:
        return self.root / name

    @property
    def eval_dir(self) -> Path:
        return self.root / "eval"


def run_paths(cfg: Config) -> RunPaths:
    return RunPaths(Path(cfg.run.dir))


def resolve_dtype(dtype: str) -> str:
    """teacher.dtype "auto": bfloat16 on a CUDA GPU, float32 on CPU (no fast bf16 there: about 5x slower)."""
    if dtype != "auto":
        return dtype
    import torch

    return "bfloat16" if torch.cuda.is_available() else "float32"


def parse_cli(argv: list[str], stage: str) -> tuple[Config, list[str]]:
    """`python -m <stage> CONFIG [key=value ...]` -> (config, overrides)."""
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: python -m {stage} CONFIG.yaml [section.key=value ...]\n"
              f"   e.g. python -m {stage} configs/default.yaml run.dir=runs/try1")
        raise SystemExit(0 if argv else 2)
    return load_config(argv[0], argv[1:]), argv[1:]
