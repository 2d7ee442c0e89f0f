"""The on-policy stage, top to bottom: start from a trained student, then onpolicy.rounds rounds of
    the student answers a batch of training prompts (its own vLLM engine) ->
    the teacher scores every answer token (its vLLM engine, prompt_logprobs: top-k and the exact logprob) ->
    the student trains onpolicy.steps_per_round steps on them (reverse KL / JSD over the teacher's top-k, or the
    per-token reverse-KL estimate on its sampled token), mixed with stored teacher answers by onpolicy.lmbda ->
    its new weights are loaded into its running engine.
train.mixture and train.upsample weigh which prompts a round draws and which stored answers it mixes in, as they
weigh train's rows; the stored answers keep train's loss weights (a task's own w_ce / w_kd, train.w_ce_references),
and the student's own answers are weighted by onpolicy.w_onpolicy alone.
The learning-rate schedule spans all rounds; a checkpoint closes every round, so a killed run resumes at the round
and step where it stopped.

Output folder RUN/<onpolicy.output_name>/ (default student_onpolicy): the model, train_summary.json,
loss_curves.png, rounds/round-RRR/ (each round's scored answers, a shard set) and checkpoints/.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from distill import shards as sh
from distill.config import Config, run_paths, to_dict
from distill.errors import DistillError
from distill.files import read_json, write_json
from distill.models import weights_fingerprint
from distill.onpolicy.rounds import (Engines, OfflineRows, prompt_draw_weights, round_prompts, round_rows,
                                     sample_and_score)
from distill.train.run import finish, model_saved, newest_complete_checkpoint, process_state, settings_change

RESUME_HINT = "rounds already scored and trained are kept; rerun the same command to resume"


def run(cfg: Config) -> dict:
    o, paths = cfg.onpolicy, run_paths(cfg)
    out = paths.model(o.output_name)
    init = Path(o.init or paths.model(cfg.train.output_name))
    settings = onpolicy_settings(cfg, init)
    done = read_json(out / "train_summary.json")
    if done and model_saved(out) and not settings_change(done["settings"], settings):
        print(f"[onpolicy] {out}: already complete (delete train_summary.json there to train again)")
        return done
    start, state = time.time(), process_state()
    model, tokenizer = check_student(init, cfg)
    prompts = training_prompts(cfg)
    draw_weights = prompt_draw_weights(prompts, cfg)
    offline = OfflineRows.load(paths.shards("train"), cfg) if o.lmbda < 1 else None
    ckpt_dir = out / "checkpoints"
    resume = resume_point(ckpt_dir, settings)
    step = json.loads((resume / "trainer_state.json").read_text())["global_step"] if resume else 0
    engines = Engines(cfg, resume or init)
    log, trainer = [], None
    try:
        for r in range(step // o.steps_per_round, o.rounds):
            folder = out / "rounds" / f"round-{r:03d}"
            t0 = time.time()
            if not (sh.read_manifest(folder) or {}).get("complete"):
                chosen = round_prompts(prompts, r, o.prompts_per_round, draw_weights, cfg.run.seed)
                scored = sample_or_fail(engines, chosen, folder, r, cfg)
                print(f"[onpolicy] round {r}: {scored['counts']['records']} student answers, "
                      f"{scored['counts']['tokens']:,} tokens scored by the teacher", flush=True)
            engines.between_phases()
            rows = round_rows(folder, offline, o.lmbda, cfg.run.seed + r, cfg.train.max_seq_len)
            trainer = round_trainer(cfg, ckpt_dir, model, tokenizer, rows, (r + 1) * o.steps_per_round)
            trainer.train(resume_from_checkpoint=str(newest_complete_checkpoint(ckpt_dir, quiet=True) or "") or None)
            model = trainer.model
            engines.student_weights(newest_complete_checkpoint(ckpt_dir, quiet=True))
            log.append({"round": r, "seconds": time.time() - t0, "rows": len(rows)})
    finally:
        engines.close()
    if trainer is None:  # every round was trained before a kill that came just ahead of the summary
        trainer = round_trainer(cfg, ckpt_dir, model, tokenizer, [], o.rounds * o.steps_per_round)
        trainer.model.load_state_dict(load_file_weights(resume), strict=False)
        trainer.state = trainer.state.load_from_json(str(resume / "trainer_state.json"))
    drawn = Counter(p.task for r in range(o.rounds)
                    for p in round_prompts(prompts, r, o.prompts_per_round, draw_weights, cfg.run.seed))
    mixture = {"prompts_drawn": dict(sorted(drawn.items())), "stored_answers": offline.mixture if offline else None}
    return finish_run(out, trainer, cfg, settings, log, engines, time.time() - start, init, mixture)


def load_file_weights(checkpoint: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(checkpoint / "model.safetensors"))


def onpolicy_settings(cfg: Config, init: Path) -> dict:
    """What the on-policy student depends on: the starting student, the rounds' settings, the training settings."""
    from distill.train.run import NOT_SETTINGS

    train = {f"train.{k}": v for k, v in to_dict(cfg.train).items() if k not in NOT_SETTINGS}
    return {**{f"onpolicy.{k}": v for k, v in to_dict(cfg.onpolicy).items()}, **train,
            "init.sha256": weights_fingerprint(str(init)), "teacher.model": cfg.teacher.model,
            "generate.prompts": cfg.generate.prompts, "run.seed": cfg.run.seed}


def check_student(init: Path, cfg: Config):
    """The starting student, refused in one line before the first round when the teacher could not score it."""
    from distill.models import load_causal_lm, load_tokenizer
    from distill.scoring import check_logits_path

    if not (init / "config.json").is_file():
        raise DistillError(f"onpolicy.init {init}: no trained student there (train one first: distill train CONFIG, "
                           "or set onpolicy.init to a model folder)")
    tokenizer = load_tokenizer(str(init), "onpolicy.init", cfg.student.trust_remote_code)
    teacher_tok = load_tokenizer(cfg.teacher.tokenizer or cfg.teacher.model, "teacher.model",
                                 cfg.teacher.trust_remote_code)
    if sh.tokenizer_fingerprint(tokenizer)["sha256"] != sh.tokenizer_fingerprint(teacher_tok)["sha256"]:
        raise DistillError(f"onpolicy.init {init}: its tokenizer differs from the teacher's; the teacher could not "
                           "score its answers token by token")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = load_causal_lm(str(init), "onpolicy.init", cfg.student.trust_remote_code, cfg.student.allow_pickle)
    check_logits_path(model, f"onpolicy.init {init}")
    return model, tokenizer


def training_prompts(cfg: Config):
    from distill.prompts import load_prompts

    g = cfg.generate
    return load_prompts(g.prompts, g.columns, g.split, g.max_prompts)[0]


def resume_point(ckpt_dir: Path, settings: dict) -> Path | None:
    resume = newest_complete_checkpoint(ckpt_dir)
    recorded = read_json(ckpt_dir / "settings.json")
    if resume and recorded and settings_change(recorded, settings):
        raise DistillError(f"{ckpt_dir}: the checkpoints were made with other settings "
                           f"({settings_change(recorded, settings)}); restore them to resume, or delete the folder")
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_json(ckpt_dir / "settings.json", settings)
    if resume:
        print(f"[onpolicy] resuming from {resume}")
    return resume


def sample_or_fail(engines: Engines, prompts, folder: Path, r: int, cfg: Config) -> dict:
    """Round r's scored answers; a failure keeps every earlier round and says how to resume."""
    try:
        return sample_and_score(engines, prompts, folder, r, weights_fingerprint(str(engines.student_dir)), cfg)
    except DistillError as e:
        raise DistillError(f"round {r}: {e}; {RESUME_HINT}") from None
    except Exception as e:  # the engines raise many kinds
        raise DistillError(f"round {r}: sampling or scoring failed ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''}); {RESUME_HINT}") from None


def round_trainer(cfg: Config, ckpt_dir: Path, model, tokenizer, rows: list[dict], stop_at: int):
    """A trainer over this round's rows whose schedule spans every round; it stops (and checkpoints) at stop_at."""
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback

    from distill.batches import DistillCollator
    from distill.losses import KDSpec
    from distill.scoring import Objective
    from distill.train.data import FEATURES, kd_needed, trainer_loss_weights
    from distill.train.trainer import DistillTrainer, default_callbacks, training_args

    o, t = cfg.onpolicy, cfg.train

    class StopAtRoundEnd(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= stop_at:
                control.should_save = control.should_training_stop = True

    on_spec = KDSpec(kind=o.loss if o.loss != "sampled_token" else "reverse_kl", temperature=1.0, tail=t.tail,
                     beta=t.jsd_beta, alpha=t.skew_alpha)
    args = training_args(cfg, ckpt_dir, False, not torch.cuda.is_available(), max_steps=o.rounds * o.steps_per_round,
                         save_steps=min(t.save_steps, o.steps_per_round), learning_rate=o.lr or t.lr,
                         ignore_data_skip=True, report_to=[])
    return DistillTrainer(
        model=model, args=args, data_collator=DistillCollator(pad_token_id=tokenizer.pad_token_id),
        train_dataset=Dataset.from_list(rows, features=FEATURES), processing_class=tokenizer,
        callbacks=default_callbacks() + [StopAtRoundEnd()],
        objective=Objective.from_train(t, with_kd=kd_needed(t), onpolicy=o.loss, onpolicy_spec=on_spec),
        weights={**trainer_loss_weights(t), "ul": t.w_unlikelihood, "on": o.w_onpolicy})


def finish_run(out: Path, trainer, cfg: Config, settings: dict, log: list, engines: Engines, wall: float,
               init: Path, mixture: dict) -> dict:
    """The final model folder, then the summary that marks the stage complete."""
    trainer.save_model(str(out))
    (out / "training_args.bin").unlink(missing_ok=True)
    rounds = sorted((out / "rounds").glob("round-*"))
    manifests = [sh.read_manifest(r) for r in rounds]
    history = trainer.state.log_history
    last = next((h for h in reversed(history) if "loss" in h), {})
    summary = {
        "rounds": len(rounds), "steps": trainer.state.global_step, "init": str(init),
        "teacher_tokens": sum(m["counts"]["tokens"] for m in manifests),
        "student_answers": sum(m["counts"]["records"] for m in manifests),
        "train_loss": last.get("loss"), "on": last.get("on"), "on_estimate": last.get("on_estimate"),
        "engine_reloads": engines.reloads, "engine_restarts": engines.restarts, "round_log": log, "wall_s": wall,
        "model": str(out), "onpolicy_config": to_dict(cfg.onpolicy), "settings": settings,
        "mixture": mixture,  # the tasks the rounds' prompts were drawn from, and train's record of the stored answers
    }
    finish(out, history, summary, cfg.train.keep_checkpoints)
    print(f"[onpolicy] {out.name}: {summary['rounds']} rounds, {summary['steps']} steps, "
          f"{summary['teacher_tokens']:,} teacher-scored tokens, loss {summary['train_loss']}, {wall:.0f} s, {out}")
    return summary
