"""What the user reads: progress bars, one-line stage summaries and real errors. Everything the libraries say
(vLLM engine configs, transformers and datasets notices, Python warnings) goes to RUN/logs/<stage>.log instead.

vLLM's engine runs in child processes that inherit the parent's stdout and stderr when they start, so the engine is
started with both file descriptors pointed at the log file (`output_to_log`); its later output lands there too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path

LIBRARIES = ("vllm", "transformers", "datasets", "accelerate", "trl", "peft", "torch", "huggingface_hub", "py.warnings")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_current: Path | None = None


def current_log() -> Path | None:
    """The log file of this process's stage, once route_library_logs has run."""
    return _current


def route_library_logs(run_dir: str | Path, stage: str, announce: bool = True) -> Path:
    """Send library logging to RUN/logs/<stage>.log and say where, once."""
    global _current
    path = Path(run_dir) / "logs" / f"{stage}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_distill", False)]:
        root.removeHandler(old)
    handler._distill = True
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    for name in LIBRARIES:
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
    _quiet_transformers_and_datasets()
    _vllm_logs_to(path)
    _current = path
    if announce:
        print(f"[{stage}] library logs: {path}", flush=True)
    return path


def _quiet_transformers_and_datasets() -> None:
    import datasets
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    hf_logging.disable_progress_bar()  # "Loading weights" bars; the stages draw their own
    datasets.utils.logging.disable_progress_bar()
    datasets.utils.logging.get_logger().handlers.clear()


def _vllm_logs_to(path: Path) -> None:
    """vLLM configures its loggers from VLLM_LOGGING_CONFIG_PATH in every process it starts (read at import)."""
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": _FORMAT}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(path.resolve()), "formatter": "plain",
                              "encoding": "utf-8"}},
        "loggers": {"vllm": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }
    config_path = path.with_suffix(".logging.json")
    config_path.write_text(json.dumps(config, indent=1) + "\n")
    os.environ["VLLM_CONFIGURE_LOGGING"] = "1"
    os.environ["VLLM_LOGGING_CONFIG_PATH"] = str(config_path.resolve())
    if "vllm" in sys.modules:  # already imported (and configured) in this process: point its logger at the file
        logger = logging.getLogger("vllm")
        logger.handlers.clear()
        logger.propagate = True


@contextlib.contextmanager
def output_to_log():
    """Point file descriptors 1 and 2 at the stage's log file for the duration (child processes keep them)."""
    path = current_log()
    if path is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)
