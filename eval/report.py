"""Build the eval report from saved files only: `python -m eval.report RUN_DIR_OR_EVAL_DIR`.

Reads run.json, generations/, teacher_forced/ and judge/ under the eval folder (see eval/run.py), recomputes every
number with eval.metrics, and writes report.json, report.md and one PNG per chart. No model is run, so the
report can be rebuilt (or checked) at any time; the same files always give the same report.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from distill import shards as sh
from distill.errors import DistillError
from eval import metrics

# (report.json key, chart title); one bar chart each, across models
CHARTS = [
    ("heldout_kl", "Held-out KL(teacher || model), nats/token (lower is better)"),
    ("top1_agreement", "Top-1 agreement with the teacher (higher is better)"),
    ("heldout_nll", "NLL of the teacher's held-out answers, nats/token"),
    ("rouge_l", "ROUGE-L F1 vs the teacher's answer"),
    ("exact_accuracy", "Exact accuracy on checkable prompts"),
    ("tokens_per_s", "Generation throughput, tokens/s"),
    ("ttft_s", "Time to first token, s (median)"),
    ("mean_response_tokens", "Mean response length, tokens"),
    ("repetition_rate", "Repeated word 3-grams (share)"),
    ("cutoff_rate", "Answers cut off at max_tokens (share)"),
]
EXAMPLE_CHARS = 600


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def read_json(path: Path):
    return json.loads(Path(path).read_text(encoding="utf-8")) if Path(path).is_file() else None


def find_eval_dir(path: str | Path) -> Path:
    path = Path(path)
    for candidate in (path, path / "eval"):
        if (candidate / "run.json").is_file():
            return candidate
    raise DistillError(f"{path}: no run.json here or in {path / 'eval'} (run `python -m eval CONFIG` first)")


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
    acc, n_checked = metrics.exact_accuracy(rows)
    rouge = None
    if reference is not None:
        pairs = [(r, reference.get((r["set"], r["prompt_id"]))) for r in rows]
        rouge = metrics.mean([metrics.rouge_l_f1(r["response"], ref["response"]) for r, ref in pairs if ref])
    return {
        "exact_accuracy": acc,
        "exact_checked": n_checked,
        "rouge_l": rouge,
        "mean_response_tokens": metrics.mean([r["response_token_count"] for r in rows]),
        "repetition_rate": metrics.mean([metrics.repetition_rate(r["response"]) for r in rows]),
        "empty_rate": metrics.mean([float(metrics.is_empty(r["response"])) for r in rows]),
        "cutoff_rate": metrics.mean([float(metrics.is_cut_off(r["finish_reason"])) for r in rows]),
        "prompts": len(rows),
    }


def model_entry(out: Path, name: str, plan: dict, teacher_ref: dict | None) -> tuple[dict, list[dict]]:
    gen_path = out / "generations" / f"{name}.jsonl"
    rows = read_jsonl(gen_path) if gen_path.is_file() else []
    timing = read_json(out / "generations" / f"{name}.timing.json") or {}
    tf_path = out / "teacher_forced" / f"{name}.jsonl"
    tf_ok = tf_path.is_file() and (out / "teacher_forced" / f"{name}.json").is_file() and name not in plan["skipped"]
    tf = read_jsonl(tf_path) if tf_ok else []
    agg = metrics.aggregate_teacher_forced(tf) if tf_ok else {"kl": None, "nll": None, "top1": None, "tokens": 0}
    ref = teacher_ref if (teacher_ref is not None and name != plan["teacher"]) else None
    entry = {
        "path": plan["models"][name],
        "heldout_kl": agg["kl"],
        "top1_agreement": agg["top1"],
        "heldout_nll": agg["nll"],
        "heldout_tokens": agg["tokens"],
        **text_metrics(rows, ref),
        "params": timing.get("params"),
        "size_mb": timing.get("size_mb"),
        "tokens_per_s": timing["tokens"] / timing["seconds"] if timing.get("seconds") else None,
        "ttft_s": metrics.median(timing.get("ttft_samples_s") or []),
        "generated_tokens": timing.get("tokens"),
        "generation_s": timing.get("seconds"),
    }
    entry["sets"] = {s: text_metrics([r for r in rows if r["set"] == s], None) for s in plan["sets"]}
    for s in entry["sets"].values():
        s.pop("rouge_l")
    return entry, tf


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
            "student_kl": s, f"{other}_kl": o, "difference": s - o,
            "relative": (s - o) / o if o else None, "student_closer": s < o}
    def missing(other):
        return " and ".join(m for m in ("student", other) if kl(m) is None)

    parts = []
    c = out["kd_vs_init"]
    if c:
        parts.append(f"the distilled student is {'closer to' if c['student_closer'] else 'no closer to'} the teacher "
                     f"than the undistilled one (held-out KL {c['student_kl']:.3f} vs {c['student_init_kl']:.3f} "
                     f"nats/token, {c['difference']:+.3f}" + (f", {c['relative']:+.1%})" if c["relative"] is not None else ")"))
    else:
        parts.append(f"the distilled and undistilled students cannot be compared (no held-out KL for "
                     f"{missing('student_init')}; see skipped)")
    c = out["kd_vs_sft"]
    if c:
        parts.append(f"KD {'beat' if c['student_closer'] else 'did not beat'} SFT-only (held-out KL "
                     f"{c['student_kl']:.3f} vs {c['student_sft_kl']:.3f}, {c['difference']:+.3f}"
                     + (f", {c['relative']:+.1%})" if c["relative"] is not None else ")"))
    else:
        parts.append(f"KD vs SFT-only is not measured (no held-out KL for {missing('student_sft')})")
    sentence = "; ".join(parts)
    out["sentence"] = sentence[0].upper() + sentence[1:] + "."
    return out


# ---- presentation ---------------------------------------------------------------------------------------------


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


def headline_rows(models: dict, teacher: str | None) -> list[list[str]]:
    base = models.get(teacher, {}).get("tokens_per_s") if teacher else None
    rows = [["model", "heldout KL", "top-1 agreement", "exact accuracy", "params", "tokens/s", "speed-up vs teacher"]]
    for name, m in models.items():
        speed = m["tokens_per_s"] / base if base and m["tokens_per_s"] else None
        rows.append([name, fmt(m["heldout_kl"]), fmt(m["top1_agreement"]), fmt(m["exact_accuracy"]),
                     fmt(m["params"], "params"), fmt(m["tokens_per_s"], "rate"), fmt(speed, "x")])
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
        ax.bar([m for m, _ in data], [v for _, v in data], color="#4c72b0")
        for i, (_, v) in enumerate(data):
            ax.annotate(fmt(v), (i, v), ha="center", va="bottom", fontsize=8)
        ax.set_title(title, fontsize=10)
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
        ax.set_title("Held-out KL per teacher answer, nats/token", fontsize=10)
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


# ---- the report -----------------------------------------------------------------------------------------------


def build_report(eval_dir: str | Path) -> tuple[dict, str]:
    """Recompute every number from the files under eval_dir; write report.json, report.md and the charts.

    Returns (report, headline as plain text).
    """
    out = find_eval_dir(eval_dir)
    plan = read_json(out / "run.json")
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
    for m in models.values():
        m["speedup_vs_teacher"] = m["tokens_per_s"] / base if base and m["tokens_per_s"] else None

    report = rounded({
        "models": models,
        "comparison": comparisons(models),
        "overlap": plan["overlap"],
        "skipped": plan["skipped"],
        "judge": judge_section(out, plan),
        "sets": plan["sets"],
        "settings": plan["settings"],
    })
    report["charts"] = write_charts(out, models, kl_per_prompt)
    sh.atomic_write(out / "report.json", (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))

    rows = headline_rows(models, teacher)
    md = ["# Distillation eval report", "", markdown_table(rows), "", report["comparison"]["sentence"], ""]
    md += ["## All metrics", ""]
    keys = ["heldout_kl", "top1_agreement", "heldout_nll", "exact_accuracy", "rouge_l", "params", "size_mb",
            "tokens_per_s", "ttft_s", "mean_response_tokens", "repetition_rate", "empty_rate", "cutoff_rate"]
    table = [["model"] + keys] + [[n] + [fmt(m[k], "params" if k == "params" else "num") for k in keys]
                                  for n, m in models.items()]
    md += [markdown_table(table), "",
           "KL and NLL are token-weighted means over the teacher's held-out shard answers (KL(teacher || model) on "
           "the top-k plus a tail bucket, T=1). ROUGE-L compares each answer with the teacher's answer to the same "
           "prompt. Exact accuracy counts only prompts that carry a check.", ""]
    md += ["## Held-out sets and overlap with the training shards", ""]
    ov = plan["overlap"]
    for s, info in plan["sets"].items():
        count = ov["sets"].get(s) if ov["checked"] else "not checked"
        md.append(f"- **{s}** ({info['source']}): {info['prompts']} prompts; in the training shards: {count}")
    md.append("")
    if plan["skipped"]:
        md += ["## Skipped", ""] + [f"- **{m}**: {r}" for m, r in plan["skipped"].items()] + [""]
    j = report["judge"]
    if j["enabled"]:
        md += ["## Pairwise judge", "",
               f"Judge: {j['model']} ({j['backend']}). Each prompt is judged in both orders; a pair counts as a win "
               f"only when both orders agree, otherwise a tie. Win rate = (wins + ties/2) / n; CI: {j['ci_method']}.", ""]
        jrows = [["pair", "win rate", "95% CI", "wins", "ties", "losses", "n", "errors"]]
        for key, p in j["pairs"].items():
            ci = f"{fmt(p['ci_low'])}-{fmt(p['ci_high'])}" if p["n"] else "n/a"
            jrows.append([f"{p['a']} vs {p['b']}", fmt(p["win_rate"]), ci, str(p["wins"]), str(p["ties"]),
                          str(p["losses"]), str(p["n"]), str(p["errors"])])
        md += [markdown_table(jrows), ""]
        md += [f"- missing: **{k}**: {r}" for k, r in j["missing"].items()] + [""]
    md += ["## Charts", ""] + [f"![{c}]({c})" for c in report["charts"]] + [""]
    md += ["## Examples", "", example_block(rows_by_model, order, plan["n_examples"])]
    sh.atomic_write(out / "report.md", ("\n".join(md) + "\n").encode("utf-8"))
    return report, plain_table(rows) + "\n" + report["comparison"]["sentence"]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python -m eval.report RUN_DIR_OR_EVAL_DIR   (rebuilds the report from saved files)")
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
