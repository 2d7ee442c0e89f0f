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
