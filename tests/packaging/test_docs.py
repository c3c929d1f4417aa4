"""docs/ARCHITECTURE.md is the map of the code: every module of the package has exactly one row in
its tables (named by its path), and no path it names, in a table or in the text, is missing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("store", "console", "widgets", "themes")


def test_every_module_is_named_once_in_the_architecture_map() -> None:
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    modules = sorted(p.relative_to(ROOT).as_posix() for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")
                     if "__pycache__" not in p.parts and not (p.name == "__init__.py" and p.parent.name in
                                                                ("console", "cli", "tui", "runtime", "screens",
                                                                 "widgets")))
    assert len(modules) > 80
    pattern = r"`((?:store|console|widgets|themes)/[\w/]+\.py)`"
    rows = "\n".join(line for line in doc.splitlines() if line.startswith("|"))
    named = re.findall(pattern, rows)
    counts = {m: named.count(m) for m in modules}
    assert [m for m, n in counts.items() if n == 0] == [], "modules missing from docs/ARCHITECTURE.md"
    assert [m for m, n in counts.items() if n > 1] == [], "modules named more than once"
    assert [m for m in re.findall(pattern, doc) if m not in counts] == [], "names modules that do not exist"
