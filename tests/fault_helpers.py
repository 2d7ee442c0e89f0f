"""Helpers for tests/test_faults.py, test_bad_inputs.py and test_security.py.

* `Child`: a stage run as a subprocess in its own session (so a signal to its process group also reaches vLLM's
  engine core and worker processes), its output collected by a thread with timestamps.
* `FakeBackend`: a deterministic stand-in for the teacher engine (generate.run accepts any backend), for faults
  that do not depend on vLLM (a failing write) and so should not cost a 30 s engine start.
* `python tests/fault_helpers.py generate CONFIG [k=v ...]`: the real `distill generate` command line with
  FakeBackend in place of the engine (used with a file-size limit set in the child).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable


class Child:
    """`python -m distill.<stage> ...` in a new session; `.lines` holds (seconds since start, text) as they arrive."""

    def __init__(self, args: list[str], env: dict | None = None, preexec_fn=None):
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([PY, *args], cwd=REPO, env={**os.environ, **(env or {})},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=preexec_fn)
        self.pid = self.proc.pid
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                break
            buf += chunk.replace(b"\r", b"\n")  # tqdm redraws with \r
            *done, buf = buf.split(b"\n")
            now = time.monotonic() - self.t0
            self.lines.extend((now, line.decode("utf-8", "replace")) for line in done if line.strip())
        if buf.strip():
            self.lines.append((time.monotonic() - self.t0, buf.decode("utf-8", "replace")))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def output(self) -> str:
        return "\n".join(text for _, text in self.lines)

    def tail(self, n: int = 40) -> str:
        return "\n".join(text for _, text in self.lines[-n:])

    def seen(self, text: str) -> bool:
        return any(text in line for _, line in list(self.lines))

    def descendants(self) -> list:
        import psutil

        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return rc

    def interrupt(self, timeout: float = 120) -> tuple[int, float]:
        """Ctrl-C as a terminal sends it (SIGINT to the whole process group); return (exit status, seconds to stop).
        Every process the run had started must be gone within 10 s of its exit."""
        family = self.descendants()
        sent = self.elapsed
        self.signal_group(signal.SIGINT)
        rc = self.wait(timeout=timeout)
        stop_s = self.elapsed - sent
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in family):
            time.sleep(0.1)
        left = [p.pid for p in family if _alive(p)]
        assert not left, f"processes left running after Ctrl-C: {left}\n{self.tail()}"
        return rc, stop_s

    def kill(self) -> int:
        """SIGKILL the whole process group; return the exit status. Every process of the group must be gone."""
        import psutil

        family = self.descendants()
        self.signal_group(signal.SIGKILL)
        rc = self.wait(timeout=60)
        # Processes outside the group (Ray's workers, their vLLM engines) end on their own parent-death checks:
        # seconds on a quiet machine, longer on a loaded one.
        deadline = time.monotonic() + 60
        alive = family
        while time.monotonic() < deadline:
            alive = [p for p in alive if _alive(p)]
            if not alive:
                break
            time.sleep(0.1)
        for p in alive:  # ours: started by this child; never leave them running
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        assert not alive, f"processes of the killed run survived SIGKILL: {[p.pid for p in alive]}"
        return rc

    def cleanup(self) -> None:
        if self.proc.poll() is None:
            self.kill()


def _alive(p) -> bool:
    import psutil

    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class FakeBackend:
    """Deterministic teacher: the answer and its top-k depend only on the prompt's token ids."""

    name = "fake"

    def __init__(self, vocab: int = 49152, fail_with: Exception | None = None):
        self.vocab, self.fail_with, self.calls = vocab, fail_with, 0

    def _result(self, ids: list[int], n_tokens: int, k: int, sample: int):
        import numpy as np

        from distill.generate.backends import Result

        seed = int.from_bytes(hashlib.sha256(repr((ids, sample)).encode()).digest()[:8], "little")
        rng = np.random.default_rng(seed)
        tokens, sampled, topk_ids, topk_lps = [], [], [], []
        for _ in range(n_tokens):
            row = rng.choice(np.arange(100, 5000), size=k, replace=False)
            logits = rng.normal(size=k) * 3
            lps = logits - np.logaddexp.reduce(np.append(logits, 0.0))  # some mass left outside the top-k
            tokens.append(int(row[0]))
            sampled.append(float(lps[0]))
            topk_ids.append([int(i) for i in row])
            topk_lps.append([float(x) for x in lps])
        text = " ".join(f"w{t}" for t in tokens)
        return Result(list(ids), text, tokens, sampled, topk_ids, topk_lps, "length")

    def generate(self, prompts, prompt_token_ids, g):
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        return [[self._result(ids, g.max_tokens, g.k, s) for s in range(g.n)] for ids in prompt_token_ids]

    def score(self, prompts, prompt_token_ids, response_token_ids, k):
        raise NotImplementedError

    def close(self) -> None:
        pass


def _main(argv: list[str]) -> int:
    sys.path.insert(0, str(REPO))
    if argv[:1] != ["generate"]:
        print("usage: python tests/fault_helpers.py generate CONFIG [key=value ...]", file=sys.stderr)
        return 2
    import distill.generate.run
    from distill.cli import stage_main

    distill.generate.run.make_backend = lambda cfg, tokenizer: FakeBackend()
    return stage_main("generate", argv[1:])


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
