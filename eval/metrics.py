"""Pure metric functions for eval: text metrics, exact scoring, teacher-forced aggregation, judge win rates.

Every function takes plain Python values and returns plain Python values, so the report can recompute every
number from the saved files and the tests can check each one on hand-computed cases.
"""

from __future__ import annotations

import math
import re
import statistics

from distill.eval.checks import score

_WORD = re.compile(r"\w+")
_VERDICT = re.compile(r"^[\s\W_]*(tie|a|b)(?![a-z0-9])", re.IGNORECASE)
Z95 = 1.959963984540054  # two-sided 95% normal quantile


# ---- text -----------------------------------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """Lowercase word tokens (runs of letters, digits and underscores); punctuation is dropped."""
    return _WORD.findall(text.lower())


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)) time, O(len(b)) memory)."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l_f1(candidate: str, reference: str) -> float:
    """ROUGE-L F1 on lowercase word tokens; 0.0 when either side has no words (as rouge-score does)."""
    cand, ref = words(candidate), words(reference)
    if not cand or not ref:
        return 0.0
    lcs = lcs_length(cand, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def repetition_rate(text: str) -> float:
    """Fraction of word 3-grams that repeat an earlier 3-gram of the same text; 0.0 with fewer than 3 words."""
    w = words(text)
    grams = [tuple(w[i : i + 3]) for i in range(len(w) - 2)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def is_empty(text: str) -> bool:
    return not text.strip()


def is_cut_off(finish_reason: str | None) -> bool:
    """The answer hit max_tokens (vLLM's finish_reason "length") instead of ending by itself."""
    return finish_reason == "length"


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# ---- exact scoring --------------------------------------------------------------------------------------------


def passes_check(row: dict) -> bool:
    """A checkable generation row whose response passes eval.checks.score. A row with finish_reason "length" (cut
    off at max_tokens) fails the length checks."""
    return score(row["check"], row["response"], finished=row.get("finish_reason") != "length")


def exact_counts(rows: list[dict]) -> tuple[int, int]:
    """(passed, checked): the checkable rows (those with a "check") and how many pass their check (passes_check)."""
    checked = [r for r in rows if r.get("check")]
    return sum(passes_check(r) for r in checked), len(checked)


def exact_accuracy(rows: list[dict]) -> tuple[float | None, int]:
    """Share of checkable rows that pass their check, and how many were checked; (None, 0) if none."""
    passed, checked = exact_counts(rows)
    return (passed / checked if checked else None), checked


# ---- teacher-forced aggregation -------------------------------------------------------------------------------


def aggregate_teacher_forced(records: list[dict]) -> dict:
    """Token-weighted means from per-record sums: KL and NLL in nats/token, top-1 agreement as a share of tokens, the
    teacher's mean logprob of the answer tokens, and the full-vocabulary KL when every record has it (else None)."""
    tokens = sum(r["tokens"] for r in records)
    if tokens == 0:
        return {"kl": None, "kl_full": None, "nll": None, "top1": None, "teacher_logprob": None, "tokens": 0,
                "records": len(records)}

    def mean_of(key):
        return sum(r[key] for r in records) / tokens if all(r.get(key) is not None for r in records) else None

    return {"kl": mean_of("kl_sum"), "kl_full": mean_of("kl_full_sum"), "nll": mean_of("nll_sum"),
            "top1": mean_of("top1_agree"), "teacher_logprob": mean_of("teacher_logprob_sum"), "tokens": tokens,
            "records": len(records)}


def per_record_kl(records: list[dict]) -> list[float]:
    """Mean KL per token of each record (for the per-prompt distribution plot); empty records are left out."""
    return [r["kl_sum"] / r["tokens"] for r in records if r["tokens"] > 0]


# ---- pairwise judge -------------------------------------------------------------------------------------------


def parse_verdict(text: str) -> str | None:
    """The judge's answer as "A", "B" or "tie" (first word, any case, leading punctuation ignored); else None."""
    m = _VERDICT.match(text or "")
    if not m:
        return None
    word = m.group(1).lower()
    return "tie" if word == "tie" else word.upper()


def pair_outcome(first: str | None, second: str | None) -> str:
    """Combine the two orders for model a vs b. `first`: verdict with a shown as A; `second`: with b shown as A.

    a wins only if both orders pick a (first == "A" and second == "B"), loses only if both pick b; anything
    else (disagreement, a tie, an unparsable answer) is a tie. This cancels the judge's position bias.
    """
    if first == "A" and second == "B":
        return "win"
    if first == "B" and second == "A":
        return "loss"
    return "tie"


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion successes / n (successes may be fractional: ties count 1/2)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def win_rate(wins: int, ties: int, losses: int) -> dict:
    """(wins + ties/2) / n with a 95% Wilson interval (ties counted as half a win)."""
    n = wins + ties + losses
    if n == 0:
        return {"win_rate": None, "ci_low": None, "ci_high": None, "n": 0, "wins": 0, "ties": 0, "losses": 0}
    successes = wins + ties / 2
    lo, hi = wilson_interval(successes, n)
    return {"win_rate": successes / n, "ci_low": lo, "ci_high": hi, "n": n, "wins": wins, "ties": ties,
            "losses": losses}
