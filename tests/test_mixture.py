"""Multi-task mixtures (train.mixture, train.upsample): each task's sampling weight, upsampling factor and loss
weights reach the rows the trainer draws and the loss it computes; the run's summary records the mixture."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from distill.batches import DistillCollator
from distill.config import load_config
from distill.errors import DistillError
from shard_factory import PROMPTS, write_shard_set

TASKS = ["math" if i % 3 == 0 else "chat" for i in range(len(PROMPTS))]  # 4 math, 8 chat


@pytest.fixture(scope="module")
def shards(tiny_teacher, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mixture") / "train"
    write_shard_set(tiny_teacher, out, tasks=TASKS)
    return out


def rows_of(shards: Path):
    from distill.train.data import build_dataset

    return build_dataset(shards, 256, "truncate", shards.parent / "cache")[0]


def mixture(text: str):
    return load_config(None, [f"train.mixture={text}"]).train.mixture


def test_sampling_weights_share_each_tasks_weight_among_its_rows(shards):
    from distill.train.data import apply_mixture, sampling_weights

    ds = rows_of(shards)
    mix = mixture("{math: {weight: 3}, chat: {weight: 1}}")
    ds, record = apply_mixture(ds, mix, 0.5, 0.5)
    weights = sampling_weights(ds, mix)
    by_task = Counter()
    for task, w in zip(ds["task"], weights):
        by_task[task] += w
    assert by_task == pytest.approx({"math": 3.0, "chat": 1.0})  # a task's rows together carry its weight
    assert record["math"]["share"] == 0.75 and record["chat"]["records"] == 8
    sampler = torch.utils.data.WeightedRandomSampler(weights, num_samples=4000, generator=torch.Generator()
                                                     .manual_seed(0))
    drawn = Counter(ds["task"][i] for i in sampler)
    assert drawn["math"] / 4000 == pytest.approx(0.75, abs=0.03)


def test_a_task_left_out_is_never_drawn_and_an_unknown_task_is_refused(shards):
    from distill.train.data import apply_mixture, sampling_weights

    ds, record = apply_mixture(rows_of(shards), mixture("{math: {weight: 1}}"), 0.5, 0.5)
    weights = sampling_weights(ds, mixture("{math: {weight: 1}}"))
    assert all((w == 0) == (t == "chat") for t, w in zip(ds["task"], weights)) and record["chat"]["share"] == 0.0
    with pytest.raises(DistillError, match=r"train.mixture.maths: no task of that name in the training shards "
                                           r"\(tasks: chat, math\)"):
        apply_mixture(rows_of(shards), mixture("{maths: {weight: 1}}"), 0.5, 0.5)


def test_upsampling_multiplies_a_tasks_draws_with_or_without_a_mixture(shards):
    """4 math rows and 8 chat rows: upsampling math 4x draws it 16 : 8 without a mixture, and multiplies a mixture's
    1 : 1 to 4 : 1. A task the shards do not hold changes nothing (a config written for another corpus)."""
    from distill.train.data import apply_mixture, sampling_weights

    for mix, want in (("{}", 16 / 24), ("{math: {weight: 1}, chat: {weight: 1}}", 4 / 5)):
        upsample = load_config(None, ["train.upsample={math: 4, poetry: 3}"]).train.upsample
        ds, record = apply_mixture(rows_of(shards), mixture(mix), 0.5, 0.5, upsample)
        weights = sampling_weights(ds, mixture(mix), upsample)
        math = sum(w for t, w in zip(ds["task"], weights) if t == "math")
        assert math / sum(weights) == pytest.approx(want) and record["math"]["share"] == pytest.approx(want)
        assert record["math"]["upsample"] == 4.0 and record["chat"]["upsample"] == 1.0 and "poetry" not in record
    for upsample in ({}, {"poetry": 3.0}):  # nothing to upsample: every row once per epoch, as without the key
        assert sampling_weights(rows_of(shards), {}, upsample) is None
        assert apply_mixture(rows_of(shards), {}, 0.5, 0.5, upsample)[1] == {"chat": {"records": 8},
                                                                            "math": {"records": 4}}


def test_a_tasks_own_loss_weights_scale_its_rows_loss_terms(shards, tiny_teacher):
    """ce_weight 0 on the chat rows: their CE drops out; kd_weight 2 on math doubles its KD."""
    from transformers import AutoModelForCausalLM

    from distill.losses import HELDOUT_KL
    from distill.scoring import Objective, batch_loss_terms
    from distill.train.data import apply_mixture

    ds, _ = apply_mixture(rows_of(shards), mixture("{math: {weight: 1, w_kd: 2.0}, chat: {weight: 1, w_ce: 0.0}}"),
                          0.5, 0.5)
    rows = list(ds)
    model = AutoModelForCausalLM.from_pretrained(tiny_teacher, dtype=torch.float32).eval()
    collate = DistillCollator(pad_token_id=0)
    objective = Objective(HELDOUT_KL, True, 1024)
    with torch.no_grad():
        mixed = batch_loss_terms(model, collate(rows), objective)
        per_row = [batch_loss_terms(model, collate([{**r, "ce_weight": 1.0, "kd_weight": 1.0}]), objective)
                   for r in rows]
    want_ce = sum(t["ce"] * r["ce_weight"] for t, r in zip(per_row, rows))
    want_kd = sum(t["kd"] * r["kd_weight"] for t, r in zip(per_row, rows))
    assert {r["task"]: (r["ce_weight"], r["kd_weight"]) for r in rows} == {"math": (0.5, 2.0), "chat": (0.0, 0.5)}
    torch.testing.assert_close(mixed["ce"], want_ce, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(mixed["kd"], want_kd, rtol=1e-4, atol=1e-4)


def test_references_get_their_own_ce_weight(tiny_teacher, tmp_path):
    """train.w_ce_references: the rows of given answers (records 0 and 3, both math) get that CE weight, every other
    row its task's; KD weights stay; the record counts each task's references. Unset: the rows are as they were."""
    from distill.train.data import apply_mixture, rows_carry_loss_weights

    write_shard_set(tiny_teacher, tmp_path / "train", tasks=TASKS, given={0, 3})
    rows = rows_of(tmp_path / "train")
    ds, record = apply_mixture(rows, {}, 0.0, 1.0, None, 2.0)
    assert sorted((r["id"], r["ce_weight"], r["kd_weight"]) for r in ds if r["reference"]) == [
        ("p000/0", 2.0, 1.0), ("p003/0", 2.0, 1.0)]
    assert all((r["ce_weight"], r["kd_weight"]) == (0.0, 1.0) for r in ds if not r["reference"])
    assert record == {"chat": {"records": 8}, "math": {"records": 4, "references": 2}}
    ds, _ = apply_mixture(rows, mixture("{math: {weight: 1, w_ce: 0.25}, chat: {weight: 1}}"), 0.5, 0.5, None, 2.0)
    assert Counter((r["task"], r["reference"], r["ce_weight"]) for r in ds) == {
        ("math", 1, 2.0): 2, ("math", 0, 0.25): 2, ("chat", 0, 0.5): 8}
    assert [r["ce_weight"] for r in apply_mixture(rows, {}, 0.0, 1.0)[0]] == [1.0] * 12  # the trainer's w_ce applies
    config = load_config(None, ["train.w_ce_references=1"]).train
    assert rows_carry_loss_weights(config) and not rows_carry_loss_weights(load_config(None, []).train)


def test_a_mixed_run_trains_from_its_sampler_and_records_its_mixture(shards, tiny_teacher, tmp_path, monkeypatch,
                                                                     capsys):
    from distill.train import trainer as trainer_module
    from distill.train.run import run

    root = tmp_path / "run"
    shutil.copytree(shards, root / "shards" / "train")
    samplers = []
    real = trainer_module.DistillTrainer._get_train_sampler

    def spy(self, *args, **kwargs):
        samplers.append(real(self, *args, **kwargs))
        return samplers[-1]

    monkeypatch.setattr(trainer_module.DistillTrainer, "_get_train_sampler", spy)
    summary = run(load_config(None, [f"run.dir={root}", f"teacher.model={tiny_teacher}", "student.from_teacher_layers=1",
                                     "train.max_steps=2", "train.batch_size=4", "train.eval_fraction=0",
                                     "train.report_to=none", "train.mixture={math: {weight: 1}}",
                                     "train.upsample={poetry: 2}"]))
    assert "train.upsample.poetry: no task of that name in the training shards; not used" in capsys.readouterr().out
    assert summary["mixture"]["math"]["share"] == 1.0 and summary["mixture"]["chat"]["weight"] == 0.0
    assert json.loads((root / "student" / "train_summary.json").read_text())["mixture"] == summary["mixture"]
    assert isinstance(samplers[0], torch.utils.data.WeightedRandomSampler)
    assert summary["steps"] == 2


def test_onpolicy_rounds_draw_and_weigh_as_train_does(tiny_teacher, tmp_path):
    """On-policy rounds follow the mixture: a round's prompts and the stored answers it mixes in are drawn by the
    task weights (a task left out never, upsampling in proportion), the stored answers keep their per-task and
    reference CE weights, and the trainer then takes each row's weights as they are. An unknown task is refused."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from distill.onpolicy.rounds import OfflineRows, prompt_draw_weights, round_prompts
    from distill.onpolicy.run import round_trainer
    from distill.prompts import Prompt

    prompts = [Prompt(f"p{i:03d}", [{"role": "user", "content": text}], meta={"task": task})
               for i, (text, task) in enumerate(zip(PROMPTS, TASKS))]
    cfg = load_config(None, ["train.mixture={math: {weight: 1, w_ce: 0.25}, chat: {weight: 0}}",
                             "train.w_ce_references=2", "train.report_to=none"])
    weights = prompt_draw_weights(prompts, cfg)
    for r in range(5):
        drawn = round_prompts(prompts, r, 3, weights, seed=0)
        assert len({p.id for p in drawn}) == 3 and {p.task for p in drawn} == {"math"}
    assert round_prompts(prompts, 0, 6, weights) == round_prompts(prompts, 0, 6, weights)  # seeded; 4 math only
    assert len(round_prompts(prompts, 0, 6, weights)) == 4

    upsampled = prompt_draw_weights(prompts, load_config(None, ["train.upsample={math: 3}"]))
    firsts = Counter(round_prompts(prompts, r, 1, upsampled)[0].task for r in range(3000))
    assert firsts["math"] / 3000 == pytest.approx(4 * 3 / (4 * 3 + 8), abs=0.03)  # weight-proportional draws
    plain = prompt_draw_weights(prompts, load_config(None, []))
    assert plain is None and [p.id for p in round_prompts(prompts, 1, 5, plain)] == [
        "p005", "p006", "p007", "p008", "p009"]  # no mixture: the next prompts in turn, as before
    with pytest.raises(DistillError, match=r"^train\.mixture\.poetry: no task of that name in the training prompts"):
        prompt_draw_weights(prompts, load_config(None, ["train.mixture={poetry: {weight: 1}}"]))

    write_shard_set(tiny_teacher, tmp_path / "train", tasks=TASKS, given={0, 3})
    offline = OfflineRows.load(tmp_path / "train", cfg)
    assert Counter((r["task"], r["reference"], r["ce_weight"]) for r in offline.rows) == {
        ("math", 1, 2.0): 2, ("math", 0, 0.25): 2, ("chat", 0, 0.5): 8}
    assert offline.mixture["math"]["references"] == 2 and offline.mixture["chat"]["share"] == 0.0
    assert {r["task"] for r in offline.draw(10, seed=1)} == {"math"}
    with pytest.raises(DistillError, match=r"^train\.mixture\.poetry: no task of that name in the training shards"):
        OfflineRows.load(tmp_path / "train", load_config(None, ["train.mixture={poetry: {weight: 1}}"]))

    model = AutoModelForCausalLM.from_pretrained(tiny_teacher, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher)
    trainer = round_trainer(cfg, tmp_path / "ckpt", model, tokenizer, offline.rows, 1)
    assert (trainer.weights["ce"], trainer.weights["kd"]) == (1.0, 1.0)  # the rows carry w_ce and w_kd
    trainer = round_trainer(load_config(None, ["train.report_to=none"]), tmp_path / "ckpt2", model, tokenizer,
                            offline.rows, 1)
    assert (trainer.weights["ce"], trainer.weights["kd"]) == (0.5, 0.5)
