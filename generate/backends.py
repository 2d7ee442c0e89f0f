"""Teacher backends behind one small interface.

    backend.generate(prompts, prompt_token_ids, g) -> one list of n Results per prompt (sampled answers)
    backend.score(prompts, prompt_token_ids, response_token_ids, k) -> one Result per prompt (the given answers)

`g` is the run's generate config (sampling settings, k): an engine started once can serve several runs.

Every request carries its own seed, derived from the run's seed and the prompt's id only (`request_seed`), so a
record's sample does not depend on which shard, batch, worker or rerun generated it.

`prompt_token_ids` are made by run.py with the teacher's chat template, so the ids stored in a shard are exactly
the ids the teacher saw (the vLLM engine is given the ids; the OpenAI path checks the server's against them).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from distill.config import resolve_dtype
from distill.engine import flat_rows, on_gpu, score_answers, start_engine, stop_engine
from distill.errors import DistillError

OPENAI_CONCURRENCY = 8  # requests in flight against an OpenAI-compatible server


def request_seed(run_seed: int, prompt_id: str) -> int:
    """The sampling seed of one prompt's request: 63 bits of sha256(f"{run_seed}:{prompt_id}"). With n > 1 the n
    samples come from this one request (vLLM seeds sample i with seed + i)."""
    digest = hashlib.sha256(f"{run_seed}:{prompt_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


@dataclass
class Result:
    prompt_token_ids: list[int]
    response: str
    response_token_ids: list[int]
    sampled_logprobs: list[float]  # exact logprob of each response token
    topk_ids: list[list[int]]  # per response token: the teacher's k most likely ids
    topk_logprobs: list[list[float]]
    finish_reason: str  # stop | length | given (scoring mode)


class VllmBackend:
    """The offline vLLM engine. One per process: it owns the teacher's weights and KV cache."""

    name = "vllm"

    def __init__(self, cfg, cpu_cores: str | None = None):
        t, g = cfg.teacher, cfg.generate
        kwargs = dict(
            tokenizer=t.tokenizer or t.model,
            dtype=resolve_dtype(t.dtype),
            max_model_len=t.max_model_len,
            tensor_parallel_size=t.tensor_parallel_size,
            enforce_eager=t.enforce_eager,
            trust_remote_code=t.trust_remote_code,
            seed=g.seed,  # for requests without their own seed (none here: see request_seed)
            max_logprobs=max(g.k, 20),
            logprobs_mode=g.logprobs_mode,
            gpu_memory_utilization=t.gpu_memory_utilization,
        )
        if t.data_parallel_size > 1:
            kwargs["data_parallel_size"] = t.data_parallel_size
        if not on_gpu():
            # Chunked prefill samples a throw-away token for a partial prompt and then rewinds the request's
            # generator, which CPU generators cannot do ("CPU Generator does not use offset"): seeded requests
            # crash once a batch's prompts exceed one step's token budget. Whole prompts per step avoid it.
            kwargs["enable_chunked_prefill"] = False
        self.llm = start_engine(t.model, "teacher", cpu_cores=cpu_cores, **kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, prompts, prompt_token_ids: list[list[int]], g) -> list[list[Result]]:
        from vllm import SamplingParams

        params = [SamplingParams(
            n=g.n, temperature=g.temperature, top_p=g.top_p, max_tokens=g.max_tokens, stop=g.stop or None,
            logprobs=g.k, flat_logprobs=True, seed=request_seed(g.seed, p.id),
            detokenize=bool(g.stop),  # stop strings need vLLM's text; otherwise we decode once, below
        ) for p in prompts]
        outs = self.llm.generate([{"prompt_token_ids": ids} for ids in prompt_token_ids], params, use_tqdm=False)
        results = []
        for out, ids in zip(outs, prompt_token_ids):
            assert list(out.prompt_token_ids) == ids, "engine saw other prompt ids than we store"
            samples = []
            for c in out.outputs:
                tokens = list(c.token_ids)
                sampled, topk_ids, topk_lps = flat_rows(c.logprobs, range(len(tokens)))
                text = c.text if g.stop else self.tokenizer.decode(tokens, skip_special_tokens=True)
                samples.append(Result(ids, text, tokens, sampled, topk_ids, topk_lps, c.finish_reason or "length"))
            results.append(samples)
        return results

    def score(self, prompts, prompt_token_ids: list[list[int]], response_token_ids: list[list[int]],
              k: int) -> list[Result]:
        scored = score_answers(self.llm, prompt_token_ids, response_token_ids, k)
        return [Result(p, prompt.response, r, *rows, "given")
                for p, r, prompt, rows in zip(prompt_token_ids, response_token_ids, prompts, scored)]

    def close(self) -> None:
        llm, self.llm = self.llm, None
        stop_engine(llm)


_TOKEN_ID = re.compile(r"token_id:(\d+)$")


def _token_id(token: str) -> int:
    m = _TOKEN_ID.match(token)
    if not m:
        raise DistillError(f"OpenAI backend: server returned token {token[:20]!r}, not 'token_id:<int>' "
                           "(the server must support vLLM's return_tokens_as_token_ids)")
    return int(m.group(1))


class OpenAIBackend:
    """Any OpenAI-compatible chat server that returns top logprobs with token ids (`vllm serve`)."""

    name = "openai"

    def __init__(self, cfg, tokenizer):
        from openai import OpenAI

        t = cfg.teacher
        if not t.base_url:
            raise DistillError("teacher.base_url: required for teacher.backend=openai (e.g. http://127.0.0.1:8000/v1)")
        # The key is read here and handed to the client only: never stored, printed or written to a manifest.
        self.client = OpenAI(base_url=t.base_url, api_key=os.environ.get(t.api_key_env) or "EMPTY",
                             timeout=t.request_timeout_s, max_retries=t.max_retries)  # retries back off exponentially
        self.model = t.served_model_name or t.model
        self.tokenizer = tokenizer

    def _one(self, prompt, ids: list[int], g) -> list[Result]:
        import openai

        try:
            resp = self.client.chat.completions.create(
                model=self.model, messages=prompt.messages, n=g.n, temperature=g.temperature, top_p=g.top_p,
                max_tokens=g.max_tokens, stop=g.stop or None, logprobs=True, top_logprobs=g.k,
                seed=request_seed(g.seed, prompt.id),  # vLLM's server seeds the request with it
                extra_body={"return_tokens_as_token_ids": True, "return_token_ids": True,
                            "skip_special_tokens": True},
            )
        except openai.OpenAIError as e:
            detail = str(e).splitlines()[0] if str(e) else ""
            if self.client.api_key and self.client.api_key != "EMPTY":  # a server may echo the key in its error
                detail = detail.replace(self.client.api_key, "***")
            raise DistillError(f"{prompt.where}: OpenAI backend request failed ({type(e).__name__}: {detail})") from None
        server_ids = getattr(resp, "prompt_token_ids", None) or (resp.model_extra or {}).get("prompt_token_ids")
        if server_ids is not None and list(server_ids) != ids:
            raise DistillError(f"{prompt.where}: the server's chat template gives other prompt token ids than the "
                               "local tokenizer's (set teacher.tokenizer to the served model's tokenizer)")
        samples = []
        for choice in resp.choices:
            content = (choice.logprobs.content if choice.logprobs else None) or []
            tokens = [_token_id(c.token) for c in content]
            # The API spells -inf as -9999.0.
            sampled = [c.logprob if c.logprob > -9999.0 else -math.inf for c in content]
            topk_ids = [[_token_id(t.token) for t in c.top_logprobs] for c in content]
            topk_lps = [[t.logprob if t.logprob > -9999.0 else -math.inf for t in c.top_logprobs] for c in content]
            text = choice.message.content or ""
            samples.append(Result(ids, text, tokens, sampled, topk_ids, topk_lps, choice.finish_reason or "length"))
        return samples

    def generate(self, prompts, prompt_token_ids: list[list[int]], g) -> list[list[Result]]:
        with ThreadPoolExecutor(OPENAI_CONCURRENCY) as pool:
            return list(pool.map(lambda p, ids: self._one(p, ids, g), prompts, prompt_token_ids))

    def score(self, prompts, prompt_token_ids, response_token_ids, k):
        raise DistillError("generate.mode=score needs teacher.backend=vllm (chat APIs do not return prompt logprobs)")

    def close(self) -> None:
        self.client.close()
