"""Small generate-only run configs for tests and benchmarks (no pytest import, so bench/ can use it too)."""

from __future__ import annotations

from pathlib import Path

from distill.config import Config, load_config


def generate_overrides(teacher: Path | str, prompts: Path | str, run_dir: Path | str, *extra: str, k: int = 5,
                       max_tokens: int = 8, shard_size: int = 6) -> list[str]:
    """Overrides for a run that generates from one corpus (no held-out set) with a small k and short answers."""
    return [f"teacher.model={teacher}", f"generate.prompts={prompts}", "generate.heldout_prompts=null",
            f"run.dir={run_dir}", f"generate.k={k}", f"generate.max_tokens={max_tokens}",
            f"generate.shard_size={shard_size}", *extra]


def generate_config(teacher: Path | str, prompts: Path | str, run_dir: Path | str, *extra: str, **sizes) -> Config:
    return load_config(None, generate_overrides(teacher, prompts, run_dir, *extra, **sizes))
