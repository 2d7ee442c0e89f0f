"""The optional pairwise judge: a local vLLM model or an OpenAI-compatible endpoint compares two models' answers to
the same prompt, in both orders (a win counts only when both orders agree, which cancels position bias).

Files: judge/<a>_vs_<b>.jsonl (one row per prompt) and judge/<a>_vs_<b>.json (the settings it was made with).
"""

from __future__ import annotations

import os
from pathlib import Path

from distill.config import Config
from distill.eval import metrics
from distill.files import digest, read_json, read_jsonl, sha256_file, write_json, write_jsonl
from distill.models import chat_ids

JUDGE_ANSWER_CHARS = 4000  # longer answers are cut before they go into the judge prompt

TEMPLATE = """You are comparing two answers to the same user request. Judge helpfulness, correctness and
how well each answer follows the request. Ignore answer length unless it hurts the answer.

[User request]
{prompt}

[Answer A]
{a}

[Answer B]
{b}

Which answer is better? Reply with exactly one word: A, B, or tie."""


def judge_prompt(row_a: dict, row_b: dict) -> str:
    cut = JUDGE_ANSWER_CHARS
    return TEMPLATE.format(prompt=row_a["prompt"], a=row_a["response"][:cut], b=row_b["response"][:cut])


def judge_requests(gen_a: list[dict], gen_b: list[dict]) -> list[tuple[dict, str, str]]:
    """Per prompt answered by both: (row, text with a as A, text with b as A)."""
    b_by_key = {(r["set"], r["prompt_id"]): r for r in gen_b}
    out = []
    for ra in gen_a:
        rb = b_by_key.get((ra["set"], ra["prompt_id"]))
        if rb is not None:
            out.append((ra, judge_prompt(ra, rb), judge_prompt(rb, ra)))
    return out


def judge_rows(requests: list, answers: list[tuple[str | None, str | None]], errors: list[str | None]) -> list[dict]:
    rows = []
    for (ra, _, _), (ans1, ans2), err in zip(requests, answers, errors):
        row = {"set": ra["set"], "prompt_id": ra["prompt_id"]}
        if err:
            row["error"] = err
        else:
            v1, v2 = metrics.parse_verdict(ans1), metrics.parse_verdict(ans2)
            row.update({"answer_ab": ans1, "answer_ba": ans2, "verdict_ab": v1, "verdict_ba": v2,
                        "outcome": metrics.pair_outcome(v1, v2)})
        rows.append(row)
    return rows


def judge_with_vllm(llm, requests: list, cfg: Config) -> list[tuple[str, str]]:
    from vllm import SamplingParams

    tokenizer = llm.get_tokenizer()
    texts = [t for _, ab, ba in requests for t in (ab, ba)]
    ids = chat_ids(tokenizer, [[{"role": "user", "content": t}] for t in texts])
    room = cfg.teacher.max_model_len - cfg.eval.judge.max_tokens
    fits = [i for i, x in enumerate(ids) if len(x) <= room]
    params = SamplingParams(temperature=0.0, max_tokens=cfg.eval.judge.max_tokens)
    outs = llm.generate([{"prompt_token_ids": ids[i]} for i in fits], params, use_tqdm=False)
    text = {i: o.outputs[0].text for i, o in zip(fits, outs)}
    return [(text.get(2 * j), text.get(2 * j + 1)) for j in range(len(requests))]  # too long -> None -> tie


def judge_with_openai(client, model: str, requests: list, cfg: Config) -> tuple[list, list, str | None]:
    """Ask the endpoint (the client retries with exponential backoff); give up on the pair when it stays down."""
    import openai

    j = cfg.eval.judge
    unreachable = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError,
                   openai.InternalServerError)

    def ask(text: str) -> str:
        resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}],
                                              temperature=0.0, max_tokens=j.max_tokens)
        return resp.choices[0].message.content or ""

    answers, errors = [], []
    for _, ab, ba in requests:
        try:
            answers.append((ask(ab), ask(ba)))
            errors.append(None)
        except openai.OpenAIError as e:
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            if client.api_key and client.api_key != "EMPTY":  # a server may echo the key; it must not reach a file
                reason = reason.replace(client.api_key, "***")
            if isinstance(e, unreachable):  # the endpoint is down: the rest of the pair would fail the same way
                return [], [], f"endpoint did not answer after {j.max_retries} retries ({reason})"
            answers.append((None, None))
            errors.append(reason)
    return answers, errors, None


def judge_todo(out: Path, plan: dict, cfg: Config) -> list[tuple[str, list[Path], dict]]:
    """Pairs whose judge file is missing or stale: (key, generation files, settings). Unjudgeable pairs -> missing."""
    judge, todo = plan["judge"], []
    for a, b in judge["pairs"]:
        key = f"{a}_vs_{b}"
        absent = [m for m in (a, b) if m not in plan["models"]]
        if absent:
            judge["missing"][key] = f"{', '.join(absent)} not evaluated"
            continue
        gens = [out / "generations" / f"{m}.jsonl" for m in (a, b)]
        if not all(g.is_file() for g in gens):
            continue  # not generated yet (the shared judge engine asks again once they are)
        settings = {"judge": judge["model"], "backend": judge["backend"], "base_url": judge["base_url"],
                    "max_tokens": cfg.eval.judge.max_tokens, "template": digest(TEMPLATE),
                    "generations": [sha256_file(g) for g in gens]}
        if read_json(out / "judge" / f"{key}.json") == settings and (out / "judge" / f"{key}.jsonl").is_file():
            continue
        todo.append((key, gens, settings))
    return todo


def openai_client(cfg: Config):
    from openai import OpenAI

    j = cfg.eval.judge
    # The key goes to the client only: never stored, printed or written to a file.
    return OpenAI(base_url=j.base_url, api_key=os.environ.get(j.api_key_env) or "EMPTY", max_retries=j.max_retries,
                  timeout=cfg.teacher.request_timeout_s)


def run_judge(out: Path, plan: dict, cfg: Config, llm=None, log=print, warn=print) -> None:
    """Judge every pair in judge_todo; a pair the endpoint never answers is recorded in run.json as missing."""
    judge = plan["judge"]
    client = None
    for key, gens, settings in judge_todo(out, plan, cfg):
        requests = judge_requests(*[read_jsonl(g) for g in gens])
        if judge["backend"] == "vllm":
            answers, errors, failure = judge_with_vllm(llm, requests, cfg), [None] * len(requests), None
        else:
            client = client or openai_client(cfg)
            answers, errors, failure = judge_with_openai(client, judge["model"], requests, cfg)
        if failure:
            warn(f"judge {key}: {failure}; the pair is reported missing")
            judge["missing"][key] = failure
            for stale in (out / "judge" / f"{key}.jsonl", out / "judge" / f"{key}.json"):
                stale.unlink(missing_ok=True)  # an older verdict on other settings must not reach the report
            continue
        write_jsonl(out / "judge" / f"{key}.jsonl", judge_rows(requests, answers, errors))
        write_json(out / "judge" / f"{key}.json", settings)
        log(f"judge {key}: {len(requests)} prompts judged in both orders")
    if client is not None:
        client.close()
