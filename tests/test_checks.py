"""eval/checks.py: each check kind on hand-computed cases, normalisation, the number rule, one-line errors, and the
degenerate panel's functions.  The corpus itself is tested in test_prompts.py."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from distill.eval.checks import (  # noqa: E402
    CONTENT_KINDS, FORM_KINDS, KINDS, count_bullets, count_words, degenerate_answers, find_numbers, last_number,
    normalise, panel_scores, score, validate_check, words,
)


def NUM(answer, tol=0.01, **extra):
    return {"kind": "number", "answer": answer, "tolerance": tol, **extra}


def WORD(*accepted):
    return {"kind": "word", "accepted": list(accepted)}


ROME = WORD("Rome")  # a content check that holds for the form tests below


# --------------------------------------------------------------------- number
@pytest.mark.parametrize(
    "answer,response,expected",
    [
        (1200, "The answer is 1,200.", True),
        (1200, "The answer is 1200", True),
        (1200, "The answer is 1,300.", False),
        (-3.5, "-3.5", True),
        (-3.5, "It drops to −3.5 degrees.", True),  # Unicode minus sign
        (3.5, "It drops to -3.5 degrees.", False),
        (45, "First I add 20 and 25, which gives 45.", True),
        (20, "First I add 20 and 25, which gives 45.", False),  # 45 comes after, and the prompt gave no numbers
        (12.7, "5 inches is about 12.70 cm.", True),
        (8.047, "That's roughly 8.05 km.", True),  # within 1% relative
        (8.047, "That's roughly 7.5 km.", False),
        (0, "The temperature is 0 degrees.", True),
        (0, "The temperature is 0.001 degrees.", False),  # absolute 1e-9 for answer 0
        (6.25, "Your change is $6.25!", True),
        (12500.5, "Total: 12,500.5", True),
        (3, "The range is 1,2,3", True),  # not a thousands separator: three numbers
        (4, "about 3-4 hours", True),  # the hyphen of a range is not a minus sign
        (391, "no digits here", False),
        (391, "", False),
        (8, "８ legs", True),  # full-width digit, NFKC
    ],
)
def test_number(answer, response, expected):
    assert score(NUM(answer), response) is expected


def test_number_tight_tolerance():
    assert score(NUM(391, 1e-6), "17 x 23 = 391") is True
    assert score(NUM(391, 1e-6), "17 x 23 = 390") is False
    assert score(NUM(391, 0.01), "17 x 23 = 390") is True  # 0.26% off, inside 1%


def test_number_rule_restating_the_question_after_the_answer():
    # "the last number" would read 23 here; the given numbers are skipped, so 391 is the committed answer
    response = "391. That is what you get from 17 times 23."
    assert last_number(response) == 23
    assert score(NUM(391, 1e-6, given=[17, 23]), response) is True
    assert score(NUM(391, 1e-6), response) is False  # without `given`, 23 is a new number after the answer
    assert score(NUM(391, 1e-6, given=[17, 23]), "17 times 23 is 391, and 17 x 23 = 391.") is True


def test_number_rule_listing_candidates():
    # "any number equals the answer" would pass these; only the last committed number counts
    listing = "It could be 380, 385, 391, 395 or 400."
    assert 391 in find_numbers(listing)
    assert score(NUM(391, 1e-6, given=[17, 23]), listing) is False
    assert score(NUM(391, 1e-6, given=[17, 23]), "391, or maybe 392.") is False
    assert score(NUM(391, 1e-6, given=[17, 23]), "Maybe 380 or 385; no: 391.") is True  # a corrected answer counts


def test_number_rule_intermediate_steps_after_the_answer_fail():
    # the documented cost of the rule: a new number after the answer hides it
    assert score(NUM(391, 1e-6, given=[17, 23]), "391: 17 x 20 = 340 and 17 x 3 = 51.") is False
    assert score(NUM(391, 1e-6, given=[17, 23]), "17 x 20 = 340, 17 x 3 = 51, so 340 + 51 = 391.") is True


def test_number_given_equal_to_the_answer_never_hides_it():
    assert score(NUM(10, 1e-6, given=[10, 100]), "10% of 100 is 10.") is True


def test_number_unit():
    meters = NUM(5000, 1e-6, unit=["m", "meter", "meters", "metre", "metres"], given=[5, 1000, 0.001, 1])
    assert score(meters, "5 km is 5,000 meters.") is True
    assert score(meters, "5 km = 5000m") is True
    assert score(meters, "5 km is 5,000 Metres, since 1 km = 1000 m.") is True  # the factor is given
    assert score(meters, "5000") is False  # the unit asked for is missing
    assert score(meters, "5000 km") is False  # wrong unit
    assert score(meters, "5000 minutes") is False  # "m" must end at a word boundary
    assert score(meters, "5000 meters, or about 3.1 miles") is True  # numbers in other units are not answers
    fahrenheit = NUM(68, 1e-6, unit=["°f", "f", "fahrenheit", "degrees fahrenheit"], given=[20, 32, 1.8, 9, 5])
    assert score(fahrenheit, "20°C is 68°F.") is True
    assert score(fahrenheit, "20 °C x 9/5 + 32 = 68 ℉") is True  # ℉ is °F after NFKC
    assert score(fahrenheit, "It is 68 degrees Fahrenheit.") is True
    assert score(fahrenheit, "It is 68 degrees.") is False
    assert score(fahrenheit, "68°F. Water freezes at 32°F.") is True  # 32 is given


# ---------------------------------------------------------------------- count
@pytest.mark.parametrize(
    "response,expected",
    [("8", True), ("Eight.", True), ("A spider has eight legs.", True), ("EIGHT", True), ("8.0", True),
     ("It has 6 legs.", False), ("eighty", False), ("It has eight legs, one on each side.", True),  # lone "one"
     ("eight or nine", False), ("", False)],
)
def test_count(response, expected):
    assert score({"kind": "count", "answer": 8}, response) is expected


def test_count_compounds_and_given():
    assert score({"kind": "count", "answer": 21}, "twenty-one") is True
    assert score({"kind": "count", "answer": 21}, "twenty one") is True
    assert score({"kind": "count", "answer": 1}, "one") is False  # too often a pronoun; digits only
    assert score({"kind": "count", "answer": 1}, "1") is True
    limited = [{"kind": "max_words", "count": 12}, {"kind": "count", "answer": 8, "given": [12]}]
    assert score(limited, "Eight, in 12 words or fewer.") is True
    assert score([{"kind": "max_words", "count": 12}, {"kind": "count", "answer": 8}], "Eight, in 12 words.") is False


# ----------------------------------------------------------------------- date
@pytest.mark.parametrize(
    "response,expected",
    [("December 25.", True), ("Dec. 25th", True), ("25 December", True), ("the 25th of December", True),
     ("It is on December 25, every year.", True), ("2023-12-25", True), ("December 26", False),
     ("12/25", False),  # slashed dates are not read
     ("November 25", False), ("Christmas", False), ("December 32", False)],
)
def test_date_without_year(response, expected):
    assert score({"kind": "date", "answer": "--12-25"}, response) is expected


def test_date_with_year_and_given():
    fall = {"kind": "date", "answer": "1989-11-09"}
    assert score(fall, "November 9, 1989") is True
    assert score(fall, "On 9 November 1989.") is True
    assert score(fall, "1989-11-09") is True
    assert score(fall, "November 9") is False  # the year was asked for
    assert score(fall, "November 9, 1990") is False
    shifted = {"kind": "date", "answer": "--07-27", "given": ["--07-14"]}
    assert score(shifted, "July 27, which is 13 days after July 14.") is True  # the restated start is given
    assert score(shifted, "July 27 or maybe July 28") is False  # the last committed date counts
    assert score(shifted, "I don't know: July 14.") is False


# ---------------------------------------------------------------- word, all_words
def test_word_is_whole_word():
    assert score(WORD("ember"), "I remember the fire.") is False
    assert score(WORD("ember"), "A glowing ember.") is True
    assert score(WORD("art"), "Start here.") is False
    assert score(WORD("Paris"), "PARIS!") is True
    assert score(WORD("grape"), "Dried grapes.") is True  # plural of the last word
    assert score(WORD("carbon dioxide", "CO2"), "Plants take in carbon-dioxide.") is True  # hyphen = space
    assert score(WORD("carbon dioxide", "CO2"), "They absorb CO₂.") is True  # subscript, NFKC
    assert score(WORD("carbon dioxide"), "carbon monoxide and dioxide") is False  # the words must be consecutive
    assert score(WORD("Brasilia"), "Brasília.") is True  # accents dropped
    assert score(WORD("Na"), "The answer isn't known") is False


def test_all_words():
    colors = {"kind": "all_words", "items": ["red", "yellow", "blue"]}
    assert score(colors, "- Red\n- Yellow\n- Blue") is True
    assert score(colors, "Red, yellow") is False
    assert score(colors, "red, yellowish, blue") is False
    seasons = {"kind": "all_words", "items": ["spring", "summer", ["autumn", "fall"], "winter"]}
    assert score(seasons, "spring, summer, fall and winter") is True
    assert score(seasons, "spring, summer, winter") is False


# --------------------------------------------------------------------- yes_no
@pytest.mark.parametrize(
    "response,expected",
    [("Yes.", True), ("yes, it is.", True), ("  **Yes**, because...", True), ('"Yes." Penguins...', True),
     ("- YES", True), ("Yep.", False), ("Yesterday it was.", False), ("Well, yes.", False), ("No.", False),
     ("", False)],
)
def test_yes_no(response, expected):
    assert score({"kind": "yes_no", "answer": "yes"}, response) is expected


def test_yes_no_answer_no():
    assert score({"kind": "yes_no", "answer": "no"}, "No, they can't.") is True
    assert score({"kind": "yes_no", "answer": "no"}, "Nope.") is False
    assert score({"kind": "yes_no", "answer": "no"}, "Yes.") is False


# ------------------------------------------------------- form kinds, with content
def test_content_and_form_must_both_hold():
    check = [{"kind": "starts_with", "text": "Sure"}, ROME]
    assert score(check, "Sure, the capital of Italy is Rome.") is True
    assert score(check, "Sure, it is Milan.") is False  # right form, wrong answer
    assert score(check, "The capital of Italy is Rome.") is False  # right answer, wrong form
    one = [{"kind": "one_word"}, ROME]
    assert score(one, "Rome.") is True
    assert score(one, "It is Rome.") is False
    assert score(one, "Paris.") is False


@pytest.mark.parametrize(
    "response,expected",
    [("Rome", True), ("Rome.", True), ("  **Rome**!  ", True), ("Rome, Italy", False), ("The answer is Rome.", False)],
)
def test_one_word(response, expected):
    assert score([{"kind": "one_word"}, ROME], response) is expected


def test_max_words():
    c = [{"kind": "max_words", "count": 5}, ROME]
    assert score(c, "It is Rome, of course.") is True
    assert score(c, "It is Rome, of course, friend.") is False
    assert score(c, "Rome - it is.") is True  # a lone '-' is not a word


def test_length_checks_need_finished():
    assert score([{"kind": "one_word"}, ROME], "Rome", finished=False) is False
    assert score([{"kind": "max_words", "count": 5}, ROME], "Rome.", finished=False) is False
    assert score([{"kind": "bullets", "count": 1}, ROME], "- Rome", finished=False) is True  # not a length check


def test_bullets():
    resp = "Here you go:\n- one\n* two\n  • three\n1. four\n2) Rome\nNot a bullet.\n**Bold** line\n---"
    assert count_bullets(resp) == 5
    assert score([{"kind": "bullets", "count": 5}, ROME], resp) is True
    assert score([{"kind": "bullets", "count": 4}, ROME], resp) is False
    assert count_bullets("1.5 cups of flour\n-3 degrees") == 0
    assert score([{"kind": "bullets", "count": 1}, ROME], "Rome") is False


def test_starts_with():
    c = [{"kind": "starts_with", "text": "In short"}, ROME]
    assert score(c, "  in short, Rome.") is True
    assert score(c, "**In short**: Rome") is True
    assert score(c, "Well, in short, Rome.") is False
    sure = [{"kind": "starts_with", "text": "Sure"}, ROME]
    assert score(sure, "Sure! Rome.") is True
    assert score(sure, "Surely Rome.") is False  # the opening must end at a word boundary
    thing = [{"kind": "starts_with", "text": "Here's the thing"}, ROME]
    assert score(thing, "Here’s the thing: Rome.") is True  # curly apostrophe


# --------------------------------------------------------------- normalisation
def test_normalisation():
    assert normalise("Brontë CO₂ ２０ ℉") == "bronte co2 20 °f"
    assert normalise("5²") == "5^2"  # plain NFKC would make 52
    assert find_numbers("5² = 25") == [5, 2, 25]
    assert normalise("It’s “fine” — really") == "it's \"fine\" - really"
    assert words("Don't stop: well-known STRASSE Straße") == ["don't", "stop", "well", "known", "strasse", "strasse"]
    assert count_words("One two - three.") == 3


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "check,match",
    [
        ({"kind": "foo"}, r"^check\.kind: unknown kind 'foo' \(expected one of"),
        ({}, r"^check\.kind: missing"),
        ({"kind": 3}, r"^check\.kind: expected str"),
        ("number", r"^check: expected an object"),
        ([], r"^check: empty list"),
        ({"kind": "number", "tolerance": 0.01}, r"^check\.answer: missing"),
        ({"kind": "number", "answer": 3}, r"^check\.tolerance: missing"),
        ({"kind": "number", "answer": "3", "tolerance": 0.01}, r"^check\.answer: expected a finite number"),
        ({"kind": "number", "answer": True, "tolerance": 0.01}, r"^check\.answer"),
        ({"kind": "number", "answer": float("nan"), "tolerance": 0.01}, r"^check\.answer"),
        ({"kind": "number", "answer": 3, "tolerance": -1}, r"^check\.tolerance: expected a finite number >= 0"),
        ({"kind": "number", "answer": 3, "tolerance": 0, "unit": []}, r"^check\.unit: expected a non-empty list"),
        ({"kind": "number", "answer": 3, "tolerance": 0, "given": ["3"]}, r"^check\.given: expected a list of finite"),
        ({"kind": "count", "answer": -1}, r"^check\.answer: expected an int >= 0"),
        ({"kind": "count", "answer": 2.5}, r"^check\.answer: expected an int >= 0"),
        ({"kind": "date", "answer": "12/25"}, r"^check\.answer: expected a date"),
        ({"kind": "date", "answer": "--02-30"}, r"^check\.answer: expected a date"),
        ({"kind": "date", "answer": "2023-02-29"}, r"^check\.answer: expected a date"),
        ({"kind": "date", "answer": "--12-25", "given": ["tomorrow"]}, r"^check\.given: expected a list of dates"),
        ({"kind": "word", "accepted": "Rome"}, r"^check\.accepted: expected a non-empty list"),
        ({"kind": "word", "accepted": ["Rome", "!!"]}, r"^check\.accepted: expected a non-empty list"),
        ({"kind": "all_words", "items": [["red"], []]}, r"^check\.items: expected a non-empty list of phrases"),
        ({"kind": "yes_no"}, r"^check\.answer: missing"),
        ({"kind": "yes_no", "answer": "Yes"}, r"^check\.answer: expected 'yes' or 'no'"),
        ({"kind": "word", "accepted": ["x"], "text": "y"}, r"^check\.text: unexpected field for kind 'word'"),
        # form kinds alone, and form fields, inside a list that names the position
        ({"kind": "one_word"}, r"^check: no content kind"),
        ([{"kind": "bullets", "count": 3}, {"kind": "starts_with", "text": "Sure"}], r"^check: no content kind"),
        ([ROME, {"kind": "bullets"}], r"^check\[1\]\.count: missing"),
        ([ROME, {"kind": "bullets", "count": 2.0}], r"^check\[1\]\.count: expected an int >= 1"),
        ([ROME, {"kind": "max_words", "count": 0}], r"^check\[1\]\.count: expected an int >= 1"),
        ([ROME, {"kind": "starts_with"}], r"^check\[1\]\.text: missing"),
        ([ROME, {"kind": "starts_with", "text": "  "}], r"^check\[1\]\.text: expected a non-empty str"),
        ([ROME, {"kind": "one_word", "count": 1}], r"^check\[1\]\.count: unexpected field for kind 'one_word'"),
        ([ROME, 7], r"^check\[1\]: expected an object"),
        ([ROME, WORD("Roma")], r"^check\[1\]\.kind: kind 'word' appears twice"),
    ],
)
def test_bad_checks(check, match):
    with pytest.raises(ValueError, match=match) as ei:
        validate_check(check)
    assert "\n" not in str(ei.value)
    with pytest.raises(ValueError, match=match):
        score(check, "anything")


def test_bad_response():
    with pytest.raises(ValueError, match=r"^response: expected str, got NoneType$"):
        score(ROME, None)


def test_validate_ok_and_kinds():
    for check in (NUM(1.5), NUM(2, 0, unit=["m"], given=[]), {"kind": "count", "answer": 0}, ROME,
                  {"kind": "date", "answer": "--02-29"}, {"kind": "date", "answer": "1776-07-04", "given": []},
                  {"kind": "all_words", "items": ["a", ["b", "c"]]}, {"kind": "yes_no", "answer": "no"},
                  [{"kind": "one_word"}, ROME], [{"kind": "bullets", "count": 3}, {"kind": "starts_with", "text": "x"},
                                                 {"kind": "max_words", "count": 30}, ROME]):
        validate_check(check)
    assert set(KINDS) == set(CONTENT_KINDS) | set(FORM_KINDS)
    assert set(CONTENT_KINDS) == {"number", "count", "date", "word", "all_words", "yes_no"}
    assert set(FORM_KINDS) == {"one_word", "max_words", "bullets", "starts_with"}


# -------------------------------------------------------------- degenerate panel
ROWS = [
    {"prompt": "Is the sun a star? Answer yes or no.", "check": [{"kind": "yes_no", "answer": "yes"}],
     "reference": "Yes."},
    {"prompt": "Can penguins fly? Answer yes or no.", "check": [{"kind": "yes_no", "answer": "no"}],
     "reference": "No."},
    {"prompt": "What's the capital of Italy? One word.", "check": [{"kind": "one_word"}, ROME], "reference": "Rome."},
    {"prompt": "Is a square a rectangle? Yes or no.", "check": [{"kind": "yes_no", "answer": "yes"}],
     "reference": "Yes."},
    {"prompt": "Write a poem about rain."},  # not checkable: left out of every accuracy
]


def test_degenerate_answers():
    panel = degenerate_answers(ROWS, ["r0", "r1", "r2", "r3", "r4"], teacher_answers=["t0", "t1", "t2", "t3", "t4"])
    assert list(panel) == ["always_yes", "most_common_reference", "empty", "echo_prompt", "random_tokens",
                           "other_prompt_teacher"]
    assert panel["always_yes"] == ["Yes."] * 5
    assert panel["most_common_reference"] == ["Yes."] * 5
    assert panel["empty"] == [""] * 5
    assert panel["echo_prompt"] == [r["prompt"] for r in ROWS]
    assert panel["random_tokens"] == ["r0", "r1", "r2", "r3", "r4"]
    assert panel["other_prompt_teacher"] == ["t1", "t2", "t3", "t4", "t0"]
    plain = degenerate_answers([{"prompt": "p", "check": ROME}], ["r"])
    assert "other_prompt_teacher" not in plain and "most_common_reference" not in plain  # nothing to take them from


def test_panel_scores():
    panel = degenerate_answers(ROWS, ["Yes"] * 5, teacher_answers=[r.get("reference", "") for r in ROWS])
    scores = panel_scores(ROWS, panel)
    # hand-counted over the 4 checkable rows: "Yes." is right for rows 0 and 3; the shifted references are
    # "No." (row 0: wrong), "Rome." (row 1: wrong), "Yes." (row 2: wrong), "" (row 3: wrong)
    assert scores == {"always_yes": 0.5, "most_common_reference": 0.5, "empty": 0.0, "echo_prompt": 0.0,
                      "random_tokens": 0.5, "other_prompt_teacher": 0.0}
    assert panel_scores([{"prompt": "p"}], {"x": ["a"]}) == {"x": None}


def test_panel_length_errors():
    with pytest.raises(ValueError, match=r"^random_texts: expected 5 texts \(one per row\), got 1$"):
        degenerate_answers(ROWS, ["x"])
    with pytest.raises(ValueError, match=r"^teacher_answers: expected 5 answers"):
        degenerate_answers(ROWS, ["x"] * 5, teacher_answers=[])
    with pytest.raises(ValueError, match=r"^answers\.mine: expected 5 answers"):
        panel_scores(ROWS, {"mine": ["x"]})
