"""Feature / layer-wise distillation (train/features.py): the loss the trainer adds equals a dense recomputation
from the models' own hidden states, it trains, and the learned projection never reaches the exported model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import build_tiny_llama
from distill.batches import DistillCollator
from distill.config import load_config
from distill.losses import feature_cosine, feature_mse
from distill.train.features import PROJECTION, FeatureDistiller
from shard_factory import write_shard_set


@pytest.fixture(scope="module")
def shards(tiny_teacher, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("feature-shards") / "train"
    write_shard_set(tiny_teacher, out)
    return out


def load(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


def a_batch():
    rows = [{"input_ids": list(range(5, 17)), "response_start": 7, "topk_ids": [[1]] * 5, "topk_probs": [[0.5]] * 5},
            {"input_ids": list(range(30, 39)), "response_start": 4, "topk_ids": [[1]] * 5, "topk_probs": [[0.5]] * 5}]
    return DistillCollator(pad_token_id=0)(rows)


def layer_output(model, batch, layer: int) -> torch.Tensor:
    """A decoder layer's raw output on the batch, read with a hook on the model's own forward pass."""
    out = {}

    def keep(module, args, output):
        out["h"] = output[0] if isinstance(output, tuple) else output

    handle = model.model.layers[layer].register_forward_hook(keep)
    with torch.no_grad():
        model.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    handle.remove()
    return out["h"]


@pytest.mark.parametrize("loss", ["mse", "cosine"])
def test_feature_term_equals_a_dense_recomputation(tiny_teacher, tiny_student, loss):
    teacher, student = load(tiny_teacher), load(tiny_student)  # 2 layers of width 64; 1 layer of width 32
    distiller = FeatureDistiller(teacher, student, {0: 1}, loss, allow_projection=True)
    batch = a_batch()
    hidden, total = distiller.terms(student, batch)
    sel = batch["response_mask"][:, 1:]  # positions whose next token is an answer token
    with torch.no_grad():
        projected = getattr(student, PROJECTION)["0"](layer_output(student, batch, 0)[:, :-1][sel])
        want = {"mse": feature_mse, "cosine": feature_cosine}[loss](projected,
                                                                  layer_output(teacher, batch, 1)[:, :-1][sel])
        final = student.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    torch.testing.assert_close(total.detach(), want.sum(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(hidden.detach(), final, rtol=1e-4, atol=1e-5)
    assert sel.sum() == 10


def run_train(root: Path, shards: Path, teacher: Path, *overrides: str):
    from distill.train.run import run

    if not (root / "shards" / "train").exists():
        shutil.copytree(shards, root / "shards" / "train")
    return run(load_config(None, [f"run.dir={root}", f"teacher.model={teacher}", "train.max_steps=3",
                                  "train.batch_size=4", "train.logging_steps=1", "train.eval_fraction=0",
                                  "train.report_to=none", "train.lr=1e-3", *overrides]))


def test_a_student_cut_from_the_teacher_maps_each_layer_to_the_one_it_came_from(tiny_teacher, shards, tmp_path):
    """The cut student's layer 0 is the teacher's layer 0: their outputs agree exactly before the first update."""
    summary = run_train(tmp_path / "run", shards, tiny_teacher, "student.from_teacher_layers=1", "train.w_feature=1.0",
                        "train.feature_loss=mse")
    log = json.loads((tmp_path / "run" / "student" / "train_log.json").read_text())
    features = [h["feature"] for h in log if "feature" in h]
    assert len(features) == 3 and features[0] == pytest.approx(0.0, abs=1e-6) and summary["steps"] == 3
    assert not (tmp_path / "run" / "student" / f"{PROJECTION}.safetensors").exists()  # equal widths: no map


def test_training_on_the_feature_loss_alone_lowers_it(tiny_teacher, tiny_student, shards, tmp_path):
    run_train(tmp_path / "run", shards, tiny_teacher, f"student.model={tiny_student}",
              "student.from_teacher_layers=null", "train.w_ce=0", "train.w_kd=0", "train.w_feature=1.0",
              "train.feature_layers={0: 1}", "train.max_steps=8", "train.lr=3e-3")
    log = json.loads((tmp_path / "run" / "student" / "train_log.json").read_text())
    features = [h["feature"] for h in log if "feature" in h]
    assert features[-1] < features[0] - 0.05, features


def test_different_widths_learn_a_projection_kept_apart_from_the_exported_model(tiny_teacher, tiny_student, shards,
                                                                               tmp_path):
    run_train(tmp_path / "run", shards, tiny_teacher, f"student.model={tiny_student}",
              "student.from_teacher_layers=null", "train.w_feature=0.5", "train.feature_layers={0: 1}",
              "train.save_steps=1", "train.keep_checkpoints=true")
    out = tmp_path / "run" / "student"
    assert not any(k.startswith(PROJECTION) for k in load_file(out / "model.safetensors"))
    projection = load_file(out / f"{PROJECTION}.safetensors")
    assert list(projection) == ["0.weight"] and projection["0.weight"].shape == (64, 32)
    checkpoint = load_file(out / "checkpoints" / "checkpoint-3" / "model.safetensors")
    assert f"{PROJECTION}.0.weight" in checkpoint  # a resumed run gets its map back
    load(out)  # the exported folder is a plain model
