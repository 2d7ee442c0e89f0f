"""distill.shards without an engine: codecs, error bounds, atomic writes, manifests, verification, datasets."""

from __future__ import annotations

import base64
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distill import shards as sh
from distill.errors import DistillError

STEP = 1.6e-4
VOCAB = 49152


def random_topk(rng, n_tokens, k, vocab=VOCAB, peaked=True):
    """Top-k rows of random softmax distributions, with sampled tokens sometimes outside the top-k."""
    tokens, sampled, ids, lps = [], [], [], []
    for _ in range(n_tokens):
        logits = rng.normal(size=vocab) * (rng.uniform(1, 8) if peaked else 1.0)
        logp = logits - np.logaddexp.reduce(logits)
        top = np.argsort(-logp)[:k]
        tok = int(top[rng.integers(k)]) if rng.random() < 0.8 else int(rng.integers(vocab))
        tokens.append(tok)
        sampled.append(float(logp[tok]))
        ids.append([int(i) for i in top])
        lps.append([float(logp[i]) for i in top])
    return tokens, sampled, ids, lps


def as_dict(ids_row, probs_row):
    return {int(i): float(p) for i, p in zip(ids_row, probs_row) if p > 0}


def test_compact_round_trip_and_bounds():
    rng = np.random.default_rng(0)
    tokens, sampled, ids, lps = random_topk(rng, 200, 20, vocab=5000)
    blob = sh.encode_topk(tokens, sampled, ids, lps, STEP)
    topk = sh.decode_topk(blob, tokens, STEP)
    assert topk.sampled_logprobs.tolist() == np.asarray(sampled, dtype=np.float32).tolist()  # exact
    l1 = []
    for t in range(len(tokens)):
        got = as_dict(topk.ids[t], topk.probs[t])
        assert set(got) <= set(ids[t])  # ids are exact; only entries below step/2 may be dropped
        err = [abs(got.get(i, 0.0) - math.exp(lp)) for i, lp in zip(ids[t], lps[t])]
        assert max(err) <= STEP / 2 + 1e-6
        l1.append(sum(err))
        if tokens[t] in ids[t]:  # the sampled token's probability comes from its exact logprob
            assert got[tokens[t]] == pytest.approx(math.exp(sampled[t]), rel=1e-6)
    assert max(l1) <= 20 * STEP / 2 + 1e-5 and np.mean(l1) <= 1e-3


def test_empty_record_and_plain_codec():
    assert sh.decode_topk(sh.encode_topk([], [], [], [], STEP), [], STEP).ids.shape == (0, 0)
    rng = np.random.default_rng(1)
    tokens, sampled, ids, lps = random_topk(rng, 10, 5, vocab=1000)
    lps[0][-1] = -math.inf  # masked by top-p in processed mode: dropped, not written as JSON -Infinity
    rec = sh.make_record(prompt_id="p", sample_index=0, messages=[{"role": "user", "content": "x"}],
                         prompt_token_ids=[1, 2], response="r", response_token_ids=tokens, sampled_logprobs=sampled,
                         topk_ids=ids, topk_logprobs=lps, finish_reason="stop", codec="plain", prob_step=STEP)
    rec = json.loads(json.dumps(rec, allow_nan=False))
    topk = sh.plain_topk(rec, "here")
    assert topk.ids[1].tolist() == ids[1] and np.allclose(topk.probs[1], np.exp(lps[1]), rtol=1e-6)
    assert len(rec["topk_ids"][0]) == 4
    with pytest.raises(DistillError, match="NaN or infinite"):
        sh.make_record(prompt_id="p", sample_index=0, messages=[], prompt_token_ids=[], response="",
                       response_token_ids=[1], sampled_logprobs=[math.nan], topk_ids=[[1]], topk_logprobs=[[0.0]],
                       finish_reason="stop", codec="compact", prob_step=STEP)


def write_set(folder, codec, n_records=5, seed=0):
    rng = np.random.default_rng(seed)
    records = []
    for r in range(n_records):
        tokens, sampled, ids, lps = random_topk(rng, 6, 4, vocab=1000)
        records.append(sh.make_record(
            prompt_id=f"p{r}", sample_index=0, messages=[{"role": "user", "content": f"q{r}"}],
            prompt_token_ids=[1, 2, 3], response=f"answer {r}", response_token_ids=tokens, sampled_logprobs=sampled,
            topk_ids=ids, topk_logprobs=lps, finish_reason="stop", codec=codec, prob_step=STEP))
    manifest = sh.new_manifest(teacher={"name": "t", "backend": "vllm", "weights_sha256": "w", "logits_size": 1000},
                               tokenizer={"sha256": "s", "vocab_size": 1000}, mode="generate", k=4,
                               logprobs_mode="raw_logprobs", codec=codec, prob_step=STEP, sampling={}, corpus={},
                               shard_size=n_records)
    folder.mkdir(parents=True, exist_ok=True)
    data = sh.encode_shard(records, codec)
    name = sh.shard_name(0, codec)
    sh.atomic_write(folder / name, data)
    manifest["shards"] = [{"file": name, "index": 0, "records": n_records, "tokens": 6 * n_records,
                           "bytes": len(data), "sha256": sh.sha256_bytes(data)}]
    manifest["counts"]["records"] = n_records
    manifest["complete"] = True
    sh.write_manifest(folder, manifest)
    return manifest, records


@pytest.mark.parametrize("codec", sh.CODECS)
def test_shard_set_reads_back_and_loads_with_datasets(tmp_path, codec):
    import datasets

    folder = tmp_path / codec
    manifest, records = write_set(folder, codec)
    examples = list(sh.read_examples(folder))
    assert [e.id for e in examples] == [r["id"] for r in records]
    assert examples[0].response_token_ids.tolist() == records[0]["response_token_ids"]
    assert not [p for p in folder.iterdir() if ".tmp-" in p.name]
    ds = datasets.load_dataset("json", data_files=str(folder / "shard-*.jsonl*"), split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 5 and ds[0]["prompt_id"] == "p0" and ds[0]["response_token_ids"] == records[0]["response_token_ids"]


def test_verify_shard_catches_truncation_and_flips(tmp_path):
    manifest, _ = write_set(tmp_path / "s", "compact")
    entry = manifest["shards"][0]
    path = tmp_path / "s" / entry["file"]
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(DistillError, match="cut short or changed"):
        sh.verify_shard(tmp_path / "s", entry)
    path.write_bytes(data[:20] + bytes([data[20] ^ 1]) + data[21:])
    with pytest.raises(DistillError, match="fails its sha256"):
        list(sh.read_examples(tmp_path / "s"))
    path.unlink()
    with pytest.raises(DistillError, match="missing"):
        sh.verify_shard(tmp_path / "s", entry)


def test_atomic_write_failure_keeps_earlier_files(tmp_path):
    # A write over `ulimit -f` must raise DistillError (not die of SIGXFSZ) and leave no temp file.
    script = f"""
import resource, pathlib
from distill import shards as sh
from distill.errors import DistillError
d = pathlib.Path({str(tmp_path)!r})
sh.atomic_write(d / "a.bin", b"x" * 100)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    sh.atomic_write(d / "b.bin", b"y" * 100000)
except DistillError as e:
    print("ERR", e)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ERR ") and "b.bin: write failed" in out.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
    assert (tmp_path / "a.bin").read_bytes() == b"x" * 100


def test_identity_mismatch_messages():
    base = dict(teacher={"name": "a", "weights_sha256": "1"}, tokenizer={"sha256": "t"}, mode="generate", k=20,
                logprobs_mode="raw_logprobs", codec="compact", prob_step=STEP, sampling={"temperature": 1.0},
                corpus={"sha256": "c"}, shard_size=128)
    old = sh.new_manifest(**base)
    assert sh.identity_mismatch(old, sh.new_manifest(**base)) is None
    new = sh.new_manifest(**{**base, "teacher": {"name": "a", "weights_sha256": "2"}})
    assert sh.identity_mismatch(old, new) == 'teacher.weights_sha256: "1" in the folder vs "2" now'
    assert sh.identity_mismatch(old, sh.new_manifest(**{**base, "k": 5})) == "k: 20 in the folder vs 5 now"
    new = sh.new_manifest(**{**base, "sampling": {"temperature": 0.7}})
    assert sh.identity_mismatch(old, new) == "sampling.temperature: 1.0 in the folder vs 0.7 now"


# Property: decoding never returns wrong data and never fails with anything but DistillError.
_RNG = np.random.default_rng(7)
_TOKENS, _SAMPLED, _IDS, _LPS = random_topk(_RNG, 12, 6, vocab=3000)
_BLOB = sh.encode_topk(_TOKENS, _SAMPLED, _IDS, _LPS, STEP)
_GOOD = sh.decode_topk(_BLOB, _TOKENS, STEP)
_RAW = zstandard.ZstdDecompressor().decompress(base64.b64decode(_BLOB))


def _decode_is_exact_or_error(blob: str) -> None:
    try:
        got = sh.decode_topk(blob, _TOKENS, STEP)
    except DistillError:
        return
    assert np.array_equal(got.ids, _GOOD.ids) and np.array_equal(got.probs, _GOOD.probs)
    assert np.array_equal(got.sampled_logprobs, _GOOD.sampled_logprobs)


def _wrap(raw: bytes) -> str:
    return base64.b64encode(zstandard.ZstdCompressor().compress(raw)).decode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode()),  # random bytes
    st.binary(max_size=200).map(_wrap),  # random bytes that decompress
    st.text(max_size=50),  # not even base64
    st.integers(0, len(_BLOB) - 1).map(lambda n: _BLOB[:n]),  # truncated blob
    st.integers(0, len(_RAW) - 1).map(lambda n: _wrap(_RAW[:n])),  # truncated payload
    st.tuples(st.integers(0, len(_RAW) - 1), st.integers(0, 7)).map(  # bit flip inside the payload
        lambda a: _wrap(_RAW[:a[0]] + bytes([_RAW[a[0]] ^ (1 << a[1])]) + _RAW[a[0] + 1:])),
    st.tuples(st.integers(0, len(_BLOB) - 1), st.sampled_from("A/+=Z")).map(  # a changed base64 character
        lambda a: _BLOB[:a[0]] + a[1] + _BLOB[a[0] + 1:]),
))
def test_decode_topk_never_returns_wrong_data(blob):
    _decode_is_exact_or_error(blob)

