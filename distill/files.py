"""Files every stage writes and reads: atomic writes, JSON and JSON Lines, checksums.

Every file the project writes goes through `atomic_write` (temp file, fsync, rename, fsync the folder), so a reader
never sees half a file and a crash loses only the file in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from distill.errors import DistillError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def digest(obj: Any) -> str:
    """sha256 of a JSON-able value, independent of key order."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8"))


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file, fsync, rename over `path`, fsync the folder. Readers never see a partial file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if os.environ.get("DISTILL_TEST_SLOW_WRITE_S"):  # test hook (tests/test_faults.py): widen the crash window
            import time

            time.sleep(float(os.environ["DISTILL_TEST_SLOW_WRITE_S"]))
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise DistillError(f"{path}: write failed ({e.strerror or e}); files written before it are intact") from None


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))


def read_json(path: Path) -> Any:
    """The parsed file, or None if there is no such file. A file that is not JSON is an error naming it."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DistillError(f"{path}: not valid JSON ({e})") from None


def read_jsonl(path: Path) -> list[dict]:
    """Every row of a JSON Lines file; a malformed line is an error naming the file and line."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DistillError(f"{path}:{n}: malformed JSON ({e.msg} at column {e.colno})") from None
    return rows
