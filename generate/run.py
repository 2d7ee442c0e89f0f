"""The generate stage, top to bottom: config -> corpora -> one teacher engine -> shards + manifest per corpus.

Shard i of a corpus holds prompts [i*S, (i+1)*S) (S = generate.shard_size), in corpus order, so a rerun knows
which prompts a missing shard needs. Each shard is written atomically, then the manifest is rewritten; a rerun
verifies and skips finished shards and generates the rest. generate.executor=ray hands the shards to a pool of
engines on a Ray cluster instead (ray_executor.py); they write each shard with the same `write_shard`.
"""

from __future__ import annotations

import io
import os
from collections import Counter
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import zstandard
from tqdm import tqdm

from distill import shards as sh
from distill.config import Config, run_paths
from distill.engine import cpu_engine_threads, on_gpu
from distill.errors import DistillError
from distill.files import sha256_bytes
from distill.generate.backends import OpenAIBackend, VllmBackend
from distill.models import chat_ids, load_tokenizer, teacher_entry
from distill.prompts import Prompt, load_prompts, prompt_hash

_SHARD_FILE = re.compile(r"shard-(\d{5})\.jsonl(\.zst)?$")


@dataclass
class Job:
    name: str  # train | heldout
    folder: Path
    prompts: list[Prompt]
    manifest: dict


def teacher_tokenizer(cfg: Config):
    t = cfg.teacher
    return load_tokenizer(t.tokenizer or t.model, "teacher.model", t.trust_remote_code)


def sampling_info(cfg: Config, batch_invariant: bool) -> dict:
    """The sampling settings, as the manifest records them. Each record's sample depends only on generate.seed and
    its prompt id (seed_scheme per_record: backends.request_seed); batch_invariant says whether the engine also gives
    bit-identical records whatever the batching (other shard sizes, workers, resumes)."""
    g = cfg.generate
    if g.mode == "score":
        return {"mode": "score"}
    return {"temperature": g.temperature, "top_p": g.top_p, "max_tokens": g.max_tokens, "n": g.n,
            "stop": list(g.stop), "seed": g.seed, "seed_scheme": "per_record", "batch_invariant": batch_invariant}


def engine_batch_invariant(cfg: Config, cpu_cores: str | None = None) -> bool:
    """vLLM on CPU computing on one thread is batch-invariant (measured bit-identical across batch sizes, orders and
    restarts); CUDA kernels and multi-threaded CPU kernels are not, and a remote server is unknown."""
    return cfg.teacher.backend == "vllm" and not on_gpu() and cpu_engine_threads(cpu_cores) == 1


def shard_prompts(job: Job, index: int, size: int) -> list[Prompt]:
    return job.prompts[index * size:(index + 1) * size]


def shard_count(job: Job, size: int) -> int:
    return -(-len(job.prompts) // size)


def prepare_folder(job: Job, cfg: Config) -> None:
    """Start, check or resume one output folder. Leaves job.manifest holding only verified shards."""
    folder, fresh, g = job.folder, job.manifest, cfg.generate
    folder.mkdir(parents=True, exist_ok=True)
    if g.overwrite:
        for p in folder.iterdir():
            if p.name == sh.MANIFEST or _SHARD_FILE.match(p.name) or ".tmp-" in p.name:
                p.unlink()
    for p in folder.iterdir():  # a crash can leave a temp file behind; it is never a finished shard
        if p.name.startswith(".") and ".tmp-" in p.name:
            p.unlink()
    old = sh.read_manifest(folder)
    on_disk = sorted(p.name for p in folder.iterdir() if _SHARD_FILE.match(p.name) and p.is_file())
    if old is None:
        if on_disk:
            raise DistillError(f"output folder {folder} holds shard files but no manifest; "
                               "use generate.overwrite=true to start over")
        sh.write_manifest(folder, fresh)  # before any shard: shard files without a manifest are never ours
        return
    diff = sh.identity_mismatch(old, fresh)
    if diff:
        raise DistillError(f"output folder {folder} holds shards from a different teacher/tokenizer/corpus/settings: "
                           f"{diff}; use generate.overwrite=true to start over")
    entries = {}
    for entry in old["shards"]:
        try:
            sh.verify_shard(folder, entry)
            entries[entry["index"]] = entry
        except DistillError as e:
            print(f"[generate] warning: {e}; generating that shard again")
            (folder / entry["file"]).unlink(missing_ok=True)
    n_shards = shard_count(job, g.shard_size)
    for name in on_disk:
        index = int(_SHARD_FILE.match(name).group(1))
        if index in entries or name != sh.shard_name(index, g.codec):
            continue
        entry = _adopt(folder, name, index, fresh, shard_prompts(job, index, g.shard_size), g.n) if index < n_shards else None
        if entry is None:
            print(f"[generate] warning: {folder / name} is not a complete shard of this run; deleting it")
            (folder / name).unlink()
        else:
            entries[index] = entry
    fresh["shards"] = [entries[i] for i in sorted(entries)]
    _recount(fresh, n_shards)
    if fresh["shards"] != old["shards"] or fresh["complete"] != old.get("complete"):
        # Adopted or dropped shards go on disk now: a set completed by adoption alone is never rewritten later.
        sh.write_manifest(folder, fresh)


def _adopt(folder: Path, name: str, index: int, manifest: dict, prompts: list[Prompt], n: int) -> dict | None:
    """A shard renamed into place just before a crash (so not in the manifest yet): keep it if it decodes fully."""
    data = (folder / name).read_bytes()
    entry = {"file": name, "index": index, "records": 0, "tokens": 0, "bytes": len(data),
             "sha256": sha256_bytes(data), "skipped": 0}
    try:
        text = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read() if name.endswith(".zst") else data
        entry["records"] = len(text.decode("utf-8").splitlines())
        ids = []
        for where, record in sh.iter_shard_lines(folder, entry, data):
            ex = sh.decode_record(record, manifest, where)
            ids.append(ex.prompt_id)
            entry["tokens"] += len(ex.response_token_ids)
    except (DistillError, UnicodeDecodeError, zstandard.ZstdError):
        return None
    seen = set(ids)
    kept = [p for p in prompts if p.id in seen]
    if ids != [p.id for p in kept for _ in range(1 if p.response is not None else n)]:  # a scored answer: one record
        return None
    entry["skipped"] = len(prompts) - len(kept)
    return entry


def _recount(manifest: dict, n_shards: int) -> None:
    entries = manifest["shards"]
    manifest["counts"] = {
        "records": sum(e["records"] for e in entries),
        "tokens": sum(e["tokens"] for e in entries),
        "skipped_too_long": sum(e.get("skipped", 0) for e in entries),
    }
    manifest["complete"] = len(entries) == n_shards


def token_lengths(tokenizer, prompts: list[Prompt]) -> tuple[list[list[int]], list[list[int] | None], list[int]]:
    """Prompt ids, response ids (None for a prompt the teacher answers) and the context length each prompt needs.
    A prompt with a response (scoring mode, or a reference: generate.references) is scored, not answered."""
    ids = chat_ids(tokenizer, [p.messages for p in prompts])
    given = [i for i, p in enumerate(prompts) if p.response is not None]
    resp: list[list[int] | None] = [None] * len(prompts)
    if given:
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        encoded = tokenizer([prompts[i].response for i in given], add_special_tokens=False)["input_ids"]
        for i, r in zip(given, encoded):
            resp[i] = r + eos
    return ids, resp, [len(p) + len(r or []) + 1 for p, r in zip(ids, resp)]  # + 1: the engine must sample a token


def too_long_error(p: Prompt, length: int, limit: int) -> DistillError:
    return DistillError(f"{p.where}: prompt is {length - 1} tokens, too long for teacher.max_model_len={limit} "
                        "(set generate.too_long=skip to skip such prompts)")


def write_shard(folder: Path, index: int, prompts: list[Prompt], backend, tokenizer, cfg: Config) -> dict:
    """Generate shard `index` (its `prompts`) and write it atomically into `folder`; return its manifest entry.
    The one producer of shards: the local executor calls it here, the Ray executor in its workers."""
    records, skipped = shard_records(prompts, backend, tokenizer, cfg)
    return {**sh.write_shard(folder, index, records, cfg.generate.codec), "skipped": skipped}


def shard_records(prompts: list[Prompt], backend, tokenizer, cfg: Config) -> tuple[list[dict], int]:
    """One shard's records, and how many of its prompts were skipped as too long."""
    g, limit = cfg.generate, cfg.teacher.max_model_len
    ids, resp, lengths = token_lengths(tokenizer, prompts)
    keep = []
    for i, (p, length) in enumerate(zip(prompts, lengths)):
        if length <= limit:
            keep.append(i)
        elif g.too_long == "fail":
            raise too_long_error(p, length, limit)
    scored, sampled = [i for i in keep if resp[i] is not None], [i for i in keep if resp[i] is None]
    results = {}
    if scored:
        answers = backend.score([prompts[i] for i in scored], [ids[i] for i in scored], [resp[i] for i in scored], g.k)
        results.update((i, [r]) for i, r in zip(scored, answers))
    if sampled:
        results.update(zip(sampled, backend.generate([prompts[i] for i in sampled], [ids[i] for i in sampled], g)))
    records = []
    for i in keep:
        prompt = prompts[i]
        for s, r in enumerate(results[i]):
            records.append(sh.make_record(
                prompt_id=prompt.id, sample_index=s, messages=prompt.messages,
                prompt_token_ids=r.prompt_token_ids, response=r.response, response_token_ids=r.response_token_ids,
                sampled_logprobs=r.sampled_logprobs, topk_ids=r.topk_ids, topk_logprobs=r.topk_logprobs,
                finish_reason=r.finish_reason, codec=g.codec, prob_step=g.prob_step, task=prompt.task))
    return records, len(prompts) - len(keep)


def missing_shards(job: Job, cfg: Config) -> list[int]:
    done = {e["index"] for e in job.manifest["shards"]}
    return [i for i in range(shard_count(job, cfg.generate.shard_size)) if i not in done]


def add_shard(job: Job, entry: dict, cfg: Config) -> None:
    """List a written shard in its job's manifest and rewrite the manifest (only ever in this process)."""
    job.manifest["shards"] = sorted(job.manifest["shards"] + [entry], key=lambda e: e["index"])
    close_job(job, cfg)


def close_job(job: Job, cfg: Config) -> None:
    _recount(job.manifest, shard_count(job, cfg.generate.shard_size))
    sh.write_manifest(job.folder, job.manifest)


def crash_hook():
    """Test hook: with DISTILL_FAIL_AFTER_SHARDS=N, the returned callable raises on its N-th call (a simulated crash
    after N shards are listed)."""
    left = int(os.environ.get("DISTILL_FAIL_AFTER_SHARDS", "-1"))

    def shard_listed() -> None:
        nonlocal left
        left -= 1
        if left == 0:
            raise RuntimeError("DISTILL_FAIL_AFTER_SHARDS: simulated crash")

    return shard_listed


def run_job(job: Job, backend, tokenizer, cfg: Config) -> dict:
    """Generate a job's missing shards. Returns {tokens, seconds} for the summary."""
    g = cfg.generate
    todo, shard_listed = missing_shards(job, cfg), crash_hook()
    left = sum(len(shard_prompts(job, i, g.shard_size)) for i in todo)
    bar = tqdm(total=len(job.prompts), initial=len(job.prompts) - left, desc=f"[generate] {job.name}", unit="prompt",
               dynamic_ncols=True)
    tokens, start = 0, time.perf_counter()
    try:
        for i in todo:
            entry = write_shard(job.folder, i, shard_prompts(job, i, g.shard_size), backend, tokenizer, cfg)
            add_shard(job, entry, cfg)
            tokens += entry["tokens"]
            bar.update(len(shard_prompts(job, i, g.shard_size)))
            bar.set_postfix_str(f"{tokens / (time.perf_counter() - start):.1f} tok/s")
            shard_listed()
    finally:
        bar.close()  # also on an error: its one-line message must not land on the progress bar's line
    close_job(job, cfg)
    return {"tokens": tokens, "seconds": time.perf_counter() - start}


def plan(cfg: Config, tokenizer, batch_invariant: bool | None = None) -> list[Job]:
    """Load the corpora and prepare (check, resume or start) their output folders. No engine needed.
    batch_invariant: what the engines that will run promise (None: the local engine's, engine_batch_invariant)."""
    g = cfg.generate
    if batch_invariant is None:
        batch_invariant = engine_batch_invariant(cfg)
    teacher, tok = teacher_entry(cfg.teacher), sh.tokenizer_fingerprint(tokenizer)
    corpora = [("train", g.prompts, g.max_prompts)]
    if g.heldout_prompts:
        corpora.append(("heldout", g.heldout_prompts, g.heldout_max_prompts))
    jobs = []
    for name, source, max_prompts in corpora:
        references = g.references if name == "train" else None
        columns = {**g.columns, "response": references} if references else g.columns
        prompts, stats = load_prompts(source, columns, g.split, max_prompts)
        stats["tasks"] = dict(sorted(Counter(p.task for p in prompts).items()))  # the mixture on offer
        responses = None  # new_manifest's default: the teacher's (generate) or the corpus' (score)
        if g.mode == "generate" and references:
            n_references = sum(p.response is not None for p in prompts)
            if not n_references:
                raise DistillError(f"generate.references: no training prompt of {source} has a {references!r} field")
            responses = {**sh.TEACHER_ANSWERS, "references": {"column": references, "prompts": n_references}}
        elif g.mode == "generate":  # a response column is not an answer to score here: the teacher answers
            prompts = [replace(p, response=None) for p in prompts]
        if g.mode == "score":
            missing = next((p for p in prompts if p.response is None), None)
            if missing:
                raise DistillError(f"{missing.where}: generate.mode=score needs a response for every prompt")
        if g.too_long == "fail":  # fail here, before the engine starts, not at the shard holding the prompt
            for p, length in zip(prompts, token_lengths(tokenizer, prompts)[2]):
                if length > cfg.teacher.max_model_len:
                    raise too_long_error(p, length, cfg.teacher.max_model_len)
        manifest = sh.new_manifest(teacher=teacher, tokenizer=tok, mode=g.mode, k=g.k, logprobs_mode=g.logprobs_mode,
                                   codec=g.codec, prob_step=g.prob_step, sampling=sampling_info(cfg, batch_invariant),
                                   corpus=stats, shard_size=g.shard_size, responses=responses)
        jobs.append(Job(name, run_paths(cfg).shards(name), prompts, manifest))
    if len(jobs) == 2:
        train = {prompt_hash(p.messages) for p in jobs[0].prompts}
        overlap = sum(prompt_hash(p.messages) in train for p in jobs[1].prompts)
        if overlap:
            print(f"[generate] warning: {overlap} held-out prompts also appear in the training prompts")
    for job in jobs:
        prepare_folder(job, cfg)
    return jobs


def make_backend(cfg: Config, tokenizer):
    return VllmBackend(cfg) if cfg.teacher.backend == "vllm" else OpenAIBackend(cfg, tokenizer)


def all_complete(jobs: list[Job]) -> bool:
    """True (and says so) when every corpus is already generated."""
    if not all(job.manifest["complete"] for job in jobs):
        return False
    for job in jobs:
        print(f"[generate] {job.name}: already complete ({job.manifest['counts']['records']} records), {job.folder}")
    return True


def summarize(job: Job, stats: dict) -> dict:
    """Print a corpus' one summary line; return it as a dict."""
    c = job.manifest["counts"]
    size = sum(e["bytes"] for e in job.manifest["shards"])
    line = (f"[generate] {job.name}: {len(job.prompts)} prompts, {c['records']:,} records, {c['tokens']:,} tokens, "
            f"{stats['tokens'] / max(stats['seconds'], 1e-9):.1f} tok/s, "
            f"{size / max(c['tokens'], 1):.1f} B/token on disk, {job.folder}")
    references = job.manifest["responses"].get("references")
    if references:
        line += f" ({references['prompts']} prompts answered by their {references['column']!r} field, scored)"
    if c["skipped_too_long"]:
        line += f" ({c['skipped_too_long']} prompts skipped: too long)"
    print(line, flush=True)
    return {"corpus": job.name, **c, **stats, "bytes": size}


def run(cfg: Config, backend=None) -> list[dict]:
    """The whole stage. Pass an already started backend to reuse it (tests, bench); else one is started if needed."""
    if cfg.generate.executor == "ray":
        from distill.generate.ray_executor import run_on_ray

        return run_on_ray(cfg)
    tokenizer = teacher_tokenizer(cfg)
    jobs = plan(cfg, tokenizer)
    if all_complete(jobs):
        return []
    own = backend is None
    if own:
        backend = make_backend(cfg, tokenizer)
    try:
        return [summarize(job, run_job(job, backend, tokenizer, cfg)) for job in jobs]
    finally:
        if own:
            backend.close()
