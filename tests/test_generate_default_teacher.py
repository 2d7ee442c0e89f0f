"""The generate stage on the real SmolLM2-135M-Instruct teacher (slow: one engine start, ~1-2 minutes)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from configs import generate_config
from distill import shards as sh
from distill.models import weights_fingerprint

pytestmark = pytest.mark.slow

PROMPTS = ["What is the capital of France?", "Name three colours of the rainbow.", "What do bees make?",
           "Say hello in one short sentence.", "What is two plus two?", "Name a large animal that lives in Africa.",
           "What is water made of?", "Which planet do we live on?"]


def test_default_teacher_shards(default_teacher, tmp_path):
    from distill.generate.backends import VllmBackend
    from distill.generate.run import run

    corpus = tmp_path / "p.jsonl"
    corpus.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))

    def cfg(run_dir, codec):
        return generate_config(default_teacher, corpus, run_dir, "generate.temperature=0", f"generate.codec={codec}",
                               k=20, max_tokens=48, shard_size=4)

    backend = VllmBackend(cfg(tmp_path, "compact"))
    try:
        run(cfg(tmp_path / "compact", "compact"), backend=backend)
        run(cfg(tmp_path / "plain", "plain"), backend=backend)
    finally:
        backend.close()
    folder = tmp_path / "compact" / "shards" / "train"
    manifest = sh.open_shard_set(folder)
    assert manifest["teacher"]["logits_size"] == 49152 and manifest["teacher"]["dtype"] == "float32"
    assert manifest["teacher"]["weights_sha256"] == weights_fingerprint(str(default_teacher))
    assert manifest["counts"]["records"] == len(PROMPTS) and manifest["complete"] and manifest["k"] == 20
    compact = list(sh.read_examples(folder))
    plain = list(sh.read_examples(tmp_path / "plain" / "shards" / "train"))
    assert "paris" in compact[0].response.lower()
    for a, b in zip(compact, plain):
        assert re.search(r"[A-Za-z]{3,}", a.response), a.response  # non-empty English
        assert a.response_token_ids.tolist() == b.response_token_ids.tolist()  # greedy: same answers
        # Two engine runs: greedy tokens agree, logprobs to float noise (the codec itself keeps them exactly).
        assert np.allclose(a.topk.sampled_logprobs, b.topk.sampled_logprobs, atol=1e-4)
        assert a.topk.probs.sum(1).max() <= 1.0 + 1e-3
        l1 = []
        for t in range(len(a.response_token_ids)):
            want = {int(i): float(p) for i, p in zip(b.topk.ids[t], b.topk.probs[t]) if p > 0}
            got = {int(i): float(p) for i, p in zip(a.topk.ids[t], a.topk.probs[t]) if p > 0}
            assert set(got) <= set(want)
            l1.append(sum(abs(want.get(i, 0.0) - got.get(i, 0.0)) for i in want))
        assert max(l1) <= 20 * manifest["codec"]["prob_step"] / 2 + 1e-3 and np.mean(l1) <= 1e-3
