"""Helpers for the CLI tests (tests/cli): build a run through the real CLIs, copy a prepared
database into a test, drive a worker, and look at git state.

Not a conftest (a second conftest module would shadow tests/conftest.py on sys.path); test
modules import it by name.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path
from typing import Any


def _shared_conftest() -> Any:
    """tests/conftest.py by path: `import conftest` would find whichever conftest (tests/ui,
    tests/runtime, ...) pytest loaded last."""
    import importlib.util
    import sys

    name = "orch_tests_shared_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent.parent / "conftest.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_shared = _shared_conftest()
Cli = _shared.Cli
db_snapshot = _shared.db_snapshot
git_env = _shared.git_env
INBOX: str = _shared.INBOX
ORCH: str = _shared.ORCH
ROOT: Path = _shared.ROOT

RUN = "r1"


def fails_unchanged(cli: Cli, exe: str, *args: str, code: str, exit_code: int) -> dict[str, Any]:
    """Run a command that must fail with `code`/`exit_code` and leave every row as it was."""
    assert Path(cli.db).exists(), "create the database before snapshotting it"
    before = db_snapshot(cli.db)
    err = cli.err(exe, *args, code=code, exit_code=exit_code)
    after = db_snapshot(cli.db)
    changed = {t for t in set(before) | set(after) if before.get(t) != after.get(t)}
    assert not changed, f"failed command `{exe} {' '.join(args)}` changed tables {sorted(changed)}"
    return err


def copy_db(src: str, dst: str) -> None:
    """A consistent copy of a SQLite file (WAL included) through the backup API."""
    s = sqlite3.connect(src)
    d = sqlite3.connect(dst)
    try:
        s.backup(d)
    finally:
        d.close()
        s.close()


def migrate(db: str) -> None:
    """Open the file once with the store, so any pending migration runs before a snapshot."""
    from orch_console.store import Store

    Store(db).close()


def query(db: str, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def execute(db: str, sql: str, params: tuple = ()) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


def git(repo: Path, *args: str) -> str:
    p = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=git_env())
    assert p.returncode == 0, p.stderr
    return p.stdout


def branches(repo: Path) -> list[str]:
    return [b for b in git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()]


def worktree_paths(repo: Path) -> list[str]:
    return [ln.split(" ", 1)[1] for ln in git(repo, "worktree", "list", "--porcelain").splitlines()
            if ln.startswith("worktree ")]


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


class Flow:
    """Leader and worker steps through the real CLIs, returning each command's `data`."""

    def __init__(self, cli: Cli, run: str = RUN) -> None:
        self.cli = cli
        self.run = run

    def init(self, goal: str = "ship it") -> dict[str, Any]:
        return self.cli.ok("orch", "run", "init", "--run", self.run, "--goal", goal)

    def task(self, task: str, *extra: str, to: str = "w1") -> dict[str, Any]:
        return self.cli.ok("orch", "task", "add", "--run", self.run, "--task", task, "--title", f"title {task}",
                           "--default-to", to, *extra)["task"]

    def dep(self, task: str, on: str) -> dict[str, Any]:
        return self.cli.ok("orch", "dep", "add", "--run", self.run, "--task", task, "--depends-on", on)

    def dispatch(self, task: str, *extra: str, mode: str = "analysis") -> dict[str, Any]:
        return self.cli.ok("orch", "dispatch", "--run", self.run, "--task", task, "--execution-mode", mode, *extra)

    def code(self, task: str, repo: Path, *extra: str) -> dict[str, Any]:
        return self.dispatch(task, "--repo-path", str(repo), *extra, mode="code")

    def claim(self, thread: str, agent: str = "w1", *extra: str) -> dict[str, Any]:
        return self.cli.ok("inbox", "claim", "--agent", agent, "--thread", thread, *extra)

    def update(self, thread: str, status: str, summary: str, *extra: str, agent: str = "w1") -> dict[str, Any]:
        return self.cli.ok("inbox", "update", "--agent", agent, "--thread", thread, "--status", status,
                           "--summary", summary, *extra)

    def done(self, thread: str, *extra: str, agent: str = "w1", summary: str = "finished") -> dict[str, Any]:
        return self.cli.ok("inbox", "done", "--agent", agent, "--thread", thread, "--summary", summary, *extra)

    def fail(self, thread: str, *extra: str, agent: str = "w1", summary: str = "broke") -> dict[str, Any]:
        return self.cli.ok("inbox", "fail", "--agent", agent, "--thread", thread, "--summary", summary, *extra)

    def show(self, thread: str, *extra: str) -> dict[str, Any]:
        return self.cli.ok("inbox", "show", "--thread", thread, *extra)

    def status(self) -> dict[str, Any]:
        return self.cli.ok("orch", "status", "--run", self.run)

    def task_status(self, task: str) -> dict[str, Any]:
        found = [t for t in self.status()["tasks"] if t["task_id"] == task]
        assert len(found) == 1, f"{task} not in status"
        return found[0]

    def start(self, task: str, *extra: str, agent: str = "w1", mode: str = "analysis") -> str:
        """Dispatch and claim: returns the attempt's thread id."""
        thread = self.dispatch(task, *extra, mode=mode)["attempt"]["thread_id"]
        self.claim(thread, agent)
        return thread
