"""python -m train CONFIG [key=value ...]: train the student on the teacher's shards (resumes where it stopped).

Several processes: accelerate launch --config_file configs/accelerate/ddp_cpu_2proc.yaml -m train CONFIG ...
"""

import sys

from distill.cli import stage_main


def main(argv: list[str]) -> int:
    return stage_main(argv, "train", "rerun the same command to resume from the newest checkpoint")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
