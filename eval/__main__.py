"""python -m eval CONFIG [key=value ...]: evaluate the run's teacher and students and write the report."""

import sys

from distill.config import parse_cli
from distill.errors import DistillError


def main(argv: list[str]) -> int:
    try:
        cfg, _ = parse_cli(argv, "eval")
        from eval.run import run  # after parse_cli: --help needs no torch/vLLM import

        run(cfg)
    except DistillError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: finished per-model generation files are kept; rerun the same command to resume",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # the guard matters: vLLM spawns worker processes that import this module
    sys.exit(main(sys.argv[1:]))
