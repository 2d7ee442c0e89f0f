"""Tests for eval/checks.py and the prompt corpus in prompts/."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eval.checks import KINDS, score, validate_check  # noqa: E402

NUM = lambda a, tol=0.01: {"kind": "number", "answer": a, "tolerance": tol}  # noqa: E731


# --------------------------------------------------------------------- number
@pytest.mark.parametrize(
    "answer,response,expected",
    [
        (1200, "The answer is 1,200.", True),
        (1200, "The answer is 1200", True),
        (1200, "The answer is 1,300.", False),
        (-3.5, "-3.5", True),
        (-3.5, "It drops to -3.5 degrees.", True),
        (3.5, "It drops to -3.5 degrees.", False),
        (45, "First I add 20 and 25, which gives 45.", True),
        (20, "First I add 20 and 25, which gives 45.", False),  # the last number counts
        (12.7, "5 inches is about 12.70 cm.", True),
        (8.047, "That's roughly 8.05 km.", True),  # within 1% relative
        (8.047, "That's roughly 7.5 km.", False),
        (0, "The temperature is 0 degrees.", True),
        (0, "The temperature is 0.001 degrees.", False),  # absolute 1e-9 for answer 0
        (6.25, "Your change is $6.25!", True),
        (12500.5, "Total: 12,500.5", True),
        (3, "The range is 1,2,3", True),
        (4, "about 3-4 hours", True),  # hyphen in a range is not a minus sign
        (391, "no digits here", False),
        (391, "", False),
    ],
)
def test_number(answer, response, expected):
    assert score(NUM(answer), response) is expected


def test_number_tight_tolerance():
    assert score(NUM(391, 1e-6), "17 x 23 = 391") is True
    assert score(NUM(391, 1e-6), "17 x 23 = 390") is False
    assert score(NUM(391, 0.01), "17 x 23 = 390") is True  # 0.26% off, inside 1%


# -------------------------------------------------------------------- bullets
def test_bullets_mixed_markers():
    resp = "Here you go:\n- one\n* two\n  • three\n1. four\n2) five\nNot a bullet.\n**Bold** line\n---"
    assert score({"kind": "bullets", "count": 5}, resp) is True
    assert score({"kind": "bullets", "count": 4}, resp) is False


def test_bullets_exact_count():
    resp = "- eat well\n- sleep\n- move"
    assert score({"kind": "bullets", "count": 3}, resp) is True
    assert score({"kind": "bullets", "count": 2}, resp) is False
    assert score({"kind": "bullets", "count": 3}, "eat well, sleep, and move") is False
    assert score({"kind": "bullets", "count": 1}, "") is False
    assert score({"kind": "bullets", "count": 2}, "1.5 cups of flour\n-3 degrees") is False


# ------------------------------------------------------------------ max_words
def test_max_words():
    c = {"kind": "max_words", "count": 5}
    assert score(c, "One two three four five.") is True
    assert score(c, "One two three four five six.") is False
    assert score(c, "") is False
    assert score(c, "   \n ") is False
    assert score(c, "Yes - it is true.") is True  # lone '-' is not a word


# ------------------------------------------------------------------- one_word
@pytest.mark.parametrize(
    "response,expected",
    [("Paris", True), ("Paris.", True), ("  **Paris**!  ", True), ("well-known", True),
     ("Paris, France", False), ("The answer is Paris.", False), ("", False), ("...", False)],
)
def test_one_word(response, expected):
    assert score({"kind": "one_word"}, response) is expected


# --------------------------------------------------------------------- yes_no
@pytest.mark.parametrize(
    "response,expected",
    [("Yes.", True), ("no, it isn't.", True), ("  **Yes**, because...", True), ('"No." Penguins...', True),
     ("- YES", True), ("Nope.", False), ("Not really.", False), ("Yesterday it was.", False),
     ("Well, yes.", False), ("", False)],
)
def test_yes_no(response, expected):
    assert score({"kind": "yes_no"}, response) is expected


# ---------------------------------------------------------------- starts_with
def test_starts_with():
    c = {"kind": "starts_with", "text": "In short"}
    assert score(c, "  in short, planes fly because...") is True
    assert score(c, "In short: yes") is True
    assert score(c, "Well, in short, ...") is False
    assert score(c, "") is False


# ------------------------------------------------------------------- contains
def test_contains():
    c = {"kind": "contains", "text": "#ShopSmall"}
    assert score(c, "Come visit! #shopsmall #local") is True
    assert score(c, "Come visit! #ShopLocal") is False
    assert score(c, "") is False


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "check,match",
    [
        ({"kind": "foo"}, r"check\.kind: unknown kind 'foo' \(expected one of"),
        ({}, r"check\.kind: missing"),
        ({"kind": 3}, r"check\.kind: expected str"),
        ("number", r"check: expected an object"),
        ({"kind": "number", "tolerance": 0.01}, r"check\.answer: missing"),
        ({"kind": "number", "answer": 3}, r"check\.tolerance: missing"),
        ({"kind": "number", "answer": "3", "tolerance": 0.01}, r"check\.answer: expected a finite number"),
        ({"kind": "number", "answer": True, "tolerance": 0.01}, r"check\.answer"),
        ({"kind": "number", "answer": float("nan"), "tolerance": 0.01}, r"check\.answer"),
        ({"kind": "number", "answer": 3, "tolerance": -1}, r"check\.tolerance: expected a finite number >= 0"),
        ({"kind": "bullets"}, r"check\.count: missing"),
        ({"kind": "bullets", "count": 2.0}, r"check\.count: expected an int >= 1"),
        ({"kind": "max_words", "count": 0}, r"check\.count: expected an int >= 1"),
        ({"kind": "starts_with"}, r"check\.text: missing"),
        ({"kind": "contains", "text": ""}, r"check\.text: expected a non-empty str"),
        ({"kind": "contains", "text": 5}, r"check\.text: expected a non-empty str"),
        ({"kind": "one_word", "count": 1}, r"check\.count: unexpected field for kind 'one_word'"),
    ],
)
def test_bad_checks(check, match):
    with pytest.raises(ValueError, match=match) as ei:
        validate_check(check)
    assert "\n" not in str(ei.value)
    with pytest.raises(ValueError, match=match):
        score(check, "anything")


def test_validate_ok():
    for check in (NUM(1.5), {"kind": "bullets", "count": 3}, {"kind": "max_words", "count": 30},
                  {"kind": "one_word"}, {"kind": "yes_no"}, {"kind": "starts_with", "text": "Sure"},
                  {"kind": "contains", "text": "x"}):
        validate_check(check)
    assert set(KINDS) == {"number", "bullets", "max_words", "one_word", "yes_no", "starts_with", "contains"}


# --------------------------------------------------------------------- corpus
PROMPTS = ROOT / "prompts"
CHECKABLE = {"arithmetic", "unit_conversion", "format"}


def _norm_hash(text: str) -> str:
    return hashlib.sha256(re.sub(r"\s+", " ", text.strip()).lower().encode("utf-8")).hexdigest()


def _load(name):
    with open(PROMPTS / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_corpus_files():
    train, held = _load("train.jsonl"), _load("heldout.jsonl")
    assert len(train) >= 1400
    assert len(held) >= 260
    assert sum(1 for r in held if "check" in r) >= 80
    for split, rows in (("train", train), ("heldout", held)):
        for r in rows:
            assert set(r) <= {"id", "category", "prompt", "check"}, r
            assert re.fullmatch(rf"{re.escape(r['category'])}-{split}-\d{{4}}", r["id"]), r["id"]
            assert isinstance(r["prompt"], str) and r["prompt"].strip()
            if r["category"] in CHECKABLE:
                assert "check" in r, r["id"]
            if "check" in r:
                validate_check(r["check"])
        hashes = [_norm_hash(r["prompt"]) for r in rows]
        assert len(hashes) == len(set(hashes)), f"duplicate prompts in {split}"
        assert len({r["id"] for r in rows}) == len(rows)
    assert not {_norm_hash(r["prompt"]) for r in train} & {_norm_hash(r["prompt"]) for r in held}
    counts = Counter(r["category"] for r in train + held)
    assert len(counts) == 11
    assert all(n >= 30 for n in counts.values()), counts
    held_counts = Counter(r["category"] for r in held)
    assert set(held_counts) == set(counts)  # every category is represented in heldout
    assert sum(held_counts.values()) >= 200


def test_number_checks_match_own_reference():
    # the reference answer, printed the way a model would, must score as correct
    for r in _load("train.jsonl") + _load("heldout.jsonl"):
        c = r.get("check")
        if c and c["kind"] == "number":
            a = c["answer"]
            text = f"So the answer is {a:,.4f}".rstrip("0").rstrip(".") + "."
            assert score(c, text), (r["id"], text)


def test_builder_is_reproducible(tmp_path):
    subprocess.run([sys.executable, str(PROMPTS / "build_corpus.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for name in ("train.jsonl", "heldout.jsonl"):
        assert (tmp_path / name).read_bytes() == (PROMPTS / name).read_bytes(), name
