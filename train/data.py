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
    "reference": Value("int8"),
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


def apply_mixture(ds: Dataset, mixture: dict, w_ce: float, w_kd: float, upsample: dict | None = None,
                  w_ce_references: float | None = None) -> tuple[Dataset, dict]:
    """train.mixture, train.upsample and train.w_ce_references applied to the rows: when a task has its own loss
    weights, or references their own CE weight, each row's ce_weight and kd_weight. Returns the rows and a record of
    the mixture (records, references, sampling weight, upsampling factor and share of the draws, loss weights per
    task)."""
    from collections import Counter

    counts = Counter(ds["task"])
    references = Counter(task for task, given in zip(ds["task"], ds["reference"]) if given)
    upsample = {task: f for task, f in (upsample or {}).items() if task in counts}  # others: noted by the caller
    if mixture or upsample:
        record = mixture_record(counts, mixture, upsample, w_ce, w_kd)
    else:
        record = {str(task): {"records": n} for task, n in sorted(counts.items(), key=str)}
    for task, n in references.items():
        record[str(task)]["references"] = n
    return rows_with_loss_weights(ds, record, w_ce, w_kd, w_ce_references, own_loss_weights(mixture)), record


def mixture_record(counts: dict, mixture: dict, upsample: dict, w_ce: float, w_kd: float) -> dict:
    """Per task: records, sampling weight, upsampling factor, share of the draws and loss weights."""
    for task in mixture:
        if task not in counts:
            known = ", ".join(sorted(str(t) for t in counts))
            raise DistillError(f"train.mixture.{task}: no task of that name in the training shards (tasks: {known})")
    # A task's weight: its mixture weight, or without a mixture its records (every record alike); tasks left out of
    # a mixture are not sampled.
    weight = {task: (mixture[task].weight if task in mixture else 0.0) if mixture else float(n)
              for task, n in counts.items()}
    drawn = {task: w * upsample.get(task, 1.0) for task, w in weight.items()}
    total = sum(drawn.values())
    record = {str(task): {"records": n, "weight": weight[task], "upsample": upsample.get(task, 1.0),
                          "share": drawn[task] / total, "w_ce": w_ce, "w_kd": w_kd}
              for task, n in counts.items()}
    for task, e in mixture.items():
        record[task].update(w_ce=w_ce if e.w_ce is None else e.w_ce, w_kd=w_kd if e.w_kd is None else e.w_kd)
    return record


def rows_with_loss_weights(ds: Dataset, record: dict, w_ce: float, w_kd: float, w_ce_references: float | None,
                           per_task: bool) -> Dataset:
    """Each row's absolute ce_weight and kd_weight, when some rows weigh differently from train.w_ce / w_kd: a task
    with its own loss weights (per_task), or references with their own CE weight. Else the rows as they are."""
    if not per_task and w_ce_references is None:
        return ds

    def weights(task, reference):
        task_weights = record[str(task)]
        ce = w_ce_references if reference and w_ce_references is not None else task_weights.get("w_ce", w_ce)
        return {"ce_weight": ce, "kd_weight": task_weights.get("w_kd", w_kd)}

    return ds.map(weights, input_columns=["task", "reference"])


def sampling_weights(ds: Dataset, mixture: dict, upsample: dict | None = None) -> list[float] | None:
    """Each row's chance of being drawn: its task's mixture weight shared among the task's rows (1 without a
    mixture), times its task's upsampling factor. None: neither is set (every row once per epoch)."""
    return task_draw_weights(ds["task"], mixture, upsample)


def task_draw_weights(tasks: list[str], mixture: dict, upsample: dict | None = None) -> list[float] | None:
    """sampling_weights for items (rows, prompts) whose tasks are `tasks`."""
    from collections import Counter

    counts = Counter(tasks)
    upsample = {task: f for task, f in (upsample or {}).items() if task in counts}
    if not mixture and not upsample:
        return None
    base = [(mixture[t].weight / counts[t] if t in mixture else 0.0) if mixture else 1.0 for t in tasks]
    return [b * upsample.get(t, 1.0) for b, t in zip(base, tasks)]


def own_loss_weights(mixture: dict) -> bool:
    """A task with its own loss weights."""
    return any(e.w_ce is not None or e.w_kd is not None for e in mixture.values())


def rows_carry_loss_weights(t) -> bool:
    """Rows carry absolute loss weights (rows_with_loss_weights), and the trainer's CE and KD weights are then 1."""
    return own_loss_weights(t.mixture) or t.w_ce_references is not None


def trainer_loss_weights(t) -> dict[str, float]:
    """The trainer's CE and KD weights for train config t: 1 where the rows carry their own, else w_ce and w_kd."""
    return {"ce": 1.0, "kd": 1.0} if rows_carry_loss_weights(t) else {"ce": t.w_ce, "kd": t.w_kd}


def kd_needed(t) -> bool:
    """Some rows have a KD weight above 0 (train.w_kd, or a task's own w_kd)."""
    return t.w_kd > 0 or any((e.w_kd or 0) > 0 for e in t.mixture.values())
