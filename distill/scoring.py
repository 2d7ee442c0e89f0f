"""Teacher-forced scoring, shared by train, eval and on-policy rounds: a model's final hidden states on collated
rows, the CE and KD sums over the response positions, and the check that the chunked loss path is the model's own.

No [B, T, V] logits tensor is built anywhere here: the logits are made chunk by chunk from the final hidden states
and the output layer's weight (distill.losses.loss_sums).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from distill import shards as sh
from distill.batches import DROPPED, DistillCollator, example_row
from distill.errors import DistillError
from distill.losses import KDSpec, earlier_tokens, eval_sums, loss_sums, repeated_ngram_tokens, sampled_token_sums


def causal_lm(model):
    """The transformers CausalLM inside a PEFT wrapper (LoRA layers stay injected in it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def final_hidden(lm, batch: dict) -> torch.Tensor:
    """[B, L, H] last hidden states of the decoder, without the output layer."""
    return lm.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                            use_cache=False).last_hidden_state


def response_rows(hidden: torch.Tensor, batch: dict) -> tuple[torch.Tensor, ...]:
    """Flatten the response positions: (hidden [N, H], target ids [N], top-k ids [N, K], top-k probs [N, K]).

    The hidden state at position t predicts token t + 1, so position t counts when token t + 1 is a response token.
    """
    predicts_response = batch["response_mask"][:, 1:]
    return (hidden[:, :-1][predicts_response], batch["input_ids"][:, 1:][predicts_response],
            batch["topk_ids"][batch["topk_mask"]], batch["topk_probs"][batch["topk_mask"]])


@dataclass(frozen=True)
class Objective:
    """What a training batch is scored by: the KD divergence on the teacher's answers and, for rows that are the
    student's own answers scored by the teacher (on-policy), their own loss: a divergence over the teacher's top-k
    (reverse_kl, jsd) or the per-token reverse-KL estimate on the sampled token (sampled_token). unlikelihood: also
    the unlikelihood of repeats (losses.py): on the teacher's answers, of each answer's earlier tokens (token-level);
    on the student's own answers, of the tokens that complete a repeated n-gram (sequence-level)."""

    spec: KDSpec
    with_kd: bool
    chunk_rows: int
    onpolicy: str | None = None
    onpolicy_spec: KDSpec | None = None
    unlikelihood: bool = False

    @classmethod
    def from_train(cls, t, with_kd: bool | None = None, **onpolicy) -> "Objective":
        """The objective the train config asks for: KD when w_kd > 0 (unless with_kd says otherwise), unlikelihood
        when w_unlikelihood > 0; `onpolicy` passes onpolicy= and onpolicy_spec= through."""
        return cls(KDSpec.from_train(t), t.w_kd > 0 if with_kd is None else with_kd, t.chunk_rows,
                   unlikelihood=t.w_unlikelihood > 0, **onpolicy)


def batch_loss_terms(model, batch: dict, objective: Objective, hidden: torch.Tensor | None = None) -> dict:
    """Sums over the response tokens of a collated batch: ce and kd (teacher-answer rows, each row weighted by its
    ce_weight / kd_weight), on and on_estimate (on-policy rows), ul (when the objective asks: token-level on the
    teacher-answer rows plus sequence-level on the on-policy rows, not weighted by task), and n (all response
    tokens)."""
    lm = causal_lm(model)
    hidden = final_hidden(lm, batch) if hidden is None else hidden
    h, targets, ids, probs = response_rows(hidden, batch)
    head = lm.get_output_embeddings()
    row = torch.nonzero(batch["response_mask"][:, 1:])[:, 0]  # the row of each flattened position
    onpolicy = batch["onpolicy"][row] if "onpolicy" in batch else torch.zeros_like(targets, dtype=torch.bool)
    ce_w = batch["ce_weight"][row] if "ce_weight" in batch else torch.ones_like(targets, dtype=torch.float32)
    kd_w = batch["kd_weight"][row] if "kd_weight" in batch else torch.ones_like(targets, dtype=torch.float32)
    off = ~onpolicy  # the teacher-answer positions; the on-policy rows get their own pass below
    ce, kd, ul = loss_sums(h[off], head.weight, head.bias, targets[off], ids[off], probs[off], objective.spec,
                           with_kd=objective.with_kd, chunk_rows=objective.chunk_rows, ce_weights=ce_w[off],
                           kd_weights=kd_w[off],
                           negatives=earlier_tokens(targets[off], row[off]) if objective.unlikelihood else None)
    terms = {"ce": ce, "kd": kd, "ul": ul, "on": ce.new_zeros(()), "on_estimate": ce.new_zeros(()),
             "n": batch["response_mask"][:, 1:].sum()}
    if objective.onpolicy and bool(onpolicy.any()):
        sel = onpolicy
        negatives = repeated_ngram_tokens(targets[sel], row[sel]) if objective.unlikelihood else None
        if objective.onpolicy == "sampled_token":
            teacher_lp = batch["teacher_logprobs"][batch["topk_mask"]]
            terms["on"], terms["on_estimate"], own_ul = sampled_token_sums(
                h[sel], head.weight, head.bias, targets[sel], teacher_lp[sel], chunk_rows=objective.chunk_rows,
                weights=kd_w[sel], negatives=negatives)
        else:
            _, terms["on"], own_ul = loss_sums(h[sel], head.weight, head.bias, targets[sel], ids[sel], probs[sel],
                                               objective.onpolicy_spec, chunk_rows=objective.chunk_rows,
                                               kd_weights=kd_w[sel], negatives=negatives)
            terms["on_estimate"] = terms["on"].detach()
        terms["ul"] = terms["ul"] + own_ul
    return terms


def batch_loss_sums(model, batch: dict, spec: KDSpec, with_kd: bool, chunk_rows: int):
    """(ce_sum, kd_sum, n_tokens) over the response tokens of a collated batch of teacher answers."""
    terms = batch_loss_terms(model, batch, Objective(spec, with_kd, chunk_rows))
    return terms["ce"], terms["kd"], terms["n"]


def check_logits_path(model, name: str) -> None:
    """The loss computes logits as output_layer(last hidden state), chunk by chunk, without the model's own head
    code. A model that changes its logits after that layer (soft-capping, scaling) would be trained and scored
    against the wrong distribution: compare both ways on a short probe and refuse the model if they differ."""
    lm = causal_lm(model)
    head = lm.get_output_embeddings()
    ids = torch.arange(1, 9, device=head.weight.device).remainder(head.weight.shape[0]).unsqueeze(0)
    was_training = lm.training
    lm.eval()
    with torch.no_grad():
        full = lm(input_ids=ids, use_cache=False).logits.float()
        hidden = lm.get_decoder()(input_ids=ids, use_cache=False).last_hidden_state
        ours = torch.nn.functional.linear(hidden, head.weight, head.bias).float()
    lm.train(was_training)
    diff = (full - ours).abs().max().item()
    if diff > 1e-3 * (1.0 + full.abs().max().item()):
        raise DistillError(f"{name}: {type(lm).__name__} does more to its logits than its output layer (max "
                           f"difference {diff:.3g} on a probe; e.g. logit soft-capping or scaling), which distill's "
                           "chunked loss does not reproduce; this model type is not supported here")


def load_scoring_model(where: str | Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, use_safetensors=True)


class TeacherReference:
    """The teacher's full next-token distribution at the answer positions of shard records, for the full-vocabulary
    KL beside the top-k one. Per record only its final hidden states ([T, H]) are kept, computed once however many
    models are scored against them; logits are rebuilt chunk by chunk."""

    def __init__(self, teacher):
        self.lm = causal_lm(teacher).eval()
        self.head = self.lm.get_output_embeddings()
        self.hidden: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def remember(self, ids: list[str], batch: dict, hidden: torch.Tensor | None = None) -> None:
        """Keep the teacher's answer-position states of these records; `hidden`: the batch's final hidden states
        when they were already computed with the teacher itself (scoring the teacher: no second forward pass)."""
        todo = [i for i, rid in enumerate(ids) if rid not in self.hidden]
        if not todo:
            return
        sub = {k: v[todo] for k, v in batch.items()}
        hidden = (final_hidden(self.lm, {k: v.to(self.head.weight.device) for k, v in sub.items()})
                  if hidden is None else hidden[todo])
        for j, i in enumerate(todo):
            one = {k: v[j : j + 1].to(hidden.device) for k, v in sub.items()}
            self.hidden[ids[i]] = response_rows(hidden[j : j + 1], one)[0]


@torch.no_grad()
def evaluate_on_shards(model_or_dir, shard_folder: str | Path, spec: KDSpec, max_seq_len: int, chunk_rows: int,
                       batch_size: int = 8, device: str | None = None,
                       reference: TeacherReference | None = None) -> list[dict]:
    """One dict per record: {id, prompt_id, task, tokens, kl_sum, nll_sum, top1_agree, teacher_logprob_sum,
    truncated}, plus kl_full_sum when a teacher reference is given.

    kl_sum is the sum over the record's response tokens of spec's divergence; nll_sum the summed -log p(token) under
    the model; top1_agree how many positions the model's argmax equals the teacher's most probable token;
    teacher_logprob_sum the summed exact logprob the teacher gave each response token (stored in the shard);
    kl_full_sum the full-vocabulary KL(teacher || model). Divide by `tokens` for per-token means. Responses longer
    than max_seq_len are cut (truncated=True); records whose prompt alone fills it are skipped.
    """
    named = isinstance(model_or_dir, (str, Path))
    model = load_scoring_model(model_or_dir) if named else model_or_dir
    check_logits_path(model, str(model_or_dir) if named else "model")
    lm = causal_lm(model)
    device = device or next(lm.parameters()).device
    was_training = lm.training
    lm.eval().to(device)
    pad = lm.config.get_text_config().pad_token_id
    collate = DistillCollator(pad_token_id=pad if pad is not None else 0)
    head = lm.get_output_embeddings()

    def score_batch(pending: list[tuple[sh.Example, dict]]) -> list[dict]:
        batch = {k: v.to(device) for k, v in collate([row for _, row in pending]).items()}
        hidden = final_hidden(lm, batch)
        if reference is not None:  # scoring the teacher itself: its states are the reference's
            reference.remember([ex.id for ex, _ in pending], batch, hidden if lm is reference.lm else None)
        out = []
        for i, (ex, row) in enumerate(pending):
            one = {k: v[i : i + 1] for k, v in batch.items()}
            h, targets, ids, probs = response_rows(hidden[i : i + 1], one)
            ref = None if reference is None else (reference.hidden[ex.id].to(device), reference.head.weight,
                                                  reference.head.bias)
            sums = eval_sums(h, head.weight, head.bias, targets, ids, probs, spec, chunk_rows=chunk_rows,
                             reference=ref)
            n = len(targets)
            result = {"id": ex.id, "prompt_id": ex.prompt_id, "task": ex.task, "tokens": n, "kl_sum": sums["kd"],
                      "nll_sum": sums["nll"], "top1_agree": sums["top1"],
                      "teacher_logprob_sum": float(ex.topk.sampled_logprobs[:n].sum()),
                      "truncated": row["status"] != 0}
            if reference is not None:
                result["kl_full_sum"] = sums["kl_full"]
            out.append(result)
        return out

    results: list[dict] = []
    pending: list[tuple[sh.Example, dict]] = []
    for ex in sh.read_examples(Path(shard_folder)):
        row = example_row(ex, max_seq_len, "truncate")
        if row["status"] != DROPPED:
            pending.append((ex, row))
        if len(pending) == batch_size:
            results += score_batch(pending)
            pending = []
    if pending:
        results += score_batch(pending)
    lm.train(was_training)
    return results
