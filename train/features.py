"""Feature and layer-wise distillation: an online teacher, run in the training process under no_grad on the same
batch, supervises the student's intermediate hidden states.

A layer map pairs student layers with teacher layers (for a student cut from the teacher, each kept layer with the
teacher layer it came from, read from student_init.json; otherwise train.feature_layers). Each pair's outputs are
compared at the answer positions with train.feature_loss (distill/losses.py: MSE or 1 - cosine), after a learned
linear map when the widths differ. The map trains with the student, is kept in its checkpoints (so a resumed run
has it), and is saved apart from the exported model (feature_projection.safetensors), which stays a plain model.
Only hidden states are compared: no [batch, length, vocabulary] tensor is built.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from distill.errors import DistillError
from distill.losses import FEATURE_LOSSES

PROJECTION = "feature_projection"  # the student's submodule holding the learned maps while it trains


def layer_map(student_dir: Path, configured: dict[int, int] | None) -> dict[int, int]:
    """train.feature_layers, else the teacher layer each layer of a student cut from the teacher came from."""
    if configured:
        return dict(configured)
    record = Path(student_dir) / "student_init.json"
    if not record.is_file():
        raise DistillError("train.feature_layers: required when the student was not cut from the teacher "
                           "(no student_init.json to read the kept layers from), e.g. train.feature_layers='{0: 3}'")
    return dict(enumerate(json.loads(record.read_text())["kept_layers"]))


def _capture(layers, indices: list[int], store: dict):
    def hook(i):
        def save(module, args, output):
            store[i] = output[0] if isinstance(output, tuple) else output
        return save

    return [layers[i].register_forward_hook(hook(i)) for i in indices]


class FeatureDistiller:
    def __init__(self, teacher, student, mapping: dict[int, int], loss: str, allow_projection: bool):
        self.teacher, self.loss, self.mapping = teacher.eval().requires_grad_(False), FEATURE_LOSSES[loss], mapping
        n_s, n_t = len(student.get_decoder().layers), len(teacher.get_decoder().layers)
        for s, t in mapping.items():
            if not 0 <= s < n_s:
                raise DistillError(f"train.feature_layers: student layer {s} does not exist (the student has {n_s})")
            if not 0 <= t < n_t:
                raise DistillError(f"train.feature_layers: teacher layer {t} does not exist (the teacher has {n_t})")
        h_s = student.config.get_text_config().hidden_size
        h_t = teacher.config.get_text_config().hidden_size
        if h_s != h_t and not allow_projection:
            raise DistillError(f"train.feature_projection: the student's hidden size {h_s} differs from the "
                               f"teacher's {h_t}; allow a learned projection or map layers of equal width")
        if h_s != h_t:  # a submodule of the student: the optimizer trains it and checkpoints keep it
            student.add_module(PROJECTION, torch.nn.ModuleDict(
                {str(s): torch.nn.Linear(h_s, h_t, bias=False) for s in mapping}))

    def terms(self, lm, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(the student's final hidden states, the feature loss summed over answer positions, mean over pairs)."""
        mine, theirs = {}, {}
        hooks = _capture(lm.get_decoder().layers, list(self.mapping), mine)
        try:
            hidden = lm.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                      use_cache=False).last_hidden_state
        finally:
            for h in hooks:
                h.remove()
        teacher_decoder = self.teacher.get_decoder()
        if next(self.teacher.parameters()).device != hidden.device:
            self.teacher.to(hidden.device)
        hooks = _capture(teacher_decoder.layers, sorted(set(self.mapping.values())), theirs)
        try:
            with torch.no_grad():
                teacher_decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False)
        finally:
            for h in hooks:
                h.remove()
        sel = batch["response_mask"][:, 1:]  # the positions whose next token is an answer token
        projection = getattr(lm, PROJECTION, None)
        total = hidden.new_zeros((), dtype=torch.float32)
        for s, t in self.mapping.items():
            student_states = mine[s][:, :-1][sel]
            if projection is not None:
                student_states = projection[str(s)](student_states)
            total = total + self.loss(student_states, theirs[t][:, :-1][sel]).sum()
        return hidden, total / len(self.mapping)


def detach_projection(lm, out: Path) -> None:
    """Save the learned maps beside the exported model and take them off it, so the folder is a plain model."""
    projection = getattr(lm, PROJECTION, None)
    if projection is None:
        return
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in projection.state_dict().items()},
              str(Path(out) / f"{PROJECTION}.safetensors"))
    delattr(lm, PROJECTION)
