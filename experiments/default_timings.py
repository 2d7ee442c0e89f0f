"""Every committed measurement of the default run's timing, side by side.

The pipeline's wall time and the student's speed-up are timings on a shared 2-core machine whose speed changes from
hour to hour; one run can land on either side of a target. This table reads every version of
docs/results/default_goals.json in the git history (each written by experiments/default_run.py) with the
default_run.json committed beside it, so a reader sees the spread of the measurements rather than the last one.
The teacher's own speed in each report says how fast the machine was.

    python experiments/default_timings.py
Writes docs/results/default_timings.json.
"""

from __future__ import annotations

import json
import subprocess
import sys

from common import ROOT

import results  # noqa: E402

GOALS, RUN = "docs/results/default_goals.json", "docs/results/default_run.json"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def measured(goals: dict, start: str) -> float | None:
    """The measured value of the first target row whose name starts with `start`, or None."""
    return next((row[2] for row in goals["rows"] if row[0].startswith(start)), None)


def row_of(version: str) -> list:
    goals = json.loads(git("show", f"{version}:{GOALS}"))
    run = json.loads(git("show", f"{version}:{RUN}"))
    teacher = dict(zip(run["columns"], next(r for r in run["rows"] if r[0] == "teacher")))
    interleaved = measured(goals, "speed-up over the teacher, interleaved")
    report = measured(goals, "speed-up over the teacher, the report's") or measured(goals, "speed-up over the teacher")
    return [goals["commit"], goals["date"], goals["config"]["student"]["from_teacher_layers"],
            goals["config"]["train"]["max_steps"], measured(goals, "wall time"), interleaved, report,
            teacher["tokens/s (median)"]]


def main() -> int:
    versions = git("log", "--format=%H", "--", GOALS).split()[::-1]  # oldest first
    rows = [row_of(v) for v in versions]
    results.record(
        "default_timings", "The default run's timings, every time they were measured (oldest first)",
        ["measured at commit", "date", "layers kept", "training steps", "pipeline minutes (goal <= 15)",
         "speed-up, interleaved (goal >= 1.5)", "speed-up, the report's", "teacher tok/s in the report"],
        rows, "python experiments/default_timings.py",
        notes="Each row is one `python experiments/default_run.py` (the pipeline from an empty run folder, then "
        "bench/speedup.py), read back from the results files committed with it; n/a where the run predates "
        "bench/speedup.py. The teacher's speed in the report (the same model every time) shows how fast the machine "
        "was that run. Older rows measured older versions of the pipeline and its default (layers, steps).",
        extra={"versions": versions})
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
