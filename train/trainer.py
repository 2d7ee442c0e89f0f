"""DistillTrainer: TRL's SFTTrainer with the loss replaced by CE + top-k KD from final hidden states.

The loss of an optimizer step is sum over its response tokens (every micro-batch, every process) of
    w_ce * CE + w_kd * KD (+ w_unlikelihood * UL, + w_feature * feature distance)
divided by the number of those tokens, so it is a per-token mean whatever the batch size, gradient accumulation
or number of processes. `evaluate_batch_loss` computes the same number for one batch outside training; the
per-batch sums come from distill/scoring.py, which eval uses too.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback
from trl import SFTConfig, SFTTrainer

from distill.errors import DistillError
from distill.scoring import Objective, batch_loss_terms, causal_lm


def add_distill_forward(model, objective: Objective, features=None) -> None:
    """Make `model(..., distill=batch)` return the batch's loss terms (batch_loss_terms, plus `feature` when an
    online teacher supervises hidden states).

    The loss must run inside the wrapped model's forward: DDP only syncs gradients of a forward it ran, and
    FSDP/ZeRO-3 only gather parameters inside it. TRL's SFTTrainer patches its fused LM head the same way.
    """
    lm = causal_lm(model)
    inner = lm.forward

    def forward(*args, distill=None, **kwargs):
        if distill is None:
            return inner(*args, **kwargs)
        if features is None:
            terms = batch_loss_terms(lm, distill, objective)
            return {**terms, "feature": terms["ce"].new_zeros(())}
        hidden, feature = features.terms(lm, distill)
        return {**batch_loss_terms(lm, distill, objective, hidden=hidden), "feature": feature}

    lm.forward = forward


@torch.no_grad()
def evaluate_batch_loss(model, batch: dict, cfg) -> float:
    """The loss the trainer reports for this batch (one micro-batch, one process), computed independently."""
    t = cfg.train
    terms = batch_loss_terms(model, batch, Objective.from_train(t))
    total = t.w_ce * terms["ce"] + t.w_kd * terms["kd"] + t.w_unlikelihood * terms["ul"]
    return float(total / terms["n"].clamp(min=1))


class StopAfterStep(TrainerCallback):
    """DISTILL_STOP_AFTER_STEP=N: act as if Ctrl-C came right after step N was finished (and saved, if a save step)."""

    def __init__(self, step: int):
        self.step = step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            raise KeyboardInterrupt


class AlreadyFinished(Exception):
    """Resumed from a checkpoint that holds the last step: there is nothing left to train."""


class NoStepPastTheEnd(TrainerCallback):
    """Resumed from its final checkpoint (a kill after the last save), the HF Trainer would take one step past
    max_steps before its end-of-step check; stop before the first step instead. Weights and state are loaded by now."""

    def on_train_begin(self, args, state, control, **kwargs):
        if state.max_steps > 0 and state.global_step >= state.max_steps:
            raise AlreadyFinished


class LogLastStep(TrainerCallback):
    """Log the final step too, so the summary's final loss is the last step's and not an older window's."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            control.should_log = True


def training_args(cfg, checkpoints: Path, has_eval: bool, cpu: bool, **overrides) -> SFTConfig:
    t = cfg.train
    settings = dict(
        output_dir=str(checkpoints),
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
    return SFTConfig(**{**settings, **overrides})


def lora_config(model, lora):
    """peft's LoraConfig for train.lora, or None when LoRA is off."""
    if not lora.enabled:
        return None
    from peft import LoraConfig

    from distill.train.student import check_lora_targets

    check_lora_targets(model, lora.target_modules)
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=list(lora.target_modules), task_type="CAUSAL_LM")


class LossInProgressBar(ProgressCallback):
    """transformers' progress bar, with the latest loss on the bar instead of a printed dict per log."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            shown = {k: f"{v:.4g}" for k, v in logs.items() if k in ("loss", "ce", "kd", "eval_loss")}
            if shown:
                self.training_bar.set_postfix(shown, refresh=False)


def default_callbacks() -> list:
    callbacks = [LogLastStep(), NoStepPastTheEnd()]
    if os.environ.get("DISTILL_STOP_AFTER_STEP"):
        callbacks.append(StopAfterStep(int(os.environ["DISTILL_STOP_AFTER_STEP"])))
    return callbacks


TERMS = ("ce", "kd", "ul", "on", "on_estimate", "feature")  # per-token means logged under these names


class DistillTrainer(SFTTrainer):
    loss_is_scaled_for_ga = True  # compute_loss divides by the tokens of the whole optimizer step

    def __init__(self, *args, objective: Objective, weights: dict[str, float], features=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.objective, self.features = objective, features
        # The loss: sum of weight * term, per token.
        self.weights = {k: weights.get(k, 0.0) for k in ("ce", "kd", "ul", "on", "feature")}
        add_distill_forward(self.model, objective, features)
        if self.pop_callback(ProgressCallback) is not None:
            self.add_callback(LossInProgressBar())
        # Per-token means are logged from exact sums: one per TERMS, then tokens, since the last log.
        self._sums = {mode: torch.zeros(len(TERMS) + 1, dtype=torch.float64) for mode in ("train", "eval")}
        self.tokens_seen = None  # response tokens trained on, over all processes and resumed runs
        self.tokens_this_run = 0
        self.sample_weights = None  # a multi-task mixture's per-row sampling weights (train.mixture)

    def _get_train_sampler(self, train_dataset=None):
        if self.sample_weights is None:
            return super()._get_train_sampler(train_dataset)
        generator = torch.Generator().manual_seed(self.args.seed)
        return torch.utils.data.WeightedRandomSampler(self.sample_weights, num_samples=len(self.sample_weights),
                                                      replacement=True, generator=generator)

    def _get_num_items_in_batch(self, batch_samples, device):
        # Response tokens in the whole optimizer step: every micro-batch here, summed over processes.
        n = sum(b["response_mask"][:, 1:].sum() for b in batch_samples).to(device)
        if self.args.world_size > 1:
            n = self.accelerator.gather(n.reshape(1)).sum()
        self.tokens_this_run += int(n)
        return n

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        distill = {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)}
        terms = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], distill=distill)
        n = terms["n"]
        denominator = n if num_items_in_batch is None else num_items_in_batch
        total = sum(self.weights[k] * terms[k] for k in self.weights if self.weights[k])
        loss = total / torch.as_tensor(denominator).clamp(min=1)
        if num_items_in_batch is not None and self.args.world_size > 1:
            loss = loss * self.args.world_size  # DDP averages gradients over processes; we want their sum
        if not torch.isfinite(loss):
            step = self.state.global_step + (1 if model.training else 0)
            sums = ", ".join(f"{k} sum {terms[k].item():.4g}" for k in ("ce", "kd", "ul", "on", "feature")
                             if self.weights[k])
            raise DistillError(f"loss became {loss.item()} at step {step} ({sums}); training stopped: lower "
                               "train.lr or check the shards")
        mode = "train" if model.training else "eval"
        row = torch.stack([terms[k].detach().float() for k in TERMS] + [n.detach().float()])
        self._sums[mode] += row.double().cpu()
        return (loss, None) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def close_progress_bar(self) -> None:
        for callback in self.callback_handler.callbacks:
            if getattr(callback, "training_bar", None) is not None:
                callback.training_bar.close()

    def total_tokens(self) -> int:
        """Response tokens trained on, the runs this one resumed included (from the log before this run's first)."""
        if self.tokens_seen is not None:
            return self.tokens_seen
        return max([h["tokens"] for h in self.state.log_history if "tokens" in h], default=0)

    def log(self, logs: dict, start_time: float | None = None) -> None:
        mode = "eval" if any(k.startswith("eval_") for k in logs) else "train"
        sums = self._sums[mode]
        if self.args.world_size > 1:
            sums = self.accelerator.gather(sums.to(self.args.device).reshape(1, -1)).sum(0).cpu()
        prefix = "eval_" if mode == "eval" else ""
        if sums[-1] > 0:
            means = {k: float(sums[i] / sums[-1]) for i, k in enumerate(TERMS)}
            for k, value in means.items():
                if k == "ce" or self.weights.get(k.replace("on_estimate", "on")):
                    logs[f"{prefix}{k}"] = value
            if mode == "eval":  # exact per-token mean over the eval set, not Trainer's mean of batch means
                logs["eval_loss"] = sum(w * means[k] for k, w in self.weights.items())
        if mode == "train" and "loss" in logs:
            if self.tokens_seen is None:  # first log of this process: continue the count of a resumed run
                self.tokens_seen = self.total_tokens()
                self._tokens_logged = 0
            self.tokens_seen += self.tokens_this_run - self._tokens_logged
            self._tokens_logged = self.tokens_this_run
            logs["tokens"] = self.tokens_seen
        self._sums[mode].zero_()
        # SFTTrainer.log adds its own metrics (none here: its compute_loss is not used), then Trainer.log.
        super().log(logs, start_time)
