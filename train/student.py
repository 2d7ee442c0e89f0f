"""The student model: made from the teacher by keeping N of its layers (chosen by train/prune.py), or loaded from
a folder or hub id."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import torch

from distill.errors import DistillError
from distill.models import load_causal_lm, load_tokenizer

MARKER = "student_init.json"  # written last: its presence means the folder is complete


def calibration_batch(shard_dir: Path, n_records: int, max_seq_len: int, pad_token_id: int) -> dict:
    """The first n_records records of the training shards, collated. In a set that mixes references
    (generate.references) with the teacher's own answers, only the teacher's count: the layers are scored on what the
    teacher writes."""
    from distill import shards as sh
    from distill.batches import DROPPED, DistillCollator, example_row

    manifest = sh.open_shard_set(Path(shard_dir))
    references = (manifest.get("responses") or {}).get("references")
    skip_references = bool(references) and references["prompts"] < manifest["corpus"]["prompts"]
    rows = []
    for ex in sh.read_examples(Path(shard_dir), manifest):
        row = example_row(ex, max_seq_len, "truncate")
        if row["status"] != DROPPED and not (skip_references and row["reference"]):
            rows.append(row)
        if len(rows) == n_records:
            break
    if not rows:
        raise DistillError(f"{shard_dir}: no usable records to choose the student's layers with (each prompt alone "
                           f"fills train.max_seq_len={max_seq_len})")
    return DistillCollator(pad_token_id=pad_token_id)(rows)


def make_student_from_teacher(teacher_dir: str | Path, n_layers: int, out_dir: str | Path, method: str = "even",
                              shard_dir: Path | None = None, n_records: int = 0, max_seq_len: int = 1024) -> Path:
    """Copy the teacher keeping `n_layers` of its decoder layers, chosen by `method` (train/prune.py) on the first
    `n_records` records of the training shards; float32 safetensors + the teacher's tokenizer + student_init.json."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from distill.train.prune import select_layers

    teacher_dir, out_dir = Path(teacher_dir), Path(out_dir)
    want = {"teacher": str(teacher_dir), "n_layers": n_layers, "method": method,
            "calibration_records": n_records if method != "even" else None}
    if (out_dir / MARKER).is_file():
        made = json.loads((out_dir / MARKER).read_text())
        if {k: made.get(k) for k in want} != want:
            raise DistillError(f"{out_dir} holds a student made with other settings ({made.get('n_layers')} layers "
                               f"of {made.get('teacher')} by {made.get('method')}); delete it or use another run.dir")
        return out_dir
    if not teacher_dir.is_dir():
        raise DistillError(f"teacher.model {teacher_dir}: no such model folder (needed to make the student)")

    model = AutoModelForCausalLM.from_pretrained(teacher_dir, dtype=torch.float32, use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    start = time.time()
    batch = (calibration_batch(shard_dir, n_records, max_seq_len, tokenizer.pad_token_id or 0)
             if method != "even" else None)
    keep, record = select_layers(method, model, batch, n_layers)
    record["seconds"] = time.time() - start
    if batch is not None:
        record["calibration_tokens"] = int(batch["response_mask"].sum())
    n_teacher_layers = len(model.get_decoder().layers)
    cut_layers(model, keep)
    n_params = sum(p.numel() for p in model.parameters())
    save_atomically(model, tokenizer, out_dir, {**want, "kept_layers": keep, "teacher_layers": n_teacher_layers,
                                                "parameters": n_params, "selection": record})
    kl = f", calibration KL {record['calibration_kl']:.3f}" if "calibration_kl" in record else ""
    print(f"[train] student_init: kept layers {keep} of {n_teacher_layers} by {method}{kl} "
          f"({n_params / 1e6:.1f}M parameters, {record['seconds']:.0f} s) -> {out_dir}")
    return out_dir


def cut_layers(model, keep: list[int]) -> None:
    """Keep only the decoder layers `keep`, renumbered, with the config to match."""
    decoder = model.get_decoder()
    decoder.layers = torch.nn.ModuleList(decoder.layers[i] for i in keep)
    for new_idx, layer in enumerate(decoder.layers):
        if hasattr(getattr(layer, "self_attn", None), "layer_idx"):
            layer.self_attn.layer_idx = new_idx  # the KV cache is indexed by position in the stack
    config = model.config.get_text_config()
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[i] for i in keep]
    config.num_hidden_layers = len(keep)
    model.config.dtype = torch.float32


def save_atomically(model, tokenizer, out_dir: Path, record: dict) -> None:
    """Temp folder + rename: an interrupted run never leaves a half-written student behind."""
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / MARKER).write_text(json.dumps(record, indent=2) + "\n")
    if out_dir.exists():  # a folder without the marker is a leftover of an older, interrupted attempt
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out_dir)


def load_student(path: str | Path, cfg) -> torch.nn.Module:
    return load_causal_lm(str(path), "student.model", cfg.student.trust_remote_code, cfg.student.allow_pickle)


def load_student_tokenizer(path: str | Path, cfg):
    return load_tokenizer(str(path), "student.model", cfg.student.trust_remote_code)


def check_lora_targets(model, target_modules: list[str]) -> None:
    """LoRA on the output layer would never train: the loss multiplies by the layer's weight, not through its
    forward."""
    head = model.get_output_embeddings()
    head_name = next((n for n, m in model.named_modules() if m is head), "")
    if head_name and (head_name in target_modules or head_name.rsplit(".", 1)[-1] in target_modules):
        raise DistillError(f"train.lora.target_modules: LoRA on the output layer ({head_name}) is not supported; "
                           "the chunked KD loss multiplies by its weight directly and would ignore the adapter")
