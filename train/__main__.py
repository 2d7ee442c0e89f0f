"""python -m distill.train CONFIG [key=value ...]: the same as `distill train CONFIG ...` (see distill/cli.py)."""

import sys

from distill.cli import stage_main

if __name__ == "__main__":  # the guard matters: vLLM spawns worker processes that import this module
    sys.exit(stage_main("train", sys.argv[1:]))
