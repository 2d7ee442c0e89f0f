"""Exact scoring for checkable prompts.

A checkable prompt (see ``prompts/*.jsonl``) carries a ``"check"`` object.
``score(check, response, finished)`` returns True/False; ``validate_check(check)``
raises a one-line ``ValueError`` naming the offending field when the check is
malformed.  Standard library only; all functions are pure.

Check schema (every check is a JSON object with a string ``"kind"``; no other
keys than the ones listed for its kind are allowed):

``{"kind": "number", "answer": <int|float>, "tolerance": <int|float >= 0>}``
    Correct if the LAST number in the response equals ``answer`` within the
    relative ``tolerance`` (``|x - answer| <= tolerance * |answer|``; when
    ``answer`` is 0 an absolute tolerance of 1e-9 is used).  Numbers are
    parsed as integers or decimals, optionally negative (``-`` or the Unicode
    minus sign, when not glued to a preceding word/digit, so ``3-4`` gives 3
    and 4), with optional thousands separators (``1,200`` -> 1200,
    ``12,500.5`` -> 12500.5).  A trailing full stop is not a decimal point
    (``"is 1,200."`` -> 1200).  No number in the response -> incorrect.

``{"kind": "bullets", "count": <int >= 1>}``
    Correct if the response has exactly ``count`` bullet lines.  A bullet line
    starts (after optional whitespace) with ``-``, ``*`` or ``•`` followed by
    whitespace, or with a number followed by ``.`` or ``)`` and whitespace
    (``1.``, ``2)``).  ``---`` rules and ``**bold**`` lines are not bullets.

``{"kind": "max_words", "count": <int >= 1>}``
    Correct if the response is non-empty and has at most ``count``
    whitespace-separated words (tokens consisting only of punctuation, such
    as a lone ``-``, are not counted as words).

``{"kind": "one_word"}``
    Correct if, after stripping punctuation from every whitespace-separated
    token, exactly one non-empty token remains (``"Paris."`` -> correct).

Length checks (``max_words``, ``one_word``) also need ``finished=True``: an
answer cut off at max_tokens never ended, so its length is unknown (and a
broken model's run-on output, such as one 300-letter "word", must not pass).

``{"kind": "yes_no"}``
    Correct if the response starts with the word "yes" or "no"
    (case-insensitive), ignoring leading whitespace, punctuation and markdown
    (``**Yes**, ...`` and ``"No." ...`` are correct; ``Nope`` and ``Not`` are
    not).

``{"kind": "starts_with", "text": <non-empty str>}``
    Correct if the stripped response starts with the stripped ``text``,
    case-insensitive.

``{"kind": "contains", "text": <non-empty str>}``
    Correct if ``text`` occurs anywhere in the response, case-insensitive.
"""

from __future__ import annotations

import math
import re
import string

__all__ = ["KINDS", "score", "validate_check", "last_number", "count_bullets", "count_words"]

# kind -> {field: type-spec}; type-spec "number", "count", "text"
KINDS: dict[str, dict[str, str]] = {
    "number": {"answer": "number", "tolerance": "tolerance"},
    "bullets": {"count": "count"},
    "max_words": {"count": "count"},
    "one_word": {},
    "yes_no": {},
    "starts_with": {"text": "text"},
    "contains": {"text": "text"},
}

_NUMBER_RE = re.compile(
    r"(?<![\w.])"  # not glued to a preceding word, digit or '.'
    r"([-\u2212]?)"  # optional sign
    r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?![\d])"
)
_SIGN_OK_RE = re.compile(r"[\w]$")
_BULLET_RE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+\S")
_LEADING_JUNK_RE = re.compile(r"^[\s\W_]+", re.UNICODE)
_YES_NO_RE = re.compile(r"^(yes|no)\b", re.IGNORECASE)
_PUNCT = string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00ab\u00bb\u00bf\u00a1\u2022"


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate_check(check: dict) -> None:
    """Raise a one-line ValueError if ``check`` does not follow the schema."""
    if not isinstance(check, dict):
        raise ValueError(f"check: expected an object, got {type(check).__name__}")
    if "kind" not in check:
        raise ValueError("check.kind: missing")
    kind = check["kind"]
    if not isinstance(kind, str):
        raise ValueError(f"check.kind: expected str, got {type(kind).__name__}")
    if kind not in KINDS:
        raise ValueError(f"check.kind: unknown kind {kind!r} (expected one of {', '.join(sorted(KINDS))})")
    fields = KINDS[kind]
    for key in check:
        if key != "kind" and key not in fields:
            allowed = ", ".join(fields) if fields else "none"
            raise ValueError(f"check.{key}: unexpected field for kind {kind!r} (allowed: {allowed})")
    for name, spec in fields.items():
        if name not in check:
            raise ValueError(f"check.{name}: missing (required for kind {kind!r})")
        v = check[name]
        if spec == "number":
            if not _is_number(v):
                raise ValueError(f"check.{name}: expected a finite number, got {v!r}")
        elif spec == "tolerance":
            if not _is_number(v) or v < 0:
                raise ValueError(f"check.{name}: expected a finite number >= 0, got {v!r}")
        elif spec == "count":
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"check.{name}: expected an int >= 1, got {v!r}")
        elif spec == "text":
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"check.{name}: expected a non-empty str, got {v!r}")


def last_number(response: str) -> float | None:
    """The last number in ``response`` (see module docstring), or None."""
    found = None
    for m in _NUMBER_RE.finditer(response):
        sign, body = m.group(1), m.group(2)
        if sign and m.start() > 0 and _SIGN_OK_RE.search(response[: m.start()]):
            sign = ""  # '-' glued to a word/digit is a hyphen/range, not a sign
        value = float(body.replace(",", ""))
        found = -value if sign else value
    return found


def count_bullets(response: str) -> int:
    return sum(1 for line in response.splitlines() if _BULLET_RE.match(line))


def count_words(response: str) -> int:
    return sum(1 for tok in response.split() if tok.strip(_PUNCT))


def score(check: dict, response: str, finished: bool = True) -> bool:
    """True if ``response`` satisfies ``check``; ``finished`` is False for an answer cut off at max_tokens."""
    validate_check(check)
    if not isinstance(response, str):
        raise ValueError(f"response: expected str, got {type(response).__name__}")
    kind = check["kind"]
    if kind == "number":
        x = last_number(response)
        if x is None:
            return False
        answer = float(check["answer"])
        if answer == 0:
            return abs(x) <= 1e-9
        return abs(x - answer) <= float(check["tolerance"]) * abs(answer) + 1e-12
    if kind == "bullets":
        return count_bullets(response) == check["count"]
    if kind == "max_words":
        return finished and 0 < count_words(response) <= check["count"]
    if kind == "one_word":
        return finished and count_words(response) == 1
    if kind == "yes_no":
        return bool(_YES_NO_RE.match(_LEADING_JUNK_RE.sub("", response)))
    if kind == "starts_with":
        return response.strip().lower().startswith(check["text"].strip().lower())
    if kind == "contains":
        return check["text"].lower() in response.lower()
    raise AssertionError(kind)  # unreachable: validate_check rejects unknown kinds
