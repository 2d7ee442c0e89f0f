"""The batch layout shared by training and teacher-forced scoring: one row per record, and the collator.

A row is input_ids = prompt + response, response_start = len(prompt), and the teacher's top-k for each response
token (ragged lists). Rows too long for max_seq_len are truncated (response tail dropped) or fail, by `too_long`;
a prompt that leaves no room for a response token is dropped. train/ builds its dataset from these rows and
distill.scoring scores the same rows, so a record scores in evaluation exactly as in a training batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from distill import shards as sh
from distill.errors import DistillError

OK, TRUNCATED, DROPPED = 0, 1, 2


def example_row(ex: sh.Example, max_seq_len: int, too_long: str, onpolicy: bool = False, ce_weight: float = 1.0,
                kd_weight: float = 1.0) -> dict:
    """One row from a decoded record; status says whether it was kept whole, truncated or dropped.

    `onpolicy` marks a student's own answer scored by the teacher (trained with the on-policy loss, never with CE);
    ce_weight and kd_weight scale the row's loss terms (a multi-task mixture's per-task loss weights); `reference`
    marks an answer that was given (a reference the teacher scored), not sampled."""
    prompt, response = ex.prompt_token_ids.tolist(), ex.response_token_ids.tolist()
    n_resp = len(response)
    status = OK
    if len(prompt) + n_resp > max_seq_len:
        if too_long == "fail":
            raise DistillError(f"record {ex.id}: {len(prompt)} prompt + {n_resp} response tokens exceed "
                               f"train.max_seq_len={max_seq_len} (set train.too_long=truncate to cut the response)")
        n_resp = max(max_seq_len - len(prompt), 0)
        status = TRUNCATED
    extra = {"onpolicy": int(onpolicy), "ce_weight": ce_weight, "kd_weight": kd_weight, "task": ex.task,
             "reference": int(ex.finish_reason == "given")}
    if n_resp == 0:  # the prompt alone fills the context (or the teacher said nothing): nothing to learn from
        return {"id": ex.id, "status": DROPPED, "input_ids": [], "response_start": 0, "topk_ids": [], "topk_probs": [],
                "teacher_logprobs": [], **extra}
    return {
        "id": ex.id,
        "status": status,
        "input_ids": prompt + response[:n_resp],
        "response_start": len(prompt),
        "topk_ids": ex.topk.ids[:n_resp].tolist(),
        "topk_probs": ex.topk.probs[:n_resp].tolist(),
        "teacher_logprobs": ex.topk.sampled_logprobs[:n_resp].tolist(),  # the teacher's logprob of each token
        **extra,
    }


@dataclass
class DistillCollator:
    """Pads a list of rows to the batch's longest sequence, response and top-k width.

    Returns input_ids/attention_mask [B, L]; response_mask [B, L] (True on response tokens); topk_ids/topk_probs
    [B, R, K] and topk_mask [B, R] (True on real response rows), R = longest response, K = widest top-k;
    teacher_logprobs [B, R]; and per row: onpolicy [B] (bool), ce_weight and kd_weight [B]. Rows without the
    optional fields (older callers) get 0 / False / 1. Flattening response_mask[:, 1:] and topk_mask row-major
    visits the response tokens in the same order.
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
        teacher_logprobs = torch.zeros((b, resp_len), dtype=torch.float32)
        for i, r in enumerate(rows):
            n, start = len(r["input_ids"]), r["response_start"]
            input_ids[i, :n] = torch.as_tensor(r["input_ids"])
            attention_mask[i, :n] = 1
            response_mask[i, start:n] = True
            k = len(r["topk_ids"][0])
            topk_ids[i, : n - start, :k] = torch.as_tensor(r["topk_ids"])
            topk_probs[i, : n - start, :k] = torch.as_tensor(r["topk_probs"], dtype=torch.float32)
            topk_mask[i, : n - start] = True
            if r.get("teacher_logprobs"):
                teacher_logprobs[i, : n - start] = torch.as_tensor(r["teacher_logprobs"], dtype=torch.float32)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "response_mask": response_mask,
                "topk_ids": topk_ids, "topk_probs": topk_probs, "topk_mask": topk_mask,
                "teacher_logprobs": teacher_logprobs,
                "onpolicy": torch.tensor([bool(r.get("onpolicy", 0)) for r in rows]),
                "ce_weight": torch.tensor([float(r.get("ce_weight", 1.0)) for r in rows]),
                "kd_weight": torch.tensor([float(r.get("kd_weight", 1.0)) for r in rows])}
