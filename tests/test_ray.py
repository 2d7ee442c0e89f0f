"""generate.executor=ray on a local Ray instance (two CPU workers, each engine on its own core, a tiny teacher).

* The shards a Ray run writes equal a local run's byte for byte (temperature 1: per-record seeds), and so do the
  manifests: who generated a shard does not show in it.
* A worker SIGKILLed while it generates loses only its shard, which another worker redoes; its engine's processes
  go with it.
* Ctrl-C stops a run within seconds, and the driver SIGKILLed mid-run (its whole process group, as `kill -9 -PGID`)
  leaves nothing running either; each rerun resumes from the shards already listed (never rewriting them) and the
  last one ends equal to the local run.
* Given answers the teacher scores (score mode, generate.references) on Ray: what one process writes.
* Bad settings end with one line naming the key, before any engine starts.

The runs are `python -m distill.generate` subprocesses in their own session (tests/fault_helpers.Child), so Ray's
processes are theirs, not pytest's. DISTILL_TEST_SLOW_UNIT_S (generate/ray_executor.py) makes each shard take a few
seconds longer, which holds a worker inside a shard long enough to be killed there.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import psutil
import pytest
import yaml

from conftest import build_tiny_llama
from distill import shards as sh
from distill.config import load_config
from distill.errors import DistillError
from distill.generate.ray_executor import cores_for, run_on_ray
from distill.generate.run import engine_batch_invariant, run
from fault_helpers import Child

N_PROMPTS, SHARD_SIZE = 24, 4  # six units for two workers
RUN_LIMIT_S = 420  # a whole Ray run: ~10 s for Ray, ~30-60 s per engine start (two at once on 2 cores), generation
STOP_LIMIT_S = 15.0  # Ctrl-C must end the run within this (as for the local path, tests/test_faults.py)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("ray") / "tiny-vllm-teacher", layers=2, hidden=128, seed=0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ray") / "prompts.jsonl"
    topics = ["rivers", "bread", "the moon", "chess", "bees", "volcanoes", "trains", "tea", "glass", "owls"]
    path.write_text("".join(json.dumps({"id": f"p{i:02d}", "prompt": f"Say something about {topics[i % 10]} ({i})."})
                            + "\n" for i in range(N_PROMPTS)))
    return path


def config(path: Path, teacher: Path, corpus: Path, run_dir: Path, **generate) -> Path:
    path.write_text(yaml.safe_dump({
        "run": {"dir": str(run_dir)},
        "teacher": {"model": str(teacher), "max_model_len": 1024},
        "generate": {"prompts": str(corpus), "heldout_prompts": None, "k": 5, "max_tokens": 8,
                     "shard_size": SHARD_SIZE, "temperature": 1.0, **generate}}))
    return path


def folder(run_dir: Path) -> Path:
    return run_dir / "shards" / "train"


def files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder(run_dir).iterdir()) if not p.name.startswith(".")}


@pytest.fixture(scope="module")
def reference(teacher, corpus, tmp_path_factory) -> dict[str, bytes]:
    """The local executor's shards and manifest, from one engine in this process (closed before any Ray test)."""
    run_dir = tmp_path_factory.mktemp("ray") / "local"
    run(load_config(config(run_dir.parent / "local.yaml", teacher, corpus, run_dir), []))
    return files(run_dir)


def assert_same_as_local(run_dir: Path, reference: dict[str, bytes]) -> None:
    """Byte for byte where the engines are batch-invariant (CPU, one thread each: this machine); elsewhere (CUDA)
    the same shards and records, without the bit-for-bit promise."""
    manifest = sh.open_shard_set(folder(run_dir))
    assert manifest["sampling"]["seed_scheme"] == "per_record"
    if manifest["sampling"]["batch_invariant"]:
        assert files(run_dir) == reference
    else:
        assert sorted(files(run_dir)) == sorted(reference)
        assert [e.id for e in sh.read_examples(folder(run_dir))] == [f"p{i:02d}/0" for i in range(N_PROMPTS)]


def ray_run(yaml_path: Path, **env) -> Child:
    return Child(["-m", "distill.generate", str(yaml_path)], env={k: str(v) for k, v in env.items()})


def wait_for(child: Child, what, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        assert child.proc.poll() is None, f"the run ended before {message}:\n{child.tail()}"
        time.sleep(0.2)
    child.cleanup()
    pytest.fail(f"timed out waiting for {message}:\n{child.tail()}")


def busy_worker(child: Child):
    """A Ray worker process inside TeacherWorker.shard (Ray names the process after the method it runs)."""
    for p in child.descendants():
        try:
            if p.cmdline()[:1] == ["ray::TeacherWorker.shard"]:
                return p
        except psutil.Error:
            continue
    return None


@pytest.mark.slow
def test_ray_equals_local_and_a_killed_worker_loses_only_its_shard(teacher, corpus, reference, tmp_path):
    run_dir = tmp_path / "ray"
    child = ray_run(config(tmp_path / "ray.yaml", teacher, corpus, run_dir, executor="ray"),
                    DISTILL_TEST_SLOW_UNIT_S=2)
    try:
        victim = wait_for(child, lambda: busy_worker(child), RUN_LIMIT_S, "a worker generating a shard")
        engine = victim.children(recursive=True)  # its vLLM engine core and worker processes
        assert any("VLLM" in p.name() for p in engine), [p.name() for p in engine]
        victim.send_signal(signal.SIGKILL)
        assert child.wait(timeout=RUN_LIMIT_S) == 0, child.tail()
    finally:
        child.cleanup()
    assert child.seen("a Ray worker died") and child.seen("goes to another worker"), child.tail()
    assert child.seen(f"[generate] train: {N_PROMPTS} prompts, {N_PROMPTS} records"), child.tail()
    time.sleep(2)
    assert not [p.pid for p in engine if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert_same_as_local(run_dir, reference)
    log = (run_dir / "logs" / "generate.log").read_text()
    assert "engine on cores 0" in log and "engine on cores 1" in log  # one core each, not both on core 0
    assert "Started a local Ray instance" in log and "Started a local Ray instance" not in child.output()


@pytest.mark.slow
def test_ctrl_c_and_a_killed_driver_leave_nothing_running_and_reruns_resume(teacher, corpus, reference, tmp_path):
    run_dir = tmp_path / "ray"
    yaml_path = config(tmp_path / "ray.yaml", teacher, corpus, run_dir, executor="ray")
    listed = lambda: (sh.read_manifest(folder(run_dir)) or {"shards": []})["shards"]  # noqa: E731

    child = ray_run(yaml_path, DISTILL_TEST_SLOW_UNIT_S=3)  # Ctrl-C (SIGINT to the group) once a shard is listed
    try:
        wait_for(child, listed, RUN_LIMIT_S, "a first shard in the manifest")
        rc, stop_s = child.interrupt()  # asserts that every process the run started is gone 10 s after its exit
    finally:
        child.cleanup()
    assert rc == 130 and stop_s <= STOP_LIMIT_S and child.seen("rerun the same command to resume"), child.tail()
    after_ctrl_c = len(listed())

    child = ray_run(yaml_path, DISTILL_TEST_SLOW_UNIT_S=3)  # resumes, then SIGKILL once it has listed one more
    try:
        wait_for(child, lambda: len(listed()) > after_ctrl_c, RUN_LIMIT_S, "one more shard in the manifest")
        child.kill()  # SIGKILL to the driver's process group; asserts that every process it started is gone
    finally:
        child.cleanup()
    manifest = sh.read_manifest(folder(run_dir))
    assert not manifest["complete"] and len(manifest["shards"]) < N_PROMPTS // SHARD_SIZE
    kept = {e["file"]: (folder(run_dir) / e["file"]).stat().st_mtime_ns for e in manifest["shards"]}

    rerun = ray_run(yaml_path)
    try:
        assert rerun.wait(timeout=RUN_LIMIT_S) == 0, rerun.tail()
    finally:
        rerun.cleanup()
    assert {name: (folder(run_dir) / name).stat().st_mtime_ns for name in kept} == kept  # kept, not redone
    assert_same_as_local(run_dir, reference)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["score", "references"])
def test_given_answers_on_ray_equal_local(teacher, tmp_path, mode):
    """Answers the teacher scores instead of sampling go through the same units: generate.mode=score (every prompt
    has one) and generate.references (some training prompts have one, the others are sampled) write on Ray the same
    bytes as one process."""
    answered = tmp_path / "answered.jsonl"
    answered.write_text("".join(json.dumps({"id": f"s{i:02d}", "prompt": f"Name a colour ({i}).",
                                            **({"response": f"Blue, like the sea on day {i}."} if mode == "score"
                                               else {"gold": f"Blue ({i})."} if i % 2 else {})}) + "\n"
                                for i in range(8)))
    settings = {"mode": "score"} if mode == "score" else {"references": "gold"}
    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
    run(load_config(config(tmp_path / "local.yaml", teacher, answered, local_dir, **settings), []))
    child = ray_run(config(tmp_path / "ray.yaml", teacher, answered, ray_dir, executor="ray", **settings))
    try:
        assert child.wait(timeout=RUN_LIMIT_S) == 0, child.tail()
    finally:
        child.cleanup()
    manifest = sh.open_shard_set(folder(ray_dir))
    assert len(files(ray_dir)) == 3  # two shards and the manifest
    if mode == "score":
        assert manifest["mode"] == "score"
    else:
        assert manifest["responses"]["references"] == {"column": "gold", "prompts": 4}
        given = {e.id for e in sh.read_examples(folder(ray_dir)) if e.finish_reason == "given"}
        assert given == {f"s{i:02d}/0" for i in range(1, 8, 2)}
    if engine_batch_invariant(load_config(tmp_path / "ray.yaml")):  # CPU, one thread per engine (this machine)
        assert files(ray_dir) == files(local_dir)
    else:
        assert sorted(files(ray_dir)) == sorted(files(local_dir))


def test_cores_wrap_around_when_workers_outnumber_them():
    assert [cores_for(slot, 1, 2) for slot in range(4)] == ["0", "1", "0", "1"]
    assert [cores_for(slot, 2, 6) for slot in range(4)] == ["0,1", "2,3", "4,5", "0,1"]


@pytest.mark.parametrize("override,message", [
    ("generate.ray_workers=0", "config key generate.ray_workers: must be at least 1, got 0"),
    ("generate.ray_cpus_per_worker=0", "config key generate.ray_cpus_per_worker: must be at least 1, got 0"),
    ("generate.ray_gpus_per_worker=-1", "config key generate.ray_gpus_per_worker: must be at least 0, got -1"),
    ("generate.executor=slurm", "config key generate.executor"),
])
def test_bad_ray_settings_name_the_key(override, message):
    with pytest.raises(DistillError, match=message):
        load_config(None, [override])


def test_unreachable_cluster_is_one_line_before_any_engine(teacher, corpus, tmp_path):
    yaml_path = config(tmp_path / "ray.yaml", teacher, corpus, tmp_path / "run", executor="ray",
                       ray_address="127.0.0.1:1")
    child = ray_run(yaml_path)
    assert child.wait(timeout=120) == 1
    lines = child.output().strip().splitlines()
    assert lines[-1].startswith("error: generate.ray_address=127.0.0.1:1: no Ray cluster answers there"), lines
    assert "Traceback" not in child.output() and not (tmp_path / "run" / "shards").exists()


@pytest.mark.parametrize("override,message", [
    ("teacher.data_parallel_size=2", "teacher.data_parallel_size: must be 1 with generate.executor=ray"),
    ("teacher.backend=openai", "generate.executor=ray runs vLLM engines"),
])
def test_what_ray_cannot_run_is_refused(override, message, tmp_path):
    cfg = load_config(None, ["generate.executor=ray", "teacher.base_url=http://127.0.0.1:1/v1", override,
                             f"run.dir={tmp_path}"])
    with pytest.raises(DistillError, match=message):
        run_on_ray(cfg)
