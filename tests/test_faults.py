"""Crashes and interruptions never lose or corrupt data.

* generate, real vLLM engine, as `python -m generate` subprocesses in their own session: one Ctrl-C (SIGINT to the
  process group, as a terminal sends it) and TRIALS SIGKILLs of the whole process group (engine core and worker
  included), some as soon as a shard or manifest temp file appears and the rest at seeded random moments, all on
  one chain of output folders (each run resumes what the killed one left); after every kill the folder is checked;
  at the end every folder is completed and must equal an uninterrupted reference run byte for byte (temperature 0).
  The test-only hook DISTILL_TEST_SLOW_WRITE_S (distill/shards.py atomic_write: sleep between the finished temp
  file and its rename) holds each write window open long enough for the watcher to see it and kill inside it.
* train: SIGINT, SIGKILL and a half-written newest checkpoint (simulated by deleting its weights).
* eval: SIGINT while the second model's engine runs; the first model's files are kept, a rerun finishes.
* a write that fails (file-size limit; a read-only output folder) ends with one line naming the path, and the
  shards written before it stay intact. These use tests/fault_helpers.FakeBackend: the failure is in our write
  path, so no engine start is needed.

Runtime is dominated by vLLM engine starts (~25-40 s each on a loaded 2-core machine); DISTILL_FAULT_TRIALS
(default 10) sets the number of SIGKILL trials.
"""

from __future__ import annotations

import io
import json
import os
import random
import resource
import shutil
import time
from pathlib import Path

import pytest
import yaml
import zstandard

from configs import generate_config
from conftest import build_tiny_llama
from distill import shards as sh
from distill.config import load_config
from distill.errors import DistillError
from fault_helpers import Child, FakeBackend

TRIALS = int(os.environ.get("DISTILL_FAULT_TRIALS", "10"))
SLOW_WRITE_S = 0.5
N_PROMPTS = 12
SHARD_SIZE = 2
STOP_LIMIT_S = 15.0  # Ctrl-C must end a stage within this (loaded 2-core machine)


# ---- shared ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vteacher(tmp_path_factory) -> Path:
    # head_dim 32: vLLM's CPU attention has no kernel for conftest's tiny_teacher (head_dim 16).
    return build_tiny_llama(tmp_path_factory.mktemp("faults") / "vteacher", layers=2, hidden=128, seed=0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "prompts.jsonl"
    topics = ["rivers", "bread", "the moon", "chess", "bees", "volcanoes", "trains", "tea", "glass", "owls"]
    path.write_text("".join(json.dumps({"id": f"p{i:02d}", "prompt": f"One fact about {topics[i % 10]} ({i})."}) + "\n"
                            for i in range(N_PROMPTS)))
    return path


PROMPT_IDS = [f"p{i:02d}" for i in range(N_PROMPTS)]


def write_yaml(path: Path, sections: dict) -> Path:
    path.write_text(yaml.safe_dump(sections))
    return path


def gen_config(path: Path, teacher: Path, corpus: Path, run_dir: Path, **generate) -> Path:
    return write_yaml(path, {
        "run": {"dir": str(run_dir)},
        "teacher": {"model": str(teacher), "max_model_len": 1024},
        "generate": {"prompts": str(corpus), "heldout_prompts": None, "k": 5, "max_tokens": 8,
                     "shard_size": SHARD_SIZE, "temperature": 0.0, **generate}})


def shard_folder(run_dir: Path) -> Path:
    return Path(run_dir) / "shards" / "train"


def listdir(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def check_crash_state(folder: Path, prompt_ids: list[str], shard_size: int = SHARD_SIZE) -> int:
    """What a crash may leave behind: a manifest whose shards all pass their checksum and hold exactly their
    prompts, shard files not yet in the manifest that are complete (renamed atomically), temp files. Returns
    the number of shards the manifest lists."""
    manifest = sh.read_manifest(folder)  # raises DistillError if the manifest itself were torn
    shard_files = [n for n in listdir(folder) if n.startswith("shard-")]
    if manifest is None:  # prepare writes the manifest before any shard
        assert not shard_files, f"shards without a manifest in {folder}: {shard_files}"
        return 0
    seen = []
    for entry in manifest["shards"]:
        data = sh.verify_shard(folder, entry)  # size + sha256
        ids = [sh.decode_record(r, manifest, w).prompt_id for w, r in sh.iter_shard_lines(folder, entry, data)]
        i = entry["index"]
        assert ids == prompt_ids[i * shard_size:(i + 1) * shard_size], (entry, ids)
        seen += ids
    assert len(seen) == len(set(seen)), "a prompt is listed twice"
    listed = {e["file"] for e in manifest["shards"]}
    for name in set(shard_files) - listed:  # renamed into place, manifest not yet rewritten: must be whole
        data = (folder / name).read_bytes()
        text = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read().decode("utf-8")
        entry = {"file": name, "records": len(text.splitlines()), "bytes": len(data), "sha256": sh.sha256_bytes(data)}
        for where, record in sh.iter_shard_lines(folder, entry, data):
            sh.decode_record(record, manifest, where)
    return len(manifest["shards"])


def shard_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).glob("shard-*"))}


def assert_complete_and_equal(folder: Path, reference: Path) -> None:
    manifest = sh.open_shard_set(folder)  # complete
    ids = [e.prompt_id for e in sh.read_examples(folder, manifest)]  # every checksum, every record
    assert ids == PROMPT_IDS, f"{folder}: prompts not each exactly once: {ids}"
    assert not [n for n in listdir(folder) if ".tmp-" in n]
    assert shard_bytes(folder) == shard_bytes(reference), f"{folder} differs from the uninterrupted run"
    ref = sh.open_shard_set(reference)
    assert manifest["shards"] == ref["shards"] and manifest["counts"] == ref["counts"]


def watch(child: Child, folder: Path, until, limit_s: float = 400) -> None:
    """Poll every 20 ms until until(now) is true or the child exits."""
    while child.proc.poll() is None:
        if until(child.elapsed):
            return
        assert child.elapsed < limit_s, f"run did not finish in {limit_s} s:\n{child.tail()}"
        time.sleep(0.02)


# ---- generate: Ctrl-C and SIGKILL -----------------------------------------------------------------------------


def test_generate_ctrl_c_and_random_sigkills_never_lose_or_corrupt_shards(vteacher, corpus, tmp_path):
    slow = {"DISTILL_TEST_SLOW_WRITE_S": str(SLOW_WRITE_S)}

    # 1. Reference, uninterrupted, with the same slow writes: its timeline sets the kill times.
    ref_dir = tmp_path / "ref"
    child = Child(["-m", "distill.generate", str(gen_config(tmp_path / "ref.yaml", vteacher, corpus, ref_dir))], env=slow)
    marks = {}

    def ref_progress(now):
        names = listdir(shard_folder(ref_dir))
        if "anchor" not in marks and any(n.startswith((".shard-", "shard-")) for n in names):
            marks["anchor"] = now  # the first shard write began: the engine is up
        if "anchor" in marks and "done" not in marks:
            m = sh.read_manifest(shard_folder(ref_dir)) if sh.MANIFEST in names else None
            if m and m["complete"]:
                marks["done"] = now
        return False

    watch(child, shard_folder(ref_dir), ref_progress)
    assert child.wait(60) == 0, child.tail()
    reference = shard_folder(ref_dir)
    assert_complete_and_equal(reference, reference)
    t_anchor, t_total = marks["anchor"], marks.get("done", child.elapsed) + 1.0

    chains = [tmp_path / "chain0"]

    def new_write(folder, pid, before):
        return any(n.endswith(f".tmp-{pid}") and n.startswith(".shard-") or (n.startswith("shard-") and n not in before)
                   for n in listdir(folder))

    # 2. Ctrl-C once the first shard is in the manifest: stops in time, says how to resume, keeps the shards.
    folder = shard_folder(chains[0])
    config = gen_config(tmp_path / "chain0.yaml", vteacher, corpus, chains[0])
    child = Child(["-m", "distill.generate", str(config)], env=slow)
    try:
        watch(child, folder, lambda now: (m := sh.read_manifest(folder) if sh.MANIFEST in listdir(folder) else None)
              is not None and len(m["shards"]) >= 1)
        assert child.proc.poll() is None, f"generate finished before Ctrl-C:\n{child.tail()}"
        rc, stop_s = child.interrupt()
    finally:
        child.cleanup()
    assert rc == 130, child.tail()
    assert child.seen("finished shards are kept; rerun the same command to resume"), child.tail()
    assert stop_s <= STOP_LIMIT_S, f"Ctrl-C took {stop_s:.1f} s to stop generate"
    assert 1 <= check_crash_state(folder, PROMPT_IDS) < N_PROMPTS // SHARD_SIZE

    # 3. SIGKILL trials. Engine starts vary a lot (the reference's first write at 80% of T is typical), so a kill
    #    at a random time mostly lands before the first shard. Hence two kinds of trial:
    #    * "at a shard write" / "at a manifest update" (TRIALS // 5 each, at least 1, run first): kill as soon as
    #      this run's j-th shard temp file, or the manifest temp file after its j-th new shard, is seen (j drawn
    #      from the shards left but the last). The slow-write hook holds each temp file for SLOW_WRITE_S, far
    #      longer than the 20 ms poll, so these land mid-write by construction and are checked to.
    #    * "timeline": stratified seeded times over the reference timeline [0, T], ascending, so the chain is
    #      still fresh when the late (mid-run) times come; a time before the reference's first shard write
    #      counts from the start, a later one from this run's own first shard write.
    rng = random.Random(20240611)
    n_event = max(1, TRIALS // 5)
    n_uniform = max(0, TRIALS - 2 * n_event)
    schedule = [("at a shard write", None), ("at a manifest update", None)] * n_event
    schedule += [("timeline", (i + rng.random()) / n_uniform * t_total) for i in range(n_uniform)]
    expected = {"at a shard write": "during a shard write", "at a manifest update": "during a manifest update"}
    landed = {"before first shard": 0, "during a shard write": 0, "during a manifest update": 0,
              "between writes": 0, "after the end": 0}
    log = []

    def shards_left(folder):
        return N_PROMPTS // SHARD_SIZE - len([n for n in listdir(folder) if n.startswith("shard-")])

    for kind, value in schedule:
        folder = shard_folder(chains[-1])
        # A new chain once this one is complete, or when a write-triggered kill has no shard write left to hit
        # (all shards on disk, the last manifest update cut short); step 4 finishes the old one.
        complete = (m := sh.read_manifest(folder)) is not None and m["complete"]
        if complete or (kind in expected and not shards_left(folder)):
            chains.append(tmp_path / f"chain{len(chains)}")
        run_dir = chains[-1]
        folder = shard_folder(run_dir)
        config = gen_config(tmp_path / f"{run_dir.name}.yaml", vteacher, corpus, run_dir)
        before = set(listdir(folder))
        start = offset = j = None
        if kind in expected:
            j = rng.randint(1, max(1, shards_left(folder) - 1))  # not the last: a missed window has a next one
        elif value < t_anchor:
            start = value
        else:
            offset = value - t_anchor
        child = Child(["-m", "distill.generate", str(config)], env=slow)
        anchor, shard_temps = [], set()

        def due(now):
            names = listdir(folder)
            shard_temps.update(n for n in names if n.startswith(".shard-") and n.endswith(f".tmp-{child.pid}"))
            if not anchor and new_write(folder, child.pid, before):
                anchor.append(now)
            if kind == "at a shard write":
                return len(shard_temps) >= j and any(n in shard_temps for n in names)
            if kind == "at a manifest update":
                renamed = [n for n in names if n.startswith("shard-") and n not in before]
                return len(renamed) >= j and f".{sh.MANIFEST}.tmp-{child.pid}" in names
            if start is not None:
                return now >= start
            return bool(anchor) and now >= anchor[0] + offset

        try:
            watch(child, folder, due)
            exited = child.proc.poll() is not None
            rc = child.wait(60) if exited else child.kill()
        finally:
            child.cleanup()
        names = listdir(folder)
        if exited:
            assert rc == 0, child.tail()
            where = "after the end"
        elif any(n.startswith(".shard-") and n.endswith(f".tmp-{child.pid}") for n in names):
            where = "during a shard write"
        elif f".{sh.MANIFEST}.tmp-{child.pid}" in names:
            where = "during a manifest update" if anchor else "before first shard"
        elif not anchor:
            where = "before first shard"
        elif (m := sh.read_manifest(folder)) is not None and m["complete"]:
            where = "after the end"
        else:
            where = "between writes"
        landed[where] += 1
        n = check_crash_state(folder, PROMPT_IDS)
        when = (f"shard {j} of this run" if j is not None else f"{start:.1f} s" if start is not None
                else f"first write + {offset:.1f} s")
        log.append(f"kill at {when} ({kind}) -> {where} ({n} shards listed, {run_dir.name})")
        print(log[-1], flush=True)
        assert kind not in expected or where == expected[kind], "\n".join(log)

    # 4. Rerun every chain (no slow writes): an unfinished one completes, a finished one is a quick no-op that also
    #    clears a temp file a kill may have left; every chain then equals the uninterrupted run.
    for run_dir in chains:
        child = Child(["-m", "distill.generate", str(tmp_path / f"{run_dir.name}.yaml")])
        watch(child, shard_folder(run_dir), lambda now: False)
        assert child.wait(60) == 0, child.tail()
        assert_complete_and_equal(shard_folder(run_dir), reference)
    print(f"reference: first shard write at {t_anchor:.1f} s, T = {t_total:.1f} s; landed: {landed}")
    assert landed["during a shard write"] >= n_event and landed["during a manifest update"] >= n_event, "\n".join(log)


# ---- train: Ctrl-C, SIGKILL, half-written checkpoint ---------------------------------------------------------


@pytest.fixture(scope="module")
def train_shards(tiny_teacher, tmp_path_factory) -> Path:
    from shard_factory import write_shard_set

    out = tmp_path_factory.mktemp("faults") / "train-shards"
    write_shard_set(tiny_teacher, out)
    return out


def train_config(tmp_path: Path, teacher: Path, shards: Path, name: str) -> tuple[Path, Path]:
    run_dir = tmp_path / name
    shutil.copytree(shards, run_dir / "shards" / "train")
    config = write_yaml(tmp_path / f"{name}.yaml", {
        "run": {"dir": str(run_dir)}, "teacher": {"model": str(teacher)}, "student": {"from_teacher_layers": 1},
        # Two kept checkpoints: the state a kill during a save leaves behind (HF rotates only after a full save).
        "train": {"max_steps": 12, "save_steps": 3, "save_total_limit": 2, "batch_size": 4, "logging_steps": 1,
                  "eval_fraction": 0, "report_to": "none", "lr": 1e-3}})
    return config, run_dir


def complete_checkpoint(ckpts: Path, step: int) -> bool:
    ckpt = ckpts / f"checkpoint-{step}"
    return (ckpt / "trainer_state.json").is_file() and (ckpt / "model.safetensors").is_file()


def run_train(config: Path) -> tuple[int, Child]:
    child = Child(["-m", "distill.train", str(config)])
    try:
        rc = child.wait(timeout=400)
    finally:
        child.cleanup()
    return rc, child


def finish_train(config: Path) -> Child:
    rc, child = run_train(config)
    assert rc == 0, child.tail()
    return child


def test_train_ctrl_c_stops_says_how_to_resume_and_rerun_finishes(tiny_teacher, train_shards, tmp_path):
    config, run_dir = train_config(tmp_path, tiny_teacher, train_shards, "sigint")
    ckpts = run_dir / "student" / "checkpoints"
    child = Child(["-m", "distill.train", str(config)])
    try:
        watch(child, ckpts, lambda now: complete_checkpoint(ckpts, 3))
        assert child.proc.poll() is None, child.tail()
        rc, stop_s = child.interrupt()
    finally:
        child.cleanup()
    assert rc == 130, child.tail()
    last = child.lines[-1][1]
    assert last.startswith("interrupted at step ") and "rerun the same command to resume from " in last, child.tail()
    assert stop_s <= STOP_LIMIT_S, f"Ctrl-C took {stop_s:.1f} s to stop train"
    resume_from = last.split("resume from ")[1]
    assert Path(resume_from).parent == ckpts and complete_checkpoint(ckpts, int(resume_from.rsplit("-", 1)[1]))
    assert not (run_dir / "student" / "train_summary.json").exists()
    child = finish_train(config)
    assert child.seen(f"[train] resuming from {resume_from}"), child.tail()
    summary = json.loads((run_dir / "student" / "train_summary.json").read_text())
    assert summary["steps"] == 12 and summary["resumed_from"] == resume_from


def test_train_sigkill_resumes_and_a_half_written_checkpoint_is_skipped(tiny_teacher, train_shards, tmp_path):
    config, run_dir = train_config(tmp_path, tiny_teacher, train_shards, "sigkill")
    ckpts = run_dir / "student" / "checkpoints"

    def kill_after(step: int) -> Child:
        child = Child(["-m", "distill.train", str(config)])
        try:
            watch(child, ckpts, lambda now: complete_checkpoint(ckpts, step))
            assert child.proc.poll() is None, f"train finished before the kill:\n{child.tail()}"
            child.kill()
        finally:
            child.cleanup()
        return child

    kill_after(6)  # killed during step 7 (or while saving checkpoint-6's extras)
    child = kill_after(9)  # the rerun resumes from the newest checkpoint, and is killed again
    assert child.seen(f"[train] resuming from {ckpts / 'checkpoint-6'}"), child.tail()
    # A kill while checkpoint-9 was being saved: its weights are missing. The rerun must notice and use 6.
    (ckpts / "checkpoint-9" / "model.safetensors").unlink()
    child = finish_train(config)
    assert child.seen(f"{ckpts / 'checkpoint-9'}: incomplete checkpoint (no model weights"), child.tail()
    assert child.seen(f"[train] resuming from {ckpts / 'checkpoint-6'}"), child.tail()
    summary = json.loads((run_dir / "student" / "train_summary.json").read_text())
    assert summary["steps"] == 12 and summary["resumed_from"].endswith("checkpoint-6")
    assert (run_dir / "student" / "model.safetensors").is_file()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_train_out_of_disk_space_fails_in_one_line_and_rerun_finishes(tiny_teacher, train_shards, tmp_path):
    """A disk that fills up just as training ends: /dev/full answers every write with ENOSPC."""
    config, run_dir = train_config(tmp_path, tiny_teacher, train_shards, "diskfull")
    out = run_dir / "student"
    out.mkdir(parents=True)
    (out / "loss_curves.png").symlink_to("/dev/full")  # written in place, after the log and before the summary
    rc, child = run_train(config)
    assert rc == 1, child.tail()
    last = child.lines[-1][1]
    assert last == (f"error: no space left on device while writing under {run_dir}; free some space, then "
                    "rerun the same command to resume from the newest checkpoint"), child.tail()
    assert not child.seen("Traceback"), child.tail()
    assert not (out / "train_summary.json").exists()  # not marked complete

    (out / "loss_curves.png").unlink()  # space is back
    finish_train(config)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 12 and json.loads((out / "train_log.json").read_text())


# ---- eval: Ctrl-C ---------------------------------------------------------------------------------------------


def test_eval_ctrl_c_keeps_finished_models_and_rerun_finishes(vteacher, tiny_teacher, tmp_path):
    from distill.eval.run import generation_settings, load_sets

    heldout = tmp_path / "heldout.jsonl"
    # Enough work (64 x 400 tokens) that the live model is still generating a second after it starts, on a fast machine too.
    topics = [f"{a} {b}" for a in ("a red", "a quiet", "an old", "a tiny", "a brave", "a lost", "a happy", "a wise")
              for b in ("fox", "ship", "clock", "robot", "garden", "river", "castle", "dragon")]
    heldout.write_text("".join(json.dumps({"id": f"h{i}", "prompt": f"Tell a long story about {w}."}) + "\n"
                               for i, w in enumerate(topics)))
    run_dir = tmp_path / "run"
    config = write_yaml(tmp_path / "eval.yaml", {
        "run": {"dir": str(run_dir)}, "teacher": {"model": str(vteacher), "max_model_len": 512},
        "eval": {"prompts": [str(heldout)], "models": {"done": str(tiny_teacher), "live": str(vteacher)},
                 "max_tokens": 400}})
    # Model "done" finished in an earlier run: its files are what eval itself writes, settings included.
    cfg = load_config(config)
    sets = load_sets(cfg)
    gens = run_dir / "eval" / "generations"
    gens.mkdir(parents=True)
    rows = [{"set": name, "prompt_id": p.id, "category": None, "check": None, "prompt": p.messages[-1]["content"],
             "response": "Once upon a time.", "response_token_count": 5, "finish_reason": "stop",
             "prompt_token_count": 20} for name, ps in sets.items() for p in ps]
    (gens / "done.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (gens / "done.timing.json").write_text(json.dumps({
        "tokens": 5 * len(rows), "seconds": 1.0, "prompts": len(rows), "too_long": 0, "ttft_samples_s": [0.1], "tokens_per_s": 25.0,
        "ttft_s": 0.1, "params": None, "size_mb": None, "settings": generation_settings(str(tiny_teacher), sets, cfg)}))
    kept = {p.name: p.read_bytes() for p in gens.iterdir()}

    child = Child(["-m", "distill.eval", str(config)])
    try:
        watch(child, gens, lambda now: child.seen("live: engine up, generating"))
        time.sleep(1.0)
        assert child.proc.poll() is None, f"eval finished before Ctrl-C:\n{child.tail()}"
        rc, stop_s = child.interrupt()
    finally:
        child.cleanup()
    assert rc == 130, child.tail()
    # (vLLM can swallow a Ctrl-C during its engine start and hang; distill/cli.py then exits after 10 s.)
    assert child.seen("finished per-model files are kept; rerun the same command to resume"), child.tail()
    assert stop_s <= STOP_LIMIT_S, f"Ctrl-C took {stop_s:.1f} s to stop eval"
    assert child.seen("done: generations already done")
    assert {p.name: p.read_bytes() for p in gens.iterdir() if p.name.startswith("done.")} == kept
    assert not (gens / "live.jsonl").exists() and not [p for p in gens.iterdir() if ".tmp-" in p.name]

    child = Child(["-m", "distill.eval", str(config)])
    try:
        rc = child.wait(timeout=400)
    finally:
        child.cleanup()
    assert rc == 0, child.tail()
    assert child.seen("done: generations already done")
    assert {p.name: p.read_bytes() for p in gens.iterdir() if p.name.startswith("done.")} == kept
    assert len((gens / "live.jsonl").read_text().splitlines()) == len(topics)
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert set(report["models"]) == {"done", "live"}


# ---- a write that fails ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory) -> Path:
    """4 short prompts, then 2 long ones of random words: shard 2 is several times larger than anything before."""
    rng = random.Random(5)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    path = tmp_path_factory.mktemp("faults") / "big.jsonl"
    lines = [{"id": f"p{i:02d}", "prompt": f"Short prompt {i}."} for i in range(4)]
    lines += [{"id": f"p{i:02d}", "prompt": " ".join(rng.sample(words, 1200))} for i in (4, 5)]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def fake_cfg(teacher: Path, corpus: Path, run_dir: Path, *extra: str):
    return generate_config(teacher, corpus, run_dir, "teacher.max_model_len=8192", *extra, shard_size=2)


def test_write_over_the_file_size_limit_fails_in_one_line_and_keeps_earlier_shards(tiny_teacher, big_corpus,
                                                                                 tmp_path):
    from distill.generate.run import run

    ref_dir = tmp_path / "ref"
    run(fake_cfg(tiny_teacher, big_corpus, ref_dir), backend=FakeBackend())
    ref = shard_folder(ref_dir)
    sizes = {p.name: p.stat().st_size for p in ref.iterdir()}
    small = max(v for k, v in sizes.items() if k != "shard-00002.jsonl.zst")
    big = sizes["shard-00002.jsonl.zst"]
    assert big > 2 * small, sizes
    limit = (small + big) // 2

    run_dir = tmp_path / "run"
    folder = shard_folder(run_dir)
    config = write_yaml(tmp_path / "c.yaml", {
        "run": {"dir": str(run_dir)}, "teacher": {"model": str(tiny_teacher), "max_model_len": 8192},
        "generate": {"prompts": str(big_corpus), "heldout_prompts": None, "k": 5, "max_tokens": 8, "shard_size": 2}})
    # The limit is set in the child (preexec_fn): the CLI (with FakeBackend for the engine) must report it.
    child = Child(["tests/fault_helpers.py", "generate", str(config)],
                  preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    try:
        rc = child.wait(timeout=180)
    finally:
        child.cleanup()
    assert rc == 1, child.tail()
    errors = [line for _, line in child.lines if line.startswith("error:")]
    target = folder / "shard-00002.jsonl.zst"
    assert errors == [f"error: {target}: write failed (File too large); files written before it are intact"], child.tail()
    manifest = sh.read_manifest(folder)
    assert [e["index"] for e in manifest["shards"]] == [0, 1] and not manifest["complete"]
    assert [e.prompt_id for e in sh.read_examples(folder, manifest)] == ["p00", "p01", "p02", "p03"]
    assert sorted(os.listdir(folder)) == ["manifest.json", "shard-00000.jsonl.zst", "shard-00001.jsonl.zst"]
    for name in ("shard-00000.jsonl.zst", "shard-00001.jsonl.zst"):
        assert (folder / name).read_bytes() == (ref / name).read_bytes()
    # Without the limit the rerun completes and equals the run that never failed.
    child = Child(["tests/fault_helpers.py", "generate", str(config)])
    assert child.wait(timeout=180) == 0, child.tail()
    assert shard_bytes(folder) == shard_bytes(ref)


def test_write_into_a_read_only_folder_fails_in_one_line_and_keeps_earlier_shards(tiny_teacher, big_corpus,
                                                                                tmp_path, monkeypatch):
    """chmod 0o555 on the output folder; as root (permissions do not apply) the next shard's path is made a folder
    instead, so its rename fails the same way (EISDIR instead of EACCES)."""
    from distill.generate.run import run

    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    run(fake_cfg(tiny_teacher, big_corpus, ref_dir), backend=FakeBackend())
    cfg = fake_cfg(tiny_teacher, big_corpus, run_dir)
    monkeypatch.setenv("DISTILL_FAIL_AFTER_SHARDS", "2")  # a first, partial run: shards 0 and 1
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(cfg, backend=FakeBackend())
    monkeypatch.delenv("DISTILL_FAIL_AFTER_SHARDS")
    folder = shard_folder(run_dir)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    target = folder / "shard-00002.jsonl.zst"
    root = os.geteuid() == 0
    if root:
        target.mkdir()
    else:
        folder.chmod(0o555)
    try:
        with pytest.raises(DistillError) as e:
            run(cfg, backend=FakeBackend())
    finally:
        if root:
            target.rmdir()
        else:
            folder.chmod(0o755)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{target}: write failed (")
    assert message.endswith("; files written before it are intact")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    manifest = sh.read_manifest(folder)
    assert [e.prompt_id for e in sh.read_examples(folder, manifest)] == ["p00", "p01", "p02", "p03"]
    run(cfg, backend=FakeBackend())
    assert shard_bytes(folder) == shard_bytes(shard_folder(ref_dir))


def test_kill_between_the_last_shard_and_its_manifest_update_still_completes_on_disk(tiny_teacher, big_corpus,
                                                                                    tmp_path, capsys):
    """Found by the SIGKILL trials: the last shard renamed into place, the kill before the manifest listed it. The
    rerun adopts the shard and has nothing left to generate; the manifest on disk must then say complete=true,
    else generate keeps saying "already complete" while train refuses the set as unfinished."""
    from distill.generate.run import run

    cfg = fake_cfg(tiny_teacher, big_corpus, tmp_path / "run")
    run(cfg, backend=FakeBackend())
    folder = shard_folder(tmp_path / "run")
    manifest = sh.read_manifest(folder)
    manifest["shards"], manifest["complete"] = manifest["shards"][:-1], False
    sh.write_manifest(folder, manifest)
    backend = FakeBackend()
    run(cfg, backend=backend)
    assert backend.calls == 0 and "already complete" in capsys.readouterr().out
    assert sh.open_shard_set(folder)["complete"]
    assert len(list(sh.read_examples(folder))) == 6
