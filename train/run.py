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

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors",
                "pytorch_model.bin", "pytorch_model_fsdp_0", "pytorch_model_fsdp.bin")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or DISTILL_STOP_AFTER_STEP), carrying the line that says how to resume."""


# Train settings that do not change the trained weights; every other one must match to resume or to count as done.
NOT_SETTINGS = ("resume", "logging_steps", "report_to", "eval_steps", "save_steps", "save_total_limit",
                "keep_checkpoints", "output_name")


def training_settings(cfg: Config, manifest: dict) -> dict:
    """What the weights in the output folder depend on, as dotted keys: train settings, student, seed, shards."""
    flat = {f"train.{k}": v for k, v in to_dict(cfg.train).items() if k not in NOT_SETTINGS}
    shard_list = json.dumps(manifest.get("shards", []), sort_keys=True).encode()
    return {**flat, "student.model": cfg.student.model, "student.from_teacher_layers": cfg.student.from_teacher_layers,
            "teacher.model": cfg.teacher.model, "run.seed": cfg.run.seed, "shards.sha256": sh.sha256_bytes(shard_list)}


def settings_change(old: dict, new: dict) -> str | None:
    """'key: old -> new' for the first few keys that differ, or None."""
    changed = [f"{k}: {sh.short_repr(old.get(k))} -> {sh.short_repr(new.get(k))}"
               for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if not changed:
        return None
    return "; ".join(changed[:3]) + (f" (+{len(changed) - 3} more)" if len(changed) > 3 else "")


def model_saved(out: Path) -> bool:
    return any((out / name).exists() for name in ("model.safetensors", "model.safetensors.index.json",
                                                   "adapter/adapter_model.safetensors"))


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


def training_args(cfg: Config, out: Path, has_eval: bool, cpu: bool):
    from trl import SFTConfig

    t = cfg.train
    return SFTConfig(
        output_dir=str(out / "checkpoints"),
        max_steps=t.max_steps if t.max_steps > 0 else -1,
        num_train_epochs=t.epochs,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.lr,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,  # a float in [0, 1) is read as a fraction of the total steps
        weight_decay=t.weight_decay,
        bf16=t.precision == "bf16",
        fp16=t.precision == "fp16",
        gradient_checkpointing=t.gradient_checkpointing,
        logging_steps=t.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=t.eval_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        report_to=[] if t.report_to == "none" else [t.report_to],
        seed=cfg.run.seed,
        data_seed=cfg.run.seed,
        # Our dataset is already tokenised and our collator needs its extra columns: TRL must not touch either.
        remove_unused_columns=False,
        dataset_kwargs={"skip_prepare_dataset": True},
        max_length=None,
        dataloader_num_workers=0,
        use_cpu=cpu,
    )


def run(cfg: Config) -> dict:
    t, paths = cfg.train, run_paths(cfg)
    out = paths.model(t.output_name)
    summary_path = out / "train_summary.json"
    shard_dir = paths.shards("train")
    if summary_path.is_file() and model_saved(out):  # before importing torch: a finished stage returns at once
        summary = json.loads(summary_path.read_text())
        done_with = summary.get("settings")
        change = done_with and settings_change(done_with, training_settings(cfg, sh.read_manifest(shard_dir) or {}))
        if change:
            raise DistillError(f"{out} was trained with other settings ({change}); set another train.output_name, "
                               f"or delete {summary_path.name} there to train again")
        if os.environ.get("RANK", "0") == "0":
            print(f"[train] {out}: already complete (delete {summary_path.name} there to train again)")
        return summary
    start = time.time()

    import torch
    from accelerate import PartialState

    # Under `accelerate launch`: one process each; rank 0 writes the shared files. Without CUDA the processes
    # talk over gloo on the CPU (cpu=True), whichever launcher started them.
    cpu = not torch.cuda.is_available()
    state = PartialState(cpu=cpu)

    # Shards: the manifest first (cheap), so a missing or unfinished shard set fails before any model loads.
    manifest = sh.open_shard_set(shard_dir)
    settings = training_settings(cfg, manifest)

    # Student.
    from train.student import load_student, load_tokenizer, make_student_from_teacher

    if cfg.student.from_teacher_layers:
        with state.main_process_first():
            student_dir = make_student_from_teacher(cfg.teacher.model, cfg.student.from_teacher_layers,
                                                    paths.student_init)
    elif cfg.student.model:
        student_dir = cfg.student.model
    else:
        raise DistillError("no student: set student.model or student.from_teacher_layers")
    tokenizer = load_tokenizer(student_dir, cfg)
    model = load_student(student_dir, cfg)

    # Checks, before any training step.
    from train import checks

    checks.check_all(shard_dir, manifest, model, tokenizer, f"student {student_dir}")

    # Dataset (built once, by rank 0; the other ranks read its cache).
    from train.data import DistillCollator, build_dataset, split_eval

    with state.main_process_first():
        ds, counts = build_dataset(shard_dir, t.max_seq_len, t.too_long, paths.root / "cache" / "datasets")
        train_ds, eval_ds = split_eval(ds, t.eval_fraction, cfg.run.seed)
    if state.is_main_process:
        print(f"[train] {len(train_ds)} training / {len(eval_ds) if eval_ds else 0} eval sequences from {shard_dir} "
              f"({counts['truncated']} truncated, {counts['dropped']} dropped at train.max_seq_len={t.max_seq_len}); "
              f"global batch {t.batch_size * t.grad_accum * state.num_processes} sequences (batch_size "
              f"{t.batch_size} x grad_accum {t.grad_accum} x {state.num_processes} processes)")

    # LoRA.
    peft_config = None
    if t.lora.enabled:
        from peft import LoraConfig

        checks.check_lora_targets(model, t.lora.target_modules)
        peft_config = LoraConfig(r=t.lora.r, lora_alpha=t.lora.alpha, lora_dropout=t.lora.dropout,
                                 target_modules=list(t.lora.target_modules), task_type="CAUSAL_LM")

    # Trainer.
    from train.trainer import AlreadyFinished, DistillTrainer, LogLastStep, NoStepPastTheEnd, StopAfterStep, kd_spec

    callbacks = [LogLastStep(), NoStepPastTheEnd()]
    if os.environ.get("DISTILL_STOP_AFTER_STEP"):
        callbacks.append(StopAfterStep(int(os.environ["DISTILL_STOP_AFTER_STEP"])))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    trainer = DistillTrainer(
        model=model,
        args=training_args(cfg, out, eval_ds is not None, cpu),
        data_collator=DistillCollator(pad_token_id=tokenizer.pad_token_id),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
        spec=kd_spec(cfg),
        w_ce=t.w_ce,
        w_kd=t.w_kd,
        chunk_rows=t.chunk_rows,
    )

    # Train, resuming from the newest complete checkpoint.
    ckpt_dir = out / "checkpoints"
    resume = newest_complete_checkpoint(ckpt_dir, quiet=not state.is_main_process) if t.resume else None
    settings_path = ckpt_dir / "settings.json"
    if resume and settings_path.is_file():
        change = settings_change(json.loads(settings_path.read_text()), settings)
        if change:
            raise DistillError(f"{ckpt_dir}: the checkpoints were trained with other settings ({change}); "
                               "restore them to resume, or set train.resume=false to start over")
    if state.is_main_process:
        if resume:
            print(f"[train] resuming from {resume}")
        elif not t.resume and any(ckpt_dir.glob("checkpoint-*")):
            print(f"[train] starting over (train.resume=false): removing the old checkpoints in {ckpt_dir}")
            shutil.rmtree(ckpt_dir)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        sh.atomic_write(settings_path, (json.dumps(settings, indent=1) + "\n").encode())
    state.wait_for_everyone()
    train_start = time.time()
    try:
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    except AlreadyFinished:
        if state.is_main_process:
            print(f"[train] {resume} holds the last step ({trainer.state.global_step}): saving it, no more training")
    except KeyboardInterrupt:
        for callback in trainer.callback_handler.callbacks:  # close the progress bar now, not after our last line
            if getattr(callback, "training_bar", None) is not None:
                callback.training_bar.close()
        last = newest_complete_checkpoint(ckpt_dir, quiet=True)
        where = (f"rerun the same command to resume from {last}" if last else
                 f"no checkpoint was saved yet (train.save_steps={t.save_steps}); rerun the same command to start over")
        raise Interrupted(f"interrupted at step {trainer.state.global_step}; {where}") from None
    train_wall = time.time() - train_start

    # Save the final model folder (trainer.save_model also handles FSDP/DeepSpeed state dicts). Under FSDP it writes
    # nothing for a sharded state dict (our checkpoints' setting): the final folder needs the full one.
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    if peft_config is not None:
        trainer.save_model(str(out / "adapter"))
        if t.lora.merge and state.is_main_process:
            merged = trainer.model.merge_and_unload()
            merged.save_pretrained(out, safe_serialization=True)
            tokenizer.save_pretrained(out)
    else:
        trainer.save_model(str(out))
    state.wait_for_everyone()
    if not state.is_main_process:
        return {}
    if not model_saved(out):  # never mark a run complete without its weights
        raise DistillError(f"{out}: training finished but no model weights were saved there")
    for leftover in (out / "training_args.bin", out / "adapter" / "training_args.bin"):
        leftover.unlink(missing_ok=True)  # a pickle; the settings are in train_summary.json

    # Summary, log, curves.
    history = trainer.state.log_history
    (out / "train_log.json").write_text(json.dumps(history, indent=1) + "\n")
    last = next((h for h in reversed(history) if "loss" in h), {})
    last_eval = next((h for h in reversed(history) if "eval_loss" in h), {})
    tokens = trainer.total_tokens()
    summary = {
        "steps": trainer.state.global_step,
        "tokens": tokens,
        # None when this run took no step (resumed from the final checkpoint).
        "tokens_per_s": trainer.tokens_this_run / max(train_wall, 1e-9) if trainer.tokens_this_run else None,
        "train_loss": last.get("loss"),
        "ce": last.get("ce"),
        "kd": last.get("kd"),
        "eval_loss": last_eval.get("eval_loss"),
        "eval_ce": last_eval.get("eval_ce"),
        "eval_kd": last_eval.get("eval_kd"),
        "train_sequences": len(train_ds),
        "eval_sequences": len(eval_ds) if eval_ds else 0,
        "truncated": counts["truncated"],
        "dropped": counts["dropped"],
        "resumed_from": str(resume) if resume else None,
        "processes": state.num_processes,
        "wall_s": time.time() - start,
        "train_wall_s": train_wall,
        "student": str(student_dir),
        "shards": str(shard_dir),
        "model": str(out),
        "train_config": to_dict(t),
        "settings": settings,
    }
    plot_curves(history, out / "loss_curves.png")
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")  # marks the stage complete
    if not t.keep_checkpoints:  # after the summary: a kill before it still finds the checkpoints to resume from
        for ckpt in (out / "checkpoints").glob("checkpoint-*"):
            shutil.rmtree(ckpt, ignore_errors=True)
    kd = f", kd {summary['kd']:.3g}" if summary["kd"] is not None else ""
    loss = f"loss {summary['train_loss']:.3g} (ce {summary['ce']:.3g}{kd})" if last else "no loss logged"
    speed = f"{summary['tokens_per_s']:,.0f} tok/s" if summary["tokens_per_s"] else "no step left to take"
    print(f"[train] {t.output_name}: {summary['steps']} steps, {tokens:,} tokens, {speed}, {loss}, {out}")
    return summary


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for key in ("loss", "ce", "kd", "eval_loss"):
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
