"""python -m distill.onpolicy CONFIG [key=value ...]: the same as `distill onpolicy CONFIG ...` (see distill/cli.py)."""

import sys

from distill.cli import stage_main

if __name__ == "__main__":  # the guard matters: vLLM spawns worker processes that import this module
    sys.exit(stage_main("onpolicy", sys.argv[1:]))
