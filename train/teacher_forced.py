"""Teacher-forced scores of a model on a shard folder, per record: KD divergence, NLL and top-1 agreement.

Built on the training path (example_row, DistillCollator, loss_sums), so a record scores here exactly as it
would in a training batch. eval/ uses this for the KL-to-teacher and agreement columns of its report.
"""

from __future__ import annotations

from pathlib import Path

import torch

from distill import shards as sh
from train.checks import check_logits_path
from train.data import DROPPED, DistillCollator, example_row
from train.losses import KDSpec, loss_sums, top1_agreement_count
from train.trainer import causal_lm


@torch.no_grad()
def evaluate_on_shards(model_dir_or_model, shard_folder: str | Path, spec: KDSpec = KDSpec(),
                       max_seq_len: int = 4096, chunk_rows: int = 1024, batch_size: int = 8,
                       device: str | None = None) -> list[dict]:
    """One dict per record: {id, prompt_id, tokens, kl_sum, nll_sum, top1_agree, truncated}.

    kl_sum is the sum over the record's response tokens of spec's divergence (default: forward KL with the
    tail bucket); nll_sum the summed -log p(teacher's token); top1_agree how many positions the model's argmax
    equals the teacher's most probable token. Divide by `tokens` for per-token means. Responses longer than
    max_seq_len are cut (truncated=True); records whose prompt alone fills it are skipped.
    """
    if isinstance(model_dir_or_model, (str, Path)):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(model_dir_or_model, dtype=torch.float32, use_safetensors=True)
    else:
        model = model_dir_or_model
    check_logits_path(model, str(model_dir_or_model) if isinstance(model_dir_or_model, (str, Path)) else "model")
    lm = causal_lm(model)
    device = device or next(lm.parameters()).device
    was_training = lm.training
    lm.eval().to(device)
    pad = lm.config.get_text_config().pad_token_id
    collate = DistillCollator(pad_token_id=pad if pad is not None else 0)
    head = lm.get_output_embeddings()

    results: list[dict] = []
    pending: list[tuple[sh.Example, dict]] = []

    def flush():
        batch = {k: v.to(device) for k, v in collate([row for _, row in pending]).items()}
        hidden = lm.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  use_cache=False).last_hidden_state
        for i, (ex, row) in enumerate(pending):
            sel = batch["response_mask"][i, 1:]  # hidden at t predicts token t + 1
            h = hidden[i, :-1][sel]
            targets = batch["input_ids"][i, 1:][sel]
            ids = batch["topk_ids"][i][batch["topk_mask"][i]]
            probs = batch["topk_probs"][i][batch["topk_mask"][i]]
            nll, kl = loss_sums(h, head.weight, head.bias, targets, ids, probs, spec, with_kd=True,
                                chunk_rows=chunk_rows)
            agree = top1_agreement_count(h, head.weight, head.bias, ids, probs, chunk_rows=chunk_rows)
            results.append({"id": ex.id, "prompt_id": ex.prompt_id, "tokens": int(sel.sum()), "kl_sum": float(kl),
                            "nll_sum": float(nll), "top1_agree": agree, "truncated": row["status"] != 0})
        pending.clear()

    for ex in sh.read_examples(Path(shard_folder)):
        row = example_row(ex, max_seq_len, "truncate")
        if row["status"] == DROPPED:
            continue
        pending.append((ex, row))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
    lm.train(was_training)
    return results
