"""Build the eval report from saved files only: `distill report RUN_DIR_OR_EVAL_DIR`.

Reads run.json, generations/, teacher_forced/, judge/ and degenerate_random.json under the eval folder (see
eval/run.py), recomputes every number with eval.metrics, and writes report.json, report.md and one PNG per chart.
No model is run, so the report can be rebuilt (or checked) at any time; the same files always give the same
report.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from distill.errors import DistillError
from distill.eval import metrics
from distill.eval.checks import degenerate_answers, panel_scores
from distill.files import atomic_write, read_json, read_jsonl

# (report.json key, chart title); one bar chart each, across models
CHARTS = [
    ("heldout_kl", "Held-out KL(teacher || model), top-k + tail: a lower bound (nats/token, lower is better)"),
    ("heldout_kl_full", "Held-out KL(teacher || model), full vocabulary (nats/token)"),
    ("own_answer_reverse_kl", "KL(model || teacher) on the model's own answers, top-k + tail (nats/token)"),
    ("top1_agreement", "Top-1 agreement with the teacher (higher is better)"),
    ("exact_accuracy", "Exact accuracy on checkable prompts (content and form)"),
    ("tokens_per_s", "Generation speed, tokens/s (median of repeated runs; bars: min-max)"),
    ("mean_response_tokens", "Mean answer length, tokens"),
    ("repetition_rate", "Repeated word 3-grams (share)"),
    ("cutoff_rate", "Answers cut off at max_tokens (share)"),
]
EXAMPLE_CHARS = 600
KL_NOTE = ("Held-out KL is KL(teacher || model) per answer token on the teacher's held-out answers, computed over "
           "the teacher's top-k tokens plus one class for the rest of the vocabulary (T = 1). Merging classes can "
           "only lower a KL, so it is a lower bound of the full-vocabulary KL; where the teacher loads beside the "
           "model, `heldout_kl_full` is that full KL on the same positions. The own-answer reverse KL is "
           "KL(model || teacher) on the model's own answers (decoded as `settings` says), scored by the teacher over "
           "its top-k plus tail (also a lower bound); the own-answer teacher logprob is the teacher's mean logprob of "
           "those answer tokens.")


def find_eval_dir(path: str | Path) -> Path:
    path = Path(path)
    for candidate in (path, path / "eval"):
        if (candidate / "run.json").is_file():
            return candidate
    raise DistillError(f"{path}: no run.json here or in {path / 'eval'} (run `distill eval CONFIG` first)")


def rounded(obj):
    """Round floats for a readable report.json (the same files always round the same way)."""
    if isinstance(obj, float):
        return round(obj, 6)
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v) for v in obj]
    return obj


# ---- per-model numbers ----------------------------------------------------------------------------------------


def text_metrics(rows: list[dict], reference: dict | None) -> dict:
    """Metrics of free generations; `reference` maps (set, prompt_id) -> the teacher's row (for ROUGE-L)."""
    passed, n_checked = metrics.exact_counts(rows)
    rouge = None
    if reference is not None:
        pairs = [(r, reference.get((r["set"], r["prompt_id"]))) for r in rows]
        rouge = metrics.mean([metrics.rouge_l_f1(r["response"], ref["response"]) for r, ref in pairs if ref])
    return {
        "exact_accuracy": passed / n_checked if n_checked else None,
        "exact_checked": n_checked,
        "exact_passed": passed,
        "rouge_l": rouge,
        "mean_response_tokens": metrics.mean([r["response_token_count"] for r in rows]),
        "repetition_rate": metrics.mean([metrics.repetition_rate(r["response"]) for r in rows]),
        "empty_rate": metrics.mean([float(metrics.is_empty(r["response"])) for r in rows]),
        "cutoff_rate": metrics.mean([float(metrics.is_cut_off(r["finish_reason"])) for r in rows]),
        "prompts": len(rows),
    }


def teacher_forced_rows(out: Path, key: str, plan: dict, name: str) -> list[dict]:
    rows_path, meta_path = out / "teacher_forced" / f"{key}.jsonl", out / "teacher_forced" / f"{key}.json"
    if name in plan["skipped"] or not (rows_path.is_file() and meta_path.is_file()):
        return []
    return read_jsonl(rows_path)


def speed_entry(timing: dict) -> dict:
    """The median of repeated runs of the same fixed-length work, with the spread beside it."""
    runs = timing.get("tokens_per_s_runs") or []
    return {"tokens_per_s": metrics.median(runs), "tokens_per_s_min": min(runs, default=None),
            "tokens_per_s_max": max(runs, default=None), "speed_runs": len(runs),
            "ttft_s": metrics.median(timing.get("ttft_samples_s") or []),
            "engine_peak_rss_mb": timing.get("engine_peak_rss_mb")}


def model_entry(out: Path, name: str, plan: dict, teacher_ref: dict | None) -> tuple[dict, list[dict]]:
    gen_path = out / "generations" / f"{name}.jsonl"
    rows = read_jsonl(gen_path) if gen_path.is_file() else []
    timing = read_json(out / "generations" / f"{name}.timing.json") or {}
    tf = teacher_forced_rows(out, name, plan, name)
    own = metrics.aggregate_teacher_forced(teacher_forced_rows(out, f"{name}.own", plan, name))
    agg = metrics.aggregate_teacher_forced(tf)
    ref = teacher_ref if (teacher_ref is not None and name != plan["teacher"]) else None
    entry = {
        "path": plan["models"][name],
        "heldout_kl": agg["kl"],
        "heldout_kl_full": agg["kl_full"],
        "heldout_kl_gap": agg["kl_full"] - agg["kl"] if agg["kl_full"] is not None else None,
        "top1_agreement": agg["top1"],
        "heldout_nll": agg["nll"],
        "heldout_tokens": agg["tokens"],
        "own_answer_reverse_kl": own["kl"],
        "own_answer_teacher_logprob": own["teacher_logprob"],
        "own_answer_tokens": own["tokens"],
        **text_metrics(rows, ref),
        "params": timing.get("params"),
        "size_mb": timing.get("size_mb"),
        **speed_entry(timing),
    }
    entry["sets"] = {s: text_metrics([r for r in rows if r["set"] == s], None) for s in plan["sets"]}
    for s in entry["sets"].values():
        s.pop("rouge_l")
    entry["tasks"] = task_breakdown(rows, tf)
    return entry, tf


def task_breakdown(rows: list[dict], tf: list[dict]) -> dict:
    """Every per-prompt metric again per task (the prompt's category), so a user sees which tasks a student kept."""
    category = {r["prompt_id"]: r.get("category") for r in rows}

    def task_of(record):  # shards from before tasks were recorded: the held-out prompt's own category
        return record.get("task") or category.get(record["prompt_id"]) or "(none)"

    tasks = sorted({r.get("category") or "(none)" for r in rows} | {task_of(r) for r in tf})
    out = {}
    for task in tasks:
        mine = [r for r in rows if (r.get("category") or "(none)") == task]
        agg = metrics.aggregate_teacher_forced([r for r in tf if task_of(r) == task])
        entry = text_metrics(mine, None)
        entry.pop("rouge_l")
        out[task] = {**entry, "heldout_kl": agg["kl"], "top1_agreement": agg["top1"], "heldout_tokens": agg["tokens"]}
    return out


def degenerate_section(out: Path, plan: dict) -> dict:
    """The exact-accuracy floor: answers that ignore the question, scored by the same checks as the models."""
    teacher = plan["teacher"]
    random = read_json(out / "degenerate_random.json")
    gen = out / "generations" / f"{teacher}.jsonl" if teacher else None
    if random is None or gen is None or not gen.is_file():
        return {"floor": None, "panel": {}, "note": "not computed (no teacher generations or random texts)"}
    rows = read_jsonl(gen)
    texts = {tuple(k): t for k, t in random["texts"]}
    panel = degenerate_answers(rows, [texts.get((r["set"], r["prompt_id"]), "") for r in rows],
                               teacher_answers=[r["response"] for r in rows])
    scores = panel_scores(rows, panel)
    known = [v for v in scores.values() if v is not None]
    return {"floor": max(known) if known else None, "panel": scores}


# ---- the whole report -----------------------------------------------------------------------------------------


def judge_section(out: Path, plan: dict) -> dict:
    j = plan["judge"]
    section = {"enabled": j["enabled"], "backend": j["backend"], "model": j["model"], "ci_method": j["ci"],
               "pairs": {}, "missing": dict(j["missing"])}
    for a, b in j["pairs"]:
        key = f"{a}_vs_{b}"
        path = out / "judge" / f"{key}.jsonl"
        if key in section["missing"]:
            continue
        if not path.is_file():
            section["missing"][key] = "no judge file"
            continue
        rows = read_jsonl(path)
        judged = [r for r in rows if "outcome" in r]
        count = {o: sum(r["outcome"] == o for r in judged) for o in ("win", "tie", "loss")}
        section["pairs"][key] = {
            "a": a, "b": b, **metrics.win_rate(count["win"], count["tie"], count["loss"]),
            "errors": len(rows) - len(judged),
            "unparsed": sum(r["verdict_ab"] is None or r["verdict_ba"] is None for r in judged),
        }
    return section


def comparisons(models: dict) -> dict:
    """Did KD bring the student closer to the teacher than no training (student_init) and than SFT only?"""
    def kl(name):
        return models.get(name, {}).get("heldout_kl")

    out = {}
    for key, other in (("kd_vs_init", "student_init"), ("kd_vs_sft", "student_sft")):
        s, o = kl("student"), kl(other)
        out[key] = None if s is None or o is None else {
            "student_kl": s, f"{other}_kl": o, "difference": s - o, "ratio": s / o if o else None,
            "relative": (s - o) / o if o else None, "student_closer": s < o}

    def missing(other):
        return " and ".join(m for m in ("student", other) if kl(m) is None)

    parts = []
    c = out["kd_vs_init"]
    if c:
        relative = f", {c['relative']:+.1%}" if c["relative"] is not None else ""
        parts.append(f"the distilled student is {'closer to' if c['student_closer'] else 'no closer to'} the teacher "
                     f"than the undistilled one (held-out KL {c['student_kl']:.3f} vs {c['student_init_kl']:.3f} "
                     f"nats/token, {c['difference']:+.3f}{relative})")
    else:
        parts.append(f"the distilled and undistilled students cannot be compared (no held-out KL for "
                     f"{missing('student_init')}; see skipped)")
    c = out["kd_vs_sft"]
    if c:
        parts.append(f"KD {'beat' if c['student_closer'] else 'did not beat'} SFT-only (held-out KL "
                     f"{c['student_kl']:.3f} vs {c['student_sft_kl']:.3f}, ratio {c['ratio']:.2f})")
    else:
        parts.append(f"KD vs SFT-only is not measured (no held-out KL for {missing('student_sft')})")
    sentence = "; ".join(parts)
    out["sentence"] = sentence[0].upper() + sentence[1:] + "."
    return out


def fmt(value, kind: str = "num") -> str:
    if value is None:
        return "n/a"
    if kind == "params":
        return f"{value / 1e6:.1f}M" if value >= 1e5 else f"{value / 1e3:.1f}K"
    if kind == "x":
        return f"{value:.2f}x"
    if kind == "rate":
        return f"{value:.1f}"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def headline_rows(models: dict) -> list[list[str]]:
    rows = [["model", "held-out KL (top-k+tail, >=)", "full-vocab KL", "own-answer rev. KL", "top-1 agreement",
             "exact accuracy", "params", "tokens/s (median, min-max)", "speed-up vs teacher"]]
    for name, m in models.items():
        speed = (f"{fmt(m['tokens_per_s'], 'rate')} ({fmt(m['tokens_per_s_min'], 'rate')}-"
                 f"{fmt(m['tokens_per_s_max'], 'rate')})" if m["tokens_per_s"] else "n/a")
        rows.append([name, fmt(m["heldout_kl"]), fmt(m["heldout_kl_full"]), fmt(m["own_answer_reverse_kl"]),
                     fmt(m["top1_agreement"]), fmt(m["exact_accuracy"]), fmt(m["params"], "params"), speed,
                     fmt(m["speedup_vs_teacher"], "x")])
    return rows


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def plain_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def write_charts(out: Path, models: dict, kl_per_prompt: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on a server
    import matplotlib.pyplot as plt

    names = []
    for key, title in CHARTS:
        data = [(m, v[key]) for m, v in models.items() if v[key] is not None]
        if not data:
            continue
        fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(data) + 2), 3.2))
        errors = None
        if key == "tokens_per_s":  # the spread of the repeated runs
            errors = [[v - models[m]["tokens_per_s_min"] for m, v in data],
                      [models[m]["tokens_per_s_max"] - v for m, v in data]]
        ax.bar([m for m, _ in data], [v for _, v in data], color="#4c72b0", yerr=errors, capsize=4)
        for i, (_, v) in enumerate(data):
            ax.annotate(fmt(v), (i, v), ha="center", va="bottom", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        fig.tight_layout()
        name = f"chart_{key}.png"
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        names.append(name)
    data = {m: v for m, v in kl_per_prompt.items() if v}
    if data:
        fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(data) + 2), 3.2))
        ax.boxplot(list(data.values()), tick_labels=list(data))
        ax.set_title("Held-out KL per teacher answer, nats/token (top-k + tail)", fontsize=10)
        fig.tight_layout()
        fig.savefig(out / "kl_per_prompt.png", dpi=100)
        plt.close(fig)
        names.append("kl_per_prompt.png")
    return names


def example_block(rows_by_model: dict[str, list[dict]], order: list[str], n: int) -> str:
    first = next((rows_by_model[m] for m in order if rows_by_model.get(m)), [])
    if not first or n <= 0:
        return "No generations to show."
    picks = sorted({round(i * (len(first) - 1) / max(n - 1, 1)) for i in range(min(n, len(first)))})
    index = {m: {(r["set"], r["prompt_id"]): r for r in rows} for m, rows in rows_by_model.items()}
    parts = []
    for i in picks:
        row = first[i]
        key = (row["set"], row["prompt_id"])
        parts.append(f"### {row['set']} / {row['prompt_id']}\n\n**Prompt:** {row['prompt'][:EXAMPLE_CHARS]}\n")
        for m in order:
            r = index.get(m, {}).get(key)
            if r is None:
                continue
            text = r["response"][:EXAMPLE_CHARS].replace("```", "'''") or "(empty)"
            cut = " (cut off)" if r["finish_reason"] == "length" else ""
            parts.append(f"**{m}**{cut}:\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


def collect(out: Path, plan: dict) -> tuple[list[str], dict, dict, dict]:
    """Model order (teacher first), per-model entries, per-prompt KL lists and generation rows."""
    teacher = plan["teacher"]
    order = list(plan["models"])
    if teacher in order:  # the teacher leads every table and example
        order.remove(teacher)
        order.insert(0, teacher)
    teacher_gen = out / "generations" / f"{teacher}.jsonl" if teacher else None
    teacher_ref = ({(r["set"], r["prompt_id"]): r for r in read_jsonl(teacher_gen)}
                   if teacher_gen is not None and teacher_gen.is_file() else None)
    models, kl_per_prompt, rows_by_model = {}, {}, {}
    for name in order:
        models[name], tf = model_entry(out, name, plan, teacher_ref)
        kl_per_prompt[name] = metrics.per_record_kl(tf)
        gen_path = out / "generations" / f"{name}.jsonl"
        rows_by_model[name] = read_jsonl(gen_path) if gen_path.is_file() else []
    base = models.get(teacher, {}).get("tokens_per_s") if teacher else None
    for m in models.values():  # a ratio of medians measured in the same eval run
        m["speedup_vs_teacher"] = m["tokens_per_s"] / base if base and m["tokens_per_s"] else None
    return order, models, kl_per_prompt, rows_by_model


def build_report(eval_dir: str | Path) -> tuple[dict, str]:
    """Recompute every number from the files under eval_dir; write report.json, report.md and the charts.

    Returns (report, headline as plain text).
    """
    out = find_eval_dir(eval_dir)
    plan = read_json(out / "run.json")
    order, models, kl_per_prompt, rows_by_model = collect(out, plan)
    degenerate = degenerate_section(out, plan)
    report = rounded({
        "models": models,
        "degenerate_floor": degenerate["floor"],
        "degenerate_panel": degenerate["panel"],
        "comparison": comparisons(models),
        "overlap": plan["overlap"],
        "skipped": plan["skipped"],
        "judge": judge_section(out, plan),
        "sets": plan["sets"],
        "settings": plan["settings"],
        "metric_notes": KL_NOTE,
    })
    report["charts"] = write_charts(out, models, kl_per_prompt)
    atomic_write(out / "report.json", (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    rows = headline_rows(models)
    atomic_write(out / "report.md", markdown_report(report, rows, plan, rows_by_model, order).encode("utf-8"))
    floor = f"Exact-accuracy floor (best answer that ignores the question): {fmt(report['degenerate_floor'])}."
    return report, plain_table(rows) + "\n" + report["comparison"]["sentence"] + "\n" + floor


def decoding_line(settings: dict) -> str:
    """How every model's answers were decoded (runs from before the penalty existed used none: 1.0)."""
    if "temperature" not in settings:
        return "Answers: decoding not recorded in run.json."
    t = settings["temperature"]
    how = "greedy" if t == 0 else f"sampled at temperature {t:g} (seed {settings['seed']})"
    return (f"Answers: {how}, repetition penalty {settings.get('repetition_penalty', 1.0):g}, at most "
            f"{settings['max_tokens']} tokens, the same for every model.")


def markdown_report(report: dict, rows: list[list[str]], plan: dict, rows_by_model: dict, order: list[str]) -> str:
    models = report["models"]
    panel = ", ".join(f"{k} {fmt(v)}" for k, v in report["degenerate_panel"].items())
    md = ["# Distillation eval report", "", decoding_line(report["settings"]), "", markdown_table(rows), "",
          report["comparison"]["sentence"], "",
          f"Exact-accuracy floor: the best of a panel of answers that ignore the question scores "
          f"{fmt(report['degenerate_floor'])} ({panel}).", "", KL_NOTE, "", "## All metrics", ""]
    keys = ["heldout_kl", "heldout_kl_full", "top1_agreement", "heldout_nll", "own_answer_reverse_kl",
            "own_answer_teacher_logprob", "exact_accuracy", "rouge_l", "params", "size_mb", "tokens_per_s", "ttft_s",
            "engine_peak_rss_mb", "mean_response_tokens", "repetition_rate", "empty_rate", "cutoff_rate"]
    table = [["model"] + keys] + [[n] + [fmt(m[k], "params" if k == "params" else "num") for k in keys]
                                  for n, m in models.items()]
    md += [markdown_table(table), "",
           "Speed: each model generates the same prompts to exactly the same length (end of sequence ignored) in "
           "repeated runs; tokens/s is the median, speed-up the ratio of medians. Engine peak RSS is the peak "
           "resident memory of the engine's worker process (weights, KV cache reservation, activations). Exact "
           "accuracy counts prompts that carry a check of content and form.", "", "## Per task", ""]
    md += [task_table(models), ""]
    md += ["## Held-out sets and overlap with the training shards", ""]
    ov = plan["overlap"]
    for s, info in plan["sets"].items():
        count = ov["sets"].get(s) if ov["checked"] else "not checked"
        md.append(f"- **{s}** ({info['source']}): {info['prompts']} prompts; in the training shards: {count}")
    md.append("")
    if plan["skipped"]:
        md += ["## Skipped", ""] + [f"- **{m}**: {r}" for m, r in plan["skipped"].items()] + [""]
    md += judge_markdown(report["judge"])
    md += ["## Charts", ""] + [f"![{c}]({c})" for c in report["charts"]] + [""]
    md += ["## Examples", "", example_block(rows_by_model, order, plan["n_examples"])]
    return "\n".join(md) + "\n"


def task_table(models: dict) -> str:
    """Held-out KL and exact accuracy per task, one column per model."""
    tasks = sorted({t for m in models.values() for t in m["tasks"]})
    rows = [["task"] + [f"{n} KL / exact" for n in models]]
    for t in tasks:
        rows.append([t] + [f"{fmt(m['tasks'].get(t, {}).get('heldout_kl'))} / "
                           f"{fmt(m['tasks'].get(t, {}).get('exact_accuracy'))}" for m in models.values()])
    return markdown_table(rows)


def judge_markdown(j: dict) -> list[str]:
    if not j["enabled"]:
        return []
    md = ["## Pairwise judge", "",
          f"Judge: {j['model']} ({j['backend']}). Each prompt is judged in both orders; a pair counts as a win "
          f"only when both orders agree, otherwise a tie. Win rate = (wins + ties/2) / n; CI: {j['ci_method']}.", ""]
    jrows = [["pair", "win rate", "95% CI", "wins", "ties", "losses", "n", "errors"]]
    for p in j["pairs"].values():
        ci = f"{fmt(p['ci_low'])}-{fmt(p['ci_high'])}" if p["n"] else "n/a"
        jrows.append([f"{p['a']} vs {p['b']}", fmt(p["win_rate"]), ci, str(p["wins"]), str(p["ties"]),
                      str(p["losses"]), str(p["n"]), str(p["errors"])])
    md += [markdown_table(jrows), ""]
    return md + [f"- missing: **{k}**: {r}" for k, r in j["missing"].items()] + [""]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: distill report RUN_DIR_OR_EVAL_DIR   (rebuilds the report from saved files)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        _, headline = build_report(argv[0])
    except DistillError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(headline)
    print(f"[eval] report: {find_eval_dir(argv[0]) / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
