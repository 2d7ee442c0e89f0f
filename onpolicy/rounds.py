"""One on-policy round's data: the student's answers, the teacher's judgement of them, and the rows trained on.

Round r's shard set (RUN/<onpolicy.output_name>/rounds/round-RRR/) is an ordinary shard set in score mode whose
manifest says the answers came from the student (`responses`: by model, the weights' sha256, the round). It is
written whole, manifest last, so a round's data is either complete or absent, and never mixed with another round's.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

from distill import shards as sh
from distill.batches import DROPPED, example_row
from distill.config import Config
from distill.engine import score_answers, start_engine, stop_engine
from distill.errors import DistillError
from distill.logs import output_to_log
from distill.models import chat_ids, teacher_entry
from distill.prompts import Prompt

SHARD_SIZE = 64


class Engines:
    """The teacher's and the student's vLLM engines. With onpolicy.keep_engines both stay alive for the whole run
    and the student's new weights are loaded into its running engine (vLLM's reload_weights); otherwise each round
    starts and stops them in turn (one engine in memory at a time, two engine starts per round)."""

    def __init__(self, cfg: Config, student_dir: Path):
        self.cfg, self.student_dir = cfg, Path(student_dir)
        self.teacher = self.student = None
        self.reloads = self.restarts = 0

    def _start(self, where: str, what: str, max_logprobs: int, cpu_cores: str):
        from distill.config import resolve_dtype

        t = self.cfg.teacher
        return start_engine(where, what, cpu_cores=cpu_cores, dtype=resolve_dtype(t.dtype),
                            max_model_len=t.max_model_len, enforce_eager=t.enforce_eager,
                            trust_remote_code=t.trust_remote_code,
                            seed=self.cfg.run.seed, max_logprobs=max_logprobs,
                            gpu_memory_utilization=t.gpu_memory_utilization / 2)

    def student_engine(self):
        if self.student is None:
            self.student = self._start(str(self.student_dir), "student", 20, "0")
        return self.student

    def teacher_engine(self):
        if self.teacher is None:
            self.teacher = self._start(self.cfg.teacher.model, "teacher", max(self.cfg.generate.k, 20),
                                       "1" if (os.cpu_count() or 1) > 1 else "0")  # its own core beside the student's
        return self.teacher

    def student_weights(self, folder: Path) -> None:
        """Point the student's engine at new weights: reloaded in place when it runs, else used at its next start."""
        self.student_dir = Path(folder)
        if self.student is None:
            return
        try:
            with output_to_log():
                self.student.collective_rpc("reload_weights", kwargs={"weights_path": str(folder)})
                self.student.reset_prefix_cache()  # cached prefixes were computed with the old weights
            self.reloads += 1
        except Exception:  # an engine that cannot reload (another vLLM build): start a fresh one
            self.close_student()
            self.restarts += 1

    def between_phases(self) -> None:
        """Without keep_engines: stop both before training, so the trainer has the machine to itself."""
        if not self.cfg.onpolicy.keep_engines:
            self.close()

    def close_student(self) -> None:
        stop_engine(self.student)
        self.student = None

    def close(self) -> None:
        self.close_student()
        stop_engine(self.teacher)
        self.teacher = None


def round_prompts(prompts: list[Prompt], r: int, per_round: int, weights: list[float] | None = None,
                  seed: int = 0) -> list[Prompt]:
    """Round r's prompts: the next `per_round` of the corpus, wrapping around; with draw weights (train.mixture or
    train.upsample, as train draws its rows) a seeded weighted draw of distinct prompts instead."""
    if weights is None:
        start = (r * per_round) % len(prompts)
        return [prompts[(start + i) % len(prompts)] for i in range(per_round)]
    return weighted_sample(random.Random(seed + r), prompts, weights, per_round)


def weighted_sample(rng: random.Random, items: list, weights: list[float], n: int) -> list:
    """n distinct items (all with a weight above 0, if fewer), each drawn in turn with a chance proportional to its
    weight among those left (Efraimidis and Spirakis' keys u ** (1 / w)); items of weight 0 never."""
    keys = sorted(((rng.random() ** (1.0 / w), i) for i, w in enumerate(weights) if w > 0), reverse=True)
    return [items[i] for _, i in keys[:n]]


def prompt_draw_weights(prompts: list[Prompt], cfg: Config) -> list[float] | None:
    """Each training prompt's weight in the rounds' draws (None: no mixture and no upsampling); a mixture task that
    no prompt has is refused in one line."""
    from distill.train.data import task_draw_weights

    t, tasks = cfg.train, [p.task for p in prompts]
    for task in sorted(set(t.mixture) - set(tasks)):
        raise DistillError(f"train.mixture.{task}: no task of that name in the training prompts "
                           f"({cfg.generate.prompts}; tasks: {', '.join(sorted(set(tasks)))})")
    return task_draw_weights(tasks, t.mixture, t.upsample)


@dataclass
class OfflineRows:
    """The stored teacher answers a round mixes in: rows with the loss weights train gives them, each row's draw
    weight (None: uniform) and the mixture record."""
    rows: list[dict]
    weights: list[float] | None
    mixture: dict

    @classmethod
    def load(cls, folder: Path, cfg: Config) -> "OfflineRows":
        from datasets import Dataset

        from distill.train.data import FEATURES, apply_mixture, sampling_weights

        t = cfg.train
        rows = [example_row(ex, t.max_seq_len, "truncate") for ex in sh.read_examples(folder)]
        ds = Dataset.from_list([r for r in rows if r["status"] != DROPPED], features=FEATURES)
        ds, record = apply_mixture(ds, t.mixture, t.w_ce, t.w_kd, t.upsample, t.w_ce_references)
        return cls(ds.to_list(), sampling_weights(ds, t.mixture, t.upsample), record)

    def draw(self, n: int, seed: int) -> list[dict]:
        rng = random.Random(seed)
        if self.weights is None:
            return rng.sample(self.rows, min(n, len(self.rows)))
        return weighted_sample(rng, self.rows, self.weights, n)


def sample_and_score(engines: Engines, prompts: list[Prompt], folder: Path, r: int, student_sha: str,
                     cfg: Config) -> dict:
    """The student answers, the teacher scores each answer token by token; both written as round r's shard set."""
    from vllm import SamplingParams

    o = cfg.onpolicy
    student = engines.student_engine()
    tokenizer = student.get_tokenizer()
    ids = chat_ids(tokenizer, [p.messages for p in prompts])
    room = cfg.teacher.max_model_len - 1
    keep = [i for i, x in enumerate(ids) if len(x) + o.max_tokens <= room]
    params = SamplingParams(n=o.samples_per_prompt, temperature=o.temperature, max_tokens=o.max_tokens)
    outs = student.generate([{"prompt_token_ids": ids[i]} for i in keep], params, use_tqdm=False)
    answers = [(prompts[i], ids[i], c) for i, out in zip(keep, outs) for c in out.outputs if c.token_ids]
    teacher = engines.teacher_engine()
    scored = score_answers(teacher, [a[1] for a in answers], [list(a[2].token_ids) for a in answers],
                           cfg.generate.k)
    records = [sh.make_record(prompt_id=p.id, sample_index=c.index, messages=p.messages, prompt_token_ids=pid,
                              response=c.text, response_token_ids=list(c.token_ids), sampled_logprobs=lp,
                              topk_ids=tids, topk_logprobs=tlps, finish_reason=c.finish_reason or "length",
                              codec="compact", prob_step=cfg.generate.prob_step,
                              task=p.task)
               for (p, pid, c), (lp, tids, tlps) in zip(answers, scored)]
    manifest = sh.new_manifest(
        teacher=teacher_entry(cfg.teacher), tokenizer=sh.tokenizer_fingerprint(tokenizer), mode="score",
        k=cfg.generate.k, logprobs_mode="raw_logprobs", codec="compact", prob_step=cfg.generate.prob_step,
        sampling={"temperature": o.temperature, "max_tokens": o.max_tokens, "n": o.samples_per_prompt,
                  "seed": cfg.run.seed},
        corpus={"source": cfg.generate.prompts, "prompts": len(prompts), "ids": [p.id for p in prompts]},
        shard_size=SHARD_SIZE,
        responses={"by": "model", "model": "student", "weights_sha256": student_sha, "round": r})
    if not records:
        raise DistillError(f"round {r}: the student gave no answer to any of its {len(prompts)} prompts")
    return sh.write_shard_set(folder, manifest, records)


def round_rows(folder: Path, offline: OfflineRows | None, lmbda: float, seed: int, max_seq_len: int) -> list[dict]:
    """The rows round r trains on: every on-policy record, plus stored teacher answers drawn (seeded) so that the
    on-policy ones are a share lmbda of the whole."""
    rows = [example_row(ex, max_seq_len, "truncate", onpolicy=True) for ex in sh.read_examples(folder)]
    rows = [r for r in rows if r["status"] != DROPPED]
    n_offline = round(len(rows) * (1 - lmbda) / lmbda)
    if n_offline and offline is not None:
        rows += offline.draw(n_offline, seed)
    random.Random(seed + 1).shuffle(rows)
    return rows
