"""bench/README.md is made of sections, each rewritten by the bench that measures it."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def replace_section(name: str, body: str) -> None:
    """Put `body` between <!-- name:start --> and <!-- name:end -->, replacing what was there (appended if new)."""
    section = f"<!-- {name}:start -->\n{body}\n<!-- {name}:end -->"
    text = README.read_text()
    pattern = rf"<!-- {name}:start -->.*?<!-- {name}:end -->"
    if re.search(pattern, text, flags=re.S):
        text = re.sub(pattern, lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text)
