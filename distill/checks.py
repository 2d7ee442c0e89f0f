"""Can this model read these shards? Are they intact, and do their token ids mean the same for it?

Train runs every check before its first step; eval runs the tokenizer check before it scores a model. Every
failure is one line saying what differs. The full per-record checks (NaN logprobs, ids outside the teacher's
vocabulary, field types) run while the records are read, through distill.shards.read_examples.
"""

from __future__ import annotations

from pathlib import Path

from distill import shards as sh
from distill.errors import DistillError

N_PROBES = 3  # records whose prompt/response are re-tokenised when the vocabularies differ


def verify_shards(folder: Path, manifest: dict) -> None:
    """Every listed shard is present, has the manifest's size and sha256 (cheap: hashing only)."""
    for entry in manifest["shards"]:
        sh.verify_shard(folder, entry)


def output_size(model) -> int:
    return model.get_output_embeddings().weight.shape[0]


def check_vocab_size(folder: Path, manifest: dict, model) -> None:
    """Every stored token id must be a row of the student's output layer."""
    size = output_size(model)
    where = Path(folder) / sh.MANIFEST
    teacher_size = manifest["teacher"].get("logits_size") or manifest["tokenizer"]["vocab_size"]
    if teacher_size <= size:
        return  # read_examples rejects any id >= teacher_size, so every id fits
    largest = 0
    for ex in sh.read_examples(folder, manifest):
        largest = max(largest, int(ex.prompt_token_ids.max(initial=0)), int(ex.response_token_ids.max(initial=0)),
                      int(ex.topk.ids.max(initial=0)))
        if largest >= size:
            raise DistillError(f"student output layer has {size} rows but the shards ({where}) hold token id "
                               f"{largest} (record {ex.id}); the student cannot score the teacher's tokens")


def check_tokenizer(folder: Path, manifest: dict, tokenizer) -> None:
    """Same vocabulary as the teacher's (by fingerprint), else the same tokens on probes taken from the shards."""
    where = Path(folder) / sh.MANIFEST
    theirs, ours = manifest["tokenizer"], sh.tokenizer_fingerprint(tokenizer)
    if theirs["sha256"] == ours["sha256"] and theirs["chat_template_sha256"] == ours["chat_template_sha256"]:
        return
    prefix = f"student tokenizer differs from the teacher's ({where}):"
    if theirs["vocab_size"] != ours["vocab_size"]:
        raise DistillError(f"{prefix} vocab {theirs['vocab_size']} vs {ours['vocab_size']} tokens; "
                           "the shard token ids would be meaningless for this student")
    # Fingerprints differ but sizes agree (e.g. renamed special tokens, another template): the ids are usable only
    # if the student tokenises the shards' own prompts and responses to exactly the stored ids.
    for n, ex in enumerate(sh.read_examples(folder, manifest)):
        if n == N_PROBES:
            break
        prompt = tokenizer.apply_chat_template(ex.messages, add_generation_prompt=True, tokenize=True,
                                               return_dict=False)
        if list(prompt) != ex.prompt_token_ids.tolist():
            what = "vocab" if theirs["sha256"] != ours["sha256"] else "chat template"
            raise DistillError(f"{prefix} {what} differs and the chat-templated prompt of record {ex.id} gives other "
                               f"token ids ({len(prompt)} vs {len(ex.prompt_token_ids)} tokens); "
                               "the shard token ids would be meaningless for this student")
        text = tokenizer.decode(ex.response_token_ids.tolist(), skip_special_tokens=True)
        if text != ex.response:
            raise DistillError(f"{prefix} vocab differs and the response ids of record {ex.id} decode to other text; "
                               "the shard token ids would be meaningless for this student")
    print(f"note: student tokenizer fingerprint differs from the teacher's ({where}) but it gives the same "
          f"token ids on {N_PROBES} probe records")


def check_all(folder: Path, manifest: dict, model, tokenizer, name: str) -> None:
    from distill.scoring import check_logits_path

    verify_shards(folder, manifest)
    check_tokenizer(folder, manifest, tokenizer)
    check_vocab_size(folder, manifest, model)
    check_logits_path(model, name)
