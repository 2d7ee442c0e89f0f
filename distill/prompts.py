"""Prompt corpora: one loader shared by generate/ and eval/.

A source is a .jsonl / .json / .parquet file, a folder of them (read in sorted order), or a `datasets` hub id
(anything that is not an existing path). Each record holds one of
    prompt                      a single user turn
    instruction (+ input)       a user turn: instruction, a blank line, input
    messages                    [{role, content}, ...]: optional system first, ends with a user turn
and optionally `response` (or a final assistant message) for scoring mode, and `id`. Other fields go to Prompt.meta.
`columns` maps our names (id, prompt, instruction, input, messages, response) to the corpus' column names.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from distill.errors import DistillError

NAMES = ("id", "prompt", "instruction", "input", "messages", "response")
SUFFIXES = (".jsonl", ".json", ".parquet")
ROLES = ("system", "user", "assistant")


@dataclass
class Prompt:
    id: str
    messages: list[dict]  # chat turns, ending with a user turn
    response: str | None = None  # a given answer (scoring mode)
    meta: dict = field(default_factory=dict)  # the record's other fields (category, check, ...)
    where: str = ""  # "file:line" (line = record number for .json, .parquet and hub datasets)

    @property
    def task(self) -> str:
        """The prompt's task, for multi-task mixtures and per-task metrics: its corpus `task` or `category` field,
        else the name of the file it came from (a folder of one file per task makes one task per file)."""
        task = self.meta.get("task") or self.meta.get("category")
        return str(task) if task is not None else Path(self.where.rsplit(":", 1)[0]).stem


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def prompt_hash(messages: list[dict]) -> str:
    """Content hash of a conversation: equal for the same turns whatever corpus they come from."""
    return hashlib.sha256(canonical(messages).encode("utf-8")).hexdigest()[:16]


def load_prompts(source: str | Path, columns: dict[str, str] | None = None, split: str = "train",
                 max_prompts: int | None = None) -> tuple[list[Prompt], dict]:
    """Read, check and deduplicate a corpus. Returns (prompts, stats); every problem is a one-line DistillError."""
    columns = dict(columns or {})
    for name in columns:
        if name not in NAMES:
            raise DistillError(f"columns: unknown name {name!r}; known names: {', '.join(NAMES)}")
    prompts: list[Prompt] = []
    seen: dict[str, tuple[str, str]] = {}  # id -> (content key, where)
    duplicates = 0
    for where, record in _records(source, split):
        prompt = _parse(record, columns, where)
        key = canonical([prompt.messages, prompt.response])
        if prompt.id in seen:
            old_key, old_where = seen[prompt.id]
            if old_key != key:
                raise DistillError(f"{where}: id {prompt.id!r} is also used by {old_where} with different content")
            duplicates += 1
            continue
        seen[prompt.id] = (key, where)
        prompts.append(prompt)
    if not prompts:
        raise DistillError(f"{source}: the corpus holds no prompts")
    if max_prompts is not None:
        prompts = prompts[:max_prompts]
    stats = {
        "source": str(source),
        "prompts": len(prompts),
        "duplicates_dropped": duplicates,
        "sha256": hashlib.sha256("\n".join(p.id for p in prompts).encode("utf-8")).hexdigest(),
    }
    return prompts, stats


def _records(source: str | Path, split: str) -> Iterator[tuple[str, Any]]:
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
        if not files:
            raise DistillError(f"{path}: folder holds no {'/'.join(SUFFIXES)} files")
    elif path.is_file():
        if path.suffix not in SUFFIXES:
            raise DistillError(f"{path}: unsupported file type (expected {', '.join(SUFFIXES)})")
        files = [path]
    else:
        if str(source).startswith((".", "/", "~")) or str(source).endswith(SUFFIXES):
            raise DistillError(f"{source}: no such file or folder")
        yield from _hub_records(str(source), split)
        return
    for f in files:
        if f.suffix == ".jsonl":
            yield from _jsonl_records(f)
        elif f.suffix == ".json":
            yield from _json_records(f)
        else:
            yield from _dataset_records("parquet", str(f), {"data_files": str(f), "split": "train"})


def _jsonl_records(path: Path) -> Iterator[tuple[str, Any]]:
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            where = f"{path}:{n}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DistillError(f"{where}: invalid UTF-8 at byte {e.start}") from None
            if not line.strip():
                continue
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as e:
                raise DistillError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None


def _json_records(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DistillError(f"{path}: invalid UTF-8 at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise DistillError(f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(data, list):
        raise DistillError(f"{path}: expected a JSON array of records")
    for n, record in enumerate(data, start=1):
        yield f"{path}:{n}", record


def _hub_records(name: str, split: str) -> Iterator[tuple[str, Any]]:
    yield from _dataset_records(name, name, {"split": split})


def _dataset_records(builder: str, label: str, kwargs: dict) -> Iterator[tuple[str, Any]]:
    import datasets

    try:
        ds = datasets.load_dataset(builder, **kwargs)
    except Exception as e:  # datasets raises many kinds; the user needs one line
        raise DistillError(f"{label}: cannot load dataset ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    for n, record in enumerate(ds, start=1):
        yield f"{label}:{n}", record


def _field(record: dict, columns: dict, name: str, kind: type, where: str) -> Any:
    column = columns.get(name, name)
    value = record.get(column)
    if value is not None and not isinstance(value, kind):
        raise DistillError(f"{where}: field {column!r} should be {kind.__name__}, got {type(value).__name__}")
    return value


def _parse(record: Any, columns: dict, where: str) -> Prompt:
    if not isinstance(record, dict):
        raise DistillError(f"{where}: record is not a JSON object")
    prompt = _field(record, columns, "prompt", str, where)
    instruction = _field(record, columns, "instruction", str, where)
    extra = _field(record, columns, "input", str, where)
    messages = _field(record, columns, "messages", list, where)
    response = _field(record, columns, "response", str, where)
    rid = record.get(columns.get("id", "id"))
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (str, int))):
        raise DistillError(f"{where}: field {columns.get('id', 'id')!r} should be str, got {type(rid).__name__}")

    if messages is not None:
        messages = _check_messages(messages, where)
        if messages[-1]["role"] == "assistant":
            if response is not None:
                raise DistillError(f"{where}: both a final assistant message and a {columns.get('response', 'response')!r} field")
            response = messages[-1]["content"]
            messages = messages[:-1]
        if not messages or messages[-1]["role"] != "user":
            raise DistillError(f"{where}: messages must end with a user turn (or a user turn and the answer to score)")
    elif prompt is not None:
        messages = [{"role": "user", "content": prompt}]
    elif instruction is not None:
        text = instruction if not (extra and extra.strip()) else f"{instruction}\n\n{extra}"
        messages = [{"role": "user", "content": text}]
    else:
        names = [columns.get(n, n) for n in ("prompt", "instruction", "messages")]
        raise DistillError(f"{where}: record has no prompt field (expected one of {', '.join(names)})")
    if not messages[-1]["content"].strip():
        raise DistillError(f"{where}: the prompt is empty")

    used = {columns.get(n, n) for n in NAMES}
    meta = {k: v for k, v in record.items() if k not in used}
    if rid is not None:
        pid = str(rid)
    else:  # content hash; the response is part of it so that one prompt may be scored with several answers
        pid = prompt_hash(messages) if response is None else prompt_hash(messages + [{"response": response}])
    return Prompt(id=pid, messages=messages, response=response, meta=meta, where=where)


def _check_messages(messages: list, where: str) -> list[dict]:
    if not messages:
        raise DistillError(f"{where}: messages is empty")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise DistillError(f"{where}: messages[{i}] should be an object with string 'role' and 'content'")
        if m["role"] not in ROLES:
            raise DistillError(f"{where}: messages[{i}] has role {m['role']!r} (expected {', '.join(ROLES)})")
        if m["role"] == "system" and i != 0:
            raise DistillError(f"{where}: messages[{i}]: a system message may only come first")
        out.append({"role": m["role"], "content": m["content"]})
    return out
