"""Bench the generate stage on the default teacher: `bash bench/generate.sh`.

(a) plain vLLM generation (no logprobs, nothing written), (b) our full path (k=20 top-k + records + shard writing,
engine already started), (c) Hugging Face `generate` with top-20 taken from its logits, all on the same prompts,
max_tokens 128, temperature 1; medians of >= 3 interleaved repeats. (d) bytes on disk per token and the codec's
per-token L1 error against the engine's top-k. Writes bench/results/generate.json and a table in bench/README.md.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # tests/configs.py

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

N_PROMPTS, MAX_TOKENS, K, REPEATS = 64, 128, 20, int(os.environ.get("BENCH_REPEATS", "3"))
TOPICS = ["rivers", "bread", "the moon", "chess", "bees", "volcanoes", "trains", "tea",
          "glass", "owls", "rain", "maps", "bicycles", "coral reefs", "libraries", "salt"]
FORMS = ["Explain {} to a ten-year-old.", "Write a short paragraph about {}.",
         "Give three interesting facts about {}.", "Why do people care about {}?"]


def bench_prompts():
    from distill.prompts import Prompt, load_prompts

    corpus = REPO / "prompts" / "train.jsonl"
    if corpus.is_file():
        return load_prompts(corpus, max_prompts=N_PROMPTS)[0], str(corpus)
    texts = [form.format(topic) for topic in TOPICS for form in FORMS][:N_PROMPTS]
    return [Prompt(id=f"b{i:02d}", messages=[{"role": "user", "content": t}], where=f"bench:{i}")
            for i, t in enumerate(texts)], "built-in list of 64 prompts"


def write_corpus(prompts, path: Path) -> None:
    with open(path, "w") as f:
        for p in prompts:
            f.write(json.dumps({"id": p.id, "messages": p.messages}) + "\n")


def plain_vllm(backend, prompt_ids) -> tuple[int, float]:
    from vllm import SamplingParams

    params = SamplingParams(temperature=1.0, max_tokens=MAX_TOKENS)
    start = time.perf_counter()
    outs = backend.llm.generate([{"prompt_token_ids": ids} for ids in prompt_ids], params, use_tqdm=False)
    return sum(len(o.outputs[0].token_ids) for o in outs), time.perf_counter() - start


class Capture:
    """Wraps a backend to keep the engine's results, for comparing them with what the shards decode to."""

    def __init__(self, backend):
        self.backend, self.results = backend, []

    def generate(self, prompts, ids, g):
        out = self.backend.generate(prompts, ids, g)
        self.results += [(p.id, s[0]) for p, s in zip(prompts, out)]
        return out


def ours(backend, cfg) -> tuple[int, float, Path]:
    from distill.generate.run import plan, run_job, teacher_tokenizer

    tokenizer = teacher_tokenizer(cfg)
    (job,) = plan(cfg, tokenizer)
    start = time.perf_counter()  # generation + records + writing; not the engine start or corpus loading
    run_job(job, backend, tokenizer, cfg)
    return job.manifest["counts"]["tokens"], time.perf_counter() - start, job.folder


def hf_generate(model, tokenizer, prompts) -> tuple[int, float]:
    import torch

    texts = [tokenizer.apply_chat_template(p.messages, tokenize=False, add_generation_prompt=True) for p in prompts]
    batch = tokenizer(texts, add_special_tokens=False, return_tensors="pt", padding=True)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**batch, do_sample=True, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=MAX_TOKENS,
                             output_logits=True, return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id)
        topk = [torch.log_softmax(step.float(), -1).topk(K, -1) for step in out.logits]  # the same top-20 we store
    seconds = time.perf_counter() - start
    new = out.sequences[:, batch["input_ids"].shape[1]:]
    tokens = 0
    for row in new.tolist():  # count up to and including EOS, as vLLM does
        tokens += row.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in row else len(row)
    assert len(topk) == new.shape[1]
    return tokens, seconds


def size_and_error(folder: Path, capture: Capture, prob_step: float) -> dict:
    import numpy as np
    import zstandard

    from distill import shards as sh

    manifest = sh.open_shard_set(folder)
    tokens = manifest["counts"]["tokens"]
    total = sum(e["bytes"] for e in manifest["shards"])
    without = 0
    for entry in manifest["shards"]:
        data = zstandard.ZstdDecompressor().stream_reader((folder / entry["file"]).open("rb")).read()
        records = [json.loads(line) for line in data.decode().splitlines()]
        without += len(sh.encode_shard([{k: v for k, v in r.items() if k != "topk"} for r in records], "compact"))
    engine = dict(capture.results)
    l1 = []
    for ex in sh.read_examples(folder, manifest):
        r = engine[ex.prompt_id]
        for t in range(len(r.response_token_ids)):
            want = {i: float(np.exp(lp)) for i, lp in zip(r.topk_ids[t], r.topk_logprobs[t])}
            got = {int(i): float(p) for i, p in zip(ex.topk.ids[t], ex.topk.probs[t]) if p > 0}
            l1.append(sum(abs(want.get(i, 0.0) - got.get(i, 0.0)) for i in set(want) | set(got)))
    return {
        "bytes_per_token": total / tokens,
        "topk_payload_bytes_per_token": (total - without) / tokens - 4.0,
        "sampled_logprob_bytes_per_token": 4.0,
        "mean_l1_prob_err": float(np.mean(l1)),
        "max_l1_prob_err": float(np.max(l1)),
    }


def machine() -> dict:
    import torch
    import vllm

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__, "vllm": vllm.__version__,
            "python": platform.python_version()}


def provenance(bench: str) -> dict:
    """The commit a bench ran on ("+changes" if the code differed from it) and the command that repeats it."""
    sys.path.insert(0, str(REPO / "scripts"))
    import results

    return {"commit": results.commit(), "command": f"BENCH_REPEATS={REPEATS} bash bench/{bench}.sh"}


def update_readme(result: dict) -> None:
    from bench.sections import replace_section

    m = result["machine"]
    r = result["runs"]
    replace_section("generate", "\n".join([
        "## generate (`bash bench/generate.sh`)",
        "",
        f"Default teacher, {result['prompts']} prompts, max_tokens {MAX_TOKENS}, temperature 1, k={K}, "
        f"medians of {REPEATS} runs; {m['cpu']}, {m['cores']} cores{', ' + m['gpu'] if m['gpu'] else ''}, "
        f"torch {m['torch']}, vllm {m['vllm']}. `{result['command']}`, commit {result['commit']}.",
        "",
        "| measure | value | goal |",
        "|---|---|---|",
        f"| plain vLLM, no logprobs | {r['plain_vllm_tok_s']:.1f} tok/s | |",
        f"| ours: top-{K} + shards | {r['ours_tok_s']:.1f} tok/s | |",
        f"| HF transformers generate + top-{K} | {r['hf_generate_tok_s']:.1f} tok/s | |",
        f"| ratio vs plain vLLM | {result['ratio_vs_plain_vllm']:.3f} | >= 0.85 |",
        f"| ratio vs HF generate | {result['ratio_vs_hf_generate']:.2f} | >= 1.3 |",
        f"| shard bytes per token | {result['bytes_per_token']:.1f} B | |",
        f"| top-k payload per token | {result['topk_payload_bytes_per_token']:.1f} B (+ 4 B exact sampled logprob) | <= 48 B |",
        f"| mean / max per-token L1 of probabilities | {result['mean_l1_prob_err']:.2e} / {result['max_l1_prob_err']:.2e} | <= 1e-3 / 1e-2 |",
    ]))


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from configs import generate_config
    from distill.generate.backends import VllmBackend
    from distill.models import chat_ids

    teacher = os.environ.get("BENCH_TEACHER", str(REPO / "models" / "smollm2-135m-instruct"))
    prompts, source = bench_prompts()
    work = Path(tempfile.mkdtemp(prefix="bench-generate-"))
    write_corpus(prompts, work / "prompts.jsonl")

    def cfg(rep):
        return generate_config(teacher, work / "prompts.jsonl", work / f"run{rep}", "generate.temperature=1.0",
                               "generate.overwrite=true", k=K, max_tokens=MAX_TOKENS, shard_size=N_PROMPTS)

    backend = VllmBackend(cfg(0))
    tokenizer = AutoTokenizer.from_pretrained(teacher)
    prompt_ids = chat_ids(tokenizer, [p.messages for p in prompts])
    plain_vllm(backend, prompt_ids[:8])  # warm-up
    runs = {"plain": [], "ours": []}
    capture = Capture(backend)
    folder = None
    for rep in range(REPEATS):  # interleaved, so background load on a shared machine hits both alike
        runs["plain"].append(plain_vllm(backend, prompt_ids))
        tokens, seconds, f = ours(capture if rep == 0 else backend, cfg(rep))
        folder = folder or f
        runs["ours"].append((tokens, seconds))
        print(f"[bench] rep {rep}: plain {runs['plain'][-1][0] / runs['plain'][-1][1]:.1f} tok/s, "
              f"ours {tokens / seconds:.1f} tok/s", flush=True)
    sizes = size_and_error(folder, capture, 1.6e-4)
    backend.close()
    del backend

    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(teacher, dtype=torch.float32).eval()
    torch.manual_seed(0)
    hf_generate(model, tokenizer, prompts[:4])  # warm-up
    runs["hf"] = []
    for rep in range(REPEATS):
        runs["hf"].append(hf_generate(model, tokenizer, prompts))
        print(f"[bench] rep {rep}: hf {runs['hf'][-1][0] / runs['hf'][-1][1]:.1f} tok/s", flush=True)

    rate = {name: statistics.median(t / s for t, s in values) for name, values in runs.items()}
    result = {
        "ratio_vs_plain_vllm": rate["ours"] / rate["plain"],
        "ratio_vs_hf_generate": rate["ours"] / rate["hf"],
        **sizes,
        "k": K,
        "tokens": runs["ours"][0][0],
        "prompts": len(prompts),
        "prompt_source": source,
        "max_tokens": MAX_TOKENS,
        "repeats": REPEATS,
        "runs": {"plain_vllm_tok_s": rate["plain"], "ours_tok_s": rate["ours"], "hf_generate_tok_s": rate["hf"],
                 "raw": {name: [[t, round(s, 3)] for t, s in values] for name, values in runs.items()}},
        "machine": machine(),
        **provenance("generate"),
    }
    out = REPO / "bench" / "results" / "generate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    update_readme(result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "machine")}, indent=2))


if __name__ == "__main__":  # the guard matters: vLLM spawns worker processes that import this module
    main()
