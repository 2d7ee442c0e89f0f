"""The shell scripts pass a config path and overrides through to the `distill` command intact, whatever
characters they hold (spaces, `$(...)`), and fail with a one-line message on a missing config.

The real command is not run: a fake `distill` package on PYTHONPATH whose cli.main prints its argv as JSON stands
in for it (PYTHONPATH comes before the editable-install finder, so the venv's `distill` script imports the fake).
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
TRICKY_OVERRIDES = ["--set", "a b", "$(touch pwned)", "`touch pwned`", "x;touch pwned", "*", ""]

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


@pytest.fixture()
def setup(tmp_path):
    """A config in a directory whose name tries command substitution, plus fake stage packages."""
    cfg_dir = tmp_path / "a dir $(touch pwned)"
    cfg_dir.mkdir()
    config = cfg_dir / "tiny config.yaml"
    config.write_text("teacher: models/smollm2-135m-instruct\nmax_prompts: 2\n")
    pkgs = tmp_path / "pkgs"
    (pkgs / "distill").mkdir(parents=True)
    (pkgs / "distill" / "__init__.py").write_text("")
    (pkgs / "distill" / "cli.py").write_text("import json, sys\ndef main():\n    print(json.dumps(sys.argv))\n")
    work = tmp_path / "cwd"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(pkgs), os.environ.get("PYTHONPATH")]))}
    return tmp_path, config, work, env


def _no_pwned(tmp_path: Path) -> None:
    found = list(tmp_path.rglob("pwned")) + list(ROOT.glob("pwned")) + list((ROOT / "scripts").glob("pwned"))
    assert not found, f"a shell expanded a path or an override: {found}"


def _argv(stdout: str) -> list[str]:
    return json.loads(stdout.strip().splitlines()[-1])


def test_run_stage_passes_arguments_intact(setup):
    tmp_path, config, work, env = setup
    cmd = ["bash", "-c", 'source "$0"; run_stage fakestage "$@"', str(SCRIPTS / "_common.sh"), str(config), *TRICKY_OVERRIDES]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert _argv(proc.stdout)[1:] == ["fakestage", str(config), *TRICKY_OVERRIDES]
    assert proc.stdout.startswith(f"[fakestage] config={config} overrides=")
    _no_pwned(tmp_path)


@pytest.mark.parametrize("stage", ["generate", "train", "eval", "pipeline"])
def test_stage_scripts_pass_arguments_intact(setup, stage):
    tmp_path, config, work, env = setup
    proc = subprocess.run(
        ["bash", str(SCRIPTS / f"{stage}.sh"), str(config), "--help", *TRICKY_OVERRIDES],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    argv = _argv(proc.stdout)
    assert argv[0].endswith(os.path.join("bin", "distill"))
    assert argv[1:] == [stage, str(config), "--help", *TRICKY_OVERRIDES]
    _no_pwned(tmp_path)


def test_relative_config_is_taken_from_the_current_directory(setup):
    tmp_path, config, work, env = setup
    proc = subprocess.run(
        ["bash", str(SCRIPTS / "train.sh"), os.path.relpath(config, work)],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert _argv(proc.stdout)[1:] == ["train", os.path.relpath(config, work)]


def test_missing_config_fails_with_one_line(setup):
    tmp_path, config, work, env = setup
    missing = str(config.parent / "missing $(touch pwned).yaml")
    proc = subprocess.run(
        ["bash", str(SCRIPTS / "generate.sh"), missing], cwd=work, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert proc.stderr.strip() == f"[generate] FAILED: config file not found: {missing}"
    assert proc.stdout == ""
    _no_pwned(tmp_path)
