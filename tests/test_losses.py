"""Every KD loss against a plain dense full-vocabulary reference: values and gradients."""

import math

import pytest
import torch

from distill.losses import HELDOUT_KL, KDSpec, eval_sums, kd_per_position, loss_sums

KINDS = ["forward_kl", "reverse_kl", "jsd", "skew_forward_kl", "skew_reverse_kl"]


def dense_divergence(p: torch.Tensor, q: torch.Tensor, kind: str, beta: float, alpha: float) -> torch.Tensor:
    """Textbook divergences between two dense distributions [N, C] (float64), one value per row."""

    def kl(a, b):
        return torch.where(a > 0, a * (a.clamp_min(1e-300).log() - b.log()), 0.0).sum(-1)

    if kind == "forward_kl":
        return kl(p, q)
    if kind == "reverse_kl":
        return kl(q, p)
    if kind == "jsd":
        m = beta * p + (1 - beta) * q
        return beta * kl(p, m) + (1 - beta) * kl(q, m)
    if kind == "skew_forward_kl":
        return kl(p, alpha * p + (1 - alpha) * q)
    if kind == "skew_reverse_kl":
        return kl(q, alpha * q + (1 - alpha) * p)
    raise ValueError(kind)


def dense_reference(logits, topk_ids, topk_probs, spec: KDSpec) -> torch.Tensor:
    """Scatter the teacher into a dense [N, V] tensor, coarse-grain both models row by row, then divergence."""
    n, v = logits.shape
    t = spec.temperature
    q_full = torch.softmax(logits.double() / t, dim=-1)
    out = []
    for i in range(n):
        keep = topk_probs[i] > 0
        ids = topk_ids[i][keep]
        p_top = torch.zeros(v, dtype=torch.float64).index_put((ids,), topk_probs[i][keep].double())[ids]
        q_top = q_full[i][ids]
        if spec.tail == "bucket":
            p = torch.cat([p_top, (1 - p_top.sum()).clamp_min(1e-8)[None]])
            q = torch.cat([q_top, (1 - q_top.sum()).clamp_min(1e-8)[None]])
        else:
            p, q = p_top / p_top.sum(), q_top / q_top.sum()
        p = p ** (1 / t)
        p = p / p.sum()
        out.append(dense_divergence(p[None], q[None], spec.kind, spec.beta, spec.alpha)[0] * t * t)
    return torch.stack(out)


def random_case(n=6, v=50, k=8, seed=0, drop=True):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, v, generator=g, dtype=torch.float64) * 2
    teacher = torch.softmax(torch.randn(n, v, generator=g, dtype=torch.float64) * 2.5, dim=-1)
    probs, ids = teacher.topk(k, dim=-1)
    if drop:  # padding entries, as the compact codec leaves them
        probs[0, -3:] = 0
        ids[0, -3:] = 0
    return logits, ids, probs.float()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tail", ["bucket", "renormalize"])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_topk_loss_matches_dense_reference(kind, tail, temperature):
    spec = KDSpec(kind=kind, tail=tail, temperature=temperature, beta=0.3, alpha=0.2)
    logits, ids, probs = random_case()
    a = logits.clone().float().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = kd_per_position(a, ids, probs, spec)
    ref = dense_reference(b, ids, probs, spec)
    torch.testing.assert_close(ours.double(), ref, rtol=2e-4, atol=2e-5)
    ours.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(a.grad.double(), b.grad, rtol=2e-3, atol=2e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_full_vocabulary_topk_equals_textbook_divergence(kind):
    """With K = V stored entries the top-k loss is the ordinary full-vocabulary divergence."""
    n, v = 5, 30
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(n, v, generator=g)
    p = torch.softmax(torch.randn(n, v, generator=g) * 2, dim=-1)
    ids = torch.arange(v).repeat(n, 1)
    for tail in ("bucket", "renormalize"):
        ours = kd_per_position(logits, ids, p, KDSpec(kind=kind, tail=tail, temperature=1.0, beta=0.5, alpha=0.1))
        ref = dense_divergence(p.double(), torch.softmax(logits.double(), -1), kind, 0.5, 0.1)
        torch.testing.assert_close(ours.double(), ref, rtol=1e-4, atol=1e-5)


def test_forward_kl_is_zero_when_student_equals_teacher_and_positive_otherwise():
    logits = torch.randn(4, 40)
    probs, ids = torch.softmax(logits, -1).topk(10, dim=-1)
    same = kd_per_position(logits, ids, probs, HELDOUT_KL)
    assert same.abs().max() < 1e-5
    other = kd_per_position(torch.randn(4, 40), ids, probs, HELDOUT_KL)
    assert (other > 0).all()


def test_gradients_are_finite_with_padding_and_confident_teacher():
    logits = torch.randn(3, 20, requires_grad=True)
    ids = torch.tensor([[1, 2, 0, 0], [3, 4, 5, 6], [7, 0, 0, 0]])
    probs = torch.tensor([[0.7, 0.3, 0, 0], [0.25, 0.25, 0.25, 0.25], [1.0, 0, 0, 0]])
    for kind in KINDS:
        for tail in ("bucket", "renormalize"):
            logits.grad = None
            kd_per_position(logits, ids, probs, KDSpec(kind=kind, tail=tail, temperature=1.0, beta=0.5, alpha=0.1)).sum().backward()
            assert torch.isfinite(logits.grad).all(), (kind, tail)


def test_loss_sums_chunked_equals_unchunked_and_matches_direct_computation():
    torch.manual_seed(0)
    n, h, v, k = 37, 16, 64, 6
    hidden = torch.randn(n, h, requires_grad=True)
    weight = torch.randn(v, h, requires_grad=True)
    targets = torch.randint(0, v, (n,))
    probs, ids = torch.softmax(torch.randn(n, v) * 3, -1).topk(k, dim=-1)
    spec = KDSpec(kind="jsd", temperature=1.0, tail="bucket", beta=0.4, alpha=0.1)

    ce1, kd1, _ = loss_sums(hidden, weight, None, targets, ids, probs, spec, chunk_rows=5)
    (ce1 + kd1).backward()
    g_hidden, g_weight = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    ce2, kd2, _ = loss_sums(hidden, weight, None, targets, ids, probs, spec, chunk_rows=1000)
    (ce2 + kd2).backward()
    torch.testing.assert_close(ce1, ce2)
    torch.testing.assert_close(kd1, kd2)
    torch.testing.assert_close(hidden.grad, g_hidden)
    torch.testing.assert_close(weight.grad, g_weight)

    logits = hidden.detach() @ weight.detach().T
    direct_ce = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    direct_kd = kd_per_position(logits, ids, probs, spec).sum()
    torch.testing.assert_close(ce2.detach(), direct_ce)
    torch.testing.assert_close(kd2.detach(), direct_kd)


def top1_count(hidden, weight, ids, probs) -> int:
    targets = torch.zeros(hidden.shape[0], dtype=torch.long)
    return eval_sums(hidden, weight, None, targets, ids, probs, HELDOUT_KL)["top1"]


def test_top1_agreement_counts_argmax_matches():
    hidden = torch.eye(4)
    weight = torch.eye(4)  # student argmax of row i is i
    ids = torch.tensor([[0, 1], [3, 1], [2, 0], [0, 3]])
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.7], [0.6, 0.1], [0.1, 0.5]])
    # teacher top-1: 0, 1, 2, 3 -> agrees on all four rows
    assert top1_count(hidden, weight, ids, probs) == 4
    probs2 = torch.tensor([[0.1, 0.9], [0.8, 0.1], [0.6, 0.1], [0.9, 0.05]])
    # teacher top-1: 1, 3, 2, 0 -> agrees only on row 2
    assert top1_count(hidden, weight, ids, probs2) == 1


def test_eval_sums_give_training_scale():
    """Eval's one-pass sums equal what training's loss_sums reports, chunked or not, and the dense references."""
    g = torch.Generator().manual_seed(8)
    n, h, v, k = 13, 8, 50, 6
    hidden, weight = torch.randn(n, h, generator=g), torch.randn(v, h, generator=g)
    targets = torch.randint(0, v, (n,), generator=g)
    probs, ids = torch.softmax(torch.randn(n, v, generator=g), -1).topk(k, dim=-1)
    ce, kd, _ = loss_sums(hidden, weight, None, targets, ids, probs, HELDOUT_KL, chunk_rows=4)
    sums = eval_sums(hidden, weight, None, targets, ids, probs, HELDOUT_KL, chunk_rows=4)
    logits = hidden @ weight.T
    assert sums["nll"] == pytest.approx(float(ce), rel=1e-5)
    assert sums["nll"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, targets, reduction="sum")),
                                        rel=1e-5)
    assert sums["kd"] == pytest.approx(float(kd), rel=1e-5)
    assert sums["top1"] == int((logits.argmax(-1) == ids[:, 0]).sum())
    assert sums["kl_full"] is None


def test_temperature_scale_factor():
    """T^2 keeps the KD gradient scale comparable across temperatures: check the value includes it."""
    logits, ids, probs = random_case(drop=False)
    spec = KDSpec(kind="forward_kl", temperature=3.0, tail="bucket", beta=0.5, alpha=0.1)
    assert math.isclose(
        kd_per_position(logits.float(), ids, probs, spec)[0].item(),
        dense_reference(logits, ids, probs, spec)[0].item(),
        rel_tol=1e-3,
    )


# ---- per-position weights, the on-policy estimate, features, the full-vocabulary KL -----------------------------


def test_position_weights_equal_a_dense_weighted_sum_values_and_gradients():
    g = torch.Generator().manual_seed(3)
    n, h, v, k = 29, 12, 40, 5
    hidden = torch.randn(n, h, generator=g, requires_grad=True)
    weight = torch.randn(v, h, generator=g)
    targets = torch.randint(0, v, (n,), generator=g)
    probs, ids = torch.softmax(torch.randn(n, v, generator=g) * 3, -1).topk(k, dim=-1)
    ce_w, kd_w = torch.rand(n, generator=g), torch.rand(n, generator=g)
    ce, kd, _ = loss_sums(hidden, weight, None, targets, ids, probs, HELDOUT_KL, chunk_rows=7, ce_weights=ce_w,
                       kd_weights=kd_w)
    (ce + kd).backward()
    dense_h = hidden.detach().clone().requires_grad_(True)
    logits = dense_h @ weight.T
    want_ce = (torch.nn.functional.cross_entropy(logits, targets, reduction="none") * ce_w).sum()
    want_kd = (kd_per_position(logits, ids, probs, HELDOUT_KL) * kd_w).sum()
    (want_ce + want_kd).backward()
    torch.testing.assert_close(ce.detach(), want_ce.detach())
    torch.testing.assert_close(kd.detach(), want_kd.detach())
    torch.testing.assert_close(hidden.grad, dense_h.grad)


def test_sampled_token_estimate_and_its_policy_gradient_equal_the_dense_reference():
    """estimate = log q(y) - log p(y); the surrogate's gradient is estimate * grad log q(y)."""
    from distill.losses import sampled_token_sums

    g = torch.Generator().manual_seed(4)
    n, h, v = 23, 10, 30
    hidden = torch.randn(n, h, generator=g, requires_grad=True)
    weight = torch.randn(v, h, generator=g)
    targets = torch.randint(0, v, (n,), generator=g)
    teacher_lp = torch.log_softmax(torch.randn(n, v, generator=g), -1).gather(-1, targets[:, None]).squeeze(-1)
    w = torch.rand(n, generator=g)
    loss, estimate, ul = sampled_token_sums(hidden, weight, None, targets, teacher_lp, chunk_rows=4, weights=w)
    loss.backward()
    assert ul == 0  # no negatives given

    dense_h = hidden.detach().clone().requires_grad_(True)
    log_q = torch.log_softmax(dense_h @ weight.T, -1)[torch.arange(n), targets]
    want_estimate = (log_q.detach() - teacher_lp) * w
    # grad of sum_t w_t * est_t * log q_t, with est held fixed: the REINFORCE form of grad E_q[log q - log p]
    (want_estimate * log_q).sum().backward()
    torch.testing.assert_close(estimate, want_estimate.sum())
    torch.testing.assert_close(hidden.grad, dense_h.grad)


def test_sampled_token_estimate_averages_to_the_reverse_kl():
    """Over many samples y ~ q, the mean of log q(y) - log p(y) approaches KL(q || p) (one position, dense)."""
    from distill.losses import sampled_token_terms

    g = torch.Generator().manual_seed(5)
    log_q = torch.log_softmax(torch.randn(1, 12, generator=g) * 2, -1)
    log_p = torch.log_softmax(torch.randn(1, 12, generator=g) * 2, -1)
    ys = torch.multinomial(log_q.exp()[0], 200_000, replacement=True, generator=g)
    _, estimate = sampled_token_terms(log_q.expand(len(ys), -1), ys, log_p[0, ys])
    exact = (log_q.exp() * (log_q - log_p)).sum()
    assert estimate.mean().item() == pytest.approx(exact.item(), abs=0.02)


def test_feature_losses_equal_their_definitions():
    from distill.losses import feature_cosine, feature_mse

    s, t = torch.tensor([[3.0, 4.0], [1.0, 0.0]]), torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(feature_mse(s, t), torch.tensor([8.0, 2.5]))
    torch.testing.assert_close(feature_cosine(s, t), torch.tensor([1 - 0.6, 1.0]))


def test_full_vocab_kl_equals_dense_kl_and_bounds_the_bucket_kl_from_above():
    g = torch.Generator().manual_seed(6)
    n, h, v = 17, 8, 60
    hq, hp = torch.randn(n, h, generator=g), torch.randn(n, h, generator=g)
    wq, wp = torch.randn(v, h, generator=g), torch.randn(v, h, generator=g)
    log_q, log_p = torch.log_softmax(hq @ wq.T, -1), torch.log_softmax(hp @ wp.T, -1)
    dense = float((log_p.exp() * (log_p - log_q)).sum())
    probs, ids = log_p.exp().topk(10, dim=-1)
    targets = torch.zeros(n, dtype=torch.long)
    sums = eval_sums(hq, wq, None, targets, ids, probs, HELDOUT_KL, chunk_rows=5, reference=(hp, wp, None))
    assert sums["kl_full"] == pytest.approx(dense, rel=1e-5)
    bucket = float(kd_per_position(hq @ wq.T, ids, probs, HELDOUT_KL).sum())
    assert sums["kd"] == pytest.approx(bucket, rel=1e-5)
    assert bucket <= dense + 1e-5


def test_unlikelihood_equals_a_loop_over_each_answers_earlier_tokens_values_and_gradients():
    """-sum over the distinct earlier tokens c of the same answer (c != the target) of log(1 - q(c)), per position,
    weighted; answers of different lengths, a row with no answer, and repeats in the answer. It shares loss_sums'
    log-softmax with CE and KD and leaves them unchanged."""
    from distill.losses import earlier_tokens
    g = torch.Generator().manual_seed(5)
    h, v = 8, 12  # a small vocabulary, so answers repeat tokens
    answers = {0: torch.randint(0, v, (9,), generator=g), 2: torch.randint(0, v, (4,), generator=g),
               3: torch.tensor([3, 3, 3, 5, 3])}
    row = torch.cat([torch.full((len(a),), r) for r, a in answers.items()])
    targets = torch.cat(list(answers.values()))
    n = len(targets)
    hidden = torch.randn(n, h, generator=g, requires_grad=True)
    weight = torch.randn(v, h, generator=g, requires_grad=True)
    w = torch.rand(n, generator=g)
    probs, ids = torch.softmax(torch.randn(n, v, generator=g), -1).topk(4, dim=-1)
    ce, kd, got = loss_sums(hidden, weight, None, targets, ids, probs, HELDOUT_KL, chunk_rows=3,
                            negatives=earlier_tokens(targets, row), ul_weights=w)
    got.backward()
    without = loss_sums(hidden, weight, None, targets, ids, probs, HELDOUT_KL, chunk_rows=3)
    torch.testing.assert_close((ce, kd), without[:2])
    assert without[2] == 0

    dense_h = hidden.detach().clone().requires_grad_(True)
    dense_w = weight.detach().clone().requires_grad_(True)
    q = torch.softmax(dense_h @ dense_w.T, -1)
    want, i = 0.0, 0
    for a in answers.values():
        for j in range(len(a)):
            negatives = {int(c) for c in a[:j]} - {int(a[j])}
            want = want + w[i] * sum(-torch.log(1 - q[i, c]) for c in negatives)
            i += 1
    want.backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(hidden.grad, dense_h.grad)
    torch.testing.assert_close(weight.grad, dense_w.grad)


def test_unlikelihood_is_zero_without_repeats_and_finite_when_the_student_is_sure_of_one():
    from distill.losses import unlikelihood_per_position

    log_q = torch.log_softmax(torch.tensor([[30.0, 0, 0, 0], [0, 0, 0, 0]]), -1).requires_grad_(True)
    candidates, none = torch.tensor([[0, 1], [2, 3]]), torch.zeros(2, 2, dtype=torch.bool)
    assert unlikelihood_per_position(log_q, candidates, none).abs().sum() == 0
    sure = unlikelihood_per_position(log_q, candidates, torch.tensor([[True, False], [False, False]]))
    sure.sum().backward()
    assert torch.isfinite(sure).all() and sure[0] > 10 and torch.isfinite(log_q.grad).all()


def repeated_ngrams_by_loop(answer: list[int], n: int) -> list[bool]:
    """Position j completes an n-gram that already occurred earlier in the answer."""
    grams = [tuple(answer[j - n + 1:j + 1]) for j in range(len(answer))]
    return [j >= n - 1 and grams[j] in grams[n - 1:j] for j in range(len(answer))]


def test_repeated_ngram_tokens_equal_a_loop_and_their_unlikelihood_the_dense_reference():
    """Sequence-level unlikelihood on the student's own answers: -log(1 - q(y_j)) at every position j whose token
    completes a repeated 4-gram, for both on-policy losses (loss_sums and sampled_token_sums), values and gradients.
    Answers: a loop, one shorter than the n-gram, random ones over a small vocabulary, and a row with no answer."""
    from distill.losses import REPEAT_NGRAM, repeated_ngram_tokens, sampled_token_sums

    g = torch.Generator().manual_seed(9)
    h, v = 8, 5
    answers = {0: [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 0], 1: [2, 2, 2],
               3: torch.randint(0, v, (30,), generator=g).tolist(), 4: torch.randint(0, v, (25,), generator=g).tolist()}
    row = torch.cat([torch.full((len(a),), r) for r, a in answers.items()])
    targets = torch.tensor([t for a in answers.values() for t in a])
    want_mask = [m for a in answers.values() for m in repeated_ngrams_by_loop(a, REPEAT_NGRAM)]
    candidates, mask = repeated_ngram_tokens(targets, row)
    assert mask[:, 0].tolist() == want_mask and any(want_mask[:12]) and not any(want_mask[12:15])
    torch.testing.assert_close(candidates[:, 0], targets)

    n = len(targets)
    hidden = torch.randn(n, h, generator=g, requires_grad=True)
    weight = torch.randn(v, h, generator=g)
    probs, ids = torch.softmax(torch.randn(n, v, generator=g), -1).topk(3, dim=-1)
    dense_h = hidden.detach().clone().requires_grad_(True)
    q = torch.softmax(dense_h @ weight.T, -1)[torch.arange(n), targets]
    want = -(torch.log1p(-q) * torch.tensor(want_mask)).sum()
    want.backward()
    teacher_lp = torch.full((n,), -1.0)
    for total in (lambda: loss_sums(hidden, weight, None, targets, ids, probs, HELDOUT_KL, chunk_rows=7,
                                    negatives=(candidates, mask))[2],
                  lambda: sampled_token_sums(hidden, weight, None, targets, teacher_lp, chunk_rows=7,
                                             negatives=(candidates, mask))[2]):
        hidden.grad = None
        got = total()
        got.backward()
        torch.testing.assert_close(got, want)
        torch.testing.assert_close(hidden.grad, dense_h.grad)
