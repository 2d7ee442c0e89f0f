"""The shape of the code: three stage floors above one shared layer, short recipes, no long functions.

                         onpolicy/     (the rounds: sampling and scoring with vLLM, training with train/'s trainer)
    distill/ (config, shards, files, models, engine, logs, losses, batches, scoring, checks, prompts, cli)
      ^ generate/    ^ train/    ^ eval/          (installed as distill.generate, distill.train, distill.eval)

eval imports nothing from train/ or TRL; train imports nothing from vLLM; the shared layer imports no stage
(the `distill` command, cli.py, starts stages by module name).
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = sorted((ROOT / "distill").glob("*.py"))
STAGE_FILES = {s: sorted((ROOT / s).glob("*.py")) for s in ("generate", "train", "eval", "onpolicy")}
PRODUCT = SHARED + [f for files in STAGE_FILES.values() for f in files]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def offending(files: list[Path], prefixes: tuple[str, ...]) -> list[str]:
    return [f"{f.relative_to(ROOT)}: {m}" for f in files for m in sorted(imported_modules(f))
            if m.startswith(prefixes) or m in {p.rstrip(".") for p in prefixes}]


def test_eval_imports_nothing_from_train_or_trl():
    assert offending(STAGE_FILES["eval"], ("distill.train", "train.", "trl")) == []


def test_train_imports_nothing_from_vllm():
    assert offending(STAGE_FILES["train"], ("vllm",)) == []


def test_the_shared_layer_imports_no_stage():
    shared = [f for f in SHARED if f.name != "cli.py"]
    assert offending(shared, ("distill.generate", "distill.train", "distill.eval", "generate", "train.", "eval.")) == []


def test_stages_are_not_installed_as_top_level_packages():
    """`generate`, `train` and `eval` are generic names: they install as distill.* only."""
    code = "import importlib.util as u; print([n for n in ('generate', 'train', 'eval') if u.find_spec(n)])"
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize("module,absent", [("distill.eval.run", ("trl", "distill.train", "vllm")),
                                           ("distill.train.run", ("vllm",))])
def test_importing_a_stage_loads_no_forbidden_module(module, absent):
    code = (f"import sys, {module}, importlib; [importlib.import_module(m) for m in {STAGE_MODULES[module]!r}]; "
            f"print(sorted({{m.split('.')[0] if not m.startswith('distill') else m for m in sys.modules "
            f"if m.startswith({absent!r})}}))")
    out = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


STAGE_MODULES = {
    "distill.eval.run": ["distill.eval.report", "distill.eval.judge", "distill.eval.generation", "distill.scoring"],
    "distill.train.run": ["distill.train.trainer", "distill.train.student", "distill.train.data", "distill.scoring"],
}


def function_lengths(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


def test_no_product_function_is_over_80_lines():
    long = [f"{p.relative_to(ROOT)}:{name} ({n} lines)" for p in PRODUCT for name, n in function_lengths(p) if n > 80]
    assert long == []


@pytest.mark.parametrize("stage", ["train", "eval", "onpolicy"])
def test_stage_recipes_are_short(stage):
    lengths = dict(function_lengths(ROOT / stage / "run.py"))
    assert lengths["run"] <= 60, f"{stage}/run.py: run is {lengths['run']} lines"
