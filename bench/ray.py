"""Bench generate.executor=ray against the single-process path: `bash bench/ray.sh`.

On the default teacher and the generate bench's 64 prompts (max_tokens 128, temperature 1, k=20, shards of 16 =
four units): (a) the local executor (one engine in this process, as `distill generate` runs it), (b) a local Ray
instance using one worker, (c) the same with two workers, each engine bound to its own core. Engines and Ray are
started once, before the timings; each timed run is a whole `generate` of the corpus into a fresh folder (records,
shard writes, manifest writes, and for Ray the driver's checks), the three interleaved, REPEATS times, medians
compared. The runs must also write the same bytes (per-record seeds). Writes bench/results/ray.json and the ray
section of bench/README.md.
"""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# This file is named ray.py: its folder must not be on the import path, or `import ray` would find this file, here
# and in Ray's workers (they get the driver's sys.path).
sys.path[:] = [p for p in sys.path if Path(p or os.getcwd()).resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO / "tests"))  # tests/configs.py
sys.path.insert(1, str(REPO))  # bench.sections
RESULT = REPO / "bench" / "results" / "ray.json"
MAX_TOKENS, K, SHARD_SIZE, REPEATS = 128, 20, 16, int(os.environ.get("BENCH_REPEATS", "3"))
VARIANTS = ("local", "ray1", "ray2")


def generate_bench():
    """bench/generate.py (its prompts and machine description), loaded by path: `generate` is the stage's folder."""
    spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_pool(ray_executor, cfg):
    """A local Ray instance with two started workers, as generate.executor=ray makes them."""
    ray = ray_executor.connect(cfg)
    spec = ray_executor.worker_spec(cfg, ray)
    pool = ray_executor.Pool(ray, cfg, spec)
    for _ in range(2):
        pool.add()
    while len(pool.idle) < 2:
        pool.next_event()
    return ray, pool


def timed_run(variant: str, cfg, backend, pool) -> tuple[int, float, dict]:
    """One whole generation of the corpus; returns (tokens, seconds, shard bytes by file name)."""
    from distill.generate import ray_executor
    from distill.generate.run import plan, run_job, teacher_tokenizer

    tokenizer = teacher_tokenizer(cfg)
    jobs = plan(cfg, tokenizer, batch_invariant=True)
    start = time.perf_counter()
    if variant == "local":
        run_job(jobs[0], backend, tokenizer, cfg)
    else:
        keep = 1 if variant == "ray1" else 2
        spare, pool.idle = pool.idle[keep:], pool.idle[:keep]  # ray1: the other worker sits this one out
        try:
            ray_executor.generate_units(pool, jobs, cfg)
        finally:
            pool.idle += spare
    seconds = time.perf_counter() - start
    folder = jobs[0].folder
    return jobs[0].manifest["counts"]["tokens"], seconds, {p.name: p.read_bytes() for p in folder.glob("shard-*")}


def write_readme(result: dict) -> None:
    from bench.sections import replace_section

    m, r = result["machine"], result["runs"]
    replace_section("ray", "\n".join([
        "## ray: generation on a Ray pool vs one process (`bash bench/ray.sh`)",
        "",
        f"Default teacher, {result['prompts']} prompts, max_tokens {MAX_TOKENS}, temperature 1, k={K}, shards of "
        f"{SHARD_SIZE} prompts ({result['units']} units); engines and Ray started before timing; medians of "
        f"{REPEATS} interleaved runs; {m['cpu']}, {m['cores']} cores, torch {m['torch']}, vllm {m['vllm']}, "
        f"ray {result['ray_version']}. `{result['command']}`, commit {result['commit']}.",
        "",
        "| measure | value | goal |",
        "|---|---|---|",
        f"| single process (local executor) | {r['local_tok_s']:.1f} tok/s | |",
        f"| Ray, 1 worker | {r['ray1_tok_s']:.1f} tok/s | |",
        f"| Ray, 2 workers (one core each) | {r['ray2_tok_s']:.1f} tok/s | |",
        f"| Ray 1 worker / single process | {result['ratio_ray1_vs_local']:.3f} | >= 0.95 |",
        f"| Ray 2 workers / 1 worker | {result['ratio_ray2_vs_ray1']:.2f} | |",
        f"| Ray 2 workers / single process | {result['ratio_ray2_vs_local']:.2f} | |",
        f"| same shard bytes in every run | {result['identical_shards']} | True |",
        "",
        result["note"],
    ]))


NOTE = ("Why not 2x with two workers: on this 2-core machine each engine computes on its own core, but both "
        "engines' schedulers, the workers' own work (detokenising, building records, zstd) and the driver share the "
        "same two cores, and the machine is shared with other jobs. On GPU nodes each worker has its own GPU and the "
        "CPUs it asks for, so the pool scales with workers until the driver or the storage limits it (docs/capacity.md). "
        "Shards of 16 prompts make smaller engine batches than the generate bench's 64, hence its higher tok/s.")


def bench(work: Path, teacher: str) -> dict:
    from configs import generate_config
    from distill import logs
    from distill.generate import ray_executor
    from distill.generate.backends import VllmBackend

    def cfg(name):
        return generate_config(teacher, work / "prompts.jsonl", work / name, "generate.temperature=1.0",
                               "generate.overwrite=true", "generate.executor=ray", k=K, max_tokens=MAX_TOKENS,
                               shard_size=SHARD_SIZE)

    logs.route_library_logs(work, "bench", announce=True)
    runs, shards = {v: [] for v in VARIANTS}, {}
    backend = VllmBackend(cfg("warm"))
    try:
        ray, pool = start_pool(ray_executor, cfg("warm"))
        for rep in range(REPEATS):  # interleaved, so background load on a shared machine hits all alike
            for variant in VARIANTS:
                tokens, seconds, files = timed_run(variant, cfg(f"{variant}{rep}"), backend, pool)
                runs[variant].append((tokens, seconds))
                shards[f"{variant}{rep}"] = files
                print(f"[bench] rep {rep} {variant}: {tokens / seconds:.1f} tok/s ({tokens} tokens, {seconds:.1f} s)",
                      flush=True)
        pool.close()
        ray.shutdown()
    finally:
        backend.close()
    return {"runs": runs, "identical": all(files == shards["local0"] for files in shards.values()),
            "ray_version": ray.__version__}


def main() -> None:
    gb = generate_bench()
    teacher = os.environ.get("BENCH_TEACHER", str(REPO / "models" / "smollm2-135m-instruct"))
    prompts, source = gb.bench_prompts()
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    gb.write_corpus(prompts, work / "prompts.jsonl")
    out = bench(work, teacher)
    rate = {v: statistics.median(t / s for t, s in out["runs"][v]) for v in VARIANTS}
    result = {
        "ratio_ray1_vs_local": rate["ray1"] / rate["local"],
        "ratio_ray2_vs_ray1": rate["ray2"] / rate["ray1"],
        "ratio_ray2_vs_local": rate["ray2"] / rate["local"],
        "identical_shards": out["identical"],
        "prompts": len(prompts), "prompt_source": source, "units": -(-len(prompts) // SHARD_SIZE),
        "max_tokens": MAX_TOKENS, "k": K, "shard_size": SHARD_SIZE, "repeats": REPEATS,
        "runs": {**{f"{v}_tok_s": rate[v] for v in VARIANTS},
                 "raw": {v: [[t, round(s, 3)] for t, s in out["runs"][v]] for v in VARIANTS}},
        "ray_version": out["ray_version"], "machine": gb.machine(), "note": NOTE,
        **gb.provenance("ray"),
    }
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    write_readme(result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "machine", "note")}, indent=2))


if __name__ == "__main__":  # the guard matters: vLLM spawns worker processes that import this module
    main()
