"""Runtime fixtures: a run with short thresholds over a real repository, real worker processes
and a private tmux server, all torn down after each test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orch_console.console.runtime import launcher
from orch_console.store import Store, dispatch, runs

FAST: dict[str, Any] = {
    "liveness_interval_seconds": 0.2, "nudge_seconds": 1.5, "stall_seconds": 3.0, "idle_seconds": 5.0,
    "crash_grace_seconds": 0.0, "retry_backoff_seconds": 0.3, "retry_backoff_max_seconds": 1.0, "max_attempts": 3,
    "worker_env": {"ORCH_SIM_STEP_SECONDS": "0.1", "ORCH_SIM_LEASE_SECONDS": "2"},
}


class Rig:
    def __init__(self, store: Store, repo: Path) -> None:
        self.store = store
        self.repo = repo
        self.run_id = "r1"

    def run(self, **config: Any) -> None:
        runs.run_init(self.store, run_id=self.run_id, goal="runtime test",
                      config=FAST | {"repo_path": str(self.repo)} | config)

    def task(self, task_id: str, script: str, **kw: Any) -> None:
        runs.task_add(self.store, run_id=self.run_id, task_id=task_id, title=f"task {task_id}", default_to="sim",
                      spec=f"sim-script: {script}", **kw)

    def start(self, task_id: str, profile: str = "sim", mode: str = "code") -> dict[str, Any]:
        dispatch.dispatch(self.store, run_id=self.run_id, task_id=task_id, execution_mode=mode,
                          repo_path=str(self.repo))
        return launcher.launch(self.store, run_id=self.run_id, task_id=task_id, profile=profile)

    def task_status(self, task_id: str) -> str:
        return self.store.scalar("SELECT status FROM tasks WHERE run_id=? AND task_id=?", (self.run_id, task_id))

    def attempts(self, task_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.store.all("SELECT * FROM attempts WHERE run_id=? AND task_id=? ORDER BY "
                                                "attempt_no", (self.run_id, task_id))]

    def events(self, event_type: str, task_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM events WHERE run_id=? AND event_type=?"
        params: list[Any] = [self.run_id, event_type]
        if task_id:
            sql += " AND task_id=?"
            params.append(task_id)
        return [dict(r) for r in self.store.all(sql + " ORDER BY event_id", params)]


def until(cond: Callable[[], Any], timeout: float = 30.0, step: Callable[[], Any] | None = None,
          interval: float = 0.05) -> Any:
    """Poll cond (calling step first, e.g. a watcher tick) until it is truthy; fail on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if step is not None:
            step()
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def rig(store: Store, repo: Path) -> Iterator[Rig]:
    r = Rig(store, repo)
    try:
        yield r
    finally:
        for a in store.all("SELECT * FROM attempts WHERE runtime<>''"):
            launcher.stop(store.path, dict(a), grace=0.5)
        launcher.kill_server(store.path)
