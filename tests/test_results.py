"""Every measured table in the README is written by scripts/results.py from a committed docs/results/*.json file:
the README and the files must agree, and each file must say how it was made."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import results  # noqa: E402


def test_readme_tables_equal_their_results_files():
    text = results.README.read_text()
    assert results.SECTION.search(text), "the README has no results section"
    assert results.rewrite(text) == text, "README tables differ from docs/results/*.json: run python scripts/results.py"


def test_every_results_file_says_how_it_was_made_and_is_used():
    text = results.README.read_text()
    for path in sorted(results.RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        for key in ("title", "columns", "rows", "command", "config", "commit", "date", "machine"):
            assert key in data, f"{path.name}: no {key}"
        assert all(len(row) == len(data["columns"]) for row in data["rows"]), path.name
        assert f"<!-- results:{path.stem} -->" in text, f"{path.name} is not shown in the README"


def test_check_mode_fails_on_a_hand_edited_table(tmp_path, monkeypatch):
    text = results.README.read_text()
    name = results.SECTION.search(text).group("name")
    edited = results.rewrite(text).replace(f"<!-- results:{name} -->\n", f"<!-- results:{name} -->\nhand-typed\n", 1)
    assert results.rewrite(edited) != edited
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "results.py"), "--check"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_a_bench_rewrites_its_own_section_and_leaves_the_others(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT))
    from bench import sections

    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n<!-- a:start -->\nold a\n<!-- a:end -->\n\n<!-- b:start -->\nb\n<!-- b:end -->\n")
    monkeypatch.setattr(sections, "README", readme)
    sections.replace_section("a", "new a")
    sections.replace_section("c", "c")
    assert readme.read_text() == ("# Benchmarks\n\n<!-- a:start -->\nnew a\n<!-- a:end -->\n\n<!-- b:start -->\nb\n"
                                  "<!-- b:end -->\n\n<!-- c:start -->\nc\n<!-- c:end -->\n")


def test_commit_marks_changed_code_but_not_written_results(tmp_path, monkeypatch):
    def git(*args):
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout.strip()

    (tmp_path / "docs" / "results").mkdir(parents=True)
    for name in ("code.py", "README.md", "docs/results/table.json"):
        (tmp_path / name).write_text("before\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "start")
    head = git("rev-parse", "--short", "HEAD")
    monkeypatch.setattr(results, "ROOT", tmp_path)
    for name in ("README.md", "docs/results/table.json"):
        (tmp_path / name).write_text("after\n")
    assert results.commit() == head  # a measurement writing its results leaves the code as committed
    (tmp_path / "code.py").write_text("after\n")
    assert results.commit() == head + "+changes"
