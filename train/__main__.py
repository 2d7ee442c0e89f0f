"""python -m train CONFIG [key=value ...]: train the student on the teacher's shards (resumes where it stopped).

Several processes: accelerate launch --config_file configs/accelerate/ddp_cpu_2proc.yaml -m train CONFIG ...
"""

import sys

from distill.config import parse_cli
from distill.errors import DistillError


def main(argv: list[str]) -> int:
    try:
        cfg, _ = parse_cli(argv, "train")
        from train.run import run  # after parse_cli: --help needs no torch import

        run(cfg)
    except DistillError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"\n{e or 'interrupted; rerun the same command to resume from the newest checkpoint'}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
