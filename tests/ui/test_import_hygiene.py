"""store/ and the CLIs never import textual or rich: checked in fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import git_env


def test_store_modules_import_no_textual_or_rich() -> None:
    code = ("import orch_console.store.board, orch_console.store.views, orch_console.store.dispatch, "
            "orch_console.store.inbox, orch_console.store.sanitize, orch_console.store.worktrees; import sys; "
            "bad = [m for m in sys.modules if m.startswith(('textual', 'rich'))]; assert not bad, bad")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_orch_json_status_does_not_import_textual(cli) -> None:  # type: ignore[no-untyped-def]
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "a task")
    code = ("import sys; from orch_console.console.cli.orch import main; rc = main(['--db', sys.argv[1], '--json', 'status', "
            "'--run', 'r1']); bad = [m for m in sys.modules if m.startswith('textual')]; "
            "assert rc == 0 and not bad, (rc, bad)")
    p = subprocess.run([sys.executable, "-c", code, cli.db], capture_output=True, text=True, env=git_env())
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["ok"] is True
