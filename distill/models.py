"""Model folders and hub ids: one rule to tell them apart, safe loading, the chat template, size on disk.

Loading is safe by default: weights come from safetensors, pickle files (*.bin) are refused unless the config
allows them, and a model's own code runs only when trust_remote_code is set for it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from distill.errors import DistillError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def looks_local(where: str) -> bool:
    """An existing path, or one written as a path (./x, /x, ~/x)."""
    return Path(where).exists() or str(where).startswith((".", "/", "~"))


def is_hub_id(where: str) -> bool:
    """`owner/name` that is not a local path; anything else is a local folder."""
    return not looks_local(where) and str(where).count("/") == 1


def check_model_path(where: str, key: str) -> None:
    """A local model must be a folder; a hub id is left to from_pretrained."""
    if not is_hub_id(where) and not Path(where).is_dir():
        raise DistillError(f"{key} {where}: no such model folder")


def load_tokenizer(where: str, key: str, trust_remote_code: bool = False):
    """The model's tokenizer, or one line naming the config key when it cannot be loaded."""
    from transformers import AutoTokenizer

    check_model_path(str(where), key)
    try:
        return AutoTokenizer.from_pretrained(str(where), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise DistillError(f"{key} {where}: cannot load its tokenizer ({str(e).splitlines()[0]})") from None


def chat_ids(tokenizer, messages_list: list[list[dict]]) -> list[list[int]]:
    """Token ids of each conversation through the model's own chat template, ready for the assistant's turn.

    The template adds the special tokens itself, so the text is tokenised without adding them again."""
    texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in messages_list]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def check_weights_format(where: str, allow_pickle: bool, key: str) -> None:
    """Refuse pickle weights (*.bin/*.pt, which can run code when loaded) unless allowed."""
    folder = Path(where)
    if not folder.is_dir():
        return
    names = [p.name for p in folder.iterdir()]
    has_safe = any(n.endswith(".safetensors") for n in names)
    has_pickle = any(n.endswith((".bin", ".pt", ".pth")) and n != "training_args.bin" for n in names)
    if not has_safe and has_pickle and not allow_pickle:
        raise DistillError(f"{key} {where}: only pickle weights (*.bin), which can run code when loaded; "
                           "convert them to safetensors or set student.allow_pickle=true if you trust the source")
    if not has_safe and not has_pickle:
        raise DistillError(f"{key} {where}: no model weights (*.safetensors) in the folder")


def load_causal_lm(where: str, key: str, trust_remote_code: bool = False, allow_pickle: bool = False):
    """AutoModelForCausalLM in float32 on the CPU (the trainer moves it to the accelerator)."""
    import torch
    from transformers import AutoModelForCausalLM

    where = str(where)
    check_model_path(where, key)
    check_weights_format(where, allow_pickle, key)
    try:
        return AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, trust_remote_code=trust_remote_code,
                                                    use_safetensors=None if allow_pickle else True)
    except (OSError, ValueError) as e:
        raise DistillError(f"{key} {where}: cannot load it ({str(e).splitlines()[0]})") from None


def weight_files(where: str) -> list[Path]:
    """The weight files of a model folder, or of a hub model already in the local cache."""
    folder = Path(where)
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(where, local_files_only=True))
        except Exception:  # not downloaded (or no hub access): the size is unknown
            return []
    return sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES)


def count_params(files: list[Path]) -> int | None:
    """Parameters from the safetensors headers (no weights loaded); None for other formats."""
    total, seen = 0, False
    for f in files:
        if f.suffix != ".safetensors":
            continue
        with open(f, "rb") as fh:
            header = json.loads(fh.read(struct.unpack("<Q", fh.read(8))[0]))
        for name, info in header.items():
            if name != "__metadata__":
                n = 1
                for d in info["shape"]:
                    n *= d
                total += n
                seen = True
    return total if seen else None


def weights_fingerprint(where: str) -> str | None:
    """sha256 over a model folder's weight files (names and contents); None for a hub id or a remote model."""
    import hashlib

    from distill.files import sha256_file

    folder = Path(where)
    if not folder.is_dir():
        return None
    h = hashlib.sha256()
    for p in sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES):
        h.update(p.name.encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def logits_size(where: str) -> int | None:
    """The model's output size (config vocab_size): every token id it can produce is below it."""
    path = Path(where) / "config.json"
    if not path.is_file():
        return None
    config = json.loads(path.read_text())
    return config.get("vocab_size") or config.get("text_config", {}).get("vocab_size")


def teacher_entry(t) -> dict:
    """The manifest's `teacher` field for the teacher config section `t`: what made the shards' top-k."""
    from distill.config import resolve_dtype

    local = t.backend == "vllm"
    return {
        "name": t.model if local else (t.served_model_name or t.model),
        "backend": t.backend,
        "weights_sha256": weights_fingerprint(t.model) if local else None,
        "logits_size": logits_size(t.model if Path(t.model).is_dir() else (t.tokenizer or t.model)),
        "dtype": resolve_dtype(t.dtype) if local else None,
    }
