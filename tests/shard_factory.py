"""Write a real shard set from a small Hugging Face model without starting vLLM (for train/eval tests).

The records go through the same distill.shards functions generate/ uses; the top-k comes from a teacher-forced
transformers forward pass, which matches vLLM's numbers for a float32 model (see shared/FINDINGS.md).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from distill import shards
from distill.files import atomic_write, sha256_bytes
from distill.models import weights_fingerprint

PROMPTS = [
    "Explain why the sky looks blue.",
    "Give me three tips for saving money.",
    "What is 12 times 7?",
    "Write a haiku about autumn leaves.",
    "How do I boil an egg?",
    "Summarise the plot of a heist movie in two sentences.",
    "List four common houseplants.",
    "Compare tea and coffee in one paragraph.",
    "What does a compiler do?",
    "Convert 3 kilometres to metres.",
    "Suggest a name for a grey cat.",
    "Why do we have seasons?",
]


def write_shard_set(model_dir: Path, out_dir: Path, *, prompts: list[str] = PROMPTS, k: int = 8,
                    max_new_tokens: int = 16, shard_size: int = 4, codec: str = "compact",
                    prob_step: float = 1.6e-4, seed: int = 0, tasks: list[str] | None = None,
                    given: set[int] = frozenset()) -> dict:
    """A shard set of the model's sampled answers; the records numbered in `given` are marked as given answers
    (finish_reason "given", as a scored reference is), and the manifest counts them as references."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    torch.manual_seed(seed)
    records = []
    for i, text in enumerate(prompts):
        messages = [{"role": "user", "content": text}]
        prompt_ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                   return_dict=False)
        prompt = torch.tensor([prompt_ids])
        with torch.no_grad():
            out = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                                 max_new_tokens=max_new_tokens, min_new_tokens=2,
                                 pad_token_id=tokenizer.pad_token_id)
            response_ids = out[0, len(prompt_ids):].tolist()
            logits = model(out).logits[0, len(prompt_ids) - 1 : -1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        top_lp, top_ids = logprobs.topk(k, dim=-1)
        sampled = logprobs.gather(-1, torch.tensor(response_ids)[:, None]).squeeze(-1)
        finish = "given" if i in given else "stop" if response_ids[-1] == tokenizer.eos_token_id else "length"
        records.append(shards.make_record(
            prompt_id=f"p{i:03d}", sample_index=0, messages=messages, prompt_token_ids=prompt_ids,
            response=tokenizer.decode(response_ids, skip_special_tokens=True), response_token_ids=response_ids,
            sampled_logprobs=sampled.tolist(), topk_ids=top_ids.tolist(), topk_logprobs=top_lp.tolist(),
            finish_reason=finish, codec=codec, prob_step=prob_step, task=tasks[i] if tasks else None))

    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = shards.new_manifest(
        teacher={"name": str(model_dir), "backend": "transformers", "logits_size": model.config.vocab_size,
                 "weights_sha256": weights_fingerprint(str(model_dir)), "dtype": "float32"},
        tokenizer=shards.tokenizer_fingerprint(tokenizer), mode="generate", k=k, logprobs_mode="raw_logprobs",
        codec=codec, prob_step=prob_step,
        sampling={"temperature": 1.0, "top_p": 1.0, "max_tokens": max_new_tokens, "n": 1, "seed": seed, "stop": []},
        corpus={"source": "tests/shard_factory.py", "prompts": len(prompts), "duplicates_dropped": 0},
        shard_size=shard_size,
        responses={"by": "teacher", "references": {"column": "reference", "prompts": len(given)}} if given else None)
    for index in range(0, len(records), shard_size):
        batch = records[index : index + shard_size]
        data = shards.encode_shard(batch, codec)
        name = shards.shard_name(index // shard_size, codec)
        atomic_write(out_dir / name, data)
        manifest["shards"].append({"file": name, "index": index // shard_size, "records": len(batch),
                                   "tokens": sum(len(r["response_token_ids"]) for r in batch),
                                   "bytes": len(data), "sha256": sha256_bytes(data)})
    manifest["counts"]["records"] = len(records)
    manifest["counts"]["tokens"] = sum(s["tokens"] for s in manifest["shards"])
    manifest["complete"] = True
    shards.write_manifest(out_dir, manifest)
    return manifest
