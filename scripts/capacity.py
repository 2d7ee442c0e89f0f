"""Capacity plan for teacher generation (standard library only):

    python scripts/capacity.py --prompts 10000000 --answer-tokens 512 --k 20 --n 1 [--json]

For N prompts with n answers of L tokens and the top-k of every token: the teacher tokens, the bytes on disk, the
GPU-hours, the write rates the shards need, and where the bottleneck sits as Ray workers are added: the engines
(tokens/s), the driver (it verifies every shard and rewrites the manifest once per shard) or the shared storage.

Where each figure comes from is printed next to it:
  measured   bytes per token from bench/results/generate.json (this project's codec, k=20); the driver's manifest
             write and shard verification speeds, timed by this script on this machine (--measure, the default)
  input      what you plan for: --prompts, --answer-tokens, --n, --k, --shard-size, --workers
  ASSUMPTION not measured here (no GPU or cluster storage on this project's machine): --gpu-tok-s and
             --storage-mb-s. Replace them with your own numbers: `bash bench/ray.sh` on one GPU worker gives the
             first, your filesystem's documented or measured sustained write rate the second.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATE_BENCH = ROOT / "bench" / "results" / "generate.json"
RAY_BENCH = ROOT / "bench" / "results" / "ray.json"
MEASURED_K = 20  # the k of bench/results/generate.json
SAMPLED_LOGPROB_BYTES = 4.0  # one float32 per token, whatever k
GPU_TOK_S = 2000.0  # ASSUMPTION: generated tokens/s of one GPU running the teacher with top-k logprobs
STORAGE_MB_S = 500.0  # ASSUMPTION: sustained aggregate write rate of the shared filesystem
WORKERS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
ENTRY = {"file": "shard-00000.jsonl.zst", "index": 0, "records": 128, "tokens": 65536, "bytes": 3500000,
         "sha256": "0" * 64, "skipped": 0}  # one manifest entry, as generate/run.py writes it


@dataclass
class Plan:
    prompts: int
    n: int
    answer_tokens: float
    k: int
    shard_size: int
    gpu_tok_s: float
    gpus_per_worker: int
    storage_mb_s: float
    bytes_per_token: float
    manifest_mb_s: float  # the driver's manifest rewrite speed (JSON encode + write + fsync + rename)
    verify_mb_s: float  # the driver's shard check speed (read + sha256)


def bytes_per_token(k: int, bench: dict) -> float:
    """Whole-shard bytes per generated token: the measured top-k payload scaled to k (linear in k: an ASSUMPTION for
    k != 20), plus the exact sampled logprob, plus the rest of the record (ids, text, prompt) per token as measured.
    The rest holds per-record parts that longer answers spread thinner, so for long answers this errs on the high side."""
    payload = bench["topk_payload_bytes_per_token"]
    rest = bench["bytes_per_token"] - payload - SAMPLED_LOGPROB_BYTES
    return rest + SAMPLED_LOGPROB_BYTES + payload * k / MEASURED_K


def totals(p: Plan) -> dict:
    """Whole-corpus figures, independent of the number of workers."""
    tokens = p.prompts * p.n * p.answer_tokens
    shards = -(-p.prompts // p.shard_size)
    disk = tokens * p.bytes_per_token
    return {
        "teacher_tokens": tokens,
        "records": p.prompts * p.n,
        "shards": shards,
        "disk_bytes": disk,
        "shard_bytes": disk / shards,
        "gpu_hours": tokens / p.gpu_tok_s / 3600,
        "manifest_bytes": shards * entry_bytes(),
    }


def entry_bytes() -> int:
    """Bytes one shard adds to the manifest (indent 2, inside the shards list)."""
    one = json.dumps({"shards": [ENTRY]}, indent=2)
    two = json.dumps({"shards": [ENTRY, ENTRY]}, indent=2)
    return len(two) - len(one)


def driver_seconds_per_shard(p: Plan, t: dict) -> float:
    """The driver's work per finished shard at the end of the run (largest manifest): verify the shard, rewrite the
    manifest. The average over the run is about half the manifest part."""
    return t["shard_bytes"] / (p.verify_mb_s * 1e6) + t["manifest_bytes"] / (p.manifest_mb_s * 1e6)


def scaling(p: Plan, workers: int, t: dict) -> dict:
    """One row: W workers, each on gpus_per_worker GPUs. Loads are demand / capacity; above 1 that part limits."""
    tok_s = workers * p.gpus_per_worker * p.gpu_tok_s
    write = tok_s * p.bytes_per_token
    shards_s = tok_s / (p.shard_size * p.n * p.answer_tokens)
    loads = {"engines": 1.0, "driver": shards_s * driver_seconds_per_shard(p, t), "storage": write / (p.storage_mb_s * 1e6)}
    limit = max(loads, key=loads.get)
    effective = tok_s / max(loads[limit], 1.0)
    return {"workers": workers, "gpus": workers * p.gpus_per_worker, "tok_s": tok_s, "write_mb_s": write / 1e6,
            "per_worker_write_mb_s": write / 1e6 / workers, "shards_per_s": shards_s, "driver_load": loads["driver"],
            "storage_load": loads["storage"], "bottleneck": limit, "wall_hours": t["teacher_tokens"] / effective / 3600}


def crossover(p: Plan, t: dict) -> dict:
    """The worker count at which the driver, then the storage, stop keeping up with the engines."""
    per_worker_tok_s = p.gpus_per_worker * p.gpu_tok_s
    driver = 1 / driver_seconds_per_shard(p, t) * p.shard_size * p.n * p.answer_tokens / per_worker_tok_s
    storage = p.storage_mb_s * 1e6 / (per_worker_tok_s * p.bytes_per_token)
    return {"driver_workers": driver, "storage_workers": storage}


def measure_driver(entries: int = 20000, shard_mb: int = 8) -> tuple[float, float]:
    """MB/s of the driver's two chores on this machine: rewrite a manifest of `entries` shards the way
    distill.files.atomic_write does (temp file, fsync, rename, fsync the folder), and read + sha256 a shard."""
    manifest = {"format": "distill-shards", "shards": [dict(ENTRY, index=i) for i in range(entries)]}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        data = (json.dumps(manifest, indent=2) + "\n").encode()
        path = Path(tmp) / "manifest.json"
        part = Path(tmp) / ".manifest.json.tmp"
        with open(part, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, path)
        folder = os.open(tmp, os.O_RDONLY)
        os.fsync(folder)
        os.close(folder)
        manifest_mb_s = len(data) / 1e6 / (time.perf_counter() - start)
        shard = Path(tmp) / "shard"
        shard.write_bytes(os.urandom(shard_mb << 20))
        start = time.perf_counter()
        hashlib.sha256(shard.read_bytes()).hexdigest()
        verify_mb_s = (shard_mb << 20) / 1e6 / (time.perf_counter() - start)
    return manifest_mb_s, verify_mb_s


def measured_cpu_workers() -> dict | None:
    """bench/ray.py's throughput per Ray worker on this machine (CPU), if it has been run."""
    if not RAY_BENCH.is_file():
        return None
    r = json.loads(RAY_BENCH.read_text())
    return {"one_worker_tok_s": r["runs"]["ray1_tok_s"], "two_workers_tok_s": r["runs"]["ray2_tok_s"],
            "scaling_1_to_2": r["ratio_ray2_vs_ray1"], "machine": r["machine"]}


def fmt(x: float) -> str:
    for div, unit in ((1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def report(p: Plan, workers: list[int]) -> str:
    t, c = totals(p), crossover(p, totals(p))
    lines = [
        f"corpus: {p.prompts:,} prompts x n={p.n} x {p.answer_tokens:g} answer tokens, top-{p.k}, shards of "
        f"{p.shard_size} prompts (input)",
        f"teacher tokens:    {fmt(t['teacher_tokens'])} ({t['records']:,} records, {t['shards']:,} shards)",
        f"bytes per token:   {p.bytes_per_token:.1f} B (measured at k={MEASURED_K}, {GENERATE_BENCH.name}"
        f"{'' if p.k == MEASURED_K else '; scaled to k=' + str(p.k) + ': ASSUMPTION'})",
        f"on disk:           {fmt(t['disk_bytes'])}B ({fmt(t['shard_bytes'])}B per shard; manifest "
        f"{fmt(t['manifest_bytes'])}B at the end)",
        f"GPU-hours:         {t['gpu_hours']:,.0f} at {p.gpu_tok_s:g} tok/s per GPU (ASSUMPTION)",
        f"driver:            manifest rewrite {p.manifest_mb_s:.0f} MB/s, shard verify {p.verify_mb_s:.0f} MB/s "
        f"(measured here): {driver_seconds_per_shard(p, t) * 1e3:.0f} ms per shard at the end of the run",
        f"storage:           {p.storage_mb_s:g} MB/s sustained writes (ASSUMPTION)",
        f"bottleneck moves:  driver saturates at ~{c['driver_workers']:,.0f} workers, storage at "
        f"~{c['storage_workers']:,.0f} workers ({p.gpus_per_worker} GPU each)",
        "",
        "| workers | GPUs | tok/s | shard writes MB/s | per worker MB/s | shards/s | driver load | storage load "
        "| bottleneck | wall hours |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in workers:
        r = scaling(p, w, t)
        lines.append(f"| {w} | {r['gpus']} | {fmt(r['tok_s'])} | {r['write_mb_s']:.2f} | {r['per_worker_write_mb_s']:.2f} "
                     f"| {r['shards_per_s']:.3g} | {r['driver_load']:.3f} | {r['storage_load']:.3f} | {r['bottleneck']} "
                     f"| {r['wall_hours']:,.1f} |")
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    a.add_argument("--prompts", type=int, default=10_000_000, help="corpus size N (input)")
    a.add_argument("--answer-tokens", type=float, default=512, help="mean answer length L in tokens (input)")
    a.add_argument("--n", type=int, default=1, help="answers per prompt (input)")
    a.add_argument("--k", type=int, default=MEASURED_K, help="top-k per token (input)")
    a.add_argument("--shard-size", type=int, default=512, help="prompts per shard = one unit of work (input)")
    a.add_argument("--gpu-tok-s", type=float, default=GPU_TOK_S, help="generated tok/s per GPU (ASSUMPTION)")
    a.add_argument("--gpus-per-worker", type=int, default=1, help="teacher.tensor_parallel_size (input)")
    a.add_argument("--storage-mb-s", type=float, default=STORAGE_MB_S, help="shared filesystem MB/s (ASSUMPTION)")
    a.add_argument("--bytes-per-token", type=float, help="override the measured whole-shard bytes per token")
    a.add_argument("--manifest-mb-s", type=float, help="skip measuring: the driver's manifest rewrite MB/s")
    a.add_argument("--verify-mb-s", type=float, help="skip measuring: the driver's shard read + sha256 MB/s")
    a.add_argument("--workers", type=int, nargs="+", default=list(WORKERS), help="rows of the scaling table")
    a.add_argument("--json", action="store_true", help="print the plan as JSON")
    args = a.parse_args(argv)
    if min(args.prompts, args.n, args.k, args.shard_size, args.gpus_per_worker, *args.workers) < 1 or \
            min(args.answer_tokens, args.gpu_tok_s, args.storage_mb_s) <= 0:
        a.error("every count, length and rate must be positive")
    return args


def plan_from(args: argparse.Namespace) -> Plan:
    bench = json.loads(GENERATE_BENCH.read_text())
    manifest_mb_s, verify_mb_s = args.manifest_mb_s, args.verify_mb_s
    if manifest_mb_s is None or verify_mb_s is None:
        measured = measure_driver()
        manifest_mb_s, verify_mb_s = manifest_mb_s or measured[0], verify_mb_s or measured[1]
    return Plan(prompts=args.prompts, n=args.n, answer_tokens=args.answer_tokens, k=args.k,
                shard_size=args.shard_size, gpu_tok_s=args.gpu_tok_s, gpus_per_worker=args.gpus_per_worker,
                storage_mb_s=args.storage_mb_s, bytes_per_token=args.bytes_per_token or bytes_per_token(args.k, bench),
                manifest_mb_s=manifest_mb_s, verify_mb_s=verify_mb_s)


def main(argv: list[str]) -> int:
    args = parse(argv)
    p = plan_from(args)
    if args.json:
        t = totals(p)
        print(json.dumps({"plan": asdict(p), "totals": t, "crossover": crossover(p, t),
                          "rows": [scaling(p, w, t) for w in args.workers], "cpu_measured": measured_cpu_workers()},
                         indent=2))
    else:
        print(report(p, args.workers))
        cpu = measured_cpu_workers()
        if cpu:
            print(f"\nmeasured on this CPU machine ({RAY_BENCH.name}): {cpu['one_worker_tok_s']:.0f} tok/s with one Ray "
                  f"worker, {cpu['two_workers_tok_s']:.0f} with two (x{cpu['scaling_1_to_2']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
