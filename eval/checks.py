"""Exact scoring for checkable prompts: is the answer right, and in the form the prompt asked for?

A checkable prompt (``prompts/*.jsonl``) carries a ``"check"``: one check object, or a list of them that must all
hold.  Content kinds test what the answer says; form kinds test how it is written.  A prompt's check must hold at
least one content kind: a form alone ("one word", "start with Sure") is met by a wrong answer as easily as by a
right one, which let a constant "Yes." outscore the teacher.  ``score(check, response, finished)`` returns
True/False; ``validate_check(check)`` raises a one-line ``ValueError`` naming the offending field.  Standard
library only; every function is pure.

Content kinds (``given`` is optional everywhere; so is ``unit``):

- ``{"kind": "number", "answer": x, "tolerance": t, "unit": [spellings], "given": [numbers]}``: the response's
  answer (see below) is within relative tolerance ``t`` of ``x`` (absolute 1e-9 when ``x`` is 0).  With ``unit``,
  only numbers followed by one of its spellings count (``5,000 m``, ``5000 metres``, ``68°F``), so a bare number
  or one in another unit does not answer "how many meters".  The spellings are listed in full in the check
  (matched after normalisation, as whole words, optional space after the number); nothing is converted.
- ``{"kind": "count", "answer": n, "given": [numbers]}``: as ``number``, exact, and number words count too
  (``eight`` = 8, ``twenty-one`` = 21; zero to ninety-nine, except a lone "one", which is far more often a pronoun).
- ``{"kind": "date", "answer": "YYYY-MM-DD" | "--MM-DD", "given": [dates]}``: the response's answer date has that
  month and day, and that year when the answer has one (written in the same date).  Dates are read as ``July 4``,
  ``Jul. 4th``, ``4 July``, ``the 4th of July``, each with an optional ``, 1776``, and ``1776-07-04``; slashed
  dates (``7/4``) mean different days in different countries and are not read.
- ``{"kind": "word", "accepted": [phrases]}``: one of the accepted phrases occurs as whole words.
- ``{"kind": "all_words", "items": [phrase | [alternatives]]}``: every item occurs as whole words.
- ``{"kind": "yes_no", "answer": "yes" | "no"}``: the response's first word is the answer (leading markdown and
  punctuation ignored: ``**No**, ...`` counts; ``Nope``, ``Yesterday`` and ``Well, yes`` do not).  This is also
  the form "answer yes or no first".

Form kinds:

- ``{"kind": "one_word"}``: exactly one word; ``{"kind": "max_words", "count": n}``: 1 to n words.  Words are
  whitespace-separated tokens that are not only punctuation (``"**Paris**."`` is one word).  Both need
  ``finished=True``: an answer cut off at max_tokens has no known length (and a broken model's run-on output,
  such as one 300-letter "word", must not pass).
- ``{"kind": "bullets", "count": n}``: exactly n lines that start with ``-``, ``*`` or ``•`` plus a space, or
  with ``1.`` / ``2)``; ``---`` rules and ``**bold**`` lines are not bullets.
- ``{"kind": "starts_with", "text": s}``: after leading whitespace, markdown and quotes, the response starts with
  ``s`` followed by a non-letter (``Sure!`` starts with "Sure", ``Surely`` does not).

Normalisation, applied to responses and to the phrases in checks alike: superscript digits become ``^n``
(``5²`` -> ``5^2``, where plain NFKC would make 52); Unicode NFKC (full-width digits, ``CO₂`` -> ``CO2``,
``℉`` -> ``°F``); curly quotes and apostrophes become straight ones, the minus sign and en/em dashes a hyphen;
accents are dropped (``Brontë`` = ``Bronte``); case folding.  Words are runs of letters and digits, with inner
apostrophes (``don't`` is one word); hyphens and punctuation separate words, so ``well-known`` matches
"well known".  A phrase matches where its words occur consecutively, the last one optionally followed by an
``s``/``es`` plural (``proton`` matches "protons"); never inside a longer word (``ember`` is not in
"remember").  Numbers are integers or decimals with an optional sign (a ``-`` glued to a word or digit, as in
``3-4``, is a hyphen) and optional comma thousands separators (``1,200.5``); a trailing full stop is not a
decimal point.  ``1 200`` with a space is two numbers.

Which number is the answer.  "The last number in the response" fails a right answer followed by a restatement
of the question ("391, since 17 x 23 = 391" is fine, but "391 is 17 times 23" ends on 23); "any number equals the
answer" is passed by listing many numbers.  The rule here: the answer must occur, and every number after its
last occurrence must be one of the check's ``given`` numbers, which the corpus sets to the numbers in the prompt
(and, for unit conversions, the conversion factor).  So a response is judged by the last number it commits to,
not counting numbers it merely repeats from the question: a restatement cannot hide the answer, and a list of
guesses counts only its last one, the same single try a plain answer gets.  Given numbers equal to the answer
never hide it.  The cost: new numbers after the answer, such as an intermediate step explained afterwards, fail
it.  Counts and dates follow the same rule, with given numbers and given dates.
"""

from __future__ import annotations

import calendar
import functools
import math
import re
import string
import unicodedata
from collections import Counter

__all__ = [
    "KINDS", "CONTENT_KINDS", "FORM_KINDS", "score", "validate_check", "normalise", "words", "find_numbers",
    "last_number", "count_bullets", "count_words", "degenerate_answers", "panel_scores",
]

# kind -> {field: type-spec}; a spec ending in "?" marks an optional field
KINDS: dict[str, dict[str, str]] = {
    "number": {"answer": "number", "tolerance": "tolerance", "unit": "phrases?", "given": "numbers?"},
    "count": {"answer": "natural", "given": "numbers?"},
    "date": {"answer": "date", "given": "dates?"},
    "word": {"accepted": "phrases"},
    "all_words": {"items": "items"},
    "yes_no": {"answer": "yes_no"},
    "one_word": {},
    "max_words": {"count": "count"},
    "bullets": {"count": "count"},
    "starts_with": {"text": "text"},
}
CONTENT_KINDS = ("number", "count", "date", "word", "all_words", "yes_no")
FORM_KINDS = ("one_word", "max_words", "bullets", "starts_with")

_SUPERSCRIPTS = str.maketrans({"\u00b2": "^2", "\u00b3": "^3", "\u00b9": "^1", "\u2070": "^0", **{
    chr(0x2074 + i): f"^{i + 4}" for i in range(6)}})
_STRAIGHTEN = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"',
                             "\u2212": "-", "\u2013": "-", "\u2014": "-"})
_TOKEN_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_NUMBER_RE = re.compile(
    r"(?<![\w.])"  # not glued to a preceding word, digit or '.': so the '-' of "3-4" or "x-2" is no sign
    r"(-?)"  # optional sign
    r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?!\d)"
)
_SMALL = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORD_NUMBER_RE = re.compile(  # groups: tens, units after tens, a number below twenty ("one" alone is left out)
    rf"(?<![^\W_])(?:({'|'.join(_TENS)})(?:[- ]({'|'.join(_SMALL[1:10])}))?"
    rf"|({'|'.join(w for w in _SMALL if w != 'one')}))(?![^\W_])"
)
_MONTHS = {"january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
           "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9,
           "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12}
_M = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?(?![^\W_])"
_YEAR = r"(?:,?\s+(\d{4})(?!\d))?"
_DATE_RES = (  # (regex, group numbers of month, day, year)
    (re.compile(rf"(?<![^\W_])({_M})\.?\s+{_DAY}{_YEAR}"), (1, 2, 3)),
    (re.compile(rf"(?<![^\W_]){_DAY}\s+(?:of\s+)?({_M})(?![^\W_])\.?{_YEAR}"), (2, 1, 3)),
    (re.compile(r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})(?!\d)"), (2, 3, 1)),
)
_DATE_ANSWER_RE = re.compile(r"(\d{4}|-)-(\d{2})-(\d{2})")
_BULLET_RE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+\S")
_LEAD_RE = re.compile(r"^[\s\W_]+")
_PUNCT = string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00ab\u00bb\u00bf\u00a1\u2022"


# ---- normalisation and reading --------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """The text every match is made on (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text.translate(_SUPERSCRIPTS)).translate(_STRAIGHTEN)
    text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", text).casefold()


def words(text: str) -> list[str]:
    """The normalised words of ``text`` (letters and digits, inner apostrophes kept)."""
    return _TOKEN_RE.findall(normalise(text))


def _numbers(norm: str) -> list[tuple[float, int, int]]:
    """(value, start, end) of every number in normalised text."""
    found = []
    for m in _NUMBER_RE.finditer(norm):
        value = float(m.group(2).replace(",", ""))
        found.append((-value if m.group(1) else value, m.start(), m.end()))
    return found


def find_numbers(text: str) -> list[float]:
    """Every number in ``text``, in order (digits only; see the module docstring)."""
    return [v for v, _, _ in _numbers(normalise(text))]


def last_number(response: str) -> float | None:
    """The last number in ``response``, or None."""
    found = find_numbers(response)
    return found[-1] if found else None


def _count_values(norm: str) -> list[float]:
    """Numbers in digits and in words (a count's candidates), in order of appearance."""
    found = [(start, v) for v, start, _ in _numbers(norm)]
    for m in _WORD_NUMBER_RE.finditer(norm):
        if m.group(1):
            value = 20 + 10 * _TENS.index(m.group(1)) + (_SMALL.index(m.group(2)) if m.group(2) else 0)
        else:
            value = _SMALL.index(m.group(3))
        found.append((m.start(), float(value)))
    return [v for _, v in sorted(found)]


def _dates(norm: str) -> list[tuple[int | None, int, int]]:
    """(year or None, month, day) of every date in normalised text, in order; impossible dates are skipped."""
    spans = []
    for regex, (gm, gd, gy) in _DATE_RES:
        for m in regex.finditer(norm):
            month = _MONTHS.get(m.group(gm)) or int(m.group(gm))
            year = int(m.group(gy)) if m.group(gy) else None
            spans.append((m.start(), -m.end(), (year, month, int(m.group(gd)))))
    found, end = [], -1
    for start, neg_end, date in sorted(spans):
        if start >= end and _valid_date(*date):  # overlapping reads of one date: keep the longest
            found.append(date)
            end = -neg_end
    return found


def _valid_date(year: int | None, month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year or 2000, month)[1]


def _parse_date(value: str) -> tuple[int | None, int, int]:
    m = _DATE_ANSWER_RE.fullmatch(value)
    return (None if m.group(1) == "-" else int(m.group(1)), int(m.group(2)), int(m.group(3)))


def count_bullets(response: str) -> int:
    return sum(1 for line in response.splitlines() if _BULLET_RE.match(line))


def count_words(response: str) -> int:
    return sum(1 for tok in response.split() if tok.strip(_PUNCT))


# ---- validation -----------------------------------------------------------------------------------------------


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_phrase(v: object) -> bool:
    return isinstance(v, str) and bool(words(v))


def _is_date(v: object) -> bool:
    return isinstance(v, str) and bool(_DATE_ANSWER_RE.fullmatch(v)) and _valid_date(*_parse_date(v))


def _non_empty_list(v: object, ok) -> bool:
    return isinstance(v, list) and bool(v) and all(ok(x) for x in v)


# spec -> (test, what is expected)
_SPECS = {
    "number": (_is_number, "a finite number"),
    "tolerance": (lambda v: _is_number(v) and v >= 0, "a finite number >= 0"),
    "count": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
    "natural": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    "text": (_is_phrase, "a non-empty str with a letter or digit"),
    "yes_no": (lambda v: v in ("yes", "no"), "'yes' or 'no'"),
    "date": (_is_date, "a date 'YYYY-MM-DD' or '--MM-DD'"),
    "phrases": (lambda v: _non_empty_list(v, _is_phrase), "a non-empty list of non-empty str"),
    "numbers": (lambda v: isinstance(v, list) and all(_is_number(x) for x in v), "a list of finite numbers"),
    "dates": (lambda v: isinstance(v, list) and all(_is_date(x) for x in v),
              "a list of dates 'YYYY-MM-DD' or '--MM-DD'"),
    "items": (lambda v: _non_empty_list(v, lambda x: _is_phrase(x) or _non_empty_list(x, _is_phrase)),
              "a non-empty list of phrases or lists of phrases"),
}


def _short(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _validate_one(where: str, check: object) -> str:
    """Validate one check object; return its kind."""
    if not isinstance(check, dict):
        raise ValueError(f"{where}: expected an object, got {type(check).__name__}")
    if "kind" not in check:
        raise ValueError(f"{where}.kind: missing")
    kind = check["kind"]
    if not isinstance(kind, str):
        raise ValueError(f"{where}.kind: expected str, got {type(kind).__name__}")
    if kind not in KINDS:
        raise ValueError(f"{where}.kind: unknown kind {kind!r} (expected one of {', '.join(sorted(KINDS))})")
    fields = KINDS[kind]
    for key in check:
        if key != "kind" and key not in fields:
            allowed = ", ".join(fields) if fields else "none"
            raise ValueError(f"{where}.{key}: unexpected field for kind {kind!r} (allowed: {allowed})")
    for name, spec in fields.items():
        if name not in check:
            if spec.endswith("?"):
                continue
            raise ValueError(f"{where}.{name}: missing (required for kind {kind!r})")
        ok, expected = _SPECS[spec.rstrip("?")]
        if not ok(check[name]):
            raise ValueError(f"{where}.{name}: expected {expected}, got {_short(check[name])}")
    return kind


def _as_list(check) -> list:
    return check if isinstance(check, list) else [check]


def validate_check(check: dict | list) -> None:
    """Raise a one-line ValueError naming the field if ``check`` does not follow the schema."""
    if isinstance(check, list):
        if not check:
            raise ValueError("check: empty list (expected at least one check object)")
        parts = [(f"check[{i}]", c) for i, c in enumerate(check)]
    else:
        parts = [("check", check)]
    seen: set[str] = set()
    for where, c in parts:
        kind = _validate_one(where, c)
        if kind in seen:
            raise ValueError(f"{where}.kind: kind {kind!r} appears twice")
        seen.add(kind)
    if not seen & set(CONTENT_KINDS):
        raise ValueError(f"check: no content kind (one of {', '.join(CONTENT_KINDS)}); "
                         f"a form alone passes wrong answers")


# ---- scoring --------------------------------------------------------------------------------------------------


def _committed(values: list, is_answer, is_given) -> bool:
    """The answer occurs and every value after its last occurrence is a given one (module docstring)."""
    for v in reversed(values):
        if is_answer(v):
            return True
        if not is_given(v):
            return False
    return False


def _close(x: float, target: float, tolerance: float) -> bool:
    if target == 0:
        return abs(x) <= 1e-9
    return abs(x - target) <= tolerance * abs(target) + 1e-12


@functools.lru_cache(maxsize=256)
def _unit_re(spellings: tuple[str, ...]) -> re.Pattern:
    alternatives = sorted({r"\s+".join(map(re.escape, normalise(s).split())) for s in spellings},
                          key=lambda a: (-len(a), a))  # longest first: "min" before "m"
    return re.compile(rf"\s*(?:{'|'.join(alternatives)})(?![^\W_])")


def _number_holds(check: dict, norm: str) -> bool:
    found = _numbers(norm)
    if "unit" in check:
        unit = _unit_re(tuple(check["unit"]))
        found = [(v, start, end) for v, start, end in found if unit.match(norm, end)]
    answer, tol, given = float(check["answer"]), float(check["tolerance"]), check.get("given", [])
    return _committed([v for v, _, _ in found], lambda v: _close(v, answer, tol),
                      lambda v: any(_close(v, g, tol) for g in given))


def _date_holds(check: dict, norm: str) -> bool:
    year, month, day = _parse_date(check["answer"])
    given = [_parse_date(g) for g in check.get("given", [])]

    def same(d, ref_year, ref_month, ref_day, year_needed):
        if (d[1], d[2]) != (ref_month, ref_day):
            return False
        return ref_year is None or (d[0] == ref_year if year_needed else d[0] in (None, ref_year))

    return _committed(_dates(norm), lambda d: same(d, year, month, day, True),
                      lambda d: any(same(d, *g, False) for g in given))


def _has_phrase(tokens: list[str], phrase: str) -> bool:
    want = words(phrase)
    k = len(want)
    last = {want[-1], want[-1] + "s", want[-1] + "es"}
    return any(tokens[i:i + k - 1] == want[:-1] and tokens[i + k - 1] in last for i in range(len(tokens) - k + 1))


def _starts_with(norm: str, text: str) -> bool:
    head, want = _LEAD_RE.sub("", norm), _LEAD_RE.sub("", normalise(text)).rstrip()
    return head.startswith(want) and not head[len(want):len(want) + 1].isalnum()


def _holds(check: dict, response: str, norm: str, tokens: list[str], finished: bool) -> bool:
    kind = check["kind"]
    if kind == "number":
        return _number_holds(check, norm)
    if kind == "count":
        given = check.get("given", [])
        return _committed(_count_values(norm), lambda v: v == check["answer"], lambda v: v in given)
    if kind == "date":
        return _date_holds(check, norm)
    if kind == "word":
        return any(_has_phrase(tokens, p) for p in check["accepted"])
    if kind == "all_words":
        return all(any(_has_phrase(tokens, p) for p in _as_list(item)) for item in check["items"])
    if kind == "yes_no":
        return bool(tokens) and tokens[0] == check["answer"]
    if kind == "one_word":
        return finished and count_words(response) == 1
    if kind == "max_words":
        return finished and 0 < count_words(response) <= check["count"]
    if kind == "bullets":
        return count_bullets(response) == check["count"]
    if kind == "starts_with":
        return _starts_with(norm, check["text"])
    raise AssertionError(kind)  # unreachable: validate_check rejects unknown kinds


def score(check: dict | list, response: str, finished: bool = True) -> bool:
    """True if ``response`` passes every part of ``check``; ``finished`` is False for an answer cut off at
    max_tokens."""
    validate_check(check)
    if not isinstance(response, str):
        raise ValueError(f"response: expected str, got {type(response).__name__}")
    norm = normalise(response)
    tokens = _TOKEN_RE.findall(norm)
    return all(_holds(c, response, norm, tokens, finished) for c in _as_list(check))


# ---- degenerate panel -----------------------------------------------------------------------------------------


def degenerate_answers(rows: list[dict], random_texts: list[str],
                       teacher_answers: list[str] | None = None) -> dict[str, list[str]]:
    """Answers from "models" that ignore the question, one list per panel member, aligned with ``rows``.

    An exact score means something only if these stay near zero.  ``rows`` are prompt rows ("prompt", "check",
    optionally "reference"); ``random_texts`` holds one text per row decoded from random token ids (the caller
    owns the tokenizer); ``teacher_answers``, when given, holds the teacher's answer to each row, and the panel
    answers each prompt with the next row's (the last with the first's): right answers to the wrong question.
    Members: always_yes ("Yes."), most_common_reference (the commonest "reference" among checkable rows; left
    out when no row has one), empty, echo_prompt, random_tokens, other_prompt_teacher (only with teacher_answers).
    """
    n = len(rows)
    if len(random_texts) != n:
        raise ValueError(f"random_texts: expected {n} texts (one per row), got {len(random_texts)}")
    panel = {"always_yes": ["Yes."] * n}
    references = [r["reference"] for r in rows if r.get("check") and isinstance(r.get("reference"), str)]
    if references:
        panel["most_common_reference"] = [Counter(references).most_common(1)[0][0]] * n
    panel["empty"] = [""] * n
    panel["echo_prompt"] = [r["prompt"] for r in rows]
    panel["random_tokens"] = list(random_texts)
    if teacher_answers is not None:
        if len(teacher_answers) != n:
            raise ValueError(f"teacher_answers: expected {n} answers (one per row), got {len(teacher_answers)}")
        panel["other_prompt_teacher"] = list(teacher_answers[1:]) + list(teacher_answers[:1])
    return panel


def panel_scores(rows: list[dict], answers: dict[str, list[str]]) -> dict[str, float | None]:
    """Exact accuracy of each panel member on the rows that carry a check (None when no row does), by ``score``.

    Every panel answer counts as finished: a degenerate answer gets no benefit of the doubt to lose.
    """
    checked = [i for i, r in enumerate(rows) if r.get("check")]
    scores = {}
    for name, texts in answers.items():
        if len(texts) != len(rows):
            raise ValueError(f"answers.{name}: expected {len(rows)} answers (one per row), got {len(texts)}")
        hits = sum(score(rows[i]["check"], texts[i]) for i in checked)
        scores[name] = hits / len(checked) if checked else None
    return scores
