"""DistillTrainer: TRL's SFTTrainer with the loss replaced by CE + top-k KD from final hidden states.

The loss of an optimizer step is sum over its response tokens (every micro-batch, every process) of
    w_ce * CE + w_kd * KD
divided by the number of those tokens, so it is a per-token mean whatever the batch size, gradient accumulation
or number of processes. `evaluate_batch_loss` computes the same number for one batch outside training.
"""

from __future__ import annotations

import torch
from transformers import TrainerCallback
from trl import SFTTrainer

from distill.errors import DistillError
from train import losses


def kd_spec(cfg) -> losses.KDSpec:
    t = cfg.train
    return losses.KDSpec(kind=t.kd_loss, temperature=t.kd_temperature, tail=t.tail, beta=t.jsd_beta,
                         alpha=t.skew_alpha)


def causal_lm(model):
    """The transformers CausalLM inside a PEFT wrapper (LoRA layers stay injected in it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def batch_loss_sums(model, batch: dict, spec: losses.KDSpec, with_kd: bool, chunk_rows: int):
    """(ce_sum, kd_sum, n_tokens) over the response tokens of a collated batch. No [B, T, V] logits are built."""
    lm = causal_lm(model)
    hidden = lm.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              use_cache=False).last_hidden_state
    # The hidden state at position t predicts token t + 1.
    predicts_response = batch["response_mask"][:, 1:]
    h = hidden[:, :-1][predicts_response]
    targets = batch["input_ids"][:, 1:][predicts_response]
    topk_ids = batch["topk_ids"][batch["topk_mask"]]
    topk_probs = batch["topk_probs"][batch["topk_mask"]]
    head = lm.get_output_embeddings()
    ce, kd = losses.loss_sums(h, head.weight, head.bias, targets, topk_ids, topk_probs, spec, with_kd=with_kd,
                              chunk_rows=chunk_rows)
    return ce, kd, predicts_response.sum()


def add_distill_forward(model, spec: losses.KDSpec, with_kd: bool, chunk_rows: int) -> None:
    """Make `model(..., distill=batch)` return batch_loss_sums.

    The loss must run inside the wrapped model's forward: DDP only syncs gradients of a forward it ran, and
    FSDP/ZeRO-3 only gather parameters inside it. TRL's SFTTrainer patches its fused LM head the same way.
    """
    lm = causal_lm(model)
    inner = lm.forward

    def forward(*args, distill=None, **kwargs):
        if distill is None:
            return inner(*args, **kwargs)
        return batch_loss_sums(lm, distill, spec, with_kd, chunk_rows)

    lm.forward = forward


@torch.no_grad()
def evaluate_batch_loss(model, batch: dict, cfg) -> float:
    """The loss the trainer reports for this batch (one micro-batch, one process), computed independently."""
    ce, kd, n = batch_loss_sums(model, batch, kd_spec(cfg), cfg.train.w_kd > 0, cfg.train.chunk_rows)
    return float((cfg.train.w_ce * ce + cfg.train.w_kd * kd) / n.clamp(min=1))


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


class DistillTrainer(SFTTrainer):
    loss_is_scaled_for_ga = True  # compute_loss divides by the tokens of the whole optimizer step

    def __init__(self, *args, spec: losses.KDSpec, w_ce: float, w_kd: float, chunk_rows: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.spec, self.w_ce, self.w_kd = spec, w_ce, w_kd
        add_distill_forward(self.model, spec, w_kd > 0, chunk_rows)
        # Per-token CE/KD means are logged from exact sums: [ce_sum, kd_sum, tokens] since the last log.
        self._sums = {"train": torch.zeros(3, dtype=torch.float64), "eval": torch.zeros(3, dtype=torch.float64)}
        self.tokens_seen = None  # response tokens trained on, over all processes and resumed runs
        self.tokens_this_run = 0

    def _get_num_items_in_batch(self, batch_samples, device):
        # Response tokens in the whole optimizer step: every micro-batch here, summed over processes.
        n = sum(b["response_mask"][:, 1:].sum() for b in batch_samples).to(device)
        if self.args.world_size > 1:
            n = self.accelerator.gather(n.reshape(1)).sum()
        self.tokens_this_run += int(n)
        return n

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        distill = {k: inputs[k] for k in ("input_ids", "attention_mask", "response_mask", "topk_ids", "topk_probs",
                                          "topk_mask")}
        ce, kd, n = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], distill=distill)
        denominator = n if num_items_in_batch is None else num_items_in_batch
        loss = (self.w_ce * ce + self.w_kd * kd) / torch.as_tensor(denominator).clamp(min=1)
        if num_items_in_batch is not None and self.args.world_size > 1:
            loss = loss * self.args.world_size  # DDP averages gradients over processes; we want their sum
        if not torch.isfinite(loss):
            step = self.state.global_step + (1 if model.training else 0)
            raise DistillError(f"loss became {loss.item()} at step {step} (ce sum {ce.item():.4g}, kd sum "
                               f"{kd.item():.4g}); training stopped: lower train.lr or check the shards")
        mode = "train" if model.training else "eval"
        self._sums[mode] += torch.stack([ce.detach(), kd.detach(), n.detach().to(ce.dtype)]).double().cpu()
        return (loss, None) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def total_tokens(self) -> int:
        """Response tokens trained on, the runs this one resumed included (from the log before this run's first)."""
        if self.tokens_seen is not None:
            return self.tokens_seen
        return max([h["tokens"] for h in self.state.log_history if "tokens" in h], default=0)

    def log(self, logs: dict, start_time: float | None = None) -> None:
        mode = "eval" if any(k.startswith("eval_") for k in logs) else "train"
        sums = self._sums[mode]
        if self.args.world_size > 1:
            sums = self.accelerator.gather(sums.to(self.args.device).reshape(1, 3)).sum(0).cpu()
        prefix = "eval_" if mode == "eval" else ""
        if sums[2] > 0:
            ce, kd = float(sums[0] / sums[2]), float(sums[1] / sums[2])
            logs[f"{prefix}ce"] = ce
            if self.w_kd > 0:
                logs[f"{prefix}kd"] = kd
            if mode == "eval":  # exact per-token mean over the eval set, not Trainer's mean of batch means
                logs["eval_loss"] = self.w_ce * ce + self.w_kd * kd
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
