"""Shards -> a `datasets.Dataset` on disk (never the whole corpus in memory) -> padded batches.

One row per record: input_ids = prompt + response, response_start = len(prompt), and the teacher's top-k for each
response token (ragged lists). Rows too long for train.max_seq_len are truncated (response tail dropped) or fail,
by train.too_long; a prompt that leaves no room for a response token is dropped. Both are counted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, Features, List, Value
from datasets.exceptions import DatasetGenerationError

from distill import shards as sh
from distill.errors import DistillError

OK, TRUNCATED, DROPPED = 0, 1, 2

FEATURES = Features({
    "id": Value("string"),
    "status": Value("int8"),
    "input_ids": List(Value("int32")),
    "response_start": Value("int32"),
    "topk_ids": List(List(Value("int32"))),
    "topk_probs": List(List(Value("float32"))),
})


def example_row(ex: sh.Example, max_seq_len: int, too_long: str) -> dict:
    """One dataset row from a decoded record (also used by teacher_forced.py, so eval sees the same rows)."""
    prompt, response = ex.prompt_token_ids.tolist(), ex.response_token_ids.tolist()
    n_resp = len(response)
    status = OK
    if len(prompt) + n_resp > max_seq_len:
        if too_long == "fail":
            raise DistillError(f"record {ex.id}: {len(prompt)} prompt + {n_resp} response tokens exceed "
                               f"train.max_seq_len={max_seq_len} (set train.too_long=truncate to cut the response)")
        n_resp = max(max_seq_len - len(prompt), 0)
        status = TRUNCATED
    if n_resp == 0:  # the prompt alone fills the context (or the teacher said nothing): nothing to learn from
        return {"id": ex.id, "status": DROPPED, "input_ids": [], "response_start": 0, "topk_ids": [], "topk_probs": []}
    return {
        "id": ex.id,
        "status": status,
        "input_ids": prompt + response[:n_resp],
        "response_start": len(prompt),
        "topk_ids": ex.topk.ids[:n_resp].tolist(),
        "topk_probs": ex.topk.probs[:n_resp].tolist(),
    }


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


@dataclass
class DistillCollator:
    """Pads a list of rows to the batch's longest sequence, response and top-k width.

    Returns input_ids/attention_mask [B, L]; response_mask [B, L] (True on response tokens); topk_ids/topk_probs
    [B, R, K] and topk_mask [B, R] (True on real response rows), R = longest response, K = widest top-k.
    Flattening response_mask[:, 1:] and topk_mask row-major visits the response tokens in the same order.
    """

    pad_token_id: int

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        b = len(rows)
        seq_len = max(len(r["input_ids"]) for r in rows)
        resp_len = max(len(r["input_ids"]) - r["response_start"] for r in rows)
        width = max(max((len(t) for t in r["topk_ids"]), default=0) for r in rows)
        input_ids = torch.full((b, seq_len), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((b, seq_len), dtype=torch.long)
        response_mask = torch.zeros((b, seq_len), dtype=torch.bool)
        topk_ids = torch.zeros((b, resp_len, width), dtype=torch.long)
        topk_probs = torch.zeros((b, resp_len, width), dtype=torch.float32)
        topk_mask = torch.zeros((b, resp_len), dtype=torch.bool)
        for i, r in enumerate(rows):
            n, start = len(r["input_ids"]), r["response_start"]
            input_ids[i, :n] = torch.as_tensor(r["input_ids"])
            attention_mask[i, :n] = 1
            response_mask[i, start:n] = True
            k = len(r["topk_ids"][0])
            topk_ids[i, : n - start, :k] = torch.as_tensor(r["topk_ids"])
            topk_probs[i, : n - start, :k] = torch.as_tensor(r["topk_probs"], dtype=torch.float32)
            topk_mask[i, : n - start] = True
        return {"input_ids": input_ids, "attention_mask": attention_mask, "response_mask": response_mask,
                "topk_ids": topk_ids, "topk_probs": topk_probs, "topk_mask": topk_mask}
