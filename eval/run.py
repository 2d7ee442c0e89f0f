"""The eval stage, top to bottom: which models, which prompts, generate, teacher-forced metrics, judge, report.

Everything a number in the report comes from is saved under run/eval/ first, so `python -m eval.report` can
rebuild the report without running a model:
    run.json                       the plan: models, prompt sets, overlap, skipped models and why, settings
    generations/<model>.jsonl      one row per prompt;  generations/<model>.timing.json: speed, size, settings
    teacher_forced/<model>.jsonl   one row per held-out shard record; teacher_forced/<model>.json: settings
    judge/<a>_vs_<b>.jsonl         one row per prompt (both orders);  judge/<a>_vs_<b>.json: settings
A model whose saved files match the current settings is not run again, so an interrupted eval resumes.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from distill import shards as sh
from distill.config import Config, run_paths, to_dict
from distill.errors import DistillError
from distill.prompts import load_prompts, prompt_hash
from eval import metrics
from eval.checks import validate_check
from eval.report import build_report

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache on CPU; the scripts set it too

OPTIONAL_DEFAULTS = ("student_init", "student_sft")  # skipped with a reason when the run has none
# Files train/ writes last into a default model folder: without them the folder is still being written.
DONE_MARKERS = {"student": "train_summary.json", "student_sft": "train_summary.json", "student_init": "student_init.json"}
TTFT_REQUESTS = 5  # single-prompt requests timed for time-to-first-token (median reported)
JUDGE_ANSWER_CHARS = 4000  # longer answers are cut before they go into the judge prompt
JUDGE_BACKOFF_S = 0.5  # first retry delay for an OpenAI-compatible judge; doubles on each retry
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")

JUDGE_TEMPLATE = """You are comparing two answers to the same user request. Judge helpfulness, correctness and
how well each answer follows the request. Ignore answer length unless it hurts the answer.

[User request]
{prompt}

[Answer A]
{a}

[Answer B]
{b}

Which answer is better? Reply with exactly one word: A, B, or tie."""


def log(msg: str) -> None:
    print(f"[eval] {msg}", flush=True)


def warn(msg: str) -> None:
    print(f"[eval] warning: {msg}", file=sys.stderr, flush=True)


def write_json(path: Path, obj) -> None:
    sh.atomic_write(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def write_jsonl(path: Path, rows: list[dict]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    sh.atomic_write(path, text.encode("utf-8"))


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


# ---- 1. models ------------------------------------------------------------------------------------------------


def is_hub_id(where: str) -> bool:
    """Same rule as generate: not an existing path and shaped like owner/name."""
    return not Path(where).exists() and not where.startswith((".", "/", "~")) and where.count("/") == 1


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
              "student_init": str(paths.student_init), "student_sft": str(paths.model("student_sft"))}
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


# ---- 2. held-out prompt sets ----------------------------------------------------------------------------------


def set_name(source: str, taken: set[str]) -> str:
    path = Path(source)
    base = path.stem if path.suffix else (path.name if path.exists() else source.replace("/", "_"))
    name, i = base, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def load_sets(cfg: Config) -> dict[str, list]:
    if not cfg.eval.prompts:
        raise DistillError("eval.prompts: list at least one held-out prompt set")
    sets = {}
    for source in cfg.eval.prompts:
        prompts, _ = load_prompts(source, cfg.generate.columns, cfg.generate.split, cfg.eval.max_prompts)
        if not prompts:
            raise DistillError(f"{source}: the held-out set holds no prompts (check eval.max_prompts)")
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


# ---- 3. free generation through vLLM --------------------------------------------------------------------------


def trusts_remote_code(where: str, cfg: Config) -> bool:
    """teacher.trust_remote_code covers the teacher; student.trust_remote_code every other model eval loads."""
    if where == cfg.teacher.model:
        return cfg.teacher.trust_remote_code
    return cfg.student.trust_remote_code


def start_engine(where: str, cfg: Config):
    from vllm import LLM

    from distill.config import resolve_dtype

    t = cfg.teacher
    try:
        return LLM(model=where, dtype=resolve_dtype(t.dtype), max_model_len=t.max_model_len,
                   enforce_eager=t.enforce_eager, trust_remote_code=trusts_remote_code(where, cfg), seed=cfg.run.seed)
    except Exception as e:  # vLLM raises many kinds, with long messages
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise DistillError(f"{where}: vLLM engine failed to start ({type(e).__name__}: {first})") from None


def stop_engine(llm) -> None:
    """Shut the engine core process down; the caller then drops its reference (del llm; gc.collect())."""
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()
    try:
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        cleanup_dist_env_and_memory()
    except Exception:  # best effort: nothing to clean when no distributed state was made
        pass


def chat_ids(tokenizer, messages_list: list[list[dict]]) -> list[list[int]]:
    """Each model's own chat template, as generate does it (the template adds the special tokens)."""
    texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in messages_list]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def items_of(sets: dict[str, list]) -> list[tuple[str, object]]:
    return [(name, p) for name, prompts in sets.items() for p in prompts]


def model_identity(where: str) -> str:
    """The weights' sha256 for a folder (so a moved run still resumes), the hub id otherwise."""
    return sh.weights_fingerprint(where) or where


def generation_settings(where: str, sets: dict[str, list], cfg: Config) -> dict:
    e = cfg.eval
    return {
        "model": model_identity(where),
        "dtype": cfg.teacher.dtype,
        "max_model_len": cfg.teacher.max_model_len,
        "temperature": e.temperature,
        "max_tokens": e.max_tokens,
        "seed": cfg.run.seed,
        "prompts": digest([[name, p.id, prompt_hash(p.messages)] for name, p in items_of(sets)]),
    }


def generation_done(out: Path, name: str, settings: dict, n_rows: int) -> bool:
    timing = read_json(out / "generations" / f"{name}.timing.json")
    gen_file = out / "generations" / f"{name}.jsonl"
    if not timing or timing.get("settings") != settings or not gen_file.is_file():
        return False
    return sum(1 for line in gen_file.open(encoding="utf-8") if line.strip()) == n_rows


def weight_files(where: str) -> list[Path]:
    folder = Path(where)
    if not folder.is_dir():  # hub id: the files vLLM just downloaded
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(where, local_files_only=True))
        except Exception:
            return []
    return sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)


def count_params(files: list[Path]) -> int | None:
    """Parameters from the safetensors headers (no weights loaded); None for other formats."""
    import struct

    total, seen = 0, False
    for f in files:
        if f.suffix != ".safetensors":
            continue
        with open(f, "rb") as fh:
            header = json.loads(fh.read(struct.unpack("<Q", fh.read(8))[0]))
        for key, info in header.items():
            if key != "__metadata__":
                n = 1
                for d in info["shape"]:
                    n *= d
                total += n
                seen = True
    return total if seen else None


def generate_sets(llm, sets: dict[str, list], cfg: Config) -> tuple[list[dict], dict]:
    """Generate every prompt of every set in one batch; time it; then time a few single-prompt requests."""
    from vllm import SamplingParams

    e, max_len = cfg.eval, cfg.teacher.max_model_len
    tokenizer = llm.get_tokenizer()
    items = items_of(sets)
    ids = chat_ids(tokenizer, [p.messages for _, p in items])
    fits = [i for i, x in enumerate(ids) if len(x) < max_len]  # a prompt that fills the context gets no answer
    params = [SamplingParams(temperature=e.temperature, max_tokens=min(e.max_tokens, max_len - len(ids[i])))
              for i in fits]
    llm.generate([{"prompt_token_ids": ids[fits[0]]}], SamplingParams(max_tokens=2), use_tqdm=False)  # warm up
    start = time.perf_counter()
    outs = llm.generate([{"prompt_token_ids": ids[i]} for i in fits], params, use_tqdm=False)
    seconds = time.perf_counter() - start
    by_index = {i: out.outputs[0] for i, out in zip(fits, outs)}

    ttft = []
    for i in fits[:TTFT_REQUESTS]:
        t0 = time.perf_counter()
        llm.generate([{"prompt_token_ids": ids[i]}], SamplingParams(temperature=0.0, max_tokens=1), use_tqdm=False)
        ttft.append(time.perf_counter() - t0)

    rows = []
    for i, (name, p) in enumerate(items):
        c = by_index.get(i)
        rows.append({
            "set": name, "prompt_id": p.id, "category": p.meta.get("category"), "check": p.meta.get("check"),
            "prompt": p.messages[-1]["content"],
            "response": c.text if c else "",
            "response_token_count": len(c.token_ids) if c else 0,
            "finish_reason": (c.finish_reason or "length") if c else "too_long",
            "prompt_token_count": len(ids[i]),
        })
    tokens = sum(r["response_token_count"] for r in rows)
    return rows, {"tokens": tokens, "seconds": seconds, "prompts": len(fits), "too_long": len(items) - len(fits),
                  "ttft_samples_s": ttft}


# ---- 4. teacher-forced metrics on the held-out teacher shards -------------------------------------------------


def tokenizer_problem(where: str, folder: Path, manifest: dict, cfg: Config) -> str | None:
    """Why the shards' token ids would mean something else to this model (train's rule), or None if they agree."""
    from transformers import AutoTokenizer

    from train.checks import check_tokenizer

    try:
        tok = AutoTokenizer.from_pretrained(where, trust_remote_code=trusts_remote_code(where, cfg))
    except (OSError, ValueError) as e:
        return f"cannot load its tokenizer ({str(e).splitlines()[0]})"
    try:
        check_tokenizer(folder, manifest, tok)
    except DistillError as e:
        return str(e)
    return None


def teacher_forced_settings(where: str, manifest: dict, spec, cfg: Config) -> dict:
    return {"model": model_identity(where),
            "shards": [e["sha256"] for e in manifest["shards"]], "spec": spec.__dict__,
            "max_seq_len": cfg.train.max_seq_len}


# ---- 5. pairwise judge ----------------------------------------------------------------------------------------


def judge_prompt(row_a: dict, row_b: dict) -> str:
    cut = JUDGE_ANSWER_CHARS
    return JUDGE_TEMPLATE.format(prompt=row_a["prompt"], a=row_a["response"][:cut], b=row_b["response"][:cut])


def judge_requests(gen_a: list[dict], gen_b: list[dict]) -> list[tuple[dict, str, str]]:
    """Per prompt answered by both: (row, text with a as A, text with b as A)."""
    b_by_key = {(r["set"], r["prompt_id"]): r for r in gen_b}
    out = []
    for ra in gen_a:
        rb = b_by_key.get((ra["set"], ra["prompt_id"]))
        if rb is not None:
            out.append((ra, judge_prompt(ra, rb), judge_prompt(rb, ra)))
    return out


def judge_rows(requests: list, answers: list[tuple[str | None, str | None]], errors: list[str | None]) -> list[dict]:
    rows = []
    for (ra, _, _), (ans1, ans2), err in zip(requests, answers, errors):
        row = {"set": ra["set"], "prompt_id": ra["prompt_id"]}
        if err:
            row["error"] = err
        else:
            v1, v2 = metrics.parse_verdict(ans1), metrics.parse_verdict(ans2)
            row.update({"answer_ab": ans1, "answer_ba": ans2, "verdict_ab": v1, "verdict_ba": v2,
                        "outcome": metrics.pair_outcome(v1, v2)})
        rows.append(row)
    return rows


def judge_with_vllm(llm, requests: list, cfg: Config) -> list[tuple[str, str]]:
    from vllm import SamplingParams

    tokenizer = llm.get_tokenizer()
    texts = [t for _, ab, ba in requests for t in (ab, ba)]
    ids = chat_ids(tokenizer, [[{"role": "user", "content": t}] for t in texts])
    room = cfg.teacher.max_model_len - cfg.eval.judge.max_tokens
    fits = [i for i, x in enumerate(ids) if len(x) <= room]
    params = SamplingParams(temperature=0.0, max_tokens=cfg.eval.judge.max_tokens)
    outs = llm.generate([{"prompt_token_ids": ids[i]} for i in fits], params, use_tqdm=False)
    text = {i: o.outputs[0].text for i, o in zip(fits, outs)}
    return [(text.get(2 * j), text.get(2 * j + 1)) for j in range(len(requests))]  # too long -> None -> tie


def judge_with_openai(client, model: str, requests: list, cfg: Config) -> tuple[list, list, str | None]:
    """Ask the endpoint; on a connection problem retry with exponential backoff, then give up on the pair."""
    import openai

    j = cfg.eval.judge
    retryable = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                 openai.InternalServerError)

    def ask(text: str) -> str:
        for attempt in range(j.max_retries + 1):
            try:
                resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}],
                                                      temperature=0.0, max_tokens=j.max_tokens)
                return resp.choices[0].message.content or ""
            except retryable:
                if attempt == j.max_retries:
                    raise
                time.sleep(JUDGE_BACKOFF_S * 2 ** attempt)

    answers, errors = [], []
    for _, ab, ba in requests:
        try:
            answers.append((ask(ab), ask(ba)))
            errors.append(None)
        except openai.OpenAIError as e:
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            if client.api_key and client.api_key != "EMPTY":  # a server may echo the key; it must not reach a file
                reason = reason.replace(client.api_key, "***")
            if isinstance(e, retryable):  # the endpoint is down: the rest of the pair would fail the same way
                return [], [], f"endpoint did not answer after {j.max_retries} retries ({reason})"
            answers.append((None, None))
            errors.append(reason)
    return answers, errors, None


def judge_todo(out: Path, plan: dict, cfg: Config) -> list[tuple[str, list[Path], dict]]:
    """Pairs whose judge file is missing or stale: (key, generation files, settings). Unjudgeable pairs -> missing."""
    judge, todo = plan["judge"], []
    for a, b in judge["pairs"]:
        key = f"{a}_vs_{b}"
        absent = [m for m in (a, b) if m not in plan["models"]]
        if absent:
            judge["missing"][key] = f"{', '.join(absent)} not evaluated"
            continue
        gens = [out / "generations" / f"{m}.jsonl" for m in (a, b)]
        if not all(g.is_file() for g in gens):
            continue  # not generated yet (the shared judge engine asks again once they are)
        settings = {"judge": judge["model"], "backend": judge["backend"], "base_url": judge["base_url"],
                    "max_tokens": cfg.eval.judge.max_tokens, "template": digest(JUDGE_TEMPLATE),
                    "generations": [sh.sha256_file(g) for g in gens]}
        if read_json(out / "judge" / f"{key}.json") == settings and (out / "judge" / f"{key}.jsonl").is_file():
            continue
        todo.append((key, gens, settings))
    return todo


def run_judge(out: Path, plan: dict, cfg: Config, llm=None) -> None:
    """Judge every pair in judge_todo; a pair the endpoint never answers is recorded in run.json as missing."""
    judge = plan["judge"]
    client = None
    for key, gens, settings in judge_todo(out, plan, cfg):
        requests = judge_requests(*[read_jsonl(g) for g in gens])
        if judge["backend"] == "vllm":
            answers, errors, failure = judge_with_vllm(llm, requests, cfg), [None] * len(requests), None
        else:
            if client is None:
                from openai import OpenAI

                # The key goes to the client only: never stored, printed or written to a file.
                client = OpenAI(base_url=judge["base_url"], api_key=os.environ.get(cfg.eval.judge.api_key_env) or "EMPTY",
                                max_retries=0, timeout=cfg.teacher.request_timeout_s)
            answers, errors, failure = judge_with_openai(client, judge["model"], requests, cfg)
        if failure:
            warn(f"judge {key}: {failure}; the pair is reported missing")
            judge["missing"][key] = failure
            for stale in (out / "judge" / f"{key}.jsonl", out / "judge" / f"{key}.json"):
                stale.unlink(missing_ok=True)  # an older verdict on other settings must not reach the report
            continue
        write_jsonl(out / "judge" / f"{key}.jsonl", judge_rows(requests, answers, errors))
        write_json(out / "judge" / f"{key}.json", settings)
        log(f"judge {key}: {len(requests)} prompts judged in both orders")
    if client is not None:
        client.close()


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


# ---- the recipe -----------------------------------------------------------------------------------------------


def run(cfg: Config) -> Path:
    paths = run_paths(cfg)
    out = paths.eval_dir
    e, j = cfg.eval, cfg.eval.judge

    # 1. models and 2. prompt sets: every user error surfaces here, before any engine starts.
    models, skipped = resolve_models(cfg)
    for name, reason in skipped.items():
        log(f"{name}: {reason}")
    sets = load_sets(cfg)
    overlap = overlap_counts(sets, paths.shards("train"))
    judge_model = j.model or cfg.teacher.model
    if j.enabled and j.backend == "openai" and not j.base_url:
        raise DistillError("eval.judge.base_url: required for eval.judge.backend=openai (e.g. http://127.0.0.1:8000/v1)")
    for sub in ("generations", "teacher_forced", "judge"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    plan = {
        "models": models,
        "teacher": "teacher" if "teacher" in models else None,
        "sets": {name: {"source": src, "prompts": len(ps)} for (name, ps), src in zip(sets.items(), e.prompts)},
        "overlap": overlap,
        "skipped": skipped,
        "settings": {"temperature": e.temperature, "max_tokens": e.max_tokens, "max_prompts": e.max_prompts,
                     "seed": cfg.run.seed, "dtype": cfg.teacher.dtype},
        "n_examples": e.n_examples,
        "judge": {"enabled": j.enabled, "backend": j.backend, "model": judge_model, "base_url": j.base_url,
                  "pairs": [list(p) for p in j.pairs] if j.enabled else [], "missing": {},
                  "ci": "Wilson score interval, 95%, ties counted as half a win"},
        "config": to_dict(cfg),
    }
    write_json(out / "run.json", plan)
    n_rows = sum(len(ps) for ps in sets.values())
    log(f"{len(models)} models ({', '.join(models)}), {len(sets)} held-out sets, {n_rows} prompts -> {out}")

    # 3. free generation, one engine at a time. The judge model's engine goes last so it can also judge.
    shared_judge = j.enabled and j.backend == "vllm" and next((m for m, w in models.items() if w == judge_model), None)
    order = sorted(models, key=lambda m: m == shared_judge)
    for name in order:
        where = models[name]
        settings = generation_settings(where, sets, cfg)
        done = generation_done(out, name, settings, n_rows)
        if done and not (name == shared_judge and judge_todo(out, plan, cfg)):
            log(f"{name}: generations already done (settings match), not regenerated")
            continue
        llm = start_engine(where, cfg)
        try:
            if not done:
                log(f"{name}: engine up, generating {n_rows} answers (max_tokens {cfg.eval.max_tokens})")
                rows, timing = generate_sets(llm, sets, cfg)
                files = weight_files(where)
                timing.update({"tokens_per_s": timing["tokens"] / max(timing["seconds"], 1e-9),
                               "ttft_s": metrics.median(timing["ttft_samples_s"]),
                               "params": count_params(files),
                               "size_mb": sum(f.stat().st_size for f in files) / 2**20 if files else None,
                               "settings": settings})
                write_jsonl(out / "generations" / f"{name}.jsonl", rows)
                write_json(out / "generations" / f"{name}.timing.json", timing)
                log(f"{name}: {timing['tokens']} tokens in {timing['seconds']:.1f} s "
                    f"({timing['tokens_per_s']:.1f} tok/s), ttft {timing['ttft_s']:.3f} s")
            if name == shared_judge:
                run_judge(out, plan, cfg, llm)
        finally:
            stop_engine(llm)
            del llm
            gc.collect()

    # 5. judge with its own engine or an endpoint, when it could not share a generation engine.
    if j.enabled and not shared_judge and judge_todo(out, plan, cfg):
        llm = start_engine(judge_model, cfg) if j.backend == "vllm" else None
        try:
            run_judge(out, plan, cfg, llm)
        finally:
            if llm is not None:
                stop_engine(llm)
                del llm
                gc.collect()

    # 4. teacher-forced metrics (in-process torch; no engine is alive any more).
    heldout = paths.shards("heldout")
    try:
        manifest, no_shards = sh.open_shard_set(heldout), None
    except DistillError as err:
        manifest, no_shards = None, str(err)
        warn(f"teacher-forced metrics skipped for every model: {no_shards}")
    if manifest is not None:
        from train.losses import KDSpec
        from train.teacher_forced import evaluate_on_shards

        spec = KDSpec(kind="forward_kl", temperature=1.0, tail="bucket")

        def skip(name: str, problem: str) -> None:
            plan["skipped"][name] = f"teacher-forced metrics skipped: {problem}"
            warn(f"{name}: {plan['skipped'][name]}")

        for name, where in models.items():
            problem = tokenizer_problem(where, heldout, manifest, cfg)
            if problem:
                skip(name, problem)
                continue
            settings = teacher_forced_settings(where, manifest, spec, cfg)
            meta_path = out / "teacher_forced" / f"{name}.json"
            if read_json(meta_path) == settings and (out / "teacher_forced" / f"{name}.jsonl").is_file():
                log(f"{name}: teacher-forced metrics already done")
                continue
            try:
                records = evaluate_on_shards(where, heldout, spec, cfg.train.max_seq_len, cfg.train.chunk_rows)
            except DistillError as err:  # a model the loss path cannot score: report it, keep the other metrics
                skip(name, str(err))
                continue
            records = [{k: v.item() if hasattr(v, "item") else v for k, v in r.items()} for r in records]
            write_jsonl(out / "teacher_forced" / f"{name}.jsonl", list(records))
            write_json(meta_path, settings)
            agg = metrics.aggregate_teacher_forced(records)
            log(f"{name}: held-out KL {agg['kl']:.4f} nats/token, top-1 agreement {agg['top1']:.3f}")
    if manifest is None:
        for name in models:
            plan["skipped"].setdefault(name, f"teacher-forced metrics skipped: {no_shards}")
    write_json(out / "run.json", plan)

    # 6. the report: every number recomputed from the files written above.
    _, headline = build_report(out)
    print(headline)
    log(f"report: {out / 'report.md'}")
    return out
