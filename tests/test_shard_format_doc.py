"""docs/shard-format.md is the one description of the shard format: it must name the version the code writes and
exactly the manifest and record fields the code writes (both codecs)."""

import re
from pathlib import Path

from distill import shards as sh

DOC = Path(__file__).resolve().parent.parent / "docs" / "shard-format.md"


def table_fields(section: str) -> set[str]:
    """Backticked names in the first column of the table under `## <section>`."""
    text = DOC.read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in body.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


def a_record(codec: str) -> dict:
    return sh.make_record(prompt_id="p", sample_index=0, messages=[{"role": "user", "content": "hi"}],
                          prompt_token_ids=[1, 2], response="a", response_token_ids=[5], sampled_logprobs=[-0.1],
                          topk_ids=[[5, 6]], topk_logprobs=[[-0.1, -2.5]], finish_reason="stop", codec=codec,
                          prob_step=1.6e-4)


def test_doc_names_the_format_version_the_code_writes():
    row = next(ln for ln in DOC.read_text().splitlines() if ln.startswith("| `format`, `format_version`"))
    assert f"`{sh.FORMAT_VERSION}`" in row and f'"{sh.FORMAT}"' in row, row


def test_doc_lists_exactly_the_manifest_fields():
    manifest = sh.new_manifest(teacher={}, tokenizer={}, mode="generate", k=1, logprobs_mode="raw_logprobs",
                               codec="compact", prob_step=1e-4, sampling={}, corpus={}, shard_size=1)
    assert table_fields("manifest.json") == set(manifest)


def test_doc_lists_exactly_the_record_fields_of_both_codecs():
    assert table_fields("Records (one JSON object per line)") == set(a_record("compact")) | set(a_record("plain"))


def test_doc_lists_the_identity_fields():
    text = DOC.read_text()
    for name in sh.IDENTITY_FIELDS:
        assert f"`{name}`" in text.split("identity fields")[0].rsplit("\n\n", 1)[-1], name
