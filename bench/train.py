"""Cost of one training step of the default student, KD vs plain SFT: time and peak memory.

Model: SmolLM2-135M-Instruct pruned to 18 of 30 layers (the default student's size: 92.0M parameters, float32),
made with train/student.py.
Batch: 8 sequences, prompt 36-44 + response 120-136 tokens (synthetic ids), a synthetic top-20 teacher
(0.84 of the mass in the top-20 on average, as measured for SmolLM2 in shared/FINDINGS.md), built as tensors.
Variants, each one full step (forward, backward, AdamW step) on the same model and batch:
    sft    the plain Hugging Face step: model(input_ids, labels=...) with the prompt masked (its own loss)
    kd     our step: 0.5 CE + 0.5 top-k forward KL with the tail bucket, through train.trainer.batch_loss_sums,
           which DistillTrainer's patched forward calls (final hidden states -> chunked, checkpointed loss_sums)
    kd_w0  our step with w_kd = 0 (the SFT ablation: KD skipped)
    dense  a naive KD step: full [B, T, V] logits, the teacher scattered into a dense [B, T, V] tensor, KL by torch
    kd_ul  the default run's loss: CE, KD and the token-level unlikelihood of repeats at configs/default.yaml's
           weights (the weights scale the terms; a step computes the same whatever they are)
    kd_feature  kd plus feature distillation: the full 30-layer teacher runs online (no_grad) on the same batch and
           each kept student layer's output is pulled towards the teacher layer it came from (1 - cosine);
           the teacher is loaded at the first step, so its weights count in this variant's peak memory
Time: median of >= 5 timed steps after 2 warm-up steps, the variants interleaved step by step in one process
(on a shared machine, other load then hits every variant alike). Peak memory: each variant runs two steps in a
fresh subprocess; after the model and batch are built the kernel's peak-RSS counter is reset (`echo 5 > /proc/self/clear_refs`),
and the peak is VmHWM - VmRSS at that point, read after the last step (it includes AdamW's state, allocated at
the first step, for every variant alike). Falls back to ru_maxrss deltas where clear_refs is unavailable.

    python bench/train.py [--steps 5] [--warmup 2]     (or: bash bench/train.sh)
Writes bench/results/train.json and the train section of bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/: this file's own name would shadow the `train` package
sys.path.insert(1, str(ROOT / "scripts"))
import results  # noqa: E402  (scripts/results.py: the commit a measurement ran on)
from distill.config import load_config  # noqa: E402

TEACHER = ROOT / "models" / "smollm2-135m-instruct"
DEFAULT = load_config(ROOT / "configs" / "default.yaml")  # the default run: its student's depth and loss weights
N_LAYERS = DEFAULT.student.from_teacher_layers
STUDENT = ROOT / "bench" / "work" / f"student_init_{N_LAYERS}"
RESULTS = ROOT / "bench" / "results" / "train.json"
VARIANTS = ("sft", "kd", "kd_w0", "kd_ul", "dense", "kd_feature")
B, K, TOP_MASS = 8, 20, 0.84


def memory_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB from /proc, or ru_maxrss for both when /proc is not there."""
    try:
        status = Path("/proc/self/status").read_text()
        return (int(re.search(r"VmRSS:\s+(\d+)", status).group(1)), int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))
    except (OSError, AttributeError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak, peak


def reset_peak() -> str:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "VmHWM after clear_refs reset, minus VmRSS at the reset"
    except OSError:
        return "ru_maxrss delta (clear_refs unavailable: a peak during model load may hide part of the step's)"


def make_batch(vocab: int, seed: int = 0) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    prompts = torch.randint(36, 45, (B,), generator=g).tolist()
    responses = torch.randint(120, 137, (B,), generator=g).tolist()
    seq, resp = max(p + r for p, r in zip(prompts, responses)), max(responses)
    batch = {"input_ids": torch.full((B, seq), 2, dtype=torch.long), "attention_mask": torch.zeros(B, seq, dtype=torch.long),
             "response_mask": torch.zeros(B, seq, dtype=torch.bool), "topk_ids": torch.zeros(B, resp, K, dtype=torch.long),
             "topk_probs": torch.zeros(B, resp, K), "topk_mask": torch.zeros(B, resp, dtype=torch.bool)}
    for i, (p, r) in enumerate(zip(prompts, responses)):
        batch["input_ids"][i, : p + r] = torch.randint(3, vocab, (p + r,), generator=g)
        batch["attention_mask"][i, : p + r] = 1
        batch["response_mask"][i, p : p + r] = True
        for t in range(r):
            ids = torch.randperm(vocab, generator=g)[:K]
            ids[0] = batch["input_ids"][i, p + t]  # the sampled token is in the teacher's top-k, as usual
            batch["topk_ids"][i, t] = ids.sort().values
        probs = torch.softmax(torch.randn(r, K, generator=g) * 2, dim=-1) * TOP_MASS
        batch["topk_probs"][i, :r] = probs
        batch["topk_mask"][i, :r] = True
    labels = batch["input_ids"].clone()
    labels[~batch["response_mask"]] = -100
    batch["labels"] = labels
    return batch


def setup():
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(STUDENT, dtype=torch.float32).train()
    return model, make_batch(model.config.vocab_size), torch.optim.AdamW(model.parameters(), lr=1e-5)


_FEATURES = {}


def feature_distiller(model):
    """The online teacher (loaded once, on first use) and the student's layer map from its student_init.json."""
    if "d" not in _FEATURES:
        import torch
        from transformers import AutoModelForCausalLM

        from distill.train.features import FeatureDistiller, layer_map

        teacher = AutoModelForCausalLM.from_pretrained(TEACHER, dtype=torch.float32)
        _FEATURES["d"] = FeatureDistiller(teacher, model, layer_map(STUDENT, None), "cosine", True)
    return _FEATURES["d"]


def loss_of(variant: str, model, batch: dict):
    """The loss of one step of `variant` (forward only; the caller runs backward and the optimizer)."""
    import torch
    import torch.nn.functional as F

    from distill.losses import HELDOUT_KL
    from distill.scoring import Objective, batch_loss_sums, batch_loss_terms

    if variant == "sft":
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    if variant == "kd_feature":
        keys = ("input_ids", "attention_mask", "response_mask", "topk_ids", "topk_probs", "topk_mask")
        sub = {k: batch[k] for k in keys}
        hidden, feature = feature_distiller(model).terms(model, sub)
        terms = batch_loss_terms(model, sub, Objective(HELDOUT_KL, True, 1024), hidden=hidden)
        return (0.5 * terms["ce"] + 0.5 * terms["kd"] + feature) / terms["n"]
    if variant == "kd_ul":
        keys = ("input_ids", "attention_mask", "response_mask", "topk_ids", "topk_probs", "topk_mask")
        terms = batch_loss_terms(model, {k: batch[k] for k in keys}, Objective(HELDOUT_KL, True, 1024,
                                                                              unlikelihood=True))
        t = DEFAULT.train
        return (t.w_ce * terms["ce"] + t.w_kd * terms["kd"] + t.w_unlikelihood * terms["ul"]) / terms["n"]
    if variant in ("kd", "kd_w0"):  # what DistillTrainer.compute_loss gets from the model's patched forward
        keys = ("input_ids", "attention_mask", "response_mask", "topk_ids", "topk_probs", "topk_mask")
        with_kd = variant == "kd"
        ce, kd, n = batch_loss_sums(model, {k: batch[k] for k in keys}, HELDOUT_KL,
                                    with_kd, chunk_rows=1024)
        return (0.5 * ce + 0.5 * kd) / n if with_kd else ce / n
    # dense: full logits, dense teacher, KL by torch
    vocab = model.config.vocab_size
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    sel = batch["response_mask"][:, 1:]
    log_q = torch.log_softmax(logits.float(), dim=-1)  # [B, T-1, V]
    teacher = torch.zeros_like(log_q)  # [B, T-1, V]
    teacher[sel] = torch.zeros(int(sel.sum()), vocab).scatter_(
        -1, batch["topk_ids"][batch["topk_mask"]], batch["topk_probs"][batch["topk_mask"]])
    kl = (teacher * (teacher.clamp_min(1e-12).log() - log_q)).sum(-1)[sel].mean()
    ce = F.nll_loss(log_q[sel], batch["input_ids"][:, 1:][sel])
    return 0.5 * ce + 0.5 * kl


def step(variant: str, model, batch: dict, opt) -> float:
    loss = loss_of(variant, model, batch)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss)


def child_memory(variant: str) -> dict:
    """Peak memory of `variant` in this fresh process: two steps (AdamW allocates its state in the first)."""
    model, batch, opt = setup()
    rss0, _ = memory_kb()
    method = reset_peak()
    base_rss, base_peak = memory_kb()
    first_loss = step(variant, model, batch, opt)
    step(variant, model, batch, opt)
    _, peak = memory_kb()
    baseline = base_rss if base_peak == base_rss else base_peak  # after a reset HWM == RSS; else ru_maxrss
    return {"variant": variant, "peak_mem_mb": (peak - baseline) / 1024, "rss_after_load_mb": rss0 / 1024,
            "memory_method": method, "first_loss": first_loss,
            "tokens_per_step": int(batch["response_mask"].sum()), "seq_len": int(batch["input_ids"].shape[1]),
            "parameters": sum(p.numel() for p in model.parameters())}


def child_time(steps: int, warmup: int) -> dict:
    """Step times of every variant on one model, interleaved round by round, so that load from other processes
    on a shared machine hits every variant alike."""
    model, batch, opt = setup()
    times = {v: [] for v in VARIANTS}
    for i in range(warmup + steps):
        for v in VARIANTS:
            t0 = time.perf_counter()
            step(v, model, batch, opt)
            if i >= warmup:
                times[v].append(time.perf_counter() - t0)
    return times


def write_readme(result: dict) -> None:
    from bench.sections import replace_section

    r, t = result["variants"], DEFAULT.train
    rows = "\n".join(
        f"| {name} | {r[name]['step_s']:.2f} | {r[name]['step_s'] / r['sft']['step_s']:.2f} | "
        f"{r[name]['peak_mem_mb']:.0f} | {r[name]['peak_mem_mb'] / r['sft']['peak_mem_mb']:.2f} |" for name in VARIANTS)
    replace_section("train", f"""## train: one training step, KD vs plain SFT (`bash bench/train.sh`)

{result['model']}; batch {result['batch']}; {result['machine']}.
Median of {result['steps']} timed steps after {result['warmup']} warm-up steps; peak memory = {result['memory_method']},
each variant in a fresh process (AdamW state included alike). Goals: KD/SFT time <= 1.15, peak memory <= 1.15.

| variant | step (s) | time / sft | peak mem (MB) | mem / sft |
|---|---|---|---|---|
{rows}

sft = the plain Hugging Face step (`model(input_ids, labels=...)`, prompt masked); kd = our trainer's loss path,
0.5 CE + 0.5 top-20 forward KL with the tail bucket; kd_w0 = our path with w_kd = 0; kd_ul = the default run's
loss, {t.w_ce:g} CE + {t.w_kd:g} KD + {t.w_unlikelihood:g} x the token-level unlikelihood of repeats; dense = naive KD
with full [B, T, V] logits and a dense teacher tensor; kd_feature = kd plus feature distillation against the full
teacher run online on the same batch (its weights, loaded at the first step, count in its peak memory). Raw
numbers: `bench/results/train.json` (`{result['command']}`, commit {result['commit']}).""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--memory", choices=VARIANTS, help="(internal) measure one variant's peak memory")
    parser.add_argument("--time", action="store_true", help="(internal) time every variant, interleaved")
    args = parser.parse_args()
    if args.memory or args.time:
        result = child_memory(args.memory) if args.memory else child_time(args.steps, args.warmup)
        print("RESULT " + json.dumps(result), flush=True)
        return

    from distill.train.student import make_student_from_teacher

    make_student_from_teacher(TEACHER, N_LAYERS, STUDENT)  # evenly spaced: the selection does not change a step's cost

    def child(*flags: str) -> dict:
        proc = subprocess.run([sys.executable, __file__, *flags, "--steps", str(args.steps), "--warmup",
                               str(args.warmup)], cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"[bench] {' '.join(flags)} failed:\n{proc.stderr[-3000:]}")
        return json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))[7:])

    variants = {name: child("--memory", name) for name in VARIANTS}
    times = child("--time")
    for name, v in variants.items():
        v["step_times_s"] = times[name]
        v["step_s"] = statistics.median(times[name])
        print(f"[bench] {name:6s} {v['step_s']:.2f} s/step  peak +{v['peak_mem_mb']:.0f} MB  loss {v['first_loss']:.3f}")
    import torch

    sft = variants["sft"]
    result = {
        "time_ratio_kd_over_sft": variants["kd"]["step_s"] / sft["step_s"],
        "peak_mem_ratio_kd_over_sft": variants["kd"]["peak_mem_mb"] / sft["peak_mem_mb"],
        "time_ratio_dense_over_sft": variants["dense"]["step_s"] / sft["step_s"],
        "peak_mem_ratio_dense_over_sft": variants["dense"]["peak_mem_mb"] / sft["peak_mem_mb"],
        "time_ratio_kd_w0_over_sft": variants["kd_w0"]["step_s"] / sft["step_s"],
        "time_ratio_kd_ul_over_kd": variants["kd_ul"]["step_s"] / variants["kd"]["step_s"],
        "peak_mem_ratio_kd_ul_over_kd": variants["kd_ul"]["peak_mem_mb"] / variants["kd"]["peak_mem_mb"],
        "time_ratio_kd_feature_over_kd": variants["kd_feature"]["step_s"] / variants["kd"]["step_s"],
        "peak_mem_ratio_kd_feature_over_kd": variants["kd_feature"]["peak_mem_mb"] / variants["kd"]["peak_mem_mb"],
        "peak_mem_ratio_kd_w0_over_sft": variants["kd_w0"]["peak_mem_mb"] / sft["peak_mem_mb"],
        "commit": results.commit(),
        "command": f"python bench/train.py --steps {args.steps} --warmup {args.warmup}",
        "model": f"SmolLM2-135M-Instruct pruned to {N_LAYERS} of 30 layers ({sft['parameters'] / 1e6:.1f}M "
                 "parameters), float32, AdamW",
        "batch": f"{B} sequences, prompt 36-44 + response 120-136 tokens (padded to {sft['seq_len']}), "
                 f"{sft['tokens_per_step']} response tokens, synthetic top-{K} teacher",
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__} "
                   f"({torch.get_num_threads()} threads), {platform.processor() or platform.platform()}",
        "memory_method": sft["memory_method"],
        "steps": args.steps,
        "warmup": args.warmup,
        "variants": variants,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    write_readme(result)
    print(f"[bench] KD/SFT time {result['time_ratio_kd_over_sft']:.2f}, peak memory "
          f"{result['peak_mem_ratio_kd_over_sft']:.2f}; dense/SFT time {result['time_ratio_dense_over_sft']:.2f}, "
          f"memory {result['peak_mem_ratio_dense_over_sft']:.2f} -> {RESULTS}")


if __name__ == "__main__":
    main()
