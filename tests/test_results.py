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
