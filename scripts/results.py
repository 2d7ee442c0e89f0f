"""Measured tables in the README come from committed results files, never from typing.

    docs/results/<name>.json   one measurement: title, columns, rows, notes, and how it was made (the command, the
                               config, the commit, the date, the machine)

    python scripts/results.py            rewrite every README section <!-- results:<name> --> ... <!-- /results -->
                                         from its results file
    python scripts/results.py --check    exit 1 if any README table differs from its file (tests/test_results.py)

Experiment scripts call `record(...)` to write a results file; `from_report(...)` turns an eval report.json into one.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
README = ROOT / "README.md"
SECTION = re.compile(r"(<!-- results:(?P<name>[a-z0-9_]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)


# What measurements write: a change to these does not make the code a measurement ran on differ from HEAD.
OUTPUTS = ("docs/results", "bench/results", "README.md", "bench/README.md")


def commit() -> str:
    """HEAD, with "+changes" when tracked files other than the OUTPUTS differ from it (the measurement ran on
    uncommitted code or config)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", *(f":!{p}" for p in OUTPUTS))
    return head + ("+changes" if changed else "")


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} (Python {platform.python_version()})"


def record(name: str, title: str, columns: list[str], rows: list[list], command: str, config: dict | None = None,
           notes: str = "", extra: dict | None = None) -> Path:
    """Write docs/results/<name>.json. Rows hold plain values; the table renders numbers to 3 decimals."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"title": title, "columns": columns, "rows": rows, "notes": notes, "command": command,
            "config": config or {}, "commit": commit(), "date": time.strftime("%Y-%m-%d"), "machine": machine(),
            **(extra or {})}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return path


def cell(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def render(data: dict) -> str:
    """The README section for one results file: the table (or the example answers), its notes, and its source."""
    if data.get("kind") == "examples":
        lines = [f"**{data['title']}**", ""]
        for row in data["rows"]:
            prompt, answers = row[0], dict(zip(data["columns"][1:], row[1:]))
            lines += [f"> {prompt}", ""] + [f"- **{m}**: {text}" for m, text in answers.items()] + [""]
    else:
        lines = [f"**{data['title']}**", "", "| " + " | ".join(data["columns"]) + " |",
                 "|" + "---|" * len(data["columns"])]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in data["rows"]]
        lines.append("")
    if data.get("notes"):
        lines += [data["notes"], ""]
    lines.append(f"<sub>From `docs/results/{data['name']}.json` (commit {data['commit']}, {data['date']}, "
                 f"{data['machine']}). Reproduce: `{data['command']}`</sub>")
    return "\n".join(lines) + "\n"


def load(name: str) -> dict:
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"error: {README.name} has a results:{name} section but {path} does not exist")
    return {**json.loads(path.read_text()), "name": name}


def rewrite(text: str) -> str:
    return SECTION.sub(lambda m: m.group(1) + render(load(m.group("name"))) + m.group(4), text)


def from_report(report_path: Path, name: str, title: str, command: str, notes: str = "") -> Path:
    """A results file from an eval report.json: the headline metrics of every model."""
    report = json.loads(Path(report_path).read_text())
    columns = ["model", "held-out KL (top-k+tail)", "full-vocab KL", "own-answer reverse KL", "top-1 agreement",
               "exact accuracy", "mean answer tokens", "repetition", "cut off", "params (M)", "tokens/s (median)",
               "tokens/s min-max", "speed-up"]
    rows = []
    for model, m in report["models"].items():
        spread = (f"{m['tokens_per_s_min']:.1f}-{m['tokens_per_s_max']:.1f}" if m.get("tokens_per_s_min") else None)
        rows.append([model, m["heldout_kl"], m["heldout_kl_full"], m["own_answer_reverse_kl"], m["top1_agreement"],
                     m["exact_accuracy"], m["mean_response_tokens"], m["repetition_rate"], m["cutoff_rate"],
                     round(m["params"] / 1e6, 1) if m.get("params") else None, m["tokens_per_s"], spread,
                     f"{m['speedup_vs_teacher']:.2f}x" if m.get("speedup_vs_teacher") else None])
    config = json.loads((Path(report_path).parent / "run.json").read_text()).get("config", {})
    extra = {"degenerate_floor": report.get("degenerate_floor"), "comparison": report.get("comparison")}
    return record(name, title, columns, rows, command, config, notes, extra)


def examples_from_eval(eval_dir: Path, name: str, title: str, command: str, models=("teacher", "student"),
                       n: int = 3) -> Path:
    """Example answers from an eval folder's generations: n prompts evenly spaced over the held-out set (the same
    rule as the report's examples, so nothing is picked by hand), each model's answer in one line."""
    gens = {m: [json.loads(x) for x in (Path(eval_dir) / "generations" / f"{m}.jsonl").read_text().splitlines()
                if x.strip()] for m in models}
    first = gens[models[0]]
    picks = [round(i * (len(first) - 1) / max(n - 1, 1)) for i in range(n)]

    def one_line(text: str) -> str:
        text = " ".join(text.split())
        return (text[:280] + " ...") if len(text) > 280 else (text or "(empty)")

    rows = [[one_line(first[i]["prompt"])] + [one_line(gens[m][i]["response"]) for m in models] for i in picks]
    config = json.loads((Path(eval_dir) / "run.json").read_text()).get("config", {})
    return record(name, title, ["prompt", *models], rows, command, config, extra={"kind": "examples"})


def main(argv: list[str]) -> int:
    text = README.read_text()
    new = rewrite(text)
    if argv == ["--check"]:
        if new != text:
            print("error: README tables differ from docs/results/*.json; run: python scripts/results.py",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    print(f"rewrote {len(SECTION.findall(text))} results sections in {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
