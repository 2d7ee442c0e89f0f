"""scripts/capacity.py: the arithmetic of the capacity plan, where the bottleneck moves, its command line, and that
docs/capacity.md's worked example is what the script computes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import capacity  # noqa: E402

BENCH = json.loads(capacity.GENERATE_BENCH.read_text())


def a_plan(**changes) -> capacity.Plan:
    fields = dict(prompts=1_000_000, n=2, answer_tokens=300, k=20, shard_size=500, gpu_tok_s=1000.0,
                  gpus_per_worker=1, storage_mb_s=100.0, bytes_per_token=50.0, manifest_mb_s=20.0, verify_mb_s=400.0)
    return capacity.Plan(**{**fields, **changes})


def test_totals_are_the_plain_products():
    t = capacity.totals(a_plan())
    assert t["teacher_tokens"] == 1_000_000 * 2 * 300 and t["records"] == 2_000_000 and t["shards"] == 2000
    assert t["disk_bytes"] == pytest.approx(6e8 * 50) and t["shard_bytes"] == pytest.approx(6e8 * 50 / 2000)
    assert t["gpu_hours"] == pytest.approx(6e8 / 1000 / 3600)
    assert t["manifest_bytes"] == 2000 * capacity.entry_bytes() and 150 < capacity.entry_bytes() < 400


def test_bytes_per_token_is_the_measured_figure_at_k20_and_grows_with_k():
    assert capacity.bytes_per_token(20, BENCH) == pytest.approx(BENCH["bytes_per_token"])
    payload = BENCH["topk_payload_bytes_per_token"]
    assert capacity.bytes_per_token(40, BENCH) - capacity.bytes_per_token(20, BENCH) == pytest.approx(payload)
    assert capacity.bytes_per_token(1, BENCH) > capacity.SAMPLED_LOGPROB_BYTES


def test_the_bottleneck_moves_from_the_engines_to_the_driver_or_the_storage():
    p = a_plan()
    t = capacity.totals(p)
    rows = {w: capacity.scaling(p, w, t) for w in (1, 10, 100, 1000, 10000)}
    assert rows[1]["bottleneck"] == "engines" and rows[10000]["bottleneck"] != "engines"
    assert rows[10]["write_mb_s"] == pytest.approx(10 * 1000 * 50 / 1e6)
    assert rows[10]["wall_hours"] == pytest.approx(t["gpu_hours"] / 10)
    hours = [rows[w]["wall_hours"] for w in sorted(rows)]
    assert hours == sorted(hours, reverse=True)  # more workers never make it slower, only stop helping
    c = capacity.crossover(p, t)
    for part in ("driver", "storage"):  # at the crossover that part's load is exactly 1
        at = capacity.scaling(p, 1, t)[f"{part}_load"] * c[f"{part}_workers"]
        assert at == pytest.approx(1.0)
    slow_storage = a_plan(storage_mb_s=1.0)
    assert capacity.scaling(slow_storage, 1000, capacity.totals(slow_storage))["bottleneck"] == "storage"
    small_shards = a_plan(shard_size=5, manifest_mb_s=1.0)
    assert capacity.scaling(small_shards, 1000, capacity.totals(small_shards))["bottleneck"] == "driver"


def test_measuring_the_driver_gives_positive_rates():
    manifest_mb_s, verify_mb_s = capacity.measure_driver(entries=500, shard_mb=1)
    assert manifest_mb_s > 0 and verify_mb_s > 0


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "capacity.py"), *args], capture_output=True,
                          text=True, timeout=120)


def test_command_line_text_and_json():
    fixed = ("--manifest-mb-s", "30", "--verify-mb-s", "300")
    text = run_script("--prompts", "1000", "--answer-tokens", "100", *fixed, "--workers", "1", "2")
    assert text.returncode == 0, text.stderr
    assert "teacher tokens:    100 k" in text.stdout and "ASSUMPTION" in text.stdout and "| 2 | 2 |" in text.stdout
    out = run_script("--prompts", "1000", "--answer-tokens", "100", "--k", "10", *fixed, "--json")
    plan = json.loads(out.stdout)
    assert plan["totals"]["teacher_tokens"] == 100_000 and plan["plan"]["k"] == 10
    assert plan["plan"]["bytes_per_token"] == pytest.approx(capacity.bytes_per_token(10, BENCH))
    bad = run_script("--prompts", "0")
    assert bad.returncode == 2 and "must be positive" in bad.stderr


def test_the_worked_example_in_the_docs_is_what_the_script_computes():
    doc = (ROOT / "docs" / "capacity.md").read_text()
    p = a_plan(prompts=10_000_000, n=1, answer_tokens=512, k=20, shard_size=512, gpu_tok_s=capacity.GPU_TOK_S,
               storage_mb_s=capacity.STORAGE_MB_S, bytes_per_token=capacity.bytes_per_token(20, BENCH))
    t = capacity.totals(p)
    assert "python scripts/capacity.py --prompts 10000000 --answer-tokens 512 --k 20 --n 1" in doc
    for figure in (f"{capacity.fmt(t['teacher_tokens'])}", f"{capacity.fmt(t['disk_bytes'])}B",
                   f"{t['gpu_hours']:,.0f}", f"{t['shards']:,}"):
        assert figure in doc, figure


def test_the_measured_figures_in_the_docs_are_the_bench_results():
    """docs/capacity.md quotes bench/results/generate.json and ray.json; a re-run bench must update the page."""
    doc = (ROOT / "docs" / "capacity.md").read_text()
    ray = json.loads(capacity.RAY_BENCH.read_text())
    figures = {
        "generate.json bytes per token": f"{BENCH['bytes_per_token']:.1f} B (whole shard)",
        "generate.json top-k payload": f"{BENCH['topk_payload_bytes_per_token']:.1f} B top-20 payload",
        "ray.json one worker": f"{ray['runs']['ray1_tok_s']:.1f} tok/s per worker",
        "ray.json two workers": f"2 workers {ray['runs']['ray2_tok_s']:.1f} tok/s (x{ray['ratio_ray2_vs_ray1']:.2f})",
        "ray.json Ray overhead": f"one Ray worker gives {ray['ratio_ray1_vs_local']:.2f}x",
        "ray.json scaling": f"two workers {ray['ratio_ray2_vs_ray1']:.2f}x one worker",
    }
    for what, text in figures.items():
        assert text in doc, f"docs/capacity.md should say '{text}' ({what})"
