"""The eval stage, top to bottom: which models, which prompts, generate, judge, teacher-forced metrics, report.

Everything a number in the report comes from is saved under run/eval/ first, so `distill report RUN` can rebuild
the report without running a model:
    run.json                       the plan: models, prompt sets, overlap, skipped models and why, settings
    generations/<model>.jsonl      one row per prompt;  generations/<model>.timing.json: speed, size, settings
    teacher_forced/<model>.jsonl   one row per held-out shard record; teacher_forced/<model>.json: settings
    judge/<a>_vs_<b>.jsonl         one row per prompt (both orders);  judge/<a>_vs_<b>.json: settings
A model whose saved files match the current settings is not run again, so an interrupted eval resumes.
eval imports nothing from train/: teacher-forced scores come from the shared layer (distill/scoring.py).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from distill import shards as sh
from distill.config import Config, run_paths, to_dict
from distill.engine import stop_engine
from distill.errors import DistillError
from distill.eval import metrics, own_answers
from distill.eval.checks import validate_check
from distill.eval.generation import generate_sets, generation_done, generation_settings, model_identity, \
    start_model_engine, trusts_remote_code
from distill.eval.judge import judge_todo, run_judge
from distill.eval.report import build_report
from distill.files import read_json, read_jsonl, write_json, write_jsonl
from distill.models import count_params, is_hub_id, load_tokenizer, weight_files
from distill.prompts import load_prompts, prompt_hash

RANDOM_TOKENS = 24  # length of the degenerate panel's random-token answers
OPTIONAL_DEFAULTS = ("student_init", "student_sft", "student_onpolicy")  # skipped with a reason when absent
# Files train/ and onpolicy/ write last into a model folder: without them the folder is still being written.
DONE_MARKERS = {"student": "train_summary.json", "student_sft": "train_summary.json",
                "student_init": "student_init.json", "student_onpolicy": "train_summary.json"}


def log(msg: str) -> None:
    print(f"[eval] {msg}", flush=True)


def warn(msg: str) -> None:
    print(f"[eval] warning: {msg}", file=sys.stderr, flush=True)


def run(cfg: Config) -> Path:
    paths = run_paths(cfg)
    out = paths.eval_dir
    models, skipped = resolve_models(cfg)  # every user error surfaces before any engine starts
    for name, reason in skipped.items():
        log(f"{name}: {reason}")
    sets = load_sets(cfg)
    plan = make_plan(cfg, models, skipped, sets, overlap_counts(sets, paths.shards("train")))
    for sub in ("generations", "teacher_forced", "judge"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    write_json(out / "run.json", plan)
    log(f"{len(models)} models ({', '.join(models)}), {len(sets)} held-out sets, "
        f"{sum(len(ps) for ps in sets.values())} prompts -> {out}")
    write_random_texts(out, sets, cfg)
    generate_all(out, plan, sets, cfg)
    judge_remaining(out, plan, cfg)
    score_teacher_forced(out, plan, paths.shards("heldout"), cfg)
    write_json(out / "run.json", plan)
    _, headline = build_report(out)  # every number recomputed from the files written above
    print(headline)
    log(f"report: {out / 'report.md'}")
    return out


# ---- 1. models and prompt sets --------------------------------------------------------------------------------


def model_problem(where: str) -> str | None:
    if is_hub_id(where):
        return None
    if not Path(where).is_dir():
        return f"{where} does not exist"
    if not (Path(where) / "config.json").is_file():
        return f"{where} has no config.json (not a finished model folder)"
    return None


def resolve_models(cfg: Config) -> tuple[dict[str, str], dict[str, str]]:
    """name -> model folder or hub id, and name -> reason for each default model that was skipped."""
    paths = run_paths(cfg)
    if cfg.eval.models:
        for name, where in cfg.eval.models.items():
            problem = model_problem(where)
            if problem:
                raise DistillError(f"eval.models.{name}: {problem}")
        return dict(cfg.eval.models), {}
    models = {"teacher": cfg.teacher.model, "student": str(paths.model(cfg.train.output_name)),
              "student_init": str(paths.student_init), "student_sft": str(paths.model("student_sft")),
              "student_onpolicy": str(paths.model(cfg.onpolicy.output_name))}
    if not cfg.onpolicy.in_pipeline and not Path(models["student_onpolicy"]).exists():
        del models["student_onpolicy"]  # this run has no on-policy rounds: nothing to say about them
    skipped = {}
    for name, where in list(models.items()):
        problem = model_problem(where)
        marker = DONE_MARKERS.get(name)
        if problem is None and marker and not (Path(where) / marker).is_file():
            problem = f"{where} is not finished (no {marker})"
        if problem is None:
            continue
        if name not in OPTIONAL_DEFAULTS:
            raise DistillError(f"model {name}: {problem} (train it first, or list the models in eval.models)")
        skipped[name] = f"not evaluated: {problem}"
        del models[name]
    return models, skipped


def set_name(source: str, taken: set[str]) -> str:
    path = Path(source)
    base = path.stem if path.suffix else (path.name if path.exists() else source.replace("/", "_"))
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def load_sets(cfg: Config) -> dict[str, list]:
    sets = {}
    for source in cfg.eval.prompts:
        prompts, _ = load_prompts(source, cfg.generate.columns, cfg.generate.split, cfg.eval.max_prompts)
        for p in prompts:
            if "check" in p.meta:
                try:
                    validate_check(p.meta["check"])
                except ValueError as e:
                    raise DistillError(f"{p.where}: {e}") from None
        sets[set_name(source, set(sets))] = prompts
    return sets


def training_hashes(folder: Path) -> set[str] | None:
    """prompt_hash of every training shard record's messages (raw JSON: no top-k decoding); None if no shards."""
    manifest = sh.read_manifest(folder) if folder.is_dir() else None
    if manifest is None:
        return None
    hashes = set()
    for entry in manifest["shards"]:
        data = sh.verify_shard(folder, entry)
        for _, record in sh.iter_shard_lines(folder, entry, data):
            hashes.add(prompt_hash(record["messages"]))
    return hashes


def overlap_counts(sets: dict[str, list], train_folder: Path) -> dict:
    hashes = training_hashes(train_folder)
    if hashes is None:
        warn(f"no training shards at {train_folder}: overlap with the training prompts not checked")
        return {"train_shards": str(train_folder), "checked": False, "sets": {}}
    counts = {name: sum(prompt_hash(p.messages) in hashes for p in prompts) for name, prompts in sets.items()}
    for name, n in counts.items():
        if n:
            warn(f"{n} of {len(sets[name])} prompts of held-out set {name} also appear in the training shards")
    return {"train_shards": str(train_folder), "checked": True, "sets": counts}


def make_plan(cfg: Config, models: dict, skipped: dict, sets: dict, overlap: dict) -> dict:
    e, j = cfg.eval, cfg.eval.judge
    return {
        "models": models,
        "teacher": "teacher" if "teacher" in models else None,
        "sets": {name: {"source": src, "prompts": len(ps)} for (name, ps), src in zip(sets.items(), e.prompts)},
        "overlap": overlap,
        "skipped": skipped,
        "settings": {"temperature": e.temperature, "repetition_penalty": e.repetition_penalty,
                     "max_tokens": e.max_tokens, "max_prompts": e.max_prompts, "seed": cfg.run.seed,
                     "dtype": cfg.teacher.dtype},
        "n_examples": e.n_examples,
        "judge": {"enabled": j.enabled, "backend": j.backend, "model": j.model or cfg.teacher.model,
                  "base_url": j.base_url, "pairs": [list(p) for p in j.pairs] if j.enabled else [], "missing": {},
                  "ci": "Wilson score interval, 95%, ties counted as half a win"},
        "config": to_dict(cfg),
    }


def write_random_texts(out: Path, sets: dict, cfg: Config) -> None:
    """Random tokens from the teacher's vocabulary, one text per prompt, for the degenerate panel's floor (seeded by
    run.seed, so the floor is the same on every rebuild and rerun)."""
    path = out / "degenerate_random.json"
    keys = [[name, p.id] for name, prompts in sets.items() for p in prompts]
    if (read_json(path) or {}).get("keys") == keys:
        return
    tokenizer = load_tokenizer(cfg.teacher.tokenizer or cfg.teacher.model, "teacher.model",
                               cfg.teacher.trust_remote_code)
    rng = random.Random(cfg.run.seed)
    texts = [tokenizer.decode([rng.randrange(len(tokenizer)) for _ in range(RANDOM_TOKENS)], skip_special_tokens=True)
             for _ in keys]
    write_json(path, {"keys": keys, "texts": [[k, t] for k, t in zip(keys, texts)]})


# ---- 2. free generation, one engine at a time -----------------------------------------------------------------


def shared_judge_model(plan: dict, cfg: Config) -> str | None:
    """The evaluated model whose engine can also judge (a local judge that is one of the models), or None."""
    j = plan["judge"]
    if not (j["enabled"] and j["backend"] == "vllm"):
        return None
    return next((m for m, w in plan["models"].items() if w == j["model"]), None)


def generate_all(out: Path, plan: dict, sets: dict, cfg: Config) -> None:
    """Each model's answers, unless saved with the same settings. The teacher's engine goes last, to score every
    model's answers (own_answers.py); a local judge's engine goes late, to judge once the answers exist."""
    shared, teacher = shared_judge_model(plan, cfg), plan["teacher"]
    n_rows = sum(len(ps) for ps in sets.values())
    for name in sorted(plan["models"], key=lambda m: (m == teacher, m == shared)):
        where = plan["models"][name]
        settings = generation_settings(where, sets, cfg)
        done = generation_done(out, name, settings, n_rows)
        judge_left = name == shared and judge_todo(out, plan, cfg)
        scoring_left = name == teacher and bool(own_answers.todo(out, plan, cfg))
        if done and not judge_left and not scoring_left:
            log(f"{name}: generations already done (settings match), not regenerated")
            continue
        llm = start_model_engine(where, cfg)
        try:
            if not done:
                log(f"{name}: engine up, generating {n_rows} answers (max_tokens {cfg.eval.max_tokens})")
                save_generations(out, name, where, settings, *generate_sets(llm, sets, cfg))
            if name == teacher:
                own_answers.score_all(llm, out, plan, sets, cfg, log=log)
            if name == shared:
                run_judge(out, plan, cfg, llm, log=log, warn=warn)
        finally:
            stop_engine(llm)
            del llm


def save_generations(out: Path, name: str, where: str, settings: dict, rows: list[dict], timing: dict) -> None:
    files = weight_files(where)
    timing.update({"params": count_params(files), "settings": settings,
                   "size_mb": sum(f.stat().st_size for f in files) / 2**20 if files else None})
    write_jsonl(out / "generations" / f"{name}.jsonl", rows)
    write_json(out / "generations" / f"{name}.timing.json", timing)
    runs = timing["tokens_per_s_runs"]
    log(f"{name}: {timing['answers']} answers; speed {metrics.median(runs):.1f} tok/s (median of {len(runs)} runs, "
        f"{min(runs):.1f}-{max(runs):.1f}), ttft {metrics.median(timing['ttft_samples_s']):.3f} s")


def judge_remaining(out: Path, plan: dict, cfg: Config) -> None:
    """Pairs left for a judge with its own engine or an endpoint (one that could not share a generation engine)."""
    if not plan["judge"]["enabled"] or shared_judge_model(plan, cfg) or not judge_todo(out, plan, cfg):
        return
    llm = start_model_engine(plan["judge"]["model"], cfg) if plan["judge"]["backend"] == "vllm" else None
    try:
        run_judge(out, plan, cfg, llm, log=log, warn=warn)
    finally:
        stop_engine(llm)
        del llm


# ---- 3. teacher-forced metrics on the held-out teacher shards (in-process torch; no engine alive) --------------


def tokenizer_problem(where: str, folder: Path, manifest: dict, cfg: Config) -> str | None:
    """Why the shards' token ids would mean something else to this model (train's rule), or None if they agree."""
    from distill.checks import check_tokenizer

    try:
        check_tokenizer(folder, manifest, load_tokenizer(where, "model", trusts_remote_code(where, cfg)))
    except DistillError as e:
        return str(e)
    return None


def score_teacher_forced(out: Path, plan: dict, heldout: Path, cfg: Config) -> None:
    """Per model: KL to the teacher (top-k + tail, and full-vocabulary when the teacher loads), NLL and top-1
    agreement on the held-out teacher shards; reverse KL and the teacher's logprob on its own answers. A model that
    cannot be scored is reported as skipped with the reason, and keeps its other metrics."""
    from distill.losses import HELDOUT_KL, OWN_ANSWER_KL

    try:
        manifest = sh.open_shard_set(heldout)
    except DistillError as err:
        warn(f"teacher-forced metrics skipped for every model: {err}")
        for name in plan["models"]:
            plan["skipped"].setdefault(name, f"teacher-forced metrics skipped: {err}")
        return
    reference = LazyReference(plan, cfg)
    for name, where in sorted(plan["models"].items(), key=lambda m: m[0] != plan["teacher"]):  # teacher first
        try:
            problem = tokenizer_problem(where, heldout, manifest, cfg)
            if problem:
                raise DistillError(problem)
            agg = score_one(out, name, where, heldout, HELDOUT_KL, reference, cfg)
            full = f", full vocabulary {agg['kl_full']:.4f}" if agg.get("kl_full") is not None else ""
            log(f"{name}: held-out KL {agg['kl']:.4f} nats/token (top-k + tail{full}), top-1 agreement "
                f"{agg['top1']:.3f}")
            if own_answers.done(out, name, where, cfg):
                agg = score_one(out, f"{name}.own", where, own_answers.folder(out, name), OWN_ANSWER_KL, None, cfg)
                log(f"{name}: own answers: reverse KL {agg['kl']:.4f}, teacher logprob {agg['teacher_logprob']:.3f}")
        except DistillError as err:  # a model the loss path cannot score: report it, keep the other metrics
            plan["skipped"][name] = f"teacher-forced metrics skipped: {err}"
            warn(f"{name}: {plan['skipped'][name]}")


class LazyReference:
    """The teacher's full distribution for the full-vocabulary KL, loaded on first use; none when eval.full_vocab_kl
    is off or the teacher is not a model this process can load (a remote teacher)."""

    def __init__(self, plan: dict, cfg: Config):
        usable = cfg.eval.full_vocab_kl and plan["teacher"] and cfg.teacher.backend == "vllm"
        self.where = plan["models"][plan["teacher"]] if usable else None
        self.reference = None

    def identity(self) -> str | None:
        return model_identity(self.where) if self.where else None

    def get(self):
        from distill.scoring import TeacherReference, load_scoring_model

        if self.where and self.reference is None:
            self.reference = TeacherReference(load_scoring_model(self.where))
        return self.reference


def score_one(out: Path, key: str, where: str, shards: Path, spec, reference: LazyReference | None,
              cfg: Config) -> dict:
    """Score one model on one shard set into teacher_forced/<key>.jsonl, unless done with the same settings."""
    from distill.scoring import evaluate_on_shards

    manifest = sh.open_shard_set(shards)
    settings = {"model": model_identity(where), "shards": [e["sha256"] for e in manifest["shards"]],
                "spec": spec.__dict__, "max_seq_len": cfg.train.max_seq_len,
                "full_vocab_reference": reference.identity() if reference else None}
    rows_path, meta_path = out / "teacher_forced" / f"{key}.jsonl", out / "teacher_forced" / f"{key}.json"
    if read_json(meta_path) == settings and rows_path.is_file():
        return metrics.aggregate_teacher_forced(read_jsonl(rows_path))
    ref = reference.get() if reference else None
    # The teacher scored against itself: its reference copy is the model (one forward pass, not two).
    model = ref.lm if ref is not None and where == reference.where else where
    records = evaluate_on_shards(model, shards, spec, cfg.train.max_seq_len, cfg.train.chunk_rows, reference=ref)
    write_jsonl(rows_path, records)
    write_json(meta_path, settings)
    return metrics.aggregate_teacher_forced(records)
