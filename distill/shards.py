"""The shard format and the manifest: the only thing the stages share.

generate/ writes shards with `ShardSetWriter`; train/ and eval/ read them with `read_examples`. The format
(field names, types, the compact top-k encoding) is documented in docs/shard-format.md; keep the two in step.

A shard set is a folder:
    manifest.json              written last, atomically; lists every finished shard with its sha256
    shard-00000.jsonl.zst      compact codec: JSON Lines compressed with zstd
    shard-00000.jsonl          plain codec: JSON Lines, human-readable
"""

from __future__ import annotations

import base64
import io
import json
import math
import signal
import struct
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import zstandard

from distill.errors import DistillError
from distill.files import atomic_write, sha256_bytes, sha256_file

FORMAT = "distill-shards"
FORMAT_VERSION = 3
READABLE_VERSIONS = (2, 3)  # version 2 had no `responses` and no per-record `task`: both read as absent
MANIFEST = "manifest.json"
CODECS = ("compact", "plain")
_BLOB_MAGIC = b"TK2"
RECENT_TOKENS = 32  # compact codec: how many previous tokens' ids form the window for cheap id coding
_ZSTD_LEVEL = 12

# A write that exceeds `ulimit -f` must fail with an OSError we can report, not kill the process.
if hasattr(signal, "SIGXFSZ"):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


# --------------------------------------------------------------------------------------------------------------
# Compact top-k codec
#
# Per generated token t the engine gives the sampled token's exact logprob and the teacher's top-k (id, logprob).
# We keep probabilities, not logprobs: p is rounded to a multiple of `prob_step` (entries that round to 0 are
# dropped, their mass joins the tail), so each entry is off by at most prob_step / 2 in probability. When the
# sampled token is among the top-k we store a flag instead of its entry and rebuild its probability from the
# exact sampled logprob. An id seen among the previous 32 tokens' ids is stored as its index in that sorted window,
# any other id as a delta over the sorted vocabulary ids. Five varint/float streams are concatenated, protected by
# a crc32, compressed with zstd and base64-encoded into one JSON string per record.
# --------------------------------------------------------------------------------------------------------------


def _put_varint(value: int, out: bytearray) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _get_varints(buf: bytes, pos: int, count: int, end: int) -> tuple[list[int], int]:
    values = []
    for _ in range(count):
        value = shift = 0
        while True:
            if pos >= end:
                raise DistillError("top-k payload is cut short (varint runs past its stream)")
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 63:
                raise DistillError("top-k payload is corrupt (varint too long)")
        values.append(value)
    return values, pos


class _RecentIds:
    """The ids seen in the last RECENT_TOKENS tokens of a record (their kept top-k ids and the sampled token).

    About half of a token's top-k ids appeared in the previous 32 tokens' lists (measured on SmolLM2 answers), and an
    index into this sorted window of a few hundred ids costs fewer bits than a delta over the whole vocabulary.
    """

    def __init__(self):
        self.counts: dict[int, int] = {}
        self.rows: deque[list[int]] = deque()

    def window(self) -> list[int]:
        return sorted(self.counts)

    def push(self, ids: list[int]) -> None:
        self.rows.append(ids)
        for i in ids:
            self.counts[i] = self.counts.get(i, 0) + 1
        if len(self.rows) > RECENT_TOKENS:
            for i in self.rows.popleft():
                left = self.counts[i] - 1
                if left:
                    self.counts[i] = left
                else:
                    del self.counts[i]


def encode_topk(
    response_token_ids: list[int],
    sampled_logprobs: list[float],
    topk_ids: list[list[int]],
    topk_logprobs: list[list[float]],
    prob_step: float,
) -> str:
    """Encode one record's per-token top-k into a compact base64 string (see the module comment)."""
    n_tokens = len(response_token_ids)
    if not (len(sampled_logprobs) == len(topk_ids) == len(topk_logprobs) == n_tokens):
        raise ValueError("response_token_ids, sampled_logprobs, topk_ids and topk_logprobs differ in length")
    counts, hits, misses, quanta = bytearray(), bytearray(), bytearray(), bytearray()
    recent = _RecentIds()
    for token, row_ids, row_lps in zip(response_token_ids, topk_ids, topk_logprobs):
        kept = {}
        sampled_in_topk = 0
        for tid, lp in zip(row_ids, row_lps):
            if tid == token:
                sampled_in_topk = 1
                continue
            q = round(math.exp(lp) / prob_step)
            if q > 0:
                kept[tid] = q
        position = {tid: i for i, tid in enumerate(recent.window())}
        in_window = sorted((position[tid], q) for tid, q in kept.items() if tid in position)
        outside = sorted((tid, q) for tid, q in kept.items() if tid not in position)
        _put_varint(len(in_window), counts)
        _put_varint(len(outside) * 2 + sampled_in_topk, counts)
        for stream, entries in ((hits, in_window), (misses, outside)):
            prev = 0
            for key, q in entries:
                _put_varint(key - prev, stream)
                _put_varint(q - 1, quanta)
                prev = key
        recent.push(list(kept) + [token])
    sampled = struct.pack(f"<{n_tokens}f", *sampled_logprobs)
    body = bytearray()
    for stream in (counts, hits, misses, quanta):
        _put_varint(len(stream), body)
    body += counts + hits + misses + quanta + sampled
    header = bytearray(_BLOB_MAGIC)
    _put_varint(n_tokens, header)
    raw = bytes(header + body)
    raw += struct.pack("<I", zlib.crc32(raw))
    return base64.b64encode(zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(raw)).decode("ascii")


@dataclass
class TopK:
    """Decoded top-k of one record: row t holds the teacher's entries for response token t."""

    ids: np.ndarray  # int64 [T, K]; padding entries have id 0 and probability 0
    probs: np.ndarray  # float32 [T, K]
    sampled_logprobs: np.ndarray  # float32 [T], exact


def decode_topk(blob: str, response_token_ids: list[int], prob_step: float) -> TopK:
    """Inverse of encode_topk. Raises DistillError on anything that is not a valid payload."""
    try:
        compressed = base64.b64decode(blob, validate=True)
        raw = zstandard.ZstdDecompressor().decompress(compressed, max_output_size=1 << 28)
    except (ValueError, TypeError, zstandard.ZstdError) as e:
        raise DistillError(f"top-k payload is not valid base64+zstd ({e})") from None
    if len(raw) < len(_BLOB_MAGIC) + 4 or raw[:3] != _BLOB_MAGIC:
        raise DistillError(f"top-k payload has no {_BLOB_MAGIC.decode()} header")
    if struct.unpack("<I", raw[-4:])[0] != zlib.crc32(raw[:-4]):
        raise DistillError("top-k payload fails its crc32 (corrupt)")
    end = len(raw) - 4
    (n_tokens,), pos = _get_varints(raw, 3, 1, end)
    if n_tokens != len(response_token_ids):
        raise DistillError(f"top-k payload has {n_tokens} tokens but the record has {len(response_token_ids)}")
    lengths, pos = _get_varints(raw, pos, 4, end)
    starts = [pos]
    for length in lengths:
        starts.append(starts[-1] + length)
    if starts[4] + 4 * n_tokens != end:
        raise DistillError("top-k payload stream lengths do not add up")
    counts, _ = _get_varints(raw, starts[0], 2 * n_tokens, starts[1])
    n_hits = sum(counts[0::2])
    n_misses = sum(c >> 1 for c in counts[1::2])
    hit_deltas, _ = _get_varints(raw, starts[1], n_hits, starts[2])
    miss_deltas, _ = _get_varints(raw, starts[2], n_misses, starts[3])
    quanta, _ = _get_varints(raw, starts[3], n_hits + n_misses, starts[4])
    sampled = np.frombuffer(raw, dtype="<f4", count=n_tokens, offset=starts[4]).astype(np.float32)

    width = max([h + (c >> 1) + (c & 1) for h, c in zip(counts[0::2], counts[1::2])], default=0)
    ids = np.zeros((n_tokens, width), dtype=np.int64)
    probs = np.zeros((n_tokens, width), dtype=np.float32)
    recent = _RecentIds()
    hit_at = miss_at = q_at = 0
    for t in range(n_tokens):
        n_in, packed = counts[2 * t], counts[2 * t + 1]
        window = recent.window() if n_in else []
        row = []
        index = 0
        for delta in hit_deltas[hit_at : hit_at + n_in]:
            index += delta
            if index >= len(window):
                raise DistillError("top-k payload is corrupt (window index out of range)")
            row.append(window[index])
        hit_at += n_in
        tid = 0
        for delta in miss_deltas[miss_at : miss_at + (packed >> 1)]:
            tid += delta
            row.append(tid)
        miss_at += packed >> 1
        ids[t, : len(row)] = row
        probs[t, : len(row)] = np.asarray(quanta[q_at : q_at + len(row)], dtype=np.float64) * prob_step + prob_step
        q_at += len(row)
        if packed & 1:
            ids[t, len(row)] = response_token_ids[t]
            probs[t, len(row)] = math.exp(sampled[t])
        recent.push(row + [response_token_ids[t]])
    return TopK(ids=ids, probs=probs, sampled_logprobs=sampled)


def plain_topk(record: dict, where: str) -> TopK:
    """Read the plain codec's JSON lists into a TopK (exact logprobs, converted to probabilities)."""
    rows_ids, rows_lps, sampled = record["topk_ids"], record["topk_logprobs"], record["sampled_logprobs"]
    n_tokens = len(record["response_token_ids"])
    if not (len(rows_ids) == len(rows_lps) == len(sampled) == n_tokens):
        raise DistillError(f"{where}: topk_ids, topk_logprobs and sampled_logprobs must have one row per token")
    width = max((len(r) for r in rows_ids), default=0)
    ids = np.zeros((n_tokens, width), dtype=np.int64)
    probs = np.zeros((n_tokens, width), dtype=np.float32)
    for t, (row_ids, row_lps) in enumerate(zip(rows_ids, rows_lps)):
        if len(row_ids) != len(row_lps):
            raise DistillError(f"{where}: token {t} has {len(row_ids)} top-k ids but {len(row_lps)} logprobs")
        ids[t, : len(row_ids)] = row_ids
        probs[t, : len(row_lps)] = np.exp(np.asarray(row_lps, dtype=np.float64))
    return TopK(ids=ids, probs=probs, sampled_logprobs=np.asarray(sampled, dtype=np.float32))


# --------------------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------------------


def make_record(
    *,
    prompt_id: str,
    sample_index: int,
    messages: list[dict],
    prompt_token_ids: list[int],
    response: str,
    response_token_ids: list[int],
    sampled_logprobs: list[float],
    topk_ids: list[list[int]],
    topk_logprobs: list[list[float]],
    finish_reason: str,
    codec: str,
    prob_step: float,
    task: str | None = None,
) -> dict:
    """One JSON Lines record (one prompt x sample). Refuses NaN/inf logprobs: they would poison the KD loss."""
    for t, (lp, row) in enumerate(zip(sampled_logprobs, topk_logprobs)):
        if not math.isfinite(lp) or any(math.isnan(x) or x == math.inf for x in row):
            raise DistillError(f"prompt {prompt_id}: teacher returned a NaN or infinite logprob at token {t}")
    record = {
        "id": f"{prompt_id}/{sample_index}",
        "prompt_id": prompt_id,
        "sample_index": sample_index,
        "messages": messages,
        "prompt_token_ids": list(prompt_token_ids),
        "response": response,
        "response_token_ids": list(response_token_ids),
        "finish_reason": finish_reason,
        "task": task,
    }
    if codec == "compact":
        record["topk"] = encode_topk(response_token_ids, sampled_logprobs, topk_ids, topk_logprobs, prob_step)
    else:
        # -inf (masked by top-p in processed mode) has no JSON spelling: drop those entries, as compact does.
        kept = [[(i, lp) for i, lp in zip(ri, rl) if lp != -math.inf] for ri, rl in zip(topk_ids, topk_logprobs)]
        record["topk_ids"] = [[i for i, _ in row] for row in kept]
        record["topk_logprobs"] = [[lp for _, lp in row] for row in kept]
        record["sampled_logprobs"] = list(sampled_logprobs)
    return record


@dataclass
class Example:
    """A decoded record, as train/ and eval/ use it."""

    id: str
    prompt_id: str
    messages: list[dict]
    prompt_token_ids: np.ndarray  # int64 [P]
    response: str
    response_token_ids: np.ndarray  # int64 [T]
    topk: TopK
    finish_reason: str
    task: str | None = None  # the prompt's task or category, for multi-task mixtures and per-task metrics


_REQUIRED = {
    "id": str,
    "prompt_id": str,
    "messages": list,
    "prompt_token_ids": list,
    "response": str,
    "response_token_ids": list,
    "finish_reason": str,
}


def decode_record(record: Any, manifest: dict, where: str) -> Example:
    """Check and decode one parsed JSON line. `where` is "file:line" for error messages."""
    if not isinstance(record, dict):
        raise DistillError(f"{where}: record is not a JSON object")
    for name, kind in _REQUIRED.items():
        if name not in record:
            raise DistillError(f"{where}: record has no field {name!r}")
        if not isinstance(record[name], kind):
            raise DistillError(f"{where}: field {name!r} should be {kind.__name__}, got {type(record[name]).__name__}")
    codec = manifest["codec"]["name"]
    try:
        if codec == "compact":
            if not isinstance(record.get("topk"), str):
                raise DistillError(f"{where}: field 'topk' (compact codec) is missing or not a string")
            topk = decode_topk(record["topk"], record["response_token_ids"], manifest["codec"]["prob_step"])
        else:
            for name in ("topk_ids", "topk_logprobs", "sampled_logprobs"):
                if not isinstance(record.get(name), list):
                    raise DistillError(f"{where}: field {name!r} (plain codec) is missing or not a list")
            topk = plain_topk(record, where)
    except DistillError as e:
        msg = str(e)
        raise DistillError(msg if msg.startswith(where) else f"{where}: {msg}") from None
    except (TypeError, ValueError, OverflowError) as e:
        raise DistillError(f"{where}: malformed top-k fields ({e})") from None
    if record.get("task") is not None and not isinstance(record["task"], str):
        raise DistillError(f"{where}: field 'task' should be str or null, got {type(record['task']).__name__}")
    if not (np.all(np.isfinite(topk.probs)) and np.all(np.isfinite(topk.sampled_logprobs))):
        raise DistillError(f"{where}: NaN or infinite logprob in the teacher's top-k")
    vocab = manifest["teacher"].get("logits_size") or manifest["tokenizer"]["vocab_size"]
    for name, values in (("prompt_token_ids", record["prompt_token_ids"]),
                         ("response_token_ids", record["response_token_ids"])):
        if any(not isinstance(v, int) or not 0 <= v < vocab for v in values):
            raise DistillError(f"{where}: field {name!r} holds a token id outside the vocabulary (size {vocab})")
    if topk.ids.size and (topk.ids.min() < 0 or topk.ids.max() >= vocab):
        raise DistillError(f"{where}: top-k holds a token id outside the vocabulary (size {vocab})")
    return Example(
        id=record["id"],
        prompt_id=record["prompt_id"],
        messages=record["messages"],
        prompt_token_ids=np.asarray(record["prompt_token_ids"], dtype=np.int64),
        response=record["response"],
        response_token_ids=np.asarray(record["response_token_ids"], dtype=np.int64),
        topk=topk,
        finish_reason=record["finish_reason"],
        task=record.get("task"),
    )


# --------------------------------------------------------------------------------------------------------------
# Files: atomic writes, shards, manifest
# --------------------------------------------------------------------------------------------------------------


def shard_name(index: int, codec: str) -> str:
    return f"shard-{index:05d}.jsonl" + (".zst" if codec == "compact" else "")


def encode_shard(records: Iterable[dict], codec: str) -> bytes:
    text = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False, separators=(",", ":")) + "\n" for r in records)
    data = text.encode("utf-8")
    if codec == "compact":
        data = zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(data)
    return data


def write_shard(folder: Path, index: int, records: list[dict], codec: str) -> dict:
    """Encode and atomically write shard `index`; return its manifest entry."""
    data = encode_shard(records, codec)
    name = shard_name(index, codec)
    atomic_write(Path(folder) / name, data)
    return {"file": name, "index": index, "records": len(records),
            "tokens": sum(len(r["response_token_ids"]) for r in records), "bytes": len(data),
            "sha256": sha256_bytes(data), "skipped": 0}


def write_shard_set(folder: Path, manifest: dict, records: list[dict]) -> dict:
    """Write a whole shard set at once (records in order, manifest.shard_size per shard), the manifest last."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = manifest["shard_size"]
    manifest["shards"] = [write_shard(folder, i // size, records[i:i + size], manifest["codec"]["name"])
                          for i in range(0, len(records), size)]
    manifest["counts"] = {"records": len(records), "tokens": sum(e["tokens"] for e in manifest["shards"]),
                          "skipped_too_long": 0}
    manifest["complete"] = True
    write_manifest(folder, manifest)
    return manifest


def read_manifest(folder: Path) -> dict | None:
    """The manifest of a shard folder, or None if the folder has none yet."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DistillError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DistillError(f"{path}: not a {FORMAT} manifest")
    if manifest.get("format_version") not in READABLE_VERSIONS:
        raise DistillError(f"{path}: format_version {manifest.get('format_version')} (this code reads "
                           f"{', '.join(map(str, READABLE_VERSIONS))})")
    return manifest


def write_manifest(folder: Path, manifest: dict) -> None:
    atomic_write(Path(folder) / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode("utf-8"))


# Fields that must match for two runs to write into the same folder, and for a student to read the shards.
IDENTITY_FIELDS = ("teacher", "tokenizer", "mode", "k", "logprobs_mode", "codec", "sampling", "corpus", "shard_size",
                   "responses")
TEACHER_ANSWERS = {"by": "teacher"}  # `responses` of a generate-mode shard set


def new_manifest(*, teacher: dict, tokenizer: dict, mode: str, k: int, logprobs_mode: str, codec: str,
                 prob_step: float, sampling: dict, corpus: dict, shard_size: int,
                 responses: dict | None = None) -> dict:
    """A manifest with no shards yet. `responses` says who wrote the answers the teacher's top-k describes:
    {"by": "teacher"} (generate mode; with "references": {column, prompts} when generate.references gave some
    training prompts their reference answer, scored, instead of a sample), {"by": "corpus"} (score mode), or {"by": "model", "model": ..., "weights_sha256":
    ..., "round": ...} for answers a student wrote and the teacher scored (on-policy rounds, eval's own answers)."""
    if responses is None:
        responses = {"by": "corpus"} if mode == "score" else TEACHER_ANSWERS
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "teacher": teacher,  # name, backend, weights_sha256
        "tokenizer": tokenizer,  # sha256, vocab_size, special_tokens, chat_template_sha256
        "mode": mode,  # generate | score
        "k": k,
        "logprobs_mode": logprobs_mode,  # raw_logprobs | processed_logprobs
        "codec": {"name": codec, "prob_step": prob_step if codec == "compact" else None},
        "sampling": sampling,
        "corpus": corpus,  # source, sha256 of the prompt ids, prompts, duplicates_dropped, tasks
        "shard_size": shard_size,
        "responses": responses,
        "shards": [],  # {file, index, records, tokens, bytes, sha256}
        "counts": {"records": 0, "tokens": 0, "skipped_too_long": 0},
        "complete": False,
    }


def identity_mismatch(old: dict, new: dict) -> str | None:
    """Describe the first identity field on which two manifests differ, or None if they agree."""
    for key in IDENTITY_FIELDS:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            for sub in sorted(set(a) | set(b)):
                if a.get(sub) != b.get(sub):
                    return f"{key}.{sub}: {short_repr(a.get(sub))} in the folder vs {short_repr(b.get(sub))} now"
        elif a != b:
            return f"{key}: {short_repr(a)} in the folder vs {short_repr(b)} now"
    return None


def short_repr(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def verify_shard(folder: Path, entry: dict) -> bytes:
    """Read one shard's bytes and check them against the manifest entry."""
    path = Path(folder) / entry["file"]
    if not path.is_file():
        raise DistillError(f"{path}: shard listed in the manifest is missing")
    data = path.read_bytes()
    if len(data) != entry["bytes"]:
        raise DistillError(f"{path}: {len(data)} bytes but the manifest says {entry['bytes']}: the shard is cut short or changed")
    if sha256_bytes(data) != entry["sha256"]:
        raise DistillError(f"{path}: fails its sha256 checksum: the shard is corrupt")
    return data


def iter_shard_lines(folder: Path, entry: dict, data: bytes) -> Iterator[tuple[str, Any]]:
    """Yield ("file:line", parsed JSON) for each record of a verified shard."""
    path = Path(folder) / entry["file"]
    if entry["file"].endswith(".zst"):
        try:
            data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
        except zstandard.ZstdError as e:
            raise DistillError(f"{path}: cannot decompress ({e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DistillError(f"{path}: not valid UTF-8 at byte {e.start}") from None
    lines = text.splitlines()
    if len(lines) != entry["records"]:
        raise DistillError(f"{path}: {len(lines)} records but the manifest says {entry['records']}")
    for n, line in enumerate(lines, start=1):
        try:
            yield f"{path}:{n}", json.loads(line)
        except json.JSONDecodeError as e:
            raise DistillError(f"{path}:{n}: malformed JSON ({e.msg} at column {e.colno})") from None


def open_shard_set(folder: Path, require_complete: bool = True) -> dict:
    """Read and check a shard folder's manifest before anything else reads its shards."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise DistillError(f"{folder}: no {MANIFEST} (not a shard folder, or generation never finished a shard)")
    if require_complete and not manifest.get("complete"):
        raise DistillError(f"{folder}: generation has not finished (manifest complete=false); rerun generate to resume")
    if not manifest["shards"] or manifest["counts"]["records"] == 0:
        raise DistillError(f"{folder}: the shard set holds no records")
    return manifest


def read_examples(folder: Path, manifest: dict | None = None) -> Iterator[Example]:
    """The one reader: stream decoded, checked examples from a shard folder, one shard in memory at a time."""
    folder = Path(folder)
    manifest = manifest or open_shard_set(folder)
    for entry in manifest["shards"]:
        data = verify_shard(folder, entry)
        for where, record in iter_shard_lines(folder, entry, data):
            yield decode_record(record, manifest, where)


# --------------------------------------------------------------------------------------------------------------
# Fingerprints of what made the shards
# --------------------------------------------------------------------------------------------------------------


def tokenizer_fingerprint(tokenizer) -> dict:
    """What must agree between teacher and student tokenizers for the stored token ids to mean the same thing."""
    vocab = tokenizer.get_vocab()
    vocab_text = json.dumps(sorted(vocab.items(), key=lambda kv: kv[1]), ensure_ascii=False)
    template = tokenizer.chat_template or ""
    if isinstance(template, dict):
        template = json.dumps(template, sort_keys=True)
    return {
        "sha256": sha256_bytes(vocab_text.encode("utf-8")),
        "vocab_size": len(vocab),
        "special_tokens": {
            "bos": tokenizer.bos_token,
            "eos": tokenizer.eos_token,
            "pad": tokenizer.pad_token,
        },
        "chat_template_sha256": sha256_bytes(template.encode("utf-8")),
    }
