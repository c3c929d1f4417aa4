"""Landing fixtures: a real repository, a run, and a worker stand-in that does what a worker does
(claim, commit in its worktree, done) through the same store functions the inbox CLI calls."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from orch_console.store import Store, dispatch, inbox, runs
from tests.conftest import git_env


def git(repo: Path | str, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=git_env()).stdout.strip()


def head(repo: Path | str, ref: str) -> str:
    return git(repo, "rev-parse", ref)


def is_ancestor(repo: Path | str, a: str, b: str) -> bool:
    return subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", a, b],
                          env=git_env()).returncode == 0


class LandRig:
    def __init__(self, store: Store, repo: Path, run_id: str = "r1") -> None:
        self.store = store
        self.repo = repo
        self.run_id = run_id

    def run(self, **config: Any) -> None:
        runs.run_init(self.store, run_id=self.run_id, goal="land test", config={"repo_path": str(self.repo)} | config)

    def task(self, task_id: str, deps: tuple[str, ...] = (), **kw: Any) -> None:
        runs.task_add(self.store, run_id=self.run_id, task_id=task_id, title=f"task {task_id}", default_to="w", **kw)
        for d in deps:
            runs.dep_add(self.store, run_id=self.run_id, task_id=task_id, depends_on=d)

    def dispatch(self, task_id: str, **kw: Any) -> dict[str, Any]:
        return dispatch.dispatch(self.store, run_id=self.run_id, task_id=task_id, execution_mode="code",
                                 repo_path=str(self.repo), **kw)["attempt"]

    def work(self, task_id: str, files: dict[str, str], *, outcome: str = "done") -> dict[str, Any]:
        """The latest attempt's worker: claim, write + commit files in its worktree, finish."""
        a = self.attempt(task_id)
        inbox.claim(self.store, agent=a["assigned_to"], thread_id=a["thread_id"])
        wt = Path(a["worktree_path"])
        for name, content in files.items():
            p = wt / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)
        if files:
            git(wt, "add", "-A")
            git(wt, "commit", "-q", "-m", f"{task_id}: work")
        inbox.finish(self.store, agent=a["assigned_to"], thread_id=a["thread_id"], outcome=outcome,
                     summary=f"{task_id} {outcome}")
        return a

    def attempt(self, task_id: str) -> dict[str, Any]:
        return dict(self.store.one("SELECT * FROM attempts WHERE run_id=? AND task_id=? ORDER BY attempt_no DESC"
                                   " LIMIT 1", (self.run_id, task_id)))

    def status(self, task_id: str) -> str:
        return self.store.scalar("SELECT status FROM tasks WHERE run_id=? AND task_id=?", (self.run_id, task_id))

    def events(self, event_type: str, task_id: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM events WHERE run_id=? AND event_type=?", [self.run_id, event_type]
        if task_id:
            sql += " AND task_id=?"
            params.append(task_id)
        return [dict(r) for r in self.store.all(sql + " ORDER BY event_id", params)]


@pytest.fixture
def lrig(store: Store, repo: Path) -> LandRig:
    return LandRig(store, repo)
