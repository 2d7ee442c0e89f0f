"""Free generation through vLLM for eval: every held-out prompt in one batch per model, timed.

Files: generations/<model>.jsonl (one row per prompt) and generations/<model>.timing.json (speed, size and the
settings they were made with; a model whose files match the current settings is not run again).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from distill.config import Config, resolve_dtype
from distill.engine import start_engine
from distill.files import digest, read_json
from distill.models import chat_ids, weights_fingerprint
from distill.prompts import prompt_hash



def trusts_remote_code(where: str, cfg: Config) -> bool:
    """teacher.trust_remote_code covers the teacher; student.trust_remote_code every other model eval loads."""
    if where == cfg.teacher.model:
        return cfg.teacher.trust_remote_code
    return cfg.student.trust_remote_code


def start_model_engine(where: str, cfg: Config):
    # No prefix cache: the timed runs repeat the same prompts, and a cache hit would time only the decoding.
    t = cfg.teacher
    return start_engine(where, "model", dtype=resolve_dtype(t.dtype), max_model_len=t.max_model_len,
                        enforce_eager=t.enforce_eager, trust_remote_code=trusts_remote_code(where, cfg),
                        seed=cfg.run.seed, gpu_memory_utilization=t.gpu_memory_utilization,
                        enable_prefix_caching=False, max_logprobs=max(cfg.generate.k, 20))


def items_of(sets: dict[str, list]) -> list[tuple[str, object]]:
    return [(name, p) for name, prompts in sets.items() for p in prompts]


def model_identity(where: str) -> str:
    """The weights' sha256 for a folder (so a moved run still resumes), the hub id otherwise."""
    return weights_fingerprint(where) or where


def generation_settings(where: str, sets: dict[str, list], cfg: Config) -> dict:
    e = cfg.eval
    return {
        "model": model_identity(where),
        "dtype": cfg.teacher.dtype,
        "max_model_len": cfg.teacher.max_model_len,
        "temperature": e.temperature,
        "repetition_penalty": e.repetition_penalty,
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


def generate_sets(llm, sets: dict[str, list], cfg: Config) -> tuple[list[dict], dict]:
    """Every prompt of every set in one batch (the answers the report scores), then the timed speed runs."""
    from vllm import SamplingParams

    e, max_len = cfg.eval, cfg.teacher.max_model_len
    items = items_of(sets)
    ids = chat_ids(llm.get_tokenizer(), [p.messages for _, p in items])
    fits = [i for i, x in enumerate(ids) if len(x) < max_len]  # a prompt that fills the context gets no answer
    params = [SamplingParams(temperature=e.temperature, repetition_penalty=e.repetition_penalty,
                             max_tokens=min(e.max_tokens, max_len - len(ids[i]))) for i in fits]
    outs = llm.generate([{"prompt_token_ids": ids[i]} for i in fits], params, use_tqdm=False)
    by_index = {i: out.outputs[0] for i, out in zip(fits, outs)}
    rows = []
    for i, (name, p) in enumerate(items):
        c = by_index.get(i)
        rows.append({
            "set": name, "prompt_id": p.id, "category": p.meta.get("category"), "check": p.meta.get("check"),
            "reference": p.meta.get("reference"), "prompt": p.messages[-1]["content"],
            "response": c.text if c else "",
            "response_token_count": len(c.token_ids) if c else 0,
            "response_token_ids": list(c.token_ids) if c else [],
            "finish_reason": (c.finish_reason or "length") if c else "too_long",
            "prompt_token_count": len(ids[i]),
        })
    speed_ids = [ids[i] for i in fits if len(ids[i]) + e.max_tokens <= max_len][: e.speed_prompts]
    return rows, {"answers": len(fits), "too_long": len(items) - len(fits), **time_speed(llm, speed_ids, cfg)}


def time_speed(llm, ids: list[list[int]], cfg: Config) -> dict:
    """eval.speed_runs timed runs of the same work: the same prompts, each generating exactly eval.max_tokens tokens
    (end of sequence ignored), greedy; then one single-prompt, one-token request per run for the time to the first
    token. Answers of different lengths would make a shorter-spoken model look faster than it is."""
    from vllm import SamplingParams

    e = cfg.eval
    fixed = SamplingParams(temperature=0.0, max_tokens=e.max_tokens, ignore_eos=True)
    batch = [{"prompt_token_ids": x} for x in ids]
    llm.generate(batch[:2], fixed, use_tqdm=False)  # warm-up: first-call allocations are not the model's speed
    runs, ttft = [], []
    for r in range(e.speed_runs):
        start = time.perf_counter()
        outs = llm.generate(batch, fixed, use_tqdm=False)
        runs.append(sum(len(o.outputs[0].token_ids) for o in outs) / (time.perf_counter() - start))
        start = time.perf_counter()
        llm.generate([batch[r % len(batch)]], SamplingParams(temperature=0.0, max_tokens=1), use_tqdm=False)
        ttft.append(time.perf_counter() - start)
    return {"speed_prompts": len(batch), "speed_tokens_per_run": len(batch) * e.max_tokens,
            "tokens_per_s_runs": runs, "ttft_samples_s": ttft, "engine_peak_rss_mb": engine_peak_rss_mb()}


def engine_peak_rss_mb() -> float | None:
    """Peak resident memory of this process's vLLM worker processes (weights, KV cache, activations), from
    /proc/<pid>/status (VmHWM); None where it cannot be read (no /proc, or the engine runs in-process)."""
    import psutil

    peaks = {}
    for child in psutil.Process().children(recursive=True):
        try:
            name, status = child.name(), Path(f"/proc/{child.pid}/status").read_text()
        except (OSError, psutil.Error):
            continue
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        if match and name.startswith("VLLM::"):
            peaks[name] = peaks.get(name, 0) + int(match.group(1))
    worker = sum(v for k, v in peaks.items() if k.startswith("VLLM::Worker")) or peaks.get("VLLM::EngineCor")
    return worker / 1024 if worker else None
