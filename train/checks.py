"""Checks before any training step: are the shards intact, and do their token ids mean the same for this student?

Every failure is one line saying what differs. The full per-record checks (NaN logprobs, ids outside the
teacher's vocabulary, field types) run while the dataset is built, through distill.shards.read_examples.
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
    print(f"[train] note: student tokenizer fingerprint differs from the teacher's ({where}) but it gives the same "
          f"token ids on {N_PROBES} probe records")


def check_logits_path(model, name: str) -> None:
    """The loss computes logits as output_layer(last hidden state), chunk by chunk, without the model's own head
    code. A model that changes its logits after that layer (soft-capping, scaling) would be trained and scored
    against the wrong distribution: compare both ways on a short probe and refuse the model if they differ."""
    import torch

    from train.trainer import causal_lm

    lm = causal_lm(model)
    head = lm.get_output_embeddings()
    ids = torch.arange(1, 9, device=head.weight.device).remainder(head.weight.shape[0]).unsqueeze(0)
    was_training = lm.training
    lm.eval()
    with torch.no_grad():
        full = lm(input_ids=ids, use_cache=False).logits.float()
        hidden = lm.get_decoder()(input_ids=ids, use_cache=False).last_hidden_state
        ours = torch.nn.functional.linear(hidden, head.weight, head.bias).float()
    lm.train(was_training)
    diff = (full - ours).abs().max().item()
    if diff > 1e-3 * (1.0 + full.abs().max().item()):
        raise DistillError(f"{name}: {type(lm).__name__} does more to its logits than its output layer (max "
                           f"difference {diff:.3g} on a probe; e.g. logit soft-capping or scaling), which distill's "
                           "chunked loss does not reproduce; this model type is not supported here")


def check_lora_targets(model, target_modules: list[str]) -> None:
    """LoRA on the output layer would never train: the loss multiplies by the layer's weight, not through its forward."""
    head = model.get_output_embeddings()
    head_name = next((n for n, m in model.named_modules() if m is head), "")
    if head_name and (head_name in target_modules or head_name.rsplit(".", 1)[-1] in target_modules):
        raise DistillError(f"train.lora.target_modules: LoRA on the output layer ({head_name}) is not supported; "
                           "the chunked KD loss multiplies by its weight directly and would ignore the adapter")


def check_all(folder: Path, manifest: dict, model, tokenizer, name: str) -> None:
    verify_shards(folder, manifest)
    check_tokenizer(folder, manifest, tokenizer)
    check_vocab_size(folder, manifest, model)
    check_logits_path(model, name)
