"""The shared shape of `python -m <stage> CONFIG [key=value ...]`: one-line errors, a resume hint on Ctrl-C."""

import errno
import importlib
import os
import signal
import sys
import threading

from distill.config import parse_cli
from distill.errors import DistillError


CTRL_C_GRACE_S = 10.0  # after a Ctrl-C, a run still alive this long exits anyway


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


def stage_main(argv: list[str], stage: str, resume_hint: str) -> int:
    previous = signal.signal(signal.SIGINT, _exit_if_stuck(resume_hint))
    try:
        return _stage_main(argv, stage, resume_hint)
    finally:
        signal.signal(signal.SIGINT, previous)


def _disk_full(e: BaseException | None) -> bool:
    """An out-of-space error anywhere in the chain; safetensors reports it as a message, not an OSError."""
    while e is not None:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def _stage_main(argv: list[str], stage: str, resume_hint: str) -> int:
    cfg = None
    try:
        cfg, _ = parse_cli(argv, stage)
        run = importlib.import_module(f"{stage}.run").run  # after parse_cli: --help imports no torch or vLLM
        run(cfg)
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
    return 0
