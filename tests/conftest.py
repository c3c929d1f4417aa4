"""Shared fixtures: real SQLite files and real git repositories in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _exe(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else name


ORCH = _exe("orch")
INBOX = _exe("inbox")


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "coord.db")


@pytest.fixture
def store(db_path: str):
    from orch_console.store import Store

    s = Store(db_path)
    yield s
    s.close()


def make_repo(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    env = git_env()
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True, env=env)
    for name, content in (files or {"README.md": "scratch repo\n"}).items():
        f = path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(content)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-q", "-m", "initial"], check=True, env=env)
    return path


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
                "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"})
    return env


def terminal_env(**extra: str) -> dict[str, str]:
    """The environment for a program run inside a tmux pane: the pane gives the size, so drop the
    COLUMNS/LINES that pytest-xdist workers export (80x24), which Textual would obey instead."""
    env = {k: v for k, v in git_env().items() if k not in ("COLUMNS", "LINES", "TMUX")}
    env.update({"TERM": "xterm-256color", **extra})
    return env


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


class Cli:
    """Runs orch/inbox as real subprocesses against one database."""

    def __init__(self, db: str, cwd: Path) -> None:
        self.db = db
        self.cwd = cwd

    def run(self, exe: str, *args: str, json_out: bool = True, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [exe, "--db", self.db] + (["--json"] if json_out else []) + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.cwd,
                              env=git_env(), input=input)

    def orch(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run(ORCH, *args, **kw)

    def inbox(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run(INBOX, *args, **kw)

    def ok(self, exe: str, *args: str) -> dict[str, Any]:
        p = self.run(ORCH if exe == "orch" else INBOX, *args)
        assert p.returncode == 0, f"{exe} {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
        doc = json.loads(p.stdout)
        assert doc["ok"] is True
        return doc["data"]

    def err(self, exe: str, *args: str, code: str, exit_code: int) -> dict[str, Any]:
        p = self.run(ORCH if exe == "orch" else INBOX, *args)
        assert p.returncode == exit_code, f"{exe} {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
        assert "Traceback" not in p.stderr
        doc = json.loads(p.stdout)
        assert doc["ok"] is False and doc["error"]["code"] == code, doc
        assert doc["error"]["message"]
        return doc["error"]


@pytest.fixture
def cli(db_path: str, tmp_path: Path) -> Cli:
    return Cli(db_path, tmp_path)


def db_snapshot(db: str) -> dict[str, list[tuple]]:
    """Every row of every table: compare before and after a failed command."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                             "AND name NOT LIKE 'sqlite_%'")]
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        conn.close()
