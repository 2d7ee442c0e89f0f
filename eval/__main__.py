"""python -m eval CONFIG [key=value ...]: evaluate the run's teacher and students and write the report."""

import sys

from distill.cli import stage_main


def main(argv: list[str]) -> int:
    return stage_main(argv, "eval", "finished per-model generation files are kept; rerun the same command to resume")


if __name__ == "__main__":  # the guard matters: vLLM spawns worker processes that import this module
    sys.exit(main(sys.argv[1:]))
