"""Issue 15, M8 and M5/M6/M7: a launch refused by max_parallel is queued and the watcher launches
it when a slot frees; every step of dispatch and launch is completed or rolled back, and what an
interruption (SIGKILL, Ctrl-C) leaves is found and repaired."""

from __future__ import annotations

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
from tests.conftest import ORCH, Cli, git_env


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


# -- M5 / M6 / M7: interruptions at the step boundaries of dispatch and launch ----------------------
KILL_AFTER = """
import os, signal, sys
from orch_console.store import worktrees
from orch_console.console.runtime import launcher
from orch_console.store.db import Store
point = sys.argv[1]
sys.argv = ["orch"] + sys.argv[2:]
if point == "worktree_created":           # worktree and branch made, dispatch transaction not run
    orig = worktrees.create
    def create(*a, **k):
        out = orig(*a, **k); os.kill(os.getpid(), signal.SIGKILL)
    worktrees.create = create
elif point == "process_started":          # worker started, its pid not recorded
    orig_sp = launcher._start_process
    def sp(*a, **k):
        orig_sp(*a, **k); os.kill(os.getpid(), signal.SIGKILL)
    launcher._start_process = sp
elif point == "interrupt_after_commit":   # Ctrl-C during the post-COMMIT WAL flush
    orig_sync = Store.sync_after_commit
    def s(self):
        orig_sync(self); raise KeyboardInterrupt
    Store.sync_after_commit = s
from orch_console.console.cli.orch import main
sys.exit(main())
"""


def _interrupted(cli: Cli, point: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(cli.db).parent / "interrupt.py"
    script.write_text(KILL_AFTER)
    return subprocess.run([sys.executable, str(script), point, "--db", cli.db, "--json", *args], capture_output=True,
                          text=True, timeout=60, cwd=cli.cwd, env=git_env() | {"ORCH_SYNC": "full"})


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          env=git_env()).stdout


def test_m5_sigkill_between_worktree_and_commit_is_repaired_by_the_next_dispatch(cli: Cli, repo: Path) -> None:
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "T1", "--title", "t", "--default-to", "w")
    p = _interrupted(cli, "worktree_created", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "code",
                     "--repo-path", str(repo))
    assert p.returncode == -signal.SIGKILL
    assert "orch/r/T1/a1" in _git(repo, "branch")              # the leak the kill left
    d = cli.ok("orch", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "code", "--repo-path", str(repo))
    wt = Path(d["attempt"]["worktree_path"])
    assert d["attempt"]["attempt_no"] == 1 and d["attempt"]["branch_name"] == "orch/r/T1/a1"
    assert (wt / ".git").is_file()
    assert _git(wt, "branch", "--show-current").strip() == "orch/r/T1/a1"
    assert _git(repo, "worktree", "list").count("orch/r/T1/a1") == 1


def test_m5_sigkill_while_git_checks_out_keeps_the_dispatch_lock_until_git_is_done(cli: Cli, repo: Path) -> None:
    """A dispatch SIGKILLed while `git worktree add` runs: git goes on writing the worktree, so
    the dispatch lock stays held (git inherited it) until git exits; the next dispatch then finds a
    finished leftover to repair, never a worktree still being written."""
    import fcntl

    started, finished = repo.parent / "checkout-started", repo.parent / "checkout-finished"
    hook = repo / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {started}\nsleep 3\ntouch {finished}\n")
    hook.chmod(0o755)
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "T1", "--title", "t", "--default-to", "w")
    p = subprocess.Popen([ORCH, "--db", cli.db, "--json", "dispatch", "--run", "r", "--task", "T1",
                          "--execution-mode", "code", "--repo-path", str(repo)], env=git_env(), cwd=cli.cwd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(started.exists, timeout=60)
    p.kill()
    p.wait()
    fd = os.open(cli.db + ".dispatch-lock", os.O_RDWR)
    try:
        if not finished.exists():
            with pytest.raises(BlockingIOError):  # still held: by git, which outlived the dispatch
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        wait_for(finished.exists, timeout=60)
        wait_for(lambda: _try_flock(fd), timeout=30)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    hook.unlink()
    d = cli.ok("orch", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "code", "--repo-path", str(repo))
    assert d["attempt"]["attempt_no"] == 1 and _git(repo, "worktree", "list").count("orch/r/T1/a1") == 1


def _try_flock(fd: int) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def test_m5_a_leftover_with_work_in_it_is_never_deleted(cli: Cli, repo: Path) -> None:
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "T1", "--title", "t", "--default-to", "w")
    p = _interrupted(cli, "worktree_created", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "code",
                     "--repo-path", str(repo))
    assert p.returncode == -signal.SIGKILL
    wt = repo / ".orch" / "worktrees" / "r" / "T1" / "a1"
    (wt / "precious.txt").write_text("someone's work\n")
    err = cli.err("orch", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "code", "--repo-path",
                  str(repo), code="invalid_state", exit_code=30)
    assert str(wt) in err["message"]
    assert (wt / "precious.txt").read_text() == "someone's work\n"


def test_m7_interrupt_after_the_commit_keeps_the_committed_worktree(cli: Cli, repo: Path) -> None:
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "T1", "--title", "t", "--default-to", "w")
    p = _interrupted(cli, "interrupt_after_commit", "dispatch", "--run", "r", "--task", "T1", "--execution-mode",
                     "code", "--repo-path", str(repo))
    assert p.returncode == 130, p.stdout + p.stderr
    st = cli.ok("orch", "status", "--run", "r")
    att = st["tasks"][0]["latest_attempt"]
    assert st["tasks"][0]["status"] == "dispatched"
    wt = Path(att["worktree_path"])
    assert (wt / ".git").is_file() and "orch/r/T1/a1" in _git(repo, "branch")


def test_m7_launch_refuses_a_code_attempt_whose_worktree_is_gone(site: Cli, repo: Path) -> None:
    cli = site
    _profiles(cli, '[agents.w]\ncommand = "exec sleep 30"\nruntime = "process"\n')
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "T1", "--title", "t", "--default-to", "w")
    d = cli.ok("orch", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "code", "--repo-path", str(repo))
    wt = Path(d["attempt"]["worktree_path"])
    _git(repo, "worktree", "remove", "--force", str(wt))
    s = Store(cli.db)
    try:
        with pytest.raises(Exception) as exc:
            launcher.launch(s, run_id="r", task_id="T1", profile="w")
    finally:
        s.close()
    assert "worktree" in str(exc.value)
    assert not wt.exists()                       # no plain directory made in its place
    assert _attempt(cli, "T1")["runtime"] == ""  # and nothing started


def test_m6_sigkill_before_the_pid_is_recorded_the_watcher_adopts_and_stops_the_worker(site: Cli,
                                                                                       tmp_path: Path) -> None:
    cli = site
    pidfile = tmp_path / "worker.pid"
    _profiles(cli, f'[agents.slow]\ncommand = "echo $$ > {pidfile}; exec sleep 120"\nruntime = "process"\n')
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "T1", "--title", "t", "--default-to", "slow")
    p = _interrupted(cli, "process_started", "dispatch", "--run", "r", "--task", "T1", "--execution-mode",
                     "analysis", "--launch", "--profile", "slow")
    assert p.returncode == -signal.SIGKILL
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip()))
    try:
        assert _attempt(cli, "T1")["pid"] in (None, 0)           # the kill's leftover
        _tick(cli)
        att = _attempt(cli, "T1")
        assert att["pid"] == pid                                  # found by ORCH_THREAD, recorded
        cli.ok("orch", "cancel", "--run", "r", "--task", "T1")
        wait_for(lambda: (_tick(cli) or True) and not launcher.pid_alive(pid), timeout=20)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_m6_stop_finds_a_worker_whose_pid_was_never_recorded(site: Cli, tmp_path: Path) -> None:
    cli = site
    pidfile = tmp_path / "worker.pid"
    _profiles(cli, f'[agents.slow]\ncommand = "echo $$ > {pidfile}; exec sleep 120"\nruntime = "process"\n')
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "T1", "--title", "t", "--default-to", "slow")
    p = _interrupted(cli, "process_started", "dispatch", "--run", "r", "--task", "T1", "--execution-mode",
                     "analysis", "--launch", "--profile", "slow")
    assert p.returncode == -signal.SIGKILL
    pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip()))
    try:
        att = _attempt(cli, "T1")
        assert launcher.stop(cli.db, att, grace=0.5) is True
        wait_for(lambda: not launcher.pid_alive(pid), timeout=10)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
