"""distill.prompts: accepted shapes, column mapping, ids, duplicates, and one-line errors naming file:line."""

from __future__ import annotations

import json

import pytest

from distill.errors import DistillError
from distill.prompts import load_prompts, prompt_hash


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_shapes(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [
        {"prompt": "Hi there", "category": "chat", "check": {"contains": "hello"}},
        {"instruction": "Translate to French.", "input": "Good morning"},
        {"instruction": "Say hi.", "input": ""},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]},
        {"messages": [{"role": "user", "content": "Capital of Peru?"}, {"role": "assistant", "content": "Lima."}]},
        {"prompt": "Name a colour.", "response": "Blue.", "id": 7},
    ])
    prompts, stats = load_prompts(path)
    assert [p.messages for p in prompts[:4]] == [
        [{"role": "user", "content": "Hi there"}],
        [{"role": "user", "content": "Translate to French.\n\nGood morning"}],
        [{"role": "user", "content": "Say hi."}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
    ]
    assert prompts[0].meta == {"category": "chat", "check": {"contains": "hello"}}
    assert prompts[0].where == f"{path}:1" and prompts[0].response is None
    assert prompts[4].messages == [{"role": "user", "content": "Capital of Peru?"}] and prompts[4].response == "Lima."
    assert prompts[5].id == "7" and prompts[5].response == "Blue."
    assert prompts[0].id == prompt_hash(prompts[0].messages) and len(prompts[0].id) == 16
    assert stats["prompts"] == 6 and stats["duplicates_dropped"] == 0 and len(stats["sha256"]) == 64


def test_json_parquet_folder_and_columns(tmp_path):
    import datasets

    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps([{"question": "What is tea?", "qid": "q1"}]))
    datasets.Dataset.from_list([{"question": "What is coffee?", "qid": "q2"}]).to_parquet(str(folder / "b.parquet"))
    write_jsonl(folder / "c.jsonl", [{"question": "What is milk?", "qid": "q3", "answer": "A drink."}])
    (folder / "notes.txt").write_text("ignored")
    prompts, stats = load_prompts(folder, columns={"prompt": "question", "id": "qid", "response": "answer"})
    assert [p.id for p in prompts] == ["q1", "q2", "q3"]
    assert prompts[1].messages == [{"role": "user", "content": "What is coffee?"}]
    assert prompts[2].response == "A drink." and prompts[2].meta == {}
    assert stats["source"] == str(folder)
    assert [p.task for p in prompts] == ["a", "b", "c"]  # no task or category field: one task per file
    write_jsonl(folder / "d.jsonl", [{"question": "Why?", "qid": "q4", "category": "chat"},
                                     {"question": "2+2?", "qid": "q5", "category": "chat", "task": "math"}])
    tasks = {p.id: p.task for p in load_prompts(folder, columns={"prompt": "question", "id": "qid"})[0]}
    assert (tasks["q4"], tasks["q5"]) == ("chat", "math")  # task wins over category
    with pytest.raises(DistillError, match="columns: unknown name 'question'"):
        load_prompts(folder, columns={"question": "prompt"})


def test_ids_are_stable_and_duplicates_dropped(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "One"}, {"prompt": "Two"}, {"prompt": "One"}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"messages": [{"role": "user", "content": "Two"}]}, {"prompt": "Three"}])
    pa, sa = load_prompts(a)
    pb, _ = load_prompts(b)
    assert sa["duplicates_dropped"] == 1 and [p.messages[0]["content"] for p in pa] == ["One", "Two"]
    assert pa[1].id == pb[0].id  # same content, same id, whatever the shape
    assert load_prompts(a)[1]["sha256"] == sa["sha256"]
    # The same prompt with two different answers to score: two ids.
    c = write_jsonl(tmp_path / "c.jsonl", [{"prompt": "One", "response": "x"}, {"prompt": "One", "response": "y"}])
    assert len({p.id for p in load_prompts(c)[0]}) == 2
    assert [p.id for p in load_prompts(a, max_prompts=1)[0]] == [pa[0].id]


def test_same_id_different_content(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"id": "x", "prompt": "A"}, {"prompt": "B"}, {"id": "x", "prompt": "C"}])
    with pytest.raises(DistillError) as e:
        load_prompts(path)
    assert str(e.value) == f"{path}:3: id 'x' is also used by {path}:1 with different content"


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "ok"', "malformed JSON"),
    ('{"text": "no prompt"}', "record has no prompt field"),
    ('{"prompt": 3}', "field 'prompt' should be str, got int"),
    ('{"prompt": "   "}', "the prompt is empty"),
    ('{"messages": "hi"}', "field 'messages' should be list, got str"),
    ('{"messages": [{"role": "user"}]}', "messages[0] should be an object"),
    ('{"messages": [{"role": "bot", "content": "x"}]}', "role 'bot'"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}', "system message may only"),
    ('{"messages": [{"role": "system", "content": "b"}]}', "must end with a user turn"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "response": "c"}',
     "both a final assistant message"),
    ('{"prompt": "x", "id": [1]}', "field 'id' should be str"),
    ('[1, 2]', "record is not a JSON object"),
])
def test_bad_records_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "fine"}\n\n' + line + "\n")
    with pytest.raises(DistillError) as e:
        load_prompts(path)
    assert str(e.value).startswith(f"{path}:3: ") and message in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_files(tmp_path):
    path = tmp_path / "bin.jsonl"
    path.write_bytes(b'{"prompt": "fine"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(DistillError, match=rf"^{path}:2: invalid UTF-8"):
        load_prompts(path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DistillError, match="holds no prompts"):
        load_prompts(empty)
    with pytest.raises(DistillError, match="no such file or folder"):
        load_prompts(tmp_path / "missing.jsonl")
    broken = tmp_path / "broken.json"
    broken.write_text('[\n{"prompt": "a"},\n{"prompt": }\n]')
    with pytest.raises(DistillError, match=rf"^{broken}:3: malformed JSON"):
        load_prompts(broken)


# ---- the project's own corpus (prompts/*.jsonl, built by prompts/build_corpus.py) ------------------------------

import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

from distill.eval.checks import CONTENT_KINDS, degenerate_answers, panel_scores, score, validate_check  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "prompts"
SPLITS = ("train", "validation", "heldout")
CHECKABLE = {"arithmetic", "unit_conversion", "format"}
TEACHER = ROOT / "models" / "smollm2-135m-instruct"


def _norm_hash(text: str) -> str:
    return hashlib.sha256(re.sub(r"\s+", " ", text.strip()).lower().encode("utf-8")).hexdigest()


def _load(split: str) -> list[dict]:
    with open(PROMPTS / f"{split}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _checkable(split: str) -> list[dict]:
    return [r for r in _load(split) if "check" in r]


def test_corpus_files():
    data = {s: _load(s) for s in SPLITS}
    assert len(data["train"]) >= 1400 and 290 <= len(data["heldout"]) <= 330 and 100 <= len(data["validation"]) <= 140
    assert len(_checkable("heldout")) >= 100 and 35 <= len(_checkable("validation")) <= 45
    categories = set(Counter(r["category"] for r in data["train"]))
    assert len(categories) == 11 and CHECKABLE < categories
    for split, rows in data.items():
        assert {r["category"] for r in rows} == categories, f"{split} lacks a category"
        for r in rows:
            assert re.fullmatch(rf"{re.escape(r['category'])}-{split}-\d{{4}}", r["id"]), r["id"]
            assert isinstance(r["prompt"], str) and r["prompt"].strip()
            if r["category"] in CHECKABLE:
                assert set(r) == {"id", "category", "prompt", "check", "reference"}, r["id"]
                validate_check(r["check"])  # among other things: at least one content kind
                assert any(c["kind"] in CONTENT_KINDS for c in r["check"])
            else:
                assert set(r) == {"id", "category", "prompt"}, r["id"]
        assert len({r["id"] for r in rows}) == len(rows)
        hashes = [_norm_hash(r["prompt"]) for r in rows]
        assert len(hashes) == len(set(hashes)), f"duplicate prompts in {split}"


def test_splits_are_disjoint_by_text():
    hashes = {s: {_norm_hash(r["prompt"]) for r in _load(s)} for s in SPLITS}
    assert not hashes["train"] & hashes["heldout"]
    assert not hashes["train"] & hashes["validation"]
    assert not hashes["validation"] & hashes["heldout"]


def _builder():
    spec = importlib.util.spec_from_file_location("build_corpus_under_test", PROMPTS / "build_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_splits_are_disjoint_by_topic_group():
    data, groups = _builder().build()
    assert {s: [r["prompt"] for r in data[s]] for s in SPLITS} == {s: [r["prompt"] for r in _load(s)] for s in SPLITS}
    assert not groups["train"] & groups["heldout"]
    assert not groups["train"] & groups["validation"]
    assert not groups["validation"] & groups["heldout"]
    # e.g. a summarised paragraph (5 prompts per group) lives in exactly one split
    paragraphs = {s: {g for c, g in groups[s] if c == "summarising"} for s in SPLITS}
    assert len(paragraphs["heldout"]) == 5 and len(paragraphs["validation"]) == 2


def test_every_reference_passes_its_own_check():
    for split in SPLITS:
        for r in _checkable(split):
            assert score(r["check"], r["reference"]), (r["id"], r["reference"])


def test_no_prompt_passes_its_own_content_check():
    for split in SPLITS:
        for r in _checkable(split):
            content = [c for c in r["check"] if c["kind"] in CONTENT_KINDS]
            assert not score(content, r["prompt"]), r["id"]


@pytest.mark.parametrize("split,share", [("heldout", 0.03), ("validation", 0.05)])
def test_no_answer_is_right_too_often(split, share):
    rows = _checkable(split)
    limit = int(share * len(rows))
    for text in dict.fromkeys([r["reference"] for r in rows] + ["Yes.", "No.", "Paris", "Yes", "No"]):
        hits = sum(score(r["check"], text) for r in rows)
        assert hits <= limit, (split, text, hits, limit)
    answers = Counter(c["answer"] for r in rows for c in r["check"] if c["kind"] == "yes_no")
    assert answers["yes"] == answers["no"] > 0


def _random_word_texts(rows: list[dict], seed: int) -> list[str]:
    # words of every prompt and reference: random text made of the corpus' own words, answers included
    vocab = sorted({w for s in SPLITS for r in _load(s) for w in (r["prompt"] + " " + r.get("reference", "")).split()})
    rng = random.Random(seed)
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 40))) for _ in rows]


def _panel(rows: list[dict], random_texts: list[str]) -> dict[str, float]:
    panel = degenerate_answers(rows, random_texts, teacher_answers=[r["reference"] for r in rows])
    assert set(panel) == {"always_yes", "most_common_reference", "empty", "echo_prompt", "random_tokens",
                          "other_prompt_teacher"}
    panel["always_paris"] = ["Paris"] * len(rows)
    return panel_scores(rows, panel)


@pytest.mark.parametrize("split", ["heldout", "validation"])
def test_degenerate_panel_scores_near_zero(split):
    rows = _checkable(split)
    for seed in range(3):
        scores = _panel(rows, _random_word_texts(rows, seed))
        assert all(v <= 0.05 for v in scores.values()), (split, scores)
    # the answers themselves are right: the panel is low because the checks read content, not by accident
    assert panel_scores(rows, {"reference": [r["reference"] for r in rows]}) == {"reference": 1.0}


@pytest.mark.skipif(not TEACHER.is_dir(), reason="models/smollm2-135m-instruct/ is missing (run scripts/setup.sh)")
@pytest.mark.parametrize("split", ["heldout", "validation"])
def test_degenerate_panel_with_random_tokens(split):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(TEACHER))
    special = set(tokenizer.all_special_ids)
    ids = [i for i in range(len(tokenizer)) if i not in special]
    rows = _checkable(split)
    rng = random.Random(0)
    texts = [tokenizer.decode([rng.choice(ids) for _ in range(rng.randint(1, 48))]) for _ in rows]
    scores = _panel(rows, texts)
    assert all(v <= 0.05 for v in scores.values()), (split, scores)


def test_builder_is_deterministic(tmp_path):
    for run in ("a", "b"):
        subprocess.run([sys.executable, str(PROMPTS / "build_corpus.py"), "--out", str(tmp_path / run)],
                       check=True, capture_output=True)
    for split in SPLITS:
        name = f"{split}.jsonl"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
        assert (tmp_path / "a" / name).read_bytes() == (PROMPTS / name).read_bytes(), name
