"""The train stage, top to bottom: config -> shards -> student -> checks -> dataset -> (LoRA) -> TRL training
(resuming from the newest complete checkpoint) -> model folder + train_summary.json + loss_curves.png.

Output folder run_paths(cfg).model(train.output_name), e.g. runs/x/student/:
    model.safetensors, config.json, tokenizer files, chat_template.jinja   the trained student (vLLM-loadable)
    adapter/                 LoRA adapter (train.lora.enabled)
    checkpoints/checkpoint-N Trainer checkpoints (the newest train.save_total_limit); a rerun resumes from the newest
                             complete one. Removed once the run is complete unless train.keep_checkpoints
    checkpoints/settings.json what the checkpoints were trained with: a rerun with other settings refuses to resume
    train_log.json           every logged value (loss, ce, kd, eval_loss, lr, grad_norm, tokens) by step
    train_summary.json       its presence means the stage is complete
    loss_curves.png
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from distill import shards as sh
from distill.config import Config, run_paths, to_dict
from distill.errors import DistillError
from distill.files import atomic_write, read_json, sha256_bytes, write_json

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors",
                "pytorch_model.bin", "pytorch_model_fsdp_0", "pytorch_model_fsdp.bin")

# Train settings that do not change the trained weights; every other one must match to resume or to count as done.
NOT_SETTINGS = ("resume", "logging_steps", "report_to", "eval_steps", "save_steps", "save_total_limit",
                "keep_checkpoints", "output_name")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or DISTILL_STOP_AFTER_STEP), carrying the line that says how to resume."""


def run(cfg: Config) -> dict:
    t, paths = cfg.train, run_paths(cfg)
    out = paths.model(t.output_name)
    done = finished_summary(cfg, out)  # before importing torch: a finished stage returns at once
    if done is not None:
        return done
    start = time.time()
    state = process_state()

    # Shards: the manifest first (cheap), so a missing or unfinished shard set fails before any model loads.
    shard_dir = paths.shards("train")
    manifest = sh.open_shard_set(shard_dir)
    settings = training_settings(cfg, manifest)
    student_dir, model, tokenizer = prepare_student(cfg, state)

    from distill.checks import check_all

    check_all(shard_dir, manifest, model, tokenizer, f"student {student_dir}")
    train_ds, eval_ds, counts = prepare_data(cfg, shard_dir, state)
    features = feature_distiller(cfg, student_dir, model)
    trainer = build_trainer(cfg, out, model, tokenizer, train_ds, eval_ds, features)
    trainer.sample_weights = mixture_sampling(train_ds, cfg)
    resume = resume_point(cfg, out / "checkpoints", settings, state)
    train_wall = train(trainer, resume, out / "checkpoints", t.save_steps, state)
    save_final_model(trainer, out, tokenizer, cfg)
    if not state.is_main_process:
        return {}
    summary = {
        **trainer_summary(trainer, train_wall),
        "train_sequences": len(train_ds), "eval_sequences": len(eval_ds) if eval_ds else 0, **counts,
        "resumed_from": str(resume) if resume else None, "processes": state.num_processes,
        "wall_s": time.time() - start, "train_wall_s": train_wall, "student": str(student_dir),
        "shards": str(shard_dir), "model": str(out), "train_config": to_dict(t), "settings": settings,
    }
    finish(out, trainer.state.log_history, summary, t.keep_checkpoints)
    print_summary_line(t.output_name, summary, out)
    return summary


# ---- steps ----------------------------------------------------------------------------------------------------


def training_settings(cfg: Config, manifest: dict) -> dict:
    """What the weights in the output folder depend on, as dotted keys: train settings, student, seed, shards."""
    flat = {f"train.{k}": v for k, v in to_dict(cfg.train).items() if k not in NOT_SETTINGS}
    shard_list = json.dumps(manifest.get("shards", []), sort_keys=True).encode()
    s = cfg.student
    return {**flat, "student.model": s.model, "student.from_teacher_layers": s.from_teacher_layers,
            "student.layer_selection": s.layer_selection, "student.calibration_records": s.calibration_records,
            "teacher.model": cfg.teacher.model, "run.seed": cfg.run.seed, "shards.sha256": sha256_bytes(shard_list)}


def settings_change(old: dict, new: dict) -> str | None:
    """'key: old -> new' for the first few keys that differ, or None. A key the old settings lack is a setting added
    since they were recorded: it counts at its default, the value that keeps the behaviour of before it existed."""
    defaults = training_settings(Config(), {})
    before = {k: old.get(k, defaults.get(k)) for k in set(old) | set(new)}
    changed = [f"{k}: {sh.short_repr(before[k])} -> {sh.short_repr(new.get(k))}"
               for k in sorted(before) if before[k] != new.get(k)]
    if not changed:
        return None
    return "; ".join(changed[:3]) + (f" (+{len(changed) - 3} more)" if len(changed) > 3 else "")


def model_saved(out: Path) -> bool:
    return any((out / name).exists() for name in ("model.safetensors", "model.safetensors.index.json",
                                                   "adapter/adapter_model.safetensors"))


def finished_summary(cfg: Config, out: Path) -> dict | None:
    """The summary of a finished run with these settings; None if there is training to do."""
    summary = read_json(out / "train_summary.json")
    if summary is None or not model_saved(out):
        return None
    change = summary.get("settings") and settings_change(
        summary["settings"], training_settings(cfg, sh.read_manifest(run_paths(cfg).shards("train")) or {}))
    if change:
        raise DistillError(f"{out} was trained with other settings ({change}); set another train.output_name, "
                           "or delete train_summary.json there to train again")
    if os.environ.get("RANK", "0") == "0":
        print(f"[train] {out}: already complete (delete train_summary.json there to train again)")
    return summary


def process_state():
    """accelerate's view of the processes: one per device under `accelerate launch`; rank 0 writes shared files.
    Without CUDA the processes talk over gloo on the CPU (cpu=True), whichever launcher started them."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def prepare_student(cfg: Config, state):
    """(folder, model, tokenizer): the student made from the teacher (once, by rank 0) or the configured model."""
    from distill.train.student import load_student, load_student_tokenizer, make_student_from_teacher

    s = cfg.student
    if s.from_teacher_layers:
        with state.main_process_first():
            student_dir = make_student_from_teacher(cfg.teacher.model, s.from_teacher_layers,
                                                    run_paths(cfg).student_init, s.layer_selection,
                                                    run_paths(cfg).shards("train"), s.calibration_records,
                                                    cfg.train.max_seq_len)
    else:
        student_dir = cfg.student.model
    tokenizer = load_student_tokenizer(student_dir, cfg)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return student_dir, load_student(student_dir, cfg), tokenizer


def prepare_data(cfg: Config, shard_dir: Path, state):
    """Training and validation datasets, built once by rank 0 (the other ranks read its cache)."""
    from distill.train.data import apply_mixture, build_dataset, split_eval

    t = cfg.train
    with state.main_process_first():
        ds, counts = build_dataset(shard_dir, t.max_seq_len, t.too_long, run_paths(cfg).root / "cache" / "datasets")
        ds, mixture = apply_mixture(ds, t.mixture, t.w_ce, t.w_kd, t.upsample, t.w_ce_references)
        train_ds, eval_ds = split_eval(ds, t.eval_fraction, cfg.run.seed)
    if state.is_main_process:
        for task in sorted(set(t.upsample) - set(mixture)):
            print(f"[train] train.upsample.{task}: no task of that name in the training shards; not used")
        print(f"[train] {len(train_ds)} training / {len(eval_ds) if eval_ds else 0} validation sequences from "
              f"{shard_dir} ({counts['truncated']} truncated, {counts['dropped']} dropped at "
              f"train.max_seq_len={t.max_seq_len}); global batch {t.batch_size * t.grad_accum * state.num_processes} "
              f"sequences (batch_size {t.batch_size} x grad_accum {t.grad_accum} x {state.num_processes} processes)")
    return train_ds, eval_ds, {"truncated": counts["truncated"], "dropped": counts["dropped"], "mixture": mixture}


def mixture_sampling(train_ds, cfg: Config) -> list[float] | None:
    from distill.train.data import sampling_weights

    return sampling_weights(train_ds, cfg.train.mixture, cfg.train.upsample)


def feature_distiller(cfg: Config, student_dir, model):
    """The online teacher for train.w_feature > 0 (train/features.py), refused in one line when it cannot run."""
    t = cfg.train
    if t.w_feature == 0:
        return None
    from distill.models import load_causal_lm
    from distill.train.features import FeatureDistiller, layer_map

    if cfg.teacher.backend != "vllm":
        raise DistillError("train.w_feature: the feature loss needs the teacher loaded in the training process, but "
                           f"teacher.backend is {cfg.teacher.backend} (a remote server); set train.w_feature=0")
    if t.lora.enabled and t.feature_projection:
        raise DistillError("train.w_feature: LoRA with feature distillation is supported only when no projection is "
                           "needed; set train.feature_projection=false (equal widths) or turn LoRA off")
    teacher = load_causal_lm(cfg.teacher.model, "teacher.model", cfg.teacher.trust_remote_code)
    return FeatureDistiller(teacher, model, layer_map(Path(student_dir), t.feature_layers), t.feature_loss,
                            t.feature_projection)


def build_trainer(cfg: Config, out: Path, model, tokenizer, train_ds, eval_ds, features=None):
    import torch

    from distill.batches import DistillCollator
    from distill.scoring import Objective
    from distill.train.data import kd_needed, trainer_loss_weights
    from distill.train.trainer import DistillTrainer, default_callbacks, lora_config, training_args

    t = cfg.train
    with_kd = kd_needed(t)
    if with_kd and t.kd_temperature != 1.0 and t.tail == "bucket":  # measured: docs/results/temperature_tail.json
        print(f"[train] warning: train.kd_temperature={t.kd_temperature:g} tempers the tail class as if it were one "
              "token; the KD term's error grows fast away from 1 (README, 'Numbers and what they mean')", flush=True)
    return DistillTrainer(
        model=model,
        args=training_args(cfg, out / "checkpoints", eval_ds is not None, cpu=not torch.cuda.is_available()),
        data_collator=DistillCollator(pad_token_id=tokenizer.pad_token_id),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=lora_config(model, t.lora),
        callbacks=default_callbacks(),
        objective=Objective.from_train(t, with_kd=with_kd),
        weights={**trainer_loss_weights(t), "ul": t.w_unlikelihood, "feature": t.w_feature},
        features=features,
    )


def newest_complete_checkpoint(folder: Path, quiet: bool = False) -> Path | None:
    """The newest checkpoint-N holding trainer_state.json and model weights; a half-written one is skipped."""
    if not folder.is_dir():
        return None
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    for ckpt in sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        has_state = (ckpt / "trainer_state.json").is_file()
        has_weights = any((ckpt / name).exists() for name in WEIGHT_FILES)
        if has_state and has_weights:
            return ckpt
        if not quiet:
            missing = " and ".join(m for m, ok in (("trainer_state.json", has_state), ("model weights", has_weights))
                                   if not ok)
            print(f"[train] {ckpt}: incomplete checkpoint (no {missing}; a kill while saving?): skipping it")
    return None


def resume_point(cfg: Config, ckpt_dir: Path, settings: dict, state) -> Path | None:
    """The checkpoint to resume from (same settings only), after recording the settings next to the checkpoints."""
    resume = newest_complete_checkpoint(ckpt_dir, quiet=not state.is_main_process) if cfg.train.resume else None
    settings_path = ckpt_dir / "settings.json"
    if resume and settings_path.is_file():
        change = settings_change(json.loads(settings_path.read_text()), settings)
        if change:
            raise DistillError(f"{ckpt_dir}: the checkpoints were trained with other settings ({change}); "
                               "restore them to resume, or set train.resume=false to start over")
    if state.is_main_process:
        if resume:
            print(f"[train] resuming from {resume}")
        elif not cfg.train.resume and any(ckpt_dir.glob("checkpoint-*")):
            print(f"[train] starting over (train.resume=false): removing the old checkpoints in {ckpt_dir}")
            shutil.rmtree(ckpt_dir)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        write_json(settings_path, settings)
    state.wait_for_everyone()
    return resume


def train(trainer, resume: Path | None, ckpt_dir: Path, save_steps: int, state) -> float:
    """Run the trainer; a Ctrl-C becomes one line saying where a rerun resumes. Returns the training wall time."""
    from distill.train.trainer import AlreadyFinished

    train_start = time.time()
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except AlreadyFinished:
        if state.is_main_process:
            print(f"[train] {resume} holds the last step ({trainer.state.global_step}): saving it, no more training")
    except KeyboardInterrupt:
        trainer.close_progress_bar()  # now, not after our last line
        last = newest_complete_checkpoint(ckpt_dir, quiet=True)
        where = (f"rerun the same command to resume from {last}" if last else
                 f"no checkpoint was saved yet (train.save_steps={save_steps}); rerun the same command to start over")
        raise Interrupted(f"interrupted at step {trainer.state.global_step}; {where}") from None
    return time.time() - train_start


def save_final_model(trainer, out: Path, tokenizer, cfg: Config) -> None:
    """The model folder (vLLM-servable). trainer.save_model handles FSDP/DeepSpeed state dicts; under FSDP it writes
    nothing for a sharded state dict (our checkpoints' setting), so the final folder asks for the full one."""
    from distill.scoring import causal_lm
    from distill.train.features import detach_projection

    lora = cfg.train.lora
    out.mkdir(parents=True, exist_ok=True)
    if trainer.accelerator.is_main_process:
        detach_projection(causal_lm(trainer.accelerator.unwrap_model(trainer.model)), out)
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    if lora.enabled:
        trainer.save_model(str(out / "adapter"))
        if lora.merge and trainer.accelerator.is_main_process:
            trainer.model.merge_and_unload().save_pretrained(out, safe_serialization=True)
            tokenizer.save_pretrained(out)
    else:
        trainer.save_model(str(out))
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process and not model_saved(out):  # never mark a run complete without weights
        raise DistillError(f"{out}: training finished but no model weights were saved there")
    for leftover in (out / "training_args.bin", out / "adapter" / "training_args.bin"):
        leftover.unlink(missing_ok=True)  # a pickle; the settings are in train_summary.json


def trainer_summary(trainer, train_wall: float) -> dict:
    """Steps, tokens and the last logged training and validation losses."""
    history = trainer.state.log_history
    last = next((h for h in reversed(history) if "loss" in h), {})
    last_eval = next((h for h in reversed(history) if "eval_loss" in h), {})
    return {
        "steps": trainer.state.global_step,
        "tokens": trainer.total_tokens(),
        # None when this run took no step (resumed from the final checkpoint).
        "tokens_per_s": trainer.tokens_this_run / max(train_wall, 1e-9) if trainer.tokens_this_run else None,
        "train_loss": last.get("loss"), "ce": last.get("ce"), "kd": last.get("kd"), "ul": last.get("ul"),
        "eval_loss": last_eval.get("eval_loss"), "eval_ce": last_eval.get("eval_ce"),
        "eval_kd": last_eval.get("eval_kd"),
    }


def finish(out: Path, history: list[dict], summary: dict, keep_checkpoints: bool) -> None:
    """Log, curves, then the summary that marks the stage complete, then (optionally) drop the checkpoints."""
    write_json(out / "train_log.json", history)
    plot_curves(history, out / "loss_curves.png")
    write_json(out / "train_summary.json", summary)
    if not keep_checkpoints:  # after the summary: a kill before it still finds the checkpoints to resume from
        for ckpt in (out / "checkpoints").glob("checkpoint-*"):
            shutil.rmtree(ckpt, ignore_errors=True)


def print_summary_line(name: str, summary: dict, out: Path) -> None:
    kd = "".join(f", {k} {summary[k]:.3g}" for k in ("kd", "ul") if summary.get(k) is not None)
    loss = (f"loss {summary['train_loss']:.3g} (ce {summary['ce']:.3g}{kd})" if summary["train_loss"] is not None
            else "no loss logged")
    speed = f"{summary['tokens_per_s']:,.0f} tok/s" if summary["tokens_per_s"] else "no step left to take"
    print(f"[train] {name}: {summary['steps']} steps, {summary['tokens']:,} tokens, {speed}, {loss}, {out}")


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for key in ("loss", "ce", "kd", "ul", "eval_loss"):
        points = [(h["step"], h[key]) for h in history if key in h]
        if points:
            ax.plot(*zip(*points), marker="o" if key == "eval_loss" else None, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("per-token loss (nats)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
