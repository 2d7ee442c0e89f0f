"""Generation speed of a run's student against its teacher, interleaved: the speed-up goal (>= 1.5x) measured so
that a change in the machine's load hits both models alike.

The eval report times each model in its own engine, minutes apart, and on this shared 2-core machine the load
changes in between: in docs/results/default_run.json the teacher's three runs range from 69 to 83 tok/s, and two
students of the same architecture measure 112 and 120 tok/s. Here the two models take turns, each in a freshly
started engine per turn, in the order teacher, student, student, teacher, ... (so neither always goes first).
Each turn is eval's own timed work (eval.time_speed: the same prompts, each generating exactly eval.max_tokens
tokens, greedy, after a warm-up). The speed-up is the ratio of the two models' medians over all timed runs; the
per-pair ratios show its spread.

    python bench/speedup.py [RUN (default runs/default)] [--pairs 5] [--config configs/default.yaml]
    (or: bash bench/speedup.sh)
Writes bench/results/speedup.json and the speedup section of bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/: the `eval` package, not a file here
sys.path.insert(1, str(ROOT / "scripts"))

import results  # noqa: E402  (scripts/results.py: the commit a measurement ran on)
RESULTS = ROOT / "bench" / "results" / "speedup.json"
GOAL = 1.5


def turn(where: str, ids: list[list[int]], cfg) -> list[float]:
    """One engine started, eval's timed runs, the engine stopped: tokens/s of each run."""
    from distill.engine import stop_engine
    from eval.generation import start_model_engine, time_speed

    llm = start_model_engine(where, cfg)
    try:
        return time_speed(llm, ids, cfg)["tokens_per_s_runs"]
    finally:
        stop_engine(llm)


def speed_prompt_ids(cfg) -> list[list[int]]:
    """The report's timed prompts: the first eval.speed_prompts of its first held-out set."""
    from transformers import AutoTokenizer

    from distill.models import chat_ids
    from distill.prompts import load_prompts

    prompts, _ = load_prompts(cfg.eval.prompts[0], max_prompts=cfg.eval.speed_prompts)
    return chat_ids(AutoTokenizer.from_pretrained(cfg.teacher.model), [p.messages for p in prompts])


def bench(run: Path, config: str, pairs: int) -> dict:
    from tqdm import tqdm

    from distill.config import load_config

    cfg = load_config(config, [f"run.dir={run}"])
    models = {"teacher": str(cfg.teacher.model), "student": str(run / "student")}
    if not (run / "student").is_dir():
        raise SystemExit(f"error: {run / 'student'}: no student (run the pipeline first)")
    ids = speed_prompt_ids(cfg)
    runs = {name: [] for name in models}
    per_pair = []
    order = list(models)
    for _ in tqdm(range(pairs), desc="[bench] pairs", unit="pair"):
        medians = {}
        for name in order:
            speeds = turn(models[name], ids, cfg)
            runs[name] += speeds
            medians[name] = statistics.median(speeds)
        per_pair.append(medians["student"] / medians["teacher"])
        order.reverse()
    teacher, student = statistics.median(runs["teacher"]), statistics.median(runs["student"])
    shown = run.resolve().relative_to(ROOT) if run.resolve().is_relative_to(ROOT) else run
    return {"run": str(shown), "config": config, "teacher": models["teacher"], "student": models["student"],
            "pairs": pairs, "runs_per_turn": cfg.eval.speed_runs, "prompts": len(ids),
            "max_tokens": cfg.eval.max_tokens, "tokens_per_s_runs": runs,
            "teacher_tok_s": teacher, "student_tok_s": student, "speedup": student / teacher,
            "speedup_per_pair": per_pair, "goal": GOAL, "commit": results.commit(),
            "command": f"python bench/speedup.py {shown} --pairs {pairs} --config {config}",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores"}


def write_readme(result: dict) -> None:
    from bench.sections import replace_section

    pairs = ", ".join(f"{x:.2f}" for x in result["speedup_per_pair"])
    replace_section("speedup", "\n".join([
        "## speedup: the run's student against its teacher, interleaved (`bash bench/speedup.sh`)",
        "",
        f"`{result['command']}` (commit {result['commit']}; {result['machine']}): {result['pairs']} pairs of "
        f"turns, each turn a fresh engine and {result['runs_per_turn']} timed runs of {result['prompts']} prompts x "
        f"exactly {result['max_tokens']} tokens, greedy, the models alternating and swapping who goes first.",
        "",
        "| measure | value | goal |",
        "|---|---|---|",
        f"| teacher, median tok/s | {result['teacher_tok_s']:.1f} | |",
        f"| student, median tok/s | {result['student_tok_s']:.1f} | |",
        f"| speed-up (ratio of the medians) | {result['speedup']:.2f}x | >= {result['goal']} |",
        f"| speed-up of each pair | {pairs} | |",
        "",
        "Raw numbers: `bench/results/speedup.json`.",
    ]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default="runs/default")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--config", default="configs/default.yaml")
    args = parser.parse_args()
    from distill.logs import route_library_logs

    route_library_logs(ROOT / "bench" / "work", "speedup", announce=True)
    result = bench(Path(args.run), args.config, args.pairs)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    write_readme(result)
    print(f"[bench] speed-up {result['speedup']:.2f}x (teacher {result['teacher_tok_s']:.1f}, student "
          f"{result['student_tok_s']:.1f} tok/s; pairs {', '.join(f'{x:.2f}' for x in result['speedup_per_pair'])}) "
          f"-> {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
