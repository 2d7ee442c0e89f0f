"""Shared test fixtures: tiny random models that use the real SmolLM2 tokenizer.

The default teacher folder is made by scripts/setup.sh (tests run through scripts/test.sh, which calls it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEACHER_DIR = REPO / "models" / "smollm2-135m-instruct"
SHARED = REPO.parent / "shared"

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_tiny_llama(out_dir: Path, *, layers: int = 2, hidden: int = 64, seed: int = 0) -> Path:
    """A random Llama with SmolLM2's tokenizer and chat template, fast enough for training tests on CPU.

    head_dim is hidden // 4, and vLLM's CPU attention needs head_dim >= 32: use hidden >= 128 for a model vLLM runs.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if not TEACHER_DIR.is_dir():
        pytest.fail(f"{TEACHER_DIR} is missing: run `bash scripts/setup.sh` first")
    tokenizer = AutoTokenizer.from_pretrained(TEACHER_DIR)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden // 4,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        initializer_range=0.6,  # peaked next-token distributions, so the top-k holds real mass (like a trained model)
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-teacher", layers=2, hidden=64, seed=0)


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-student", layers=1, hidden=32, seed=1)


@pytest.fixture(scope="session")
def default_teacher() -> Path:
    if not TEACHER_DIR.is_dir():
        pytest.fail(f"{TEACHER_DIR} is missing: run `bash scripts/setup.sh` first")
    return TEACHER_DIR
