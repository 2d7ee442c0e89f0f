"""Layer selection (train/prune.py): every shortcut the runner takes equals cutting the layers out for real and running
the model's own forward pass, and each method picks what its definition says (checked by brute force)."""

from __future__ import annotations

import copy
import itertools
import json

import pytest
import torch

from conftest import build_tiny_llama
from distill.batches import DistillCollator
from distill.errors import DistillError
from distill.train.prune import LayerRunner, contiguous_removal, drop_one_scores, greedy_removal, select_layers
from distill.train.student import cut_layers, make_student_from_teacher
from shard_factory import write_shard_set

N_LAYERS = 5


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("prune") / "teacher", layers=N_LAYERS, hidden=64, seed=4)


@pytest.fixture(scope="module")
def model(model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    rows = []
    for n_prompt, n_resp in ((5, 7), (3, 9), (8, 4)):
        ids = torch.randint(10, 2000, (n_prompt + n_resp,), generator=g).tolist()
        rows.append({"input_ids": ids, "response_start": n_prompt, "topk_ids": [[1]] * n_resp,
                     "topk_probs": [[0.5]] * n_resp})
    return DistillCollator(pad_token_id=0)(rows)


def real_log_probs(model, keep, batch):
    """Cut the layers out of a copy and run its own forward pass: the reference for every runner shortcut."""
    cut = copy.deepcopy(model)
    cut_layers(cut, keep)
    with torch.no_grad():
        logits = cut(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    return torch.log_softmax(logits[:, :-1][batch["response_mask"][:, 1:]].float(), dim=-1)


def kl(log_p, log_q):
    return float((log_p.exp() * (log_p - log_q)).sum(-1).mean())


def test_runner_with_every_layer_is_the_models_own_forward(model, batch):
    runner = LayerRunner(model, batch)
    torch.testing.assert_close(runner.full_log_probs, real_log_probs(model, list(range(N_LAYERS)), batch),
                               atol=1e-5, rtol=1e-5)


def test_drop_one_scores_equal_cutting_each_layer(model, batch):
    runner = LayerRunner(model, batch)
    full = real_log_probs(model, list(range(N_LAYERS)), batch)
    want = [kl(full, real_log_probs(model, [j for j in range(N_LAYERS) if j != i], batch)) for i in range(N_LAYERS)]
    assert drop_one_scores(runner) == pytest.approx(want, rel=1e-4, abs=1e-6)


def test_greedy_removal_equals_brute_force_greedy(model, batch):
    runner = LayerRunner(model, batch)
    full = real_log_probs(model, list(range(N_LAYERS)), batch)
    keep, trace = greedy_removal(runner, 2)
    want = list(range(N_LAYERS))
    for step in trace:
        costs = {i: kl(full, real_log_probs(model, [j for j in want if j != i], batch)) for i in want}
        best = min(costs, key=costs.get)
        assert step["removed"] == best and step["kl"] == pytest.approx(costs[best], rel=1e-4, abs=1e-6)
        want.remove(best)
    assert keep == want and len(keep) == 2


def test_contiguous_removal_equals_brute_force(model, batch):
    runner = LayerRunner(model, batch)
    full = real_log_probs(model, list(range(N_LAYERS)), batch)
    keep, costs = contiguous_removal(runner, 3)
    want = {start: kl(full, real_log_probs(model, [j for j in range(N_LAYERS) if not start <= j < start + 2], batch))
            for start in range(1, N_LAYERS - 2)}
    assert costs == pytest.approx(list(want.values()), rel=1e-4, abs=1e-6)
    best = min(want, key=want.get)
    assert keep == [j for j in range(N_LAYERS) if not best <= j < best + 2]


def test_block_influence_is_one_minus_cosine_of_each_layers_input_and_output(model, batch):
    with torch.no_grad():
        states = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False,
                       output_hidden_states=True).hidden_states
    sel = batch["response_mask"][:, 1:]
    runner = LayerRunner(model, batch)
    for i, score in enumerate(runner.block_influence()):
        a = states[i][:, :-1][sel]
        # The last entry of hidden_states is after the final norm: rebuild the last layer's raw output.
        b = states[i + 1][:, :-1][sel] if i + 1 < N_LAYERS else runner.run([i])[:, :-1][sel]
        want = float(1 - torch.nn.functional.cosine_similarity(a, b, dim=-1).mean())
        assert score == pytest.approx(want, abs=1e-5)


@pytest.mark.parametrize("method", ["block_influence", "drop_one_kl", "greedy_kl", "contiguous"])
def test_each_method_records_its_choice_and_scores_it(method, model, batch):
    keep, record = select_layers(method, model, batch, 3)
    assert len(keep) == 3 and keep == sorted(set(keep)) and record["method"] == method
    assert record["calibration_kl"] == pytest.approx(kl(real_log_probs(model, list(range(N_LAYERS)), batch),
                                                         real_log_probs(model, keep, batch)), rel=1e-4, abs=1e-6)
    if method == "greedy_kl":  # greedy never does worse than the best single choice at its first step
        all_costs = [kl(real_log_probs(model, list(range(N_LAYERS)), batch),
                        real_log_probs(model, list(k), batch)) for k in itertools.combinations(range(N_LAYERS), 3)]
        assert record["calibration_kl"] >= min(all_costs) - 1e-6


def test_bad_layer_counts_are_refused_in_one_line(model, batch):
    with pytest.raises(DistillError, match="student.from_teacher_layers=9: the teacher has 5 layers"):
        select_layers("greedy_kl", model, batch, 9)
    with pytest.raises(DistillError, match="contiguous keeps the first and last layers"):
        select_layers("contiguous", model, batch, 1)


def test_student_folder_records_the_selection_and_refuses_other_settings(model_dir, tmp_path):
    shards = tmp_path / "shards"
    write_shard_set(model_dir, shards, k=4, max_new_tokens=6)
    out = make_student_from_teacher(model_dir, 3, tmp_path / "student_init", "greedy_kl", shards, 4, 256)
    record = json.loads((out / "student_init.json").read_text())
    assert record["method"] == "greedy_kl" and len(record["kept_layers"]) == 3
    assert record["selection"]["calibration_tokens"] > 0 and len(record["selection"]["removal_order"]) == 2
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 3
    with pytest.raises(DistillError, match="holds a student made with other settings"):
        make_student_from_teacher(model_dir, 3, tmp_path / "student_init", "block_influence", shards, 4, 256)


def test_calibration_skips_given_answers_unless_there_are_no_others(model_dir, tmp_path):
    """The layers are scored on the teacher's own answers: references (records 0 and 2 here) are passed over, and used
    when the shards hold nothing else."""
    from distill import shards as sh
    from distill.batches import example_row
    from distill.train.student import calibration_batch

    def batch_of(folder, ids):
        rows = [example_row(ex, 256, "truncate") for ex in sh.read_examples(folder) if ex.id in ids]
        return DistillCollator(pad_token_id=0)(rows)["input_ids"]

    write_shard_set(model_dir, tmp_path / "mixed", k=4, max_new_tokens=6, given={0, 2})
    torch.testing.assert_close(calibration_batch(tmp_path / "mixed", 3, 256, 0)["input_ids"],
                               batch_of(tmp_path / "mixed", {"p001/0", "p003/0", "p004/0"}))
    write_shard_set(model_dir, tmp_path / "given", prompts=["a", "b", "c"], k=4, max_new_tokens=6, given={0, 1, 2})
    torch.testing.assert_close(calibration_batch(tmp_path / "given", 2, 256, 0)["input_ids"],
                               batch_of(tmp_path / "given", {"p000/0", "p001/0"}))
