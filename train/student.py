"""The student model: made from the teacher by keeping N evenly spaced layers, or loaded from a folder/hub id."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from distill.errors import DistillError

MARKER = "student_init.json"  # written last: its presence means the folder is complete


def kept_layers(n_total: int, n_keep: int) -> list[int]:
    """Indices round(i * (L - 1) / (N - 1)): evenly spaced, first and last included."""
    if not 1 <= n_keep <= n_total:
        raise DistillError(f"student.from_teacher_layers={n_keep}: the teacher has {n_total} layers")
    if n_keep == 1:
        return [0]
    return [round(i * (n_total - 1) / (n_keep - 1)) for i in range(n_keep)]


def make_student_from_teacher(teacher_dir: str | Path, n_layers: int, out_dir: str | Path) -> Path:
    """Copy the teacher keeping `n_layers` of its decoder layers; float32 safetensors + the teacher's tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    teacher_dir, out_dir = Path(teacher_dir), Path(out_dir)
    want = {"teacher": str(teacher_dir), "n_layers": n_layers}
    if (out_dir / MARKER).is_file():
        made = json.loads((out_dir / MARKER).read_text())
        if {k: made.get(k) for k in want} != want:
            raise DistillError(f"{out_dir} holds a student made from {made.get('teacher')} keeping "
                               f"{made.get('n_layers')} layers, not {teacher_dir} keeping {n_layers}; "
                               "delete it or use another run.dir")
        return out_dir
    if not teacher_dir.is_dir():
        raise DistillError(f"teacher.model {teacher_dir}: no such model folder (needed to make the student)")

    model = AutoModelForCausalLM.from_pretrained(teacher_dir, dtype=torch.float32, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    layers = model.get_decoder().layers
    keep = kept_layers(len(layers), n_layers)
    model.get_decoder().layers = torch.nn.ModuleList(layers[i] for i in keep)
    for new_idx, layer in enumerate(model.get_decoder().layers):
        if hasattr(getattr(layer, "self_attn", None), "layer_idx"):
            layer.self_attn.layer_idx = new_idx  # the KV cache is indexed by position in the stack
    config = model.config.get_text_config()
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[i] for i in keep]
    config.num_hidden_layers = n_layers
    model.config.dtype = torch.float32

    # Temp folder + rename: an interrupted run never leaves a half-written student behind.
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    n_params = sum(p.numel() for p in model.parameters())
    (tmp / MARKER).write_text(json.dumps({**want, "kept_layers": keep, "teacher_layers": len(layers),
                                          "parameters": n_params}, indent=2) + "\n")
    if out_dir.exists():  # a folder without the marker is a leftover of an older, interrupted attempt
        shutil.rmtree(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, out_dir)
    print(f"[train] student_init: kept layers {keep} of {len(layers)} ({n_params / 1e6:.1f}M parameters) -> {out_dir}")
    return out_dir


def check_weights_format(path: str, allow_pickle: bool) -> None:
    """Refuse pickle weights (*.bin/*.pt, which can run code when loaded) unless student.allow_pickle is set."""
    folder = Path(path)
    if not folder.is_dir():
        return
    names = [p.name for p in folder.iterdir()]
    has_safe = any(n.endswith(".safetensors") for n in names)
    has_pickle = any(n.endswith((".bin", ".pt", ".pth")) and n != "training_args.bin" for n in names)
    if not has_safe and has_pickle and not allow_pickle:
        raise DistillError(f"student.model {path}: only pickle weights (*.bin), which can run code when loaded; "
                           "convert them to safetensors or set student.allow_pickle=true if you trust the source")
    if not has_safe and not has_pickle:
        raise DistillError(f"student.model {path}: no model weights (*.safetensors) in the folder")


def check_path(path: str) -> None:
    """A local path (anything but `org/name`) must be a folder; a hub id is left to from_pretrained."""
    local = Path(path).exists() or path.startswith((".", "/", "~")) or path.count("/") != 1
    if local and not Path(path).is_dir():
        raise DistillError(f"student model {path}: no such model folder")


def load_student(path: str | Path, cfg) -> torch.nn.Module:
    """AutoModelForCausalLM in float32 on CPU (the Trainer moves it to the accelerator)."""
    from transformers import AutoModelForCausalLM

    s, path = cfg.student, str(path)
    check_path(path)
    check_weights_format(path, s.allow_pickle)
    use_safetensors = None if s.allow_pickle else True
    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, trust_remote_code=s.trust_remote_code,
                                                    use_safetensors=use_safetensors)
    except (OSError, ValueError) as e:
        raise DistillError(f"student model {path}: cannot load it ({str(e).splitlines()[0]})") from None


def load_tokenizer(path: str | Path, cfg):
    from transformers import AutoTokenizer

    check_path(str(path))
    try:
        return AutoTokenizer.from_pretrained(str(path), trust_remote_code=cfg.student.trust_remote_code)
    except (OSError, ValueError) as e:
        raise DistillError(f"student model {path}: cannot load its tokenizer ({str(e).splitlines()[0]})") from None
