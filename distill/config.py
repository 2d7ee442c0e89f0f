"""Run configuration: one YAML file per run plus dotted command-line overrides.

The pydantic models below are the one home of every setting and its default: types, choices (`Literal`) and ranges
sit on the fields, and nothing else in the project invents a default. A run's YAML file lists only what it sets
differently (configs/default.yaml says why for each key). Load with `load_config(path, ["train.lr=1e-4", ...])`;
an unknown key, a wrong type or a value out of range raises DistillError with one line naming the key (and the
nearest known key for typos).
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from distill.errors import DistillError


def _yaml_float(value: Any) -> Any:
    """YAML 1.1 reads 1e-4 (no dot) as a string: accept it as a number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


Float = Annotated[float, BeforeValidator(_yaml_float)]
PositiveInt = Annotated[int, Field(ge=1)]


class Section(BaseModel):
    # strict: no silent str -> int or int -> bool coercion; extra="forbid": a typo is an error, not a no-op.
    model_config = ConfigDict(strict=True, extra="forbid", validate_assignment=True)


class RunConfig(Section):
    dir: str = "runs/default"  # every output of the run lives under this folder
    seed: int = 0


class TeacherConfig(Section):
    model: str = "models/smollm2-135m-instruct"  # local folder or hub id (vllm backend)
    backend: Literal["vllm", "openai"] = "vllm"  # openai: any OpenAI-compatible server, e.g. `distill serve`
    base_url: str | None = None  # openai backend: e.g. http://127.0.0.1:8000/v1
    api_key_env: str = "OPENAI_API_KEY"  # name of the environment variable holding the key; never the key
    served_model_name: str | None = None  # openai backend: model name on the server (default: teacher.model)
    tokenizer: str | None = None  # openai backend: local tokenizer folder (default: teacher.model)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: float32 on CPU, bfloat16 on GPU
    max_model_len: PositiveInt = 2048
    tensor_parallel_size: PositiveInt = 1
    data_parallel_size: PositiveInt = 1
    enforce_eager: bool = True  # skips graph compilation: ~37 s vs ~120 s engine start on CPU
    gpu_memory_utilization: Float = Field(0.85, gt=0, le=1)  # GPU only; on CPU see VLLM_CPU_KVCACHE_SPACE
    trust_remote_code: bool = False
    request_timeout_s: Float = Field(600.0, gt=0)  # openai backend
    max_retries: int = Field(3, ge=0)  # openai backend: the client's own retries, with exponential backoff

    @model_validator(mode="after")
    def _openai_needs_url(self):
        if self.backend == "openai" and not self.base_url:
            raise ValueError("config key teacher.base_url is required when teacher.backend is openai")
        return self


class GenerateConfig(Section):
    prompts: str = "prompts/train.jsonl"  # file, folder of files, or a `datasets` hub id
    heldout_prompts: str | None = "prompts/heldout.jsonl"  # also given teacher shards, for eval
    split: str = "train"  # for hub datasets
    columns: dict[str, str] = {}  # our name -> corpus column, e.g. {prompt: question}
    max_prompts: PositiveInt | None = None  # cap on the training corpus (after dedup); None = all
    heldout_max_prompts: PositiveInt | None = None  # cap on the held-out corpus; None = all
    mode: Literal["generate", "score"] = "generate"  # score: top-k over the corpus' own responses
    # generate mode: training prompts with a value in this column (a reference answer) get it as their answer,
    # scored by the teacher as in mode=score, instead of a sampled one. Held-out prompts are always sampled.
    references: str | None = None
    k: int = Field(20, ge=1, le=1000)  # top-k above 1000 costs more than it is worth
    temperature: Float = Field(1.0, ge=0)
    top_p: Float = Field(1.0, gt=0, le=1)
    max_tokens: PositiveInt = 256
    n: PositiveInt = 1  # samples per prompt
    seed: int = 0
    stop: list[str] = []
    logprobs_mode: Literal["raw_logprobs", "processed_logprobs"] = "raw_logprobs"  # processed: after temperature/top-p
    codec: Literal["compact", "plain"] = "compact"  # compact: quantised binary + zstd; plain: readable JSON lists
    prob_step: Float = Field(1.6e-4, gt=0, lt=0.01)  # compact codec: each kept probability is off by <= step/2
    shard_size: PositiveInt = 128  # records per shard
    too_long: Literal["skip", "fail"] = "skip"  # a prompt longer than the context: skip (and count) or fail
    overwrite: bool = False  # start over in an output folder that already holds shards
    # Where the teacher runs. local: one engine in this process. ray: a pool of engines on a Ray cluster, each
    # generating whole shards; run.dir must then be on a filesystem every node mounts (the workers write the shards).
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None  # None: start a Ray instance on this machine; "auto" or HOST:PORT: join a cluster
    ray_workers: PositiveInt = 2  # engines (Ray actors); a dead one is replaced and its shard done again
    ray_cpus_per_worker: PositiveInt = 1  # CPU engines are bound to this many cores each (1: batch-invariant)
    ray_gpus_per_worker: int | None = Field(None, ge=0)  # None: teacher.tensor_parallel_size if the cluster has GPUs

    @model_validator(mode="after")
    def _score_needs_one_sample(self):
        if self.mode == "score" and self.n != 1:
            raise ValueError("config key generate.n: must be 1 in scoring mode")
        if self.mode == "score" and self.references:
            raise ValueError("config key generate.references: only for generate.mode=generate (scoring mode scores "
                             "every prompt's response)")
        return self


class StudentConfig(Section):
    model: str | None = None  # any HF causal LM (folder or hub id); ignored when from_teacher_layers is set
    # Make the student from the teacher, keeping N layers: 15 of SmolLM2-135M's 30 chat in sentences after the
    # default training, 10 did not (README, "Students that start closer").
    from_teacher_layers: PositiveInt | None = 15
    # Which N layers (train/prune.py): even | block_influence | drop_one_kl | greedy_kl | contiguous. drop_one_kl:
    # on the validation prompts it matched greedy_kl at a thirtieth of its cost and halved even's KL.
    layer_selection: Literal["even", "block_influence", "drop_one_kl", "greedy_kl", "contiguous"] = "drop_one_kl"
    calibration_records: PositiveInt = 8  # training-shard records that score the layers (all but `even`)
    trust_remote_code: bool = False  # also covers every non-teacher model that eval loads
    allow_pickle: bool = False  # allow loading *.bin (pickle) weights; safetensors only by default

    @model_validator(mode="after")
    def _some_student(self):
        if self.model is None and self.from_teacher_layers is None:
            raise ValueError("config key student.model is required unless student.from_teacher_layers is set")
        return self


class LoraConfig(Section):
    enabled: bool = False
    r: PositiveInt = 16
    alpha: PositiveInt = 32
    dropout: Float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj"]
    merge: bool = True  # merge the adapter into a full model folder at the end (vLLM-servable)


class MixtureEntry(Section):
    weight: Float = Field(1.0, ge=0)  # the task's share of sampled training rows, relative to the other tasks
    w_ce: Float | None = Field(None, ge=0)  # this task's own loss weights; None: train.w_ce / train.w_kd
    w_kd: Float | None = Field(None, ge=0)


KDLoss = Literal["forward_kl", "reverse_kl", "jsd", "skew_forward_kl", "skew_reverse_kl"]


class TrainConfig(Section):
    output_name: str = "student"  # model folder under run.dir
    # `distill pipeline` also trains an SFT-only student (same data and steps, CE alone) so the report shows what the
    # rest of the recipe adds. Off by default: it doubles training and adds a model to eval (experiments/ measure it).
    sft_baseline: bool = False
    w_ce: Float = Field(0.5, ge=0)  # weight of cross-entropy on the teacher's response tokens
    w_kd: Float = Field(0.5, ge=0)  # weight of the top-k KD term
    # Unlikelihood of repeats (Welleck et al. 2019), against greedy loops: on the teacher's answers, of each answer's
    # earlier tokens (token-level); on the student's own answers in on-policy rounds, of each token that completes a
    # 4-gram the answer already holds (sequence-level).
    w_unlikelihood: Float = Field(0.0, ge=0)
    # Feature / layer-wise distillation against an online teacher (loaded in the training process); 0: off.
    w_feature: Float = Field(0.0, ge=0)
    feature_loss: Literal["mse", "cosine"] = "cosine"  # between mapped student and teacher hidden states
    feature_layers: dict[int, int] | None = None  # student layer -> teacher layer; None: from student_init.json
    feature_projection: bool = True  # learn a linear map when the widths differ (dropped from the exported model)
    kd_loss: KDLoss = "forward_kl"  # the divergence against the stored top-k (distill/losses.py)
    kd_temperature: Float = Field(1.0, gt=0)
    jsd_beta: Float = Field(0.5, gt=0, lt=1)  # jsd: weight of the teacher in the mixture
    skew_alpha: Float = Field(0.1, ge=0, lt=1)  # skew KL: weight of the first argument in the mixture
    tail: Literal["bucket", "renormalize"] = "bucket"  # mass outside the top-k: one class, or dropped
    chunk_rows: PositiveInt = 1024  # response positions per loss chunk (bounds the logits memory)
    lr: Float = Field(2e-4, ge=0)
    max_steps: int = 60  # <= 0: use epochs
    epochs: Float = Field(1.0, gt=0)
    batch_size: PositiveInt = 8
    grad_accum: PositiveInt = 1
    max_seq_len: PositiveInt = 1024
    too_long: Literal["truncate", "fail"] = "truncate"  # a record longer than max_seq_len: cut (and count) or fail
    warmup_ratio: Float = Field(0.0, ge=0, lt=1)  # share of the steps with a rising learning rate
    weight_decay: Float = Field(0.0, ge=0)
    lr_scheduler: str = "cosine"  # any transformers scheduler name
    eval_fraction: Float = Field(0.05, ge=0, lt=1)  # validation split of the training shards
    eval_steps: PositiveInt = 20
    save_steps: PositiveInt = 20  # resume needs a checkpoint
    save_total_limit: PositiveInt = 1  # checkpoints kept (the newest); each holds weights + optimizer state
    keep_checkpoints: bool = False  # once the final model is saved; a finished run never resumes from them
    logging_steps: PositiveInt = 5
    report_to: Literal["none", "tensorboard", "trackio"] = "tensorboard"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    gradient_checkpointing: bool = False
    resume: bool = True  # continue from the newest complete checkpoint in the output folder
    # Multi-task mixture: task (a record's `task`, from the corpus' task/category field or its source) -> sampling
    # weight and optional loss weights. Empty: every record once per epoch. Tasks left out are not trained on.
    mixture: dict[str, MixtureEntry] = {}
    # Tasks drawn more (or less) often than their share of the shards: task -> factor on each of its records' chance
    # of being drawn (1: as often as the others), on top of any mixture weight. A task the shards do not hold is
    # noted and skipped, so a config written for one corpus still trains on another.
    upsample: dict[str, Annotated[Float, Field(gt=0)]] = {}
    # CE weight on the records whose answer was given, not sampled (a reference: generate.references, or a score-mode
    # corpus' response), in place of the task's w_ce: a correct answer is worth copying token by token. None: w_ce.
    w_ce_references: Float | None = Field(None, ge=0)
    lora: LoraConfig = LoraConfig()

    @model_validator(mode="after")
    def _some_loss(self):
        if self.w_ce + self.w_kd + self.w_feature == 0:
            raise ValueError("config keys train.w_ce, train.w_kd and train.w_feature: must not all be 0")
        if self.mixture and sum(e.weight for e in self.mixture.values()) == 0:
            raise ValueError("config key train.mixture: the task weights sum to 0 (no task would be trained on)")
        return self


class OnPolicyConfig(Section):
    """On-policy distillation rounds (`distill onpolicy`): the student answers training prompts, the teacher scores
    the answers with its top-k, the student trains on them; then again with the updated student."""

    output_name: str = "student_onpolicy"  # model folder under run.dir
    init: str | None = None  # the student to start from (a model folder); None: the run's train.output_name
    rounds: PositiveInt = 4
    # Training prompts (generate.prompts) the student answers per round: the next ones in turn, or with
    # train.mixture / train.upsample a weighted draw as train makes.
    prompts_per_round: PositiveInt = 32
    samples_per_prompt: PositiveInt = 1
    temperature: Float = Field(1.0, ge=0)  # the student's sampling temperature
    max_tokens: PositiveInt = 64  # longest student answer
    steps_per_round: PositiveInt = 4  # optimizer steps on each round's answers (batch: train.batch_size)
    # GKD's lambda: the share of training rows that are the student's own answers; the rest are the stored teacher
    # answers (RUN/shards/train), drawn and weighted as train draws and weighs them. 1.0: purely on-policy.
    lmbda: Float = Field(1.0, gt=0, le=1)
    loss: Literal["reverse_kl", "jsd", "sampled_token"] = "reverse_kl"  # on the student's own answers
    w_onpolicy: Float = Field(1.0, gt=0)  # weight of that loss
    lr: Float | None = None  # None: train.lr
    keep_engines: bool = True  # keep both engines alive across rounds (student weights reloaded in place)
    in_pipeline: bool = False  # `distill pipeline` runs the rounds after off-policy KD, and eval includes the result


class JudgeConfig(Section):
    enabled: bool = False  # off by default: the default 135M teacher is too small to judge well
    backend: Literal["vllm", "openai"] = "vllm"  # vllm: a local model; openai: an endpoint
    model: str | None = None  # default: teacher.model
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_tokens: PositiveInt = 8
    max_retries: int = Field(4, ge=0)  # the client's own retries, with exponential backoff
    pairs: list[list[str]] = [["student", "student_init"], ["student", "student_sft"]]

    @model_validator(mode="after")
    def _openai_needs_url(self):
        if self.enabled and self.backend == "openai" and not self.base_url:
            raise ValueError("config key eval.judge.base_url is required when eval.judge.backend is openai")
        return self


class EvalConfig(Section):
    prompts: list[str] = Field(["prompts/heldout.jsonl"], min_length=1)  # held-out prompt sets
    # name -> model folder or hub id. Empty: teacher, student, student_init, student_sft from this run.
    models: dict[str, str] = {}
    max_prompts: PositiveInt | None = None
    max_tokens: PositiveInt = 256
    temperature: Float = Field(0.0, ge=0)
    # vLLM's repetition penalty for every model's answers alike (1.0: none). Above 1 it suppresses loops, not
    # nonsense: docs/results/decoding.json measures what it does to the default student and the teacher.
    repetition_penalty: Float = Field(1.0, gt=0)
    n_examples: int = Field(4, ge=0)  # side-by-side examples in the report
    speed_runs: int = Field(3, ge=3)  # timed runs per model; tokens/s is their median, with min and max beside it
    speed_prompts: PositiveInt = 16  # prompts per timed run, each generating exactly max_tokens tokens
    full_vocab_kl: bool = True  # also the full-vocabulary KL, when the teacher can be loaded beside each model
    judge: JudgeConfig = JudgeConfig()


class Config(Section):
    run: RunConfig = RunConfig()
    teacher: TeacherConfig = TeacherConfig()
    generate: GenerateConfig = GenerateConfig()
    student: StudentConfig = StudentConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    onpolicy: OnPolicyConfig = OnPolicyConfig()


# ---- loading --------------------------------------------------------------------------------------------------


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Read a YAML run config, apply `a.b.c=value` overrides (values in YAML syntax), validate every key."""
    raw = _read_yaml(Path(path)) if path is not None else {}
    for item in overrides:
        _apply_override(raw, item)
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise DistillError(_one_line(e)) from None


def _read_yaml(path: Path) -> dict:
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
    return raw


def _apply_override(raw: dict, item: str) -> None:
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


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _known_keys(loc: tuple) -> list[str]:
    """The field names of the section that holds loc[-1] (a mapping's keys, such as train.mixture.<task>, skipped)."""
    model: Any = Config
    parts = list(loc[:-1])
    while parts:
        part = parts.pop(0)
        if typing.get_origin(model) is dict:
            model = typing.get_args(model)[1]  # `part` was a key of the mapping
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = field.annotation
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


# pydantic error type -> how to say what was expected
_EXPECTED = {"float_type": "a number", "float_parsing": "a number", "int_type": "an integer",
             "int_from_float": "an integer", "bool_type": "true or false", "string_type": "a string",
             "list_type": "a list", "dict_type": "a mapping"}


def _one_line(error: ValidationError) -> str:
    """The first validation error as one line that names the dotted key."""
    err = error.errors()[0]
    loc = tuple(str(p) for p in err["loc"] if not isinstance(p, int))
    key, kind, value, ctx = ".".join(loc), err["type"], err.get("input"), err.get("ctx", {})
    if kind == "extra_forbidden":
        near = difflib.get_close_matches(loc[-1], _known_keys(loc), n=1)
        prefix = ".".join(loc[:-1] + (near[0],)) if near else None
        hint = f"; did you mean {prefix}?" if near else f"; known keys: {', '.join(_known_keys(loc))}"
        return f"unknown config key {key}{hint}"
    if kind == "model_type":
        return f"{key}: expected a mapping, got {type(value).__name__}"
    if kind in _EXPECTED:
        return f"config key {key}: expected {_EXPECTED[kind]}, got {_show(value)}"
    if kind == "literal_error":
        return f"config key {key}: {value!r} is not one of {ctx.get('expected', '').replace(chr(39), '')}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = {"greater_than_equal": "at least", "greater_than": "above", "less_than_equal": "at most",
                 "less_than": "below"}[kind]
        limit = next(iter(ctx.values()))
        return f"config key {key}: must be {bound} {limit:g}, got {value!r}"
    if kind == "too_short":
        return f"config key {key}: must not be empty"
    if kind == "value_error":  # our model validators: the message already names the key
        return str(ctx.get("error", err["msg"]))
    return f"config key {key or 'config'}: {err['msg']}"


def to_dict(cfg: BaseModel) -> dict:
    return cfg.model_dump()


# ---- where each stage reads and writes ------------------------------------------------------------------------


class RunPaths:
    """Paths derived from run.dir, so that stages agree without passing paths around."""

    def __init__(self, root: Path):
        self.root = Path(root)

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

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def run_paths(cfg: Config) -> RunPaths:
    return RunPaths(Path(cfg.run.dir))


def resolve_dtype(dtype: str) -> str:
    """teacher.dtype "auto": bfloat16 on a CUDA GPU, float32 on CPU (no fast bf16 there: about 5x slower)."""
    if dtype != "auto":
        return dtype
    import torch

    return "bfloat16" if torch.cuda.is_available() else "float32"
