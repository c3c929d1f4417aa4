"""Issue 15, M8 and M5/M6/M7: a launch refused by max_parallel is queued and the watcher launches
it when a slot frees; every step of dispatch and launch is completed or rolled back, and what an
interruption (SIGKILL, Ctrl-C) leaves is found and repaired."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orch_console.console.runtime import launcher
from orch_console.console.runtime.watcher import Watcher
from orch_console.store import Store
from tests.conftest import Cli, git_env


def wait_for(cond, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture
def site(cli: Cli) -> Iterator[Cli]:
    yield cli
    s = Store(cli.db)
    try:
        for a in s.all("SELECT * FROM attempts WHERE runtime<>''"):
            launcher.stop(cli.db, dict(a), grace=0.3)
        launcher.kill_server(cli.db)
    finally:
        s.close()


def _profiles(cli: Cli, text: str) -> None:
    (Path(cli.db).parent / "orch.toml").write_text(text)


def _attempt(cli: Cli, task: str) -> dict:
    s = Store(cli.db)
    try:
        return dict(s.one("SELECT * FROM attempts WHERE run_id='r' AND task_id=? ORDER BY attempt_no DESC LIMIT 1",
                          (task,)))
    finally:
        s.close()


def _tick(cli: Cli, n: int = 1) -> list[str]:
    w = Watcher(cli.db, "r")
    acts: list[str] = []
    try:
        for _ in range(n):
            acts += w.tick(force_liveness=True).actions
    finally:
        w.close()
    return acts


def test_m8_launch_refused_by_max_parallel_is_queued_and_launched_when_a_slot_frees(site: Cli) -> None:
    cli = site
    _profiles(cli, '[agents.one]\ncommand = "exec sleep 60"\nruntime = "process"\nmax_parallel = 1\n')
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    for t in ("A", "B"):
        cli.ok("orch", "task", "add", "--run", "r", "--task", t, "--title", t, "--default-to", "one")
    cli.ok("orch", "dispatch", "--run", "r", "--task", "A", "--execution-mode", "analysis", "--launch",
           "--profile", "one")
    b = cli.ok("orch", "dispatch", "--run", "r", "--task", "B", "--execution-mode", "analysis", "--launch",
               "--profile", "one")
    assert b["launch"]["queued"] is True and b["launch"]["profile"] == "one"
    assert b["task"]["status"] == "dispatched"
    assert _attempt(cli, "B")["runtime"] == ""
    _tick(cli, 2)
    assert _attempt(cli, "B")["runtime"] == ""        # still no slot: A runs
    cli.ok("orch", "cancel", "--run", "r", "--task", "A")
    wait_for(lambda: (_tick(cli) or True) and _attempt(cli, "B")["runtime"] == "process", timeout=20)
    b_att = _attempt(cli, "B")
    assert b_att["profile"] == "one" and b_att["pid"]
    assert launcher.pid_alive(b_att["pid"], b_att["thread_id"])
    s = Store(cli.db)
    try:
        assert s.scalar("SELECT count(*) FROM events WHERE event_type='attempt_launch_queued' AND task_id='B'") == 1
    finally:
        s.close()
