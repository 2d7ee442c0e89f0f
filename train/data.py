"""Shards -> a `datasets.Dataset` on disk (never the whole corpus in memory), one row per record.

The row layout and the collator that pads rows into batches are shared with teacher-forced scoring
(distill/batches.py). Truncated and dropped rows are counted here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from datasets import Dataset, Features, List, Value
from datasets.exceptions import DatasetGenerationError

from distill import shards as sh
from distill.batches import DROPPED, TRUNCATED, example_row
from distill.errors import DistillError

FEATURES = Features({
    "id": Value("string"),
    "status": Value("int8"),
    "input_ids": List(Value("int32")),
    "response_start": Value("int32"),
    "topk_ids": List(List(Value("int32"))),
    "topk_probs": List(List(Value("float32"))),
    "teacher_logprobs": List(Value("float32")),
    "onpolicy": Value("int8"),
    "ce_weight": Value("float32"),
    "kd_weight": Value("float32"),
    "task": Value("string"),
})


def _rows(folder: str, manifest_sha256: str, max_seq_len: int, too_long: str):
    # manifest_sha256 is unused here but part of gen_kwargs: datasets keys its cache on them, so new shards in the
    # same folder get a new cache instead of a stale one.
    manifest = sh.open_shard_set(Path(folder))
    for ex in sh.read_examples(Path(folder), manifest):
        yield example_row(ex, max_seq_len, too_long)


def build_dataset(folder: Path, max_seq_len: int, too_long: str, cache_dir: Path) -> tuple[Dataset, dict]:
    """The dataset of kept rows, and counts {records, truncated, dropped, tokens}."""
    manifest_sha = hashlib.sha256((Path(folder) / sh.MANIFEST).read_bytes()).hexdigest()
    try:
        ds = Dataset.from_generator(_rows, features=FEATURES, cache_dir=str(cache_dir),
                                    gen_kwargs={"folder": str(folder), "manifest_sha256": manifest_sha,
                                                "max_seq_len": max_seq_len, "too_long": too_long})
    except DatasetGenerationError as e:
        if isinstance(e.__cause__, DistillError):
            raise e.__cause__ from None
        raise
    status = np.asarray(ds.data.column("status"))
    counts = {"records": len(ds), "truncated": int((status == TRUNCATED).sum()),
              "dropped": int((status == DROPPED).sum())}
    if counts["dropped"]:
        ds = ds.filter(lambda s: s != DROPPED, input_columns="status")
    if len(ds) == 0:
        raise DistillError(f"{folder}: no usable records (all {counts['records']} dropped: each prompt alone fills "
                           f"train.max_seq_len={max_seq_len})")
    return ds, counts


def split_eval(ds: Dataset, eval_fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Hold out a deterministic fraction (at least one row) for in-training evaluation, if there is room."""
    if eval_fraction <= 0 or len(ds) < 2:
        return ds, None
    parts = ds.train_test_split(test_size=eval_fraction, seed=seed, shuffle=True)
    return parts["train"], parts["test"]
