"""python -m generate CONFIG [key=value ...]: write the teacher's top-k shards for the run's corpora."""

import sys

from distill.cli import stage_main


def main(argv: list[str]) -> int:
    return stage_main(argv, "generate", "finished shards are kept; rerun the same command to resume")


if __name__ == "__main__":  # the guard matters: vLLM spawns worker processes that import this module
    sys.exit(main(sys.argv[1:]))
