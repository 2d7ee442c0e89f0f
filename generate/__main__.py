"""python -m generate CONFIG [key=value ...]: write the teacher's top-k shards for the run's corpora."""

import sys

from distill.config import parse_cli
from distill.errors import DistillError


def main(argv: list[str]) -> int:
    try:
        cfg, _ = parse_cli(argv, "generate")
        from generate.run import run  # after parse_cli: --help needs no torch/vLLM import

        run(cfg)
    except DistillError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: finished shards are kept; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # the guard matters: vLLM spawns worker processes that import this module
    sys.exit(main(sys.argv[1:]))
