"""The teacher's judgement of each model's own answers: the view on-policy distillation optimises.

Held-out KL scores a model on the teacher's answers; a student that has only learnt to follow the teacher's text
can still wander off once it writes its own. So the teacher's engine (its scoring mode: vLLM prompt_logprobs) scores
every model's generated held-out answers, written as ordinary shard sets (own_answers/<model>/, `responses` = that
model), and the teacher-forced stage then measures on them, per model:
    own_answer_reverse_kl       KL(model || teacher) over the teacher's top-k plus the tail bucket (a lower bound of
                                the full reverse KL), per answer token
    own_answer_teacher_logprob  the teacher's mean logprob of the model's answer tokens
The teacher's own answers give the floor (reverse KL 0, the teacher's own confidence).
"""

from __future__ import annotations

from pathlib import Path

from distill import shards as sh
from distill.config import Config
from distill.engine import score_answers
from distill.eval.generation import model_identity
from distill.files import read_jsonl, sha256_file
from distill.models import chat_ids, load_tokenizer, teacher_entry

OWN_ANSWER_SHARD_SIZE = 64


def folder(out: Path, name: str) -> Path:
    return out / "own_answers" / name


def identity(out: Path, name: str, where: str, cfg: Config) -> dict:
    """What an own-answer set depends on: the model's generations, the model and the teacher."""
    return {"generations_sha256": sha256_file(out / "generations" / f"{name}.jsonl"),
            "model_sha256": model_identity(where), "teacher_sha256": model_identity(cfg.teacher.model),
            "k": cfg.generate.k}


def done(out: Path, name: str, where: str, cfg: Config) -> bool:
    manifest = sh.read_manifest(folder(out, name)) if folder(out, name).is_dir() else None
    return bool(manifest and manifest.get("complete") and manifest["corpus"].get("identity") == identity(
        out, name, where, cfg))


def same_vocabulary(where: str, teacher: str, cfg: Config) -> bool:
    """The teacher can score a model's token ids only when both tokenizers have the same vocabulary."""
    from distill.eval.generation import trusts_remote_code

    def vocab(m):
        return sh.tokenizer_fingerprint(load_tokenizer(m, "model", trusts_remote_code(m, cfg)))["sha256"]

    return vocab(where) == vocab(teacher)


def todo(out: Path, plan: dict, cfg: Config) -> list[str]:
    """Models whose answers are generated but not yet scored by the teacher (empty when there is no teacher)."""
    if plan["teacher"] is None:
        return []
    teacher = plan["models"][plan["teacher"]]
    return [name for name, where in plan["models"].items()
            if (out / "generations" / f"{name}.jsonl").is_file() and not done(out, name, where, cfg)
            and same_vocabulary(where, teacher, cfg)]


def score_all(llm, out: Path, plan: dict, sets: dict, cfg: Config, log=print) -> None:
    """With the teacher's engine: score every model's answers in todo() and write each as a shard set."""
    messages = {(s, p.id): p.messages for s, prompts in sets.items() for p in prompts}
    tokenizer = llm.get_tokenizer()
    for name in todo(out, plan, cfg):
        rows = [r for r in read_jsonl(out / "generations" / f"{name}.jsonl") if r.get("response_token_ids")]
        prompts = [messages[(r["set"], r["prompt_id"])] for r in rows]
        prompt_ids = chat_ids(tokenizer, prompts)
        answers = [r["response_token_ids"] for r in rows]
        scored = score_answers(llm, prompt_ids, answers, cfg.generate.k)
        records = [sh.make_record(prompt_id=r["prompt_id"], sample_index=0, messages=m, prompt_token_ids=p,
                                  response=r["response"], response_token_ids=a, sampled_logprobs=lp, topk_ids=ids,
                                  topk_logprobs=lps, finish_reason=r["finish_reason"], codec="compact",
                                  prob_step=cfg.generate.prob_step, task=r.get("category"))
                   for r, m, p, a, (lp, ids, lps) in zip(rows, prompts, prompt_ids, answers, scored)]
        where = plan["models"][name]
        manifest = sh.new_manifest(
            teacher=teacher_entry(cfg.teacher), tokenizer=sh.tokenizer_fingerprint(tokenizer), mode="score",
            k=cfg.generate.k, logprobs_mode="raw_logprobs", codec="compact", prob_step=cfg.generate.prob_step,
            sampling={"mode": "score"}, shard_size=OWN_ANSWER_SHARD_SIZE,
            corpus={"source": str(out / "generations" / f"{name}.jsonl"), "prompts": len(rows),
                    "identity": identity(out, name, where, cfg)},
            responses={"by": "model", "model": name, "weights_sha256": model_identity(where), "round": None})
        sh.write_shard_set(folder(out, name), manifest, records)
        log(f"{name}: the teacher scored its {len(records)} answers")
