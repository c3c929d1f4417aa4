"""The house rules that keep the store the one front door: SQL lives only in store/, the status
vocabulary only in store/states.py, and widgets render plain models without the SQL layer."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from orch_console.store.states import END_REASONS, RUN_STATUSES, TASK_STATUSES, THREAD_STATUSES

ROOT = Path(__file__).resolve().parents[2]
SQL = re.compile(r"\s*(SELECT|UPDATE|INSERT|DELETE|WITH)\b")
STATUS_NAMES = {str(s) for s in (*TASK_STATUSES, *THREAD_STATUSES, *RUN_STATUSES, *END_REASONS)} - {""}


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py"))


def _sql_literals(path: Path) -> list[int]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        text = node.value if isinstance(node, ast.Constant) else (
            node.values[0].value if isinstance(node, ast.JoinedStr) and node.values
            and isinstance(node.values[0], ast.Constant) else None)
        if isinstance(text, str) and SQL.match(text):
            found.append(node.lineno)
    return found


def test_sql_lives_only_in_the_store() -> None:
    # sample.py pins the sample run's timestamps for byte-identical screenshots: test data, not domain.
    allowed = {ROOT / "console" / "tui" / "sample.py"}
    offenders = {str(p.relative_to(ROOT)): lines for p in _python_files("console", "widgets", "themes")
                 if p not in allowed and (lines := _sql_literals(p))}
    assert not offenders, offenders


def test_status_tuples_are_spelled_only_in_states() -> None:
    offenders = []
    for path in _python_files("store", "console/runtime"):
        if path.name == "states.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2:
                values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
                if len(values) == len(node.elts) and sum(v in STATUS_NAMES for v in values) >= 2:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_widgets_and_console_messages_import_no_sql_layer() -> None:
    code = ("import sys, pkgutil, importlib, orch_console.widgets as w\n"
            "import orch_console.console.tui.messages\n"
            "for m in pkgutil.iter_modules(w.__path__): importlib.import_module('orch_console.widgets.' + m.name)\n"
            "bad = [m for m in ('sqlite3', 'orch_console.store.db', 'orch_console.store.board') if m in sys.modules]\n"
            "assert not bad, bad\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert p.returncode == 0, p.stderr
