"""eval.metrics on hand-computed cases."""

import math

import pytest

from distill.eval import metrics


def test_words_lowercase_and_drop_punctuation():
    assert metrics.words("The cat, the HAT!") == ["the", "cat", "the", "hat"]


def test_lcs_length():
    assert metrics.lcs_length(list("abcbdab"), list("bdcaba")) == 4  # CLRS example: "bcba"
    assert metrics.lcs_length([], ["a"]) == 0


def test_rouge_l_f1_hand_computed():
    # cand: the cat sat on the mat (6), ref: the cat is on the mat (6); LCS = the cat on the mat = 5
    assert metrics.rouge_l_f1("The cat sat on the mat.", "the cat is on the mat") == pytest.approx(5 / 6)
    # cand 2 words, ref 4 words, LCS 2: P = 1, R = 0.5, F1 = 2/3
    assert metrics.rouge_l_f1("red apple", "a red big apple") == pytest.approx(2 / 3)
    assert metrics.rouge_l_f1("same text", "Same, text!") == 1.0
    assert metrics.rouge_l_f1("", "anything") == 0.0
    assert metrics.rouge_l_f1("x y", "z w") == 0.0


def test_repetition_rate_hand_computed():
    # a b c a b c: 3-grams abc bca cab abc -> 4 grams, 3 unique -> 1/4 repeated
    assert metrics.repetition_rate("a b c a b c") == pytest.approx(0.25)
    # "go go go go go": 3 grams all (go go go) -> 1 unique -> 2/3
    assert metrics.repetition_rate("go go go go go") == pytest.approx(2 / 3)
    assert metrics.repetition_rate("one two three four") == 0.0
    assert metrics.repetition_rate("too short") == 0.0


def test_empty_and_cut_off():
    assert metrics.is_empty("  \n") and metrics.is_empty("")
    assert not metrics.is_empty(" x ")
    assert metrics.is_cut_off("length")
    assert not metrics.is_cut_off("stop") and not metrics.is_cut_off(None)


def test_exact_accuracy_uses_checks_and_skips_uncheckable():
    rows = [
        {"check": {"kind": "number", "answer": 84, "tolerance": 0}, "response": "12 x 7 = 84."},
        {"check": {"kind": "yes_no", "answer": "yes"}, "response": "Maybe."},
        {"check": [{"kind": "one_word"}, {"kind": "word", "accepted": ["Paris"]}], "response": "Paris."},
        {"check": None, "response": "free text"},
        {"response": "no check field"},
    ]
    acc, n = metrics.exact_accuracy(rows)
    assert n == 3 and acc == pytest.approx(2 / 3) and metrics.exact_counts(rows) == (2, 3)
    assert metrics.exact_accuracy([{"check": None, "response": "x"}]) == (None, 0)


def test_cut_off_answers_fail_length_checks_only():
    run_on = "dependingdependingdependingdepending"  # what a broken student emits until max_tokens
    rows = [
        {"check": [{"kind": "one_word"}, {"kind": "word", "accepted": [run_on]}], "response": run_on,
         "finish_reason": "length"},
        {"check": [{"kind": "max_words", "count": 20}, {"kind": "word", "accepted": ["leg"]}], "response": "leg " * 5,
         "finish_reason": "length"},
        {"check": [{"kind": "max_words", "count": 20}, {"kind": "word", "accepted": ["done"]}],
         "response": "Short and done.", "finish_reason": "stop"},
        {"check": {"kind": "number", "answer": 750, "tolerance": 0}, "response": "0.75 * 1000 = 750", "finish_reason": "length"},
    ]
    acc, n = metrics.exact_accuracy(rows)
    assert n == 4 and acc == pytest.approx(2 / 4)


def test_teacher_forced_aggregation_is_token_weighted():
    records = [
        {"tokens": 10, "kl_sum": 5.0, "nll_sum": 20.0, "top1_agree": 4},
        {"tokens": 30, "kl_sum": 3.0, "nll_sum": 40.0, "top1_agree": 24},
    ]
    agg = metrics.aggregate_teacher_forced(records)
    # token-weighted: 8 / 40, not the mean of per-record means (0.5 + 0.1) / 2 = 0.3
    assert agg["kl"] == pytest.approx(0.2)
    assert agg["nll"] == pytest.approx(1.5)
    assert agg["top1"] == pytest.approx(0.7)
    assert agg["tokens"] == 40 and agg["records"] == 2
    assert metrics.per_record_kl(records) == pytest.approx([0.5, 0.1])
    assert metrics.aggregate_teacher_forced([])["kl"] is None


@pytest.mark.parametrize("text,verdict", [
    ("A", "A"), ("b", "B"), ("**B**", "B"), (" Tie.", "tie"), ("TIE", "tie"), ("A is better", "A"),
    ("Answer A", None), ("", None), ("about", None), ("Both", None),
])
def test_parse_verdict(text, verdict):
    assert metrics.parse_verdict(text) == verdict


def test_pair_outcome_needs_both_orders_to_agree():
    # first order shows a as A, second shows b as A
    assert metrics.pair_outcome("A", "B") == "win"
    assert metrics.pair_outcome("B", "A") == "loss"
    assert metrics.pair_outcome("A", "A") == "tie"  # position bias: the judge always picks the first answer
    assert metrics.pair_outcome("tie", "B") == "tie"
    assert metrics.pair_outcome(None, "B") == "tie"


def test_wilson_interval_hand_computed():
    # 7 of 10: p = 0.7, z = 1.96: centre (0.7 + 0.19208) / 1.38416, half 1.96 * sqrt(0.021 + 0.009604) / 1.38416
    lo, hi = metrics.wilson_interval(7, 10)
    assert lo == pytest.approx(0.3968, abs=1e-4)
    assert hi == pytest.approx(0.8922, abs=1e-4)
    lo, hi = metrics.wilson_interval(0, 5)
    assert lo == 0.0 and hi == pytest.approx(3.8415 / 8.8415, abs=1e-4)  # z^2 / (n + z^2)
    assert metrics.wilson_interval(0, 0) == (0.0, 1.0)


def test_win_rate_counts_ties_as_half():
    r = metrics.win_rate(wins=5, ties=4, losses=1)
    assert r["win_rate"] == pytest.approx(0.7) and r["n"] == 10
    lo, hi = metrics.wilson_interval(7, 10)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert r["ci_low"] < r["win_rate"] < r["ci_high"]
    all_ties = metrics.win_rate(0, 6, 0)
    assert all_ties["win_rate"] == 0.5 and all_ties["ci_low"] < 0.5 < all_ties["ci_high"]
    assert metrics.win_rate(0, 0, 0)["win_rate"] is None


def test_median_and_mean():
    assert metrics.median([0.3, 0.1, 0.2]) == 0.2
    assert metrics.mean([1, 2]) == 1.5 and metrics.mean([]) is None
    assert math.isclose(metrics.median([1.0, 2.0]), 1.5)
