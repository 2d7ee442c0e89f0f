"""The train stage on tiny models: pruning, the recipe end to end, loss scale, DDP, resume, every one-line error,
teacher-forced scoring, and vLLM loading the trained student."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from distill import shards as sh
from distill.config import load_config
from distill.errors import DistillError
from shard_factory import write_shard_set

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable


# ---- helpers ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shards(tiny_teacher, tmp_path_factory) -> Path:
    """12 records (compact codec, top-8, up to 16 response tokens) from the tiny teacher."""
    out = tmp_path_factory.mktemp("shards") / "train"
    write_shard_set(tiny_teacher, out)
    return out


BASE = ["train.max_steps=2", "train.batch_size=4", "train.logging_steps=1", "train.save_steps=100",
        "train.eval_steps=100", "train.eval_fraction=0", "train.report_to=none", "train.lr=1e-3"]


def make_cfg(root: Path, shards: Path, teacher: Path, *overrides: str):
    """A run folder holding a copy of the shards; the student is the tiny teacher cut to 1 layer (vLLM-loadable)."""
    if not (root / "shards" / "train").exists():
        shutil.copytree(shards, root / "shards" / "train")
    return load_config(None, [f"run.dir={root}", f"teacher.model={teacher}", "student.from_teacher_layers=1",
                              *BASE, *overrides])


def run(cfg):
    from distill.train.run import run as run_train

    return run_train(cfg)


def log_of(root: Path, name: str = "student") -> list[dict]:
    return json.loads((root / name / "train_log.json").read_text())


def losses_by_step(root: Path) -> dict[int, dict]:
    return {h["step"]: h for h in log_of(root) if "loss" in h}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- pruning --------------------------------------------------------------------------------------------------


def test_kept_layers_are_evenly_spaced_with_first_and_last():
    from distill.train.prune import even_layers as kept_layers

    assert kept_layers(2, 1) == [0]
    assert kept_layers(4, 2) == [0, 3]
    assert kept_layers(30, 10) == [0, 3, 6, 10, 13, 16, 19, 23, 26, 29]
    with pytest.raises(DistillError, match="has 4 layers"):
        kept_layers(4, 5)


@pytest.mark.parametrize("n_total,n_keep", [(2, 1), (4, 2)])
def test_pruned_student_copies_the_teachers_weights(tmp_path, n_total, n_keep):
    from conftest import build_tiny_llama
    from distill.train.prune import even_layers as kept_layers
    from distill.train.student import make_student_from_teacher

    teacher = build_tiny_llama(tmp_path / "teacher", layers=n_total, hidden=64, seed=3)
    out = make_student_from_teacher(teacher, n_keep, tmp_path / "student")
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == n_keep
    assert (out / "chat_template.jinja").is_file() and (out / "tokenizer.json").is_file()
    t, s = load_file(teacher / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(v.dtype == torch.float32 for v in s.values())
    for new, old in enumerate(kept_layers(n_total, n_keep)):
        layer_keys = [k for k in t if k.startswith(f"model.layers.{old}.")]
        assert layer_keys
        for k in layer_keys:
            assert torch.equal(s[k.replace(f"layers.{old}.", f"layers.{new}.")], t[k]), k
    for k in ("model.embed_tokens.weight", "model.norm.weight"):
        assert torch.equal(s[k], t[k])
    assert not any(k.startswith(f"model.layers.{n_keep}.") for k in s)
    # Idempotent: a complete folder is kept as it is.
    mtime = (out / "model.safetensors").stat().st_mtime_ns
    make_student_from_teacher(teacher, n_keep, tmp_path / "student")
    assert (out / "model.safetensors").stat().st_mtime_ns == mtime


def test_pruned_smollm2_has_10_layers_and_64m_parameters(default_teacher, tmp_path):
    from transformers import AutoModelForCausalLM

    from distill.train.student import make_student_from_teacher

    out = make_student_from_teacher(default_teacher, 10, tmp_path / "student_init")
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 10
    assert abs(sum(p.numel() for p in model.parameters()) - 63.7e6) < 0.1e6


# ---- the recipe end to end ----------------------------------------------------------------------------------------


def test_train_end_to_end_loss_decreases_and_outputs_are_complete(tmp_path, shards, tiny_teacher, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path / "run"
    cfg = make_cfg(root, shards, tiny_teacher, "train.max_steps=20", "train.lr=1e-2", "train.eval_fraction=0.2",
                   "train.eval_steps=10", "train.save_steps=10", "train.logging_steps=1", "train.lr_scheduler=constant")
    summary = run(cfg)
    out = root / "student"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja", "train_summary.json",
                 "train_log.json", "loss_curves.png"):
        assert (out / name).is_file(), name
    assert not (out / "training_args.bin").exists()
    assert not list((out / "checkpoints").glob("checkpoint-*"))  # a finished run drops them (train.keep_checkpoints)
    assert summary["steps"] == 20 and summary["eval_sequences"] == 3 and summary["train_sequences"] == 9
    assert summary["tokens"] > 0 and summary["tokens_per_s"] > 0
    assert summary["eval_loss"] is not None and summary["kd"] is not None
    steps = losses_by_step(root)
    first = sum(steps[s]["loss"] for s in (1, 2, 3)) / 3
    last = sum(steps[s]["loss"] for s in (18, 19, 20)) / 3
    assert last < 0.7 * first, (first, last)
    # Logged loss = w_ce * ce + w_kd * kd, per token.
    assert steps[20]["loss"] == pytest.approx(0.5 * steps[20]["ce"] + 0.5 * steps[20]["kd"], rel=1e-5)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("[train] student: 20 steps, ") and "tok/s, loss " in line and str(out) in line
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 1
    assert AutoTokenizer.from_pretrained(out).chat_template
    # Complete: a rerun says so and does nothing.
    assert run(cfg) == summary
    assert "already complete" in capsys.readouterr().out


@pytest.mark.parametrize("variant", [
    ["train.w_ce=0", "train.w_kd=1"],  # KD only
    ["train.w_ce=1", "train.w_kd=0"],  # CE only (SFT ablation): no KD computed or logged
    ["train.kd_loss=reverse_kl"],
    ["train.kd_loss=jsd"],
    ["train.kd_loss=skew_forward_kl"],
    ["train.kd_loss=skew_reverse_kl", "train.tail=renormalize", "train.kd_temperature=2"],
    ["train.grad_accum=2", "train.gradient_checkpointing=true", "train.chunk_rows=7"],
    ["train.w_unlikelihood=0.5", "train.chunk_rows=7"],
], ids=["kd_only", "ce_only", "reverse_kl", "jsd", "skew_fkl", "skew_rkl_renorm_t2", "accum_ckpt_chunks",
        "unlikelihood"])
def test_loss_variants_run(tmp_path, shards, tiny_teacher, variant):
    root = tmp_path / "run"
    summary = run(make_cfg(root, shards, tiny_teacher, "train.max_steps=1", *variant))
    assert summary["steps"] == 1 and summary["train_loss"] > 0
    step1 = losses_by_step(root)[1]
    t = load_config(None, variant).train
    assert ("ul" in step1) == (t.w_unlikelihood > 0) and step1.get("ul", 1) > 0  # logged when it counts
    if t.w_kd == 0:
        assert "kd" not in step1 and step1["loss"] == pytest.approx(step1["ce"], rel=1e-5)
    else:
        want = t.w_ce * step1["ce"] + t.w_kd * step1["kd"] + t.w_unlikelihood * step1.get("ul", 0.0)
        assert step1["loss"] == pytest.approx(want, rel=1e-5)


def test_lora_saves_adapter_and_merged_model(tmp_path, shards, tiny_teacher):
    from transformers import AutoModelForCausalLM

    root = tmp_path / "run"
    run(make_cfg(root, shards, tiny_teacher, "train.lora.enabled=true", "train.lora.r=4", "train.lr=1e-2"))
    out = root / "student"
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "adapter" / "adapter_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in k for k in merged.state_dict())
    init = load_file(root / "student_init" / "model.safetensors")
    after = load_file(out / "model.safetensors")
    key = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(init[key], after[key])  # the adapter was merged in
    assert torch.equal(init["model.layers.0.mlp.up_proj.weight"], after["model.layers.0.mlp.up_proj.weight"])


def test_lora_on_the_output_layer_is_refused(tmp_path, shards, tiny_teacher):
    cfg = make_cfg(tmp_path / "run", shards, tiny_teacher, "train.lora.enabled=true",
                   "train.lora.target_modules=[q_proj, lm_head]")
    assert one_line_error(cfg).startswith("train.lora.target_modules: LoRA on the output layer (lm_head) is not "
                                          "supported")


# ---- loss scale ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["train.w_unlikelihood=0.5"]], ids=["ce_kd", "ce_kd_ul"])
def test_trainer_loss_equals_evaluate_batch_loss(tmp_path, shards, tiny_teacher, extra):
    """lr 0, one batch holding the whole set: the logged step-1 loss is the independent evaluation of that batch.
    Tolerance 1e-6 relative: the trainer's batch holds the rows in sampler order, so float sums run in another order."""
    from transformers import AutoModelForCausalLM

    from distill.batches import DistillCollator
    from distill.train.data import build_dataset
    from distill.train.trainer import evaluate_batch_loss

    root = tmp_path / "run"
    cfg = make_cfg(root, shards, tiny_teacher, "train.lr=0", "train.max_steps=1", "train.batch_size=12", *extra)
    run(cfg)
    logged = losses_by_step(root)[1]["loss"]
    ds, _ = build_dataset(root / "shards" / "train", cfg.train.max_seq_len, "truncate", tmp_path / "cache")
    batch = DistillCollator(pad_token_id=2)(list(ds))
    model = AutoModelForCausalLM.from_pretrained(root / "student_init")
    assert logged == pytest.approx(evaluate_batch_loss(model, batch, cfg), rel=1e-6)


def test_own_answer_rows_add_sequence_level_unlikelihood_teacher_rows_token_level(shards, tiny_teacher):
    """One batch: a teacher answer and a student's own answer that loops. With unlikelihood on, ul is the teacher
    row's token-level term plus -log(1 - q(y)) at the own row's tokens that complete a repeated 4-gram."""
    from transformers import AutoModelForCausalLM

    from distill.batches import DistillCollator
    from distill.losses import HELDOUT_KL, OWN_ANSWER_KL, earlier_tokens, unlikelihood_per_position
    from distill.scoring import Objective, batch_loss_terms
    from distill.train.data import build_dataset

    ds, _ = build_dataset(shards, 256, "truncate", shards.parent / "cache")
    teacher_row, own = dict(ds[0]), dict(ds[1])
    start, n = own["response_start"], len(own["input_ids"]) - own["response_start"]
    loop = [own["input_ids"][start + i % 3] for i in range(n)]  # a, b, c, a, b, c, ...: 4-grams repeat from j = 6
    own.update(input_ids=own["input_ids"][:start] + loop, onpolicy=1)
    model = AutoModelForCausalLM.from_pretrained(tiny_teacher, dtype=torch.float32).eval()
    batch = DistillCollator(pad_token_id=0)([teacher_row, own])
    with torch.no_grad():
        terms = {ul: batch_loss_terms(model, batch, Objective(HELDOUT_KL, True, 1024, "reverse_kl", OWN_ANSWER_KL,
                                                              unlikelihood=ul)) for ul in (False, True)}
        log_q = [torch.log_softmax(model(torch.tensor([r["input_ids"]])).logits[0].float(), -1)
                 for r in (teacher_row, own)]
    t_start = teacher_row["response_start"]
    t_targets = torch.tensor(teacher_row["input_ids"][t_start:])
    want_teacher = unlikelihood_per_position(log_q[0][t_start - 1:-1], *earlier_tokens(
        t_targets, torch.zeros_like(t_targets))).sum()
    q_own = log_q[1][start - 1:-1].exp()[torch.arange(n), torch.tensor(loop)]
    want_own = -torch.log1p(-q_own[6:]).sum()
    assert terms[False]["ul"] == 0 and n > 6
    torch.testing.assert_close(terms[True]["ul"], want_teacher + want_own, rtol=1e-4, atol=1e-4)
    for k in ("ce", "kd", "on"):
        torch.testing.assert_close(terms[True][k], terms[False][k])


def test_grad_accumulation_keeps_the_per_token_scale(tmp_path, shards, tiny_teacher):
    """batch 4 x accum 1 vs batch 2 x accum 2 over the same 4 sequences: same step-1 loss and gradient norm
    (1e-5 relative), same weights after the step (1e-5 absolute, lr 1e-3)."""
    a, b = tmp_path / "a", tmp_path / "b"
    run(make_cfg(a, shards, tiny_teacher, "train.max_steps=1", "train.batch_size=4", "train.grad_accum=1"))
    run(make_cfg(b, shards, tiny_teacher, "train.max_steps=1", "train.batch_size=2", "train.grad_accum=2"))
    la, lb = losses_by_step(a)[1], losses_by_step(b)[1]
    assert la["loss"] == pytest.approx(lb["loss"], rel=1e-5)
    assert la["grad_norm"] == pytest.approx(lb["grad_norm"], rel=1e-5)
    wa, wb = load_file(a / "student" / "model.safetensors"), load_file(b / "student" / "model.safetensors")
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=1e-5)


def test_two_processes_match_one_with_the_same_global_batch(tmp_path, shards, tiny_teacher):
    """accelerate launch, 2 CPU processes (gloo) x batch 2 vs 1 process x batch 4, 5 steps at a constant lr.
    Tolerances: 1e-4 relative on the step-1 loss, 1e-3 relative on the step-5 loss."""
    common = ["train.max_steps=5", "train.lr_scheduler=constant", "train.lr=1e-3"]
    one, two = tmp_path / "one", tmp_path / "two"
    run(make_cfg(one, shards, tiny_teacher, *common, "train.batch_size=4"))
    make_cfg(two, shards, tiny_teacher)  # copies the shards
    config = tmp_path / "two.yaml"
    config.write_text(yaml.safe_dump({
        "run": {"dir": str(two)}, "teacher": {"model": str(tiny_teacher)}, "student": {"from_teacher_layers": 1},
        "train": {**{o.split("=")[0].split(".")[1]: yaml.safe_load(o.split("=")[1]) for o in BASE + common},
                  "batch_size": 2}}))
    cmd = [str(Path(PY).parent / "accelerate"), "launch", "--config_file",
           str(REPO / "configs/accelerate/ddp_cpu_2proc.yaml"), "--num_processes", "2",
           "--main_process_port", str(free_port()), "-m", "distill.train", str(config)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((two / "student" / "train_summary.json").read_text())
    assert summary["processes"] == 2
    s1, s2 = losses_by_step(one), losses_by_step(two)
    assert s2[1]["loss"] == pytest.approx(s1[1]["loss"], rel=1e-4)
    assert s2[1]["grad_norm"] == pytest.approx(s1[1]["grad_norm"], rel=1e-4)  # gradients were all-reduced
    assert s2[5]["loss"] == pytest.approx(s1[5]["loss"], rel=1e-3)
    assert s2[5]["tokens"] == s1[5]["tokens"]


# ---- resume -------------------------------------------------------------------------------------------------------


def test_interrupted_run_resumes_to_the_same_loss_skipping_a_half_written_checkpoint(tmp_path, shards, tiny_teacher,
                                                                                    monkeypatch, capsys):
    """6 steps, checkpoints every 2. Stop after step 5 (checkpoints 2 and 4), cut checkpoint-4's weights as a kill
    would, rerun: it skips checkpoint-4, resumes from checkpoint-2 and ends at the uninterrupted run's loss
    (1e-5 relative)."""
    from distill.train.run import Interrupted

    # Two kept checkpoints give the state a kill during checkpoint-4's save leaves behind (rotation comes after a save).
    common = ["train.max_steps=6", "train.save_steps=2", "train.save_total_limit=2", "train.lr=1e-2"]
    full, cut = tmp_path / "full", tmp_path / "cut"
    run(make_cfg(full, shards, tiny_teacher, *common))
    cfg = make_cfg(cut, shards, tiny_teacher, *common)
    monkeypatch.setenv("DISTILL_STOP_AFTER_STEP", "5")
    with pytest.raises(Interrupted, match=r"interrupted at step 5; rerun the same command to resume from .*checkpoint-4"):
        run(cfg)
    monkeypatch.delenv("DISTILL_STOP_AFTER_STEP")
    (cut / "student" / "checkpoints" / "checkpoint-4" / "model.safetensors").unlink()
    capsys.readouterr()
    summary = run(cfg)
    out = capsys.readouterr().out
    assert "checkpoint-4: incomplete checkpoint (no model weights" in out
    assert "resuming from" in out and summary["resumed_from"].endswith("checkpoint-2")
    assert losses_by_step(cut)[6]["loss"] == pytest.approx(losses_by_step(full)[6]["loss"], rel=1e-5)
    assert summary["tokens"] == json.loads((full / "student" / "train_summary.json").read_text())["tokens"]


def test_kill_after_the_last_checkpoint_resumes_without_a_step_past_the_end(tmp_path, shards, tiny_teacher, capsys):
    """A kill after the final checkpoint but before the model folder was written: the rerun saves that checkpoint's
    weights (the HF Trainer alone would train a 5th step of 4)."""
    from safetensors.torch import load_file

    root = tmp_path / "run"
    cfg = make_cfg(root, shards, tiny_teacher, "train.max_steps=4", "train.save_steps=2", "train.keep_checkpoints=true")
    first = run(cfg)
    assert sorted(p.name for p in (root / "student" / "checkpoints").glob("checkpoint-*")) == ["checkpoint-4"]
    out = root / "student"
    (out / "model.safetensors").unlink()
    (out / "train_summary.json").unlink()
    capsys.readouterr()
    summary = run(cfg)
    printed = capsys.readouterr().out
    assert "checkpoint-4 holds the last step (4): saving it" in printed and "no step left to take" in printed
    assert summary["steps"] == 4 and max(losses_by_step(root)) == 4 and summary["tokens"] == first["tokens"]
    assert summary["tokens_per_s"] is None  # no step in this run: no speed to report
    final, ckpt = load_file(out / "model.safetensors"), load_file(out / "checkpoints" / "checkpoint-4" / "model.safetensors")
    assert final.keys() == ckpt.keys() and all(final[k].equal(ckpt[k]) for k in final)


def test_changed_settings_are_refused_on_resume_and_on_a_finished_run(tmp_path, shards, tiny_teacher, monkeypatch,
                                                                      capsys):
    from distill.train.run import Interrupted

    root = tmp_path / "run"
    common = ["train.max_steps=4", "train.save_steps=1"]
    monkeypatch.setenv("DISTILL_STOP_AFTER_STEP", "2")
    with pytest.raises(Interrupted):
        run(make_cfg(root, shards, tiny_teacher, *common))
    monkeypatch.delenv("DISTILL_STOP_AFTER_STEP")
    ckpts = root / "student" / "checkpoints"
    message = one_line_error(make_cfg(root, shards, tiny_teacher, *common, "train.w_kd=0.2"))
    assert message == (f"{ckpts}: the checkpoints were trained with other settings (train.w_kd: 0.5 -> 0.2); "
                       "restore them to resume, or set train.resume=false to start over")
    assert (ckpts / "checkpoint-2").is_dir()  # refusing touches nothing

    # Starting over on purpose removes the old checkpoints first (a stale checkpoint-2 must not be resumed later).
    capsys.readouterr()
    summary = run(make_cfg(root, shards, tiny_teacher, *common, "train.w_kd=0.2", "train.resume=false"))
    assert "starting over (train.resume=false): removing the old checkpoints" in capsys.readouterr().out
    assert summary["steps"] == 4 and summary["resumed_from"] is None

    # Finished: settings that do not change the weights may differ; the others may not.
    assert run(make_cfg(root, shards, tiny_teacher, *common, "train.w_kd=0.2", "train.logging_steps=3")) == summary
    message = one_line_error(make_cfg(root, shards, tiny_teacher, *common, "train.w_kd=0.2", "train.lr=0.5"))
    assert message == (f"{root / 'student'} was trained with other settings (train.lr: 0.001 -> 0.5); set another "
                       "train.output_name, or delete train_summary.json there to train again")

    # A summary from before a setting existed lacks its key: at the setting's default that is no change, at any other
    # value it is one (train.upsample came after students that were trained drawing every row alike).
    summary_path = root / "student" / "train_summary.json"
    recorded = json.loads(summary_path.read_text())
    del recorded["settings"]["train.upsample"]
    summary_path.write_text(json.dumps(recorded))
    assert run(make_cfg(root, shards, tiny_teacher, *common, "train.w_kd=0.2"))["steps"] == 4
    message = one_line_error(make_cfg(root, shards, tiny_teacher, *common, "train.w_kd=0.2", "train.upsample={x: 2}"))
    assert '(train.upsample: {} -> {"x": 2.0})' in message


def test_cli_interrupt_exits_130_with_the_resume_line(tmp_path, shards, tiny_teacher):
    root = tmp_path / "run"
    make_cfg(root, shards, tiny_teacher)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"run": {"dir": str(root)}, "teacher": {"model": str(tiny_teacher)},
                                      "student": {"from_teacher_layers": 1}, "train": {"report_to": "none"}}))
    env = {**os.environ, "DISTILL_STOP_AFTER_STEP": "1"}
    proc = subprocess.run([PY, "-m", "distill.train", str(config), "train.max_steps=3", "train.save_steps=1"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 130, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"interrupted at step 1; rerun the same command to resume from {root / 'student/checkpoints/checkpoint-1'}")
    proc = subprocess.run([PY, "-m", "distill.train", str(config), "student.model=/no/such/student",
                           "student.from_teacher_layers=null"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == "error: student.model /no/such/student: no such model folder"


# ---- one-line errors ----------------------------------------------------------------------------------------------


def one_line_error(cfg) -> str:
    with pytest.raises(DistillError) as e:
        run(cfg)
    message = str(e.value)
    assert "\n" not in message
    return message


def _rewrite_manifest_entry(folder: Path, name: str) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    data = (folder / name).read_bytes()
    for entry in manifest["shards"]:
        if entry["file"] == name:
            entry["bytes"], entry["sha256"] = len(data), sh.sha256_bytes(data)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_error_shard_fails_its_checksum(tmp_path, shards, tiny_teacher):
    cfg = make_cfg(tmp_path / "run", shards, tiny_teacher)
    path = tmp_path / "run" / "shards" / "train" / "shard-00001.jsonl.zst"
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))
    assert one_line_error(cfg) == f"{path}: fails its sha256 checksum: the shard is corrupt"


def test_error_shard_cut_short(tmp_path, shards, tiny_teacher):
    cfg = make_cfg(tmp_path / "run", shards, tiny_teacher)
    path = tmp_path / "run" / "shards" / "train" / "shard-00002.jsonl.zst"
    path.write_bytes(path.read_bytes()[:-20])
    assert "the shard is cut short or changed" in one_line_error(cfg)


def test_error_empty_dataset(tmp_path, shards, tiny_teacher):
    message = one_line_error(make_cfg(tmp_path / "run", shards, tiny_teacher, "train.max_seq_len=8",
                                      "student.layer_selection=even"))
    assert message.endswith("no usable records (all 12 dropped: each prompt alone fills train.max_seq_len=8)")
    # Layer selection reads the same records first, and says the same thing.
    message = one_line_error(make_cfg(tmp_path / "run2", shards, tiny_teacher, "train.max_seq_len=8",
                                      "student.layer_selection=drop_one_kl"))
    assert message.endswith("no usable records to choose the student's layers with (each prompt alone fills "
                            "train.max_seq_len=8)")


def test_error_tokenizer_differs(tmp_path, shards, tiny_teacher):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    bpe.train_from_iterator(["the sky is blue because of scattering"] * 20, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", bos_token="<|im_start|>")
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    student = tmp_path / "other-student"
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=4, num_key_value_heads=2)).save_pretrained(student)
    tok.save_pretrained(student)
    cfg = make_cfg(tmp_path / "run", shards, tiny_teacher, f"student.model={student}", "student.from_teacher_layers=null")
    manifest = tmp_path / "run" / "shards" / "train" / "manifest.json"
    assert one_line_error(cfg) == (f"student tokenizer differs from the teacher's ({manifest}): vocab 49152 vs "
                                   f"{len(tok.get_vocab())} tokens; the shard token ids would be meaningless for this student")


def test_error_student_vocab_smaller_than_a_stored_id(tmp_path, shards, tiny_teacher):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    student = tmp_path / "small-vocab"
    LlamaForCausalLM(LlamaConfig(vocab_size=1000, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=4, num_key_value_heads=2)).save_pretrained(student)
    AutoTokenizer.from_pretrained(tiny_teacher).save_pretrained(student)
    cfg = make_cfg(tmp_path / "run", shards, tiny_teacher, f"student.model={student}", "student.from_teacher_layers=null")
    message = one_line_error(cfg)
    assert message.startswith("student output layer has 1000 rows but the shards (")
    assert "the student cannot score the teacher's tokens" in message


def test_too_long_fails_or_is_truncated_and_counted(tmp_path, shards, tiny_teacher):
    examples = list(sh.read_examples(shards))
    limit = min(len(e.prompt_token_ids) for e in examples) + 3
    longest_first = next(e for e in examples if len(e.prompt_token_ids) + len(e.response_token_ids) > limit)
    message = one_line_error(make_cfg(tmp_path / "fail", shards, tiny_teacher, f"train.max_seq_len={limit}",
                                      "train.too_long=fail"))
    assert message.startswith(f"record {longest_first.id}: ") and f"exceed train.max_seq_len={limit}" in message
    summary = run(make_cfg(tmp_path / "cut", shards, tiny_teacher, f"train.max_seq_len={limit}", "train.max_steps=1"))
    dropped = sum(len(e.prompt_token_ids) >= limit for e in examples)
    truncated = sum(len(e.prompt_token_ids) < limit < len(e.prompt_token_ids) + len(e.response_token_ids)
                    for e in examples)
    assert (summary["dropped"], summary["truncated"]) == (dropped, truncated) and truncated > 0


def test_error_nan_logprob_in_a_shard(tmp_path, tiny_teacher):
    folder = tmp_path / "run" / "shards" / "train"
    write_shard_set(tiny_teacher, folder, codec="plain", prompts=["What is 2 + 2?", "Name a colour."], shard_size=2)
    path = folder / "shard-00000.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    record["topk_logprobs"][0][0] = float("nan")
    lines[1] = json.dumps(record)  # allow_nan: writes a bare NaN, as a broken writer would
    path.write_text("\n".join(lines) + "\n")
    _rewrite_manifest_entry(folder, path.name)
    assert one_line_error(make_cfg(tmp_path / "run", folder, tiny_teacher)) == (
        f"{path}:2: NaN or infinite logprob in the teacher's top-k")


def test_error_loss_becomes_nan_names_the_step(tmp_path, shards, tiny_teacher, monkeypatch):
    from distill import scoring

    real = scoring.loss_sums
    calls = []

    def poisoned(*args, **kwargs):  # the third micro-batch's loss is NaN, as after a blow-up
        calls.append(1)
        ce, kd, ul = real(*args, **kwargs)
        return (ce * float("nan"), kd, ul) if len(calls) == 3 else (ce, kd, ul)

    monkeypatch.setattr(scoring, "loss_sums", poisoned)
    message = one_line_error(make_cfg(tmp_path / "run", shards, tiny_teacher, "train.max_steps=4"))
    assert message.startswith("loss became nan at step 3 ") and "training stopped" in message


def test_error_missing_student_path(tmp_path, shards, tiny_teacher):
    cfg = make_cfg(tmp_path / "run", shards, tiny_teacher, f"student.model={tmp_path}/nope",
                   "student.from_teacher_layers=null")
    assert one_line_error(cfg) == f"student.model {tmp_path}/nope: no such model folder"


def test_pickle_only_student_is_refused_unless_allowed(tmp_path, tiny_student):
    from distill.train.student import load_student

    student = tmp_path / "pickled"
    shutil.copytree(tiny_student, student)
    torch.save(load_file(student / "model.safetensors"), student / "pytorch_model.bin")
    (student / "model.safetensors").unlink()
    with pytest.raises(DistillError, match=r"only pickle weights \(\*\.bin\).*set student.allow_pickle=true"):
        load_student(student, load_config(None, []))
    model = load_student(student, load_config(None, ["student.allow_pickle=true"]))
    assert model.config.num_hidden_layers == 1


# ---- teacher-forced scoring (eval/ uses it) -------------------------------------------------------------------------


def test_evaluate_on_shards_scores_the_teacher_against_itself(shards, tiny_teacher, tiny_student):
    from distill.losses import HELDOUT_KL
    from distill.scoring import evaluate_on_shards

    examples = list(sh.read_examples(shards))
    rows = evaluate_on_shards(tiny_teacher, shards, HELDOUT_KL, max_seq_len=1024, chunk_rows=1024, batch_size=5)
    assert [r["id"] for r in rows] == [e.id for e in examples]
    for r, e in zip(rows, examples):
        assert r["tokens"] == len(e.response_token_ids)
        assert r["nll_sum"] == pytest.approx(-float(e.topk.sampled_logprobs.sum()), rel=1e-4, abs=1e-3)
        assert 0 <= r["kl_sum"] < 0.01 * r["tokens"]  # only the codec's quantisation separates them
        assert r["top1_agree"] == r["tokens"]
    other = evaluate_on_shards(tiny_student, shards, HELDOUT_KL, max_seq_len=1024, chunk_rows=1024)
    assert sum(r["kl_sum"] for r in other) > 1.0 * sum(r["tokens"] for r in other)


def test_full_vocab_reference_gives_the_same_numbers_when_it_is_the_model_scored(shards, tiny_teacher, tiny_student):
    """Eval scores the teacher with its reference copy (one forward pass): the same rows as two separate copies."""
    from distill.losses import HELDOUT_KL
    from distill.scoring import TeacherReference, evaluate_on_shards, load_scoring_model

    def score(model, reference):
        return evaluate_on_shards(model, shards, HELDOUT_KL, max_seq_len=1024, chunk_rows=7, batch_size=3,
                                  reference=reference)

    shared = TeacherReference(load_scoring_model(tiny_teacher))
    separate = TeacherReference(load_scoring_model(tiny_teacher))
    one_pass, two_copies = score(shared.lm, shared), score(tiny_teacher, separate)
    for a, b in zip(one_pass, two_copies, strict=True):
        assert a.keys() == b.keys()
        for key in ("kl_sum", "nll_sum", "kl_full_sum"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6)
        assert a["kl_full_sum"] == pytest.approx(0.0, abs=1e-6) and a["top1_agree"] == a["tokens"]
    student = score(tiny_student, shared)  # states remembered while scoring the teacher serve the next model
    fresh = score(tiny_student, TeacherReference(load_scoring_model(tiny_teacher)))
    assert [r["kl_full_sum"] for r in student] == pytest.approx([r["kl_full_sum"] for r in fresh], rel=1e-5)
    assert all(r["kl_full_sum"] >= r["kl_sum"] - 1e-4 for r in student)


# ---- vLLM serves the trained student ------------------------------------------------------------------------------


def test_vllm_loads_and_generates_with_the_trained_student(tmp_path):
    from conftest import build_tiny_llama

    # head_dim 32: vLLM's CPU attention has no kernel for the shared tiny models' head_dim 16.
    teacher = build_tiny_llama(tmp_path / "teacher", layers=2, hidden=128, seed=0)
    root = tmp_path / "run"
    write_shard_set(teacher, root / "shards" / "train", prompts=["Say hi.", "Count to three.", "Name a fruit."])
    run(make_cfg(root, root / "shards" / "train", teacher, "train.max_steps=2", "train.batch_size=2"))
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent(f"""
        import json
        from vllm import LLM, SamplingParams

        if __name__ == "__main__":
            llm = LLM(model={str(root / "student")!r}, dtype="float32", enforce_eager=True, max_model_len=512)
            out = llm.generate(["Hello, how are"], SamplingParams(max_tokens=8, temperature=0.0))
            print("RESULT " + json.dumps(out[0].outputs[0].token_ids))
    """))
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    proc = subprocess.run([PY, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ids = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))[7:])
    assert len(ids) == 8
