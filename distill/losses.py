"""Distillation losses against a stored top-k teacher distribution: pure tensor functions, one per loss.

The teacher is known only on its top-k tokens (ids [N, K], probabilities [N, K], zero-probability entries are
padding). Both distributions are compared on the same C classes:
  tail="bucket":      the K top-k tokens plus one class for everything else (teacher: 1 - sum(top-k));
  tail="renormalize": the K top-k tokens only, both distributions renormalised over them.
With K = V (every token stored) both reduce to the usual full-vocabulary divergences.

Temperature T divides the student's logits and raises the teacher's class probabilities to 1/T (then
renormalises); the KD term is multiplied by T^2 so its gradient scale does not change with T (Hinton et al.).

Every function returns one value per position ([N]); callers sum and divide by the number of response tokens,
in training and in evaluation alike (`loss_sums`), so the two report the same number for the same batch.
Nothing here builds a dense [N, V] teacher tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

# Probabilities below this are treated as this in logs that would otherwise be log(0) (reverse KL's tail).
PROB_FLOOR = 1e-8
# Log-probability of a class that does not exist (padding): finite, so that no inf * 0 reaches a gradient.
ABSENT = -1e4


@dataclass(frozen=True)
class KDSpec:
    """Which divergence, over which classes. Built from the train config (`KDSpec.from_train`); no defaults here."""

    kind: str  # a key of DIVERGENCES
    temperature: float
    tail: str  # bucket | renormalize
    beta: float  # jsd: weight of the teacher in the mixture
    alpha: float  # skew KL: weight of the first argument in the mixture

    @classmethod
    def from_train(cls, t) -> "KDSpec":
        return cls(kind=t.kd_loss, temperature=t.kd_temperature, tail=t.tail, beta=t.jsd_beta, alpha=t.skew_alpha)


# The held-out metric eval reports and train logs for comparison: forward KL over the top-k plus the tail bucket at
# T = 1. Merging the tail into one class can only lower a KL, so this is a lower bound of the full-vocabulary KL.
HELDOUT_KL = KDSpec(kind="forward_kl", temperature=1.0, tail="bucket", beta=0.5, alpha=0.1)
# The on-policy metric eval reports on a model's own answers scored by the teacher: KL(model || teacher), likewise
# over the top-k plus the tail bucket, so likewise a lower bound.
OWN_ANSWER_KL = KDSpec(kind="reverse_kl", temperature=1.0, tail="bucket", beta=0.5, alpha=0.1)


# ---- the two distributions over shared classes ------------------------------------------------------------


def teacher_log_probs(topk_probs: torch.Tensor, tail: str, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher log-probabilities over the classes, and which classes exist ([N, C] each)."""
    probs = topk_probs.float()
    valid = probs > 0
    if tail == "bucket":
        rest = (1.0 - probs.sum(-1, keepdim=True)).clamp_min(0.0)
        probs = torch.cat([probs, rest], dim=-1)
        valid = torch.cat([valid, torch.ones_like(valid[:, :1])], dim=-1)
    log_p = torch.where(valid, probs.clamp_min(PROB_FLOOR).log(), ABSENT)
    if tail == "renormalize" or temperature != 1.0:
        log_p = torch.log_softmax(log_p / temperature, dim=-1)
    return log_p, valid


def student_log_probs(student_log_softmax: torch.Tensor, topk_ids: torch.Tensor, valid: torch.Tensor,
                      tail: str) -> torch.Tensor:
    """Student log-probabilities over the same classes, from its full log-softmax ([N, V]) at temperature T."""
    k = topk_ids.shape[-1]
    gathered = student_log_softmax.gather(-1, topk_ids)
    gathered = torch.where(valid[:, :k], gathered, ABSENT)
    if tail == "renormalize":
        return torch.log_softmax(gathered, dim=-1)
    in_topk = torch.logsumexp(gathered, dim=-1, keepdim=True)
    # log(1 - exp(x)) for x <= 0, clamped so that a student with all its mass on the top-k stays finite.
    rest = torch.log(-torch.expm1(in_topk.clamp_max(-PROB_FLOOR)))
    return torch.cat([gathered, rest], dim=-1)


# ---- divergences over classes: one function each ------------------------------------------------------------


def _kl(log_a: torch.Tensor, log_b: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """sum_c a_c (log a_c - log b_c) over valid classes."""
    terms = log_a.exp() * (log_a - log_b)
    return torch.where(valid, terms, 0.0).sum(-1)


def _mix(log_a: torch.Tensor, log_b: torch.Tensor, weight_a: float) -> torch.Tensor:
    """log(weight_a * a + (1 - weight_a) * b), computed in log space."""
    return torch.logaddexp(log_a + math.log(weight_a), log_b + math.log1p(-weight_a))


def forward_kl(log_p, log_q, valid):
    """KL(teacher || student): mass-covering; the usual KD loss."""
    return _kl(log_p, log_q, valid)


def reverse_kl(log_p, log_q, valid):
    """KL(student || teacher): mode-seeking."""
    return _kl(log_q, log_p, valid)


def jsd(log_p, log_q, valid, beta):
    """Generalised Jensen-Shannon: beta KL(P || M) + (1 - beta) KL(Q || M), M = beta P + (1 - beta) Q."""
    log_m = _mix(log_p, log_q, beta)
    return beta * _kl(log_p, log_m, valid) + (1 - beta) * _kl(log_q, log_m, valid)


def skew_forward_kl(log_p, log_q, valid, alpha):
    """KL(P || alpha P + (1 - alpha) Q) (DistiLLM): forward KL that stays bounded when Q misses P's mass."""
    return _kl(log_p, _mix(log_p, log_q, alpha), valid)


def skew_reverse_kl(log_p, log_q, valid, alpha):
    """KL(Q || alpha Q + (1 - alpha) P) (DistiLLM)."""
    return _kl(log_q, _mix(log_q, log_p, alpha), valid)


# One line per divergence: a new one is a function above and an entry here (and a name in config.KDLoss).
DIVERGENCES = {
    "forward_kl": lambda log_p, log_q, valid, spec: forward_kl(log_p, log_q, valid),
    "reverse_kl": lambda log_p, log_q, valid, spec: reverse_kl(log_p, log_q, valid),
    "jsd": lambda log_p, log_q, valid, spec: jsd(log_p, log_q, valid, spec.beta),
    "skew_forward_kl": lambda log_p, log_q, valid, spec: skew_forward_kl(log_p, log_q, valid, spec.alpha),
    "skew_reverse_kl": lambda log_p, log_q, valid, spec: skew_reverse_kl(log_p, log_q, valid, spec.alpha),
}


def kd_per_position(student_logits: torch.Tensor, topk_ids: torch.Tensor, topk_probs: torch.Tensor,
                    spec: KDSpec, student_log_softmax: torch.Tensor | None = None) -> torch.Tensor:
    """The KD term for each position ([N]), including the T^2 factor. Pass the log-softmax if already computed."""
    t = spec.temperature
    if student_log_softmax is None or t != 1.0:
        student_log_softmax = torch.log_softmax(student_logits.float() / t, dim=-1)
    log_p, valid = teacher_log_probs(topk_probs, spec.tail, t)
    log_q = student_log_probs(student_log_softmax, topk_ids, valid, spec.tail)
    return DIVERGENCES[spec.kind](log_p, log_q, valid, spec) * (t * t)


# ---- repeats: unlikelihood of tokens that would repeat (Welleck et al. 2019) -----------------------------------

# Sequence-level unlikelihood penalises tokens that complete a repeated n-gram; Welleck et al. use 4-grams.
REPEAT_NGRAM = 4


def _answers(targets: torch.Tensor, row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The flattened targets laid out one answer per row ([A, W], zero-padded) and each position's index in it."""
    counts = torch.bincount(row)
    pos = torch.arange(targets.shape[0], device=targets.device) - (torch.cumsum(counts, 0) - counts)[row]
    answers = targets.new_zeros((counts.shape[0], int(counts.max())))
    answers[row, pos] = targets
    return answers, pos


def no_negatives(targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Negative candidates for no position ([N, 0] each): the unlikelihood term is zero."""
    return targets.new_zeros((targets.shape[0], 0)), torch.zeros((targets.shape[0], 0), dtype=torch.bool,
                                                                 device=targets.device)


def earlier_tokens(targets: torch.Tensor, row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-level negatives, for the teacher's answers: for each response position, the distinct tokens its answer
    already holds before it, the position's own target excluded (taken from the answer only: repeating the prompt's
    words is normal).

    targets [N]: the flattened response targets, each answer's in order; row [N]: the answer each belongs to, in
    non-decreasing order. Returns ids [N, W] and a mask [N, W] (W: the longest answer's length).
    """
    if targets.shape[0] == 0:
        return no_negatives(targets)
    answers, pos = _answers(targets, row)
    width = answers.shape[1]
    repeat = answers[:, :, None] == answers[:, None, :]  # [A, W, W]: token i equals token j
    before = torch.ones(width, width, dtype=torch.bool, device=targets.device).tril(-1)  # j < i
    first = ~(repeat & before).any(-1)  # [A, W]: the token's first occurrence in its answer
    candidates = answers[row]  # [N, W]
    slots = torch.arange(width, device=targets.device)
    valid = (slots[None, :] < pos[:, None]) & first[row] & (candidates != targets[:, None])
    return candidates, valid


def repeated_ngram_tokens(targets: torch.Tensor, row: torch.Tensor,
                          n: int = REPEAT_NGRAM) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence-level negatives, for the student's own answers: a position's own token when it completes an n-gram
    that already occurred earlier in the same answer (the loop the student fell into). ids and mask [N, 1]."""
    candidates = targets[:, None]
    if targets.shape[0] == 0 or int(torch.bincount(row).max()) < n:
        return candidates, torch.zeros_like(candidates, dtype=torch.bool)
    answers, pos = _answers(targets, row)
    grams = answers.unfold(1, n, 1)  # [A, M, n]: the n-gram ending at position m + n - 1
    same = (grams[:, :, None, :] == grams[:, None, :, :]).all(-1)  # [A, M, M]
    earlier = torch.ones(same.shape[1], same.shape[1], dtype=torch.bool, device=targets.device).tril(-1)
    repeated = torch.zeros(answers.shape, dtype=torch.bool, device=targets.device)
    repeated[:, n - 1:] = (same & earlier).any(-1)  # padding never reaches a real position, so it cannot match
    return candidates, repeated[row, pos][:, None]


def unlikelihood_per_position(student_log_softmax: torch.Tensor, candidates: torch.Tensor,
                              valid: torch.Tensor) -> torch.Tensor:
    """Per position ([N]): -sum over the valid candidates c of log(1 - q(c)). Zero when the student gives them no
    probability; it grows as the student puts probability on repeating them."""
    q = student_log_softmax.gather(-1, candidates).exp()
    return -(torch.log1p(-q.clamp(max=1 - 1e-6)) * valid).sum(-1)  # the clamp keeps log(1 - q) finite


# ---- the training/eval entry point: CE + KD + unlikelihood over response positions, in chunks ------------------


def _chunked_sums(fn, per_row: tuple, shared: tuple, chunk_rows: int) -> tuple[torch.Tensor, ...]:
    """Sum fn(*per_row_chunk, *shared) over chunks of rows. With grad enabled each chunk is checkpointed, so at most
    one chunk of [chunk_rows, V] logits is alive at a time in the forward and in the backward pass."""
    grad = torch.is_grad_enabled() and per_row[0].requires_grad
    totals = None
    for start in range(0, max(per_row[0].shape[0], 1), chunk_rows):  # no rows: one empty chunk, zero sums
        args = (*(x[start:start + chunk_rows] for x in per_row), *shared)
        out = checkpoint(fn, *args, use_reentrant=False) if grad else fn(*args)
        totals = out if totals is None else tuple(a + b for a, b in zip(totals, out))
    return totals


def _position_weights(hidden: torch.Tensor, *weights: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
    ones = hidden.new_ones(hidden.shape[0], dtype=torch.float32)
    return tuple(ones if w is None else w.float() for w in weights)


def _chunk_terms(hidden, targets, topk_ids, topk_probs, candidates, negative, ce_w, kd_w, ul_w, weight, bias,
                 spec: KDSpec, with_kd: bool):
    logits = F.linear(hidden, weight, bias).float()
    log_softmax = torch.log_softmax(logits, dim=-1)
    ce = -log_softmax.gather(-1, targets[:, None]).squeeze(-1)
    if with_kd:
        kd = kd_per_position(logits, topk_ids, topk_probs, spec, student_log_softmax=log_softmax)
    else:
        kd = torch.zeros_like(ce)
    ul = unlikelihood_per_position(log_softmax, candidates, negative)
    return (ce * ce_w).sum(), (kd * kd_w).sum(), (ul * ul_w).sum()


def loss_sums(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
              topk_ids: torch.Tensor, topk_probs: torch.Tensor, spec: KDSpec, *, with_kd: bool = True,
              chunk_rows: int = 1024, ce_weights: torch.Tensor | None = None, kd_weights: torch.Tensor | None = None,
              negatives: tuple[torch.Tensor, torch.Tensor] | None = None,
              ul_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sums over response positions of the CE, KD and unlikelihood terms, from final hidden states ([N, H]), each
    position weighted by ce_weights / kd_weights / ul_weights ([N], default 1: a multi-task mixture's per-task loss
    weights). The unlikelihood term is over `negatives` (candidate ids and mask, [N, W] each: earlier_tokens or
    repeated_ngram_tokens), and zero without them.

    The student's logits are made chunk by chunk from `hidden` and the output embedding (`weight` [V, H]), so no
    [N, V] logits tensor is ever whole. The three terms share one log-softmax.
    """
    candidates, negative = negatives if negatives is not None else no_negatives(targets)
    return _chunked_sums(_chunk_terms, (hidden, targets, topk_ids, topk_probs, candidates, negative,
                                        *_position_weights(hidden, ce_weights, kd_weights, ul_weights)),
                         (weight, bias, spec, with_kd), chunk_rows)


# ---- on the student's own samples: the per-token reverse-KL estimate -------------------------------------------


def sampled_token_terms(student_log_softmax: torch.Tensor, targets: torch.Tensor,
                        teacher_logprobs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per position ([N] each): the surrogate loss and the estimate it is built on.

    The estimate log q(y) - log p(y) on the student's own sampled token y is a one-sample estimate of the reverse KL
    at that position (its mean over y ~ q is KL(q || p)). The surrogate estimate.detach() * log q(y) has the
    gradient estimate * grad log q(y): the policy gradient of the reverse KL, with the negated estimate as a
    per-token reward (on-policy distillation as in GKD, MiniLLM and the Tinker cookbook's recipe).
    """
    log_q = student_log_softmax.gather(-1, targets[:, None]).squeeze(-1)
    estimate = (log_q - teacher_logprobs.float()).detach()
    return estimate * log_q, estimate


def _sampled_chunk(hidden, targets, teacher_logprobs, candidates, negative, weights, ul_w, weight, bias):
    log_softmax = torch.log_softmax(F.linear(hidden, weight, bias).float(), dim=-1)
    loss, estimate = sampled_token_terms(log_softmax, targets, teacher_logprobs)
    ul = unlikelihood_per_position(log_softmax, candidates, negative)
    return (loss * weights).sum(), (estimate * weights).sum(), (ul * ul_w).sum()


def sampled_token_sums(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                       teacher_logprobs: torch.Tensor, *, chunk_rows: int = 1024, weights: torch.Tensor | None = None,
                       negatives: tuple[torch.Tensor, torch.Tensor] | None = None,
                       ul_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sums over positions of sampled_token_terms (loss, estimate) and of the unlikelihood term over `negatives`
    (as in loss_sums), chunked and checkpointed like loss_sums."""
    candidates, negative = negatives if negatives is not None else no_negatives(targets)
    return _chunked_sums(_sampled_chunk, (hidden, targets, teacher_logprobs, candidates, negative,
                                          *_position_weights(hidden, weights, ul_weights)), (weight, bias), chunk_rows)


# ---- features: the teacher's hidden states supervise the student's ------------------------------------------------


def feature_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Per position ([N]): mean squared difference over the hidden size of mapped student and teacher states."""
    return (student.float() - teacher.float()).pow(2).mean(-1)


def feature_cosine(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Per position ([N]): 1 - cosine similarity of mapped student and teacher states (scale-free)."""
    return 1 - F.cosine_similarity(student.float(), teacher.float(), dim=-1)


FEATURE_LOSSES = {"mse": feature_mse, "cosine": feature_cosine}


@torch.no_grad()
def eval_sums(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
              topk_ids: torch.Tensor, topk_probs: torch.Tensor, spec: KDSpec, *, chunk_rows: int = 1024,
              reference: tuple | None = None) -> dict:
    """Evaluation's sums over response positions, from one log-softmax per chunk of the model's logits:
        nll      -log q(target)                                  (loss_sums' CE)
        kd       spec's divergence over the teacher's top-k       (loss_sums' KD: the scale training reports)
        top1     positions where the model's argmax is the teacher's most probable token
        kl_full  given reference = (hidden_p, weight_p, bias_p), the teacher's final hidden states and output
                 layer: the full-vocabulary KL(P || Q). The top-k-plus-tail KL of the same positions can only be
                 smaller (merging classes never raises a KL): together they measure what top-k leaves out.
    """
    teacher_top1 = topk_ids.gather(-1, topk_probs.argmax(-1, keepdim=True)).squeeze(-1)
    sums = {"nll": 0.0, "kd": 0.0, "top1": 0, "kl_full": 0.0 if reference is not None else None}
    for start in range(0, hidden.shape[0], chunk_rows):
        sl = slice(start, start + chunk_rows)
        logits = F.linear(hidden[sl], weight, bias).float()
        log_q = torch.log_softmax(logits, dim=-1)
        sums["nll"] -= float(log_q.gather(-1, targets[sl, None]).sum())
        sums["kd"] += float(kd_per_position(logits, topk_ids[sl], topk_probs[sl], spec, student_log_softmax=log_q)
                            .sum())
        sums["top1"] += int((logits.argmax(-1) == teacher_top1[sl]).sum())
        if reference is not None:
            hidden_p, weight_p, bias_p = reference
            log_p = torch.log_softmax(F.linear(hidden_p[sl], weight_p, bias_p).float(), dim=-1)
            sums["kl_full"] += float((log_p.exp() * (log_p - log_q)).sum())
    return sums
