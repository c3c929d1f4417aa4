"""Running verification checks: each required check's command in the attempt's worktree, with a
timeout, recorded as passed or failed with the tail of its output (verify run, and the watcher)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from typing import Any

from .db import Store
from .dispatch import latest_attempt
from .errors import InvalidState
from .policy import Settings
from .records import loads
from .runtime import run_settings_config
from .runs import get_task
from .validate import check_id, check_seconds, now_ts
from .verify import record_tx, verify_status

DEFAULT_TIMEOUT = 600.0
OUTPUT_TAIL = 4000


def run_command(cmd: str, cwd: str, timeout: float) -> tuple[bool, str, float]:
    """(passed, output tail, seconds). The whole process group is killed on timeout."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, shell=True, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        return False, f"could not start: {exc}", 0.0
    try:
        out, _ = proc.communicate(timeout=timeout)
        passed = proc.returncode == 0
        text = out.decode("utf-8", errors="replace")
        if not passed:
            text += f"\n[exit status {proc.returncode}]"
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        out, _ = proc.communicate()
        passed = False
        text = out.decode("utf-8", errors="replace") + f"\n[timed out after {timeout:g}s]"
    return passed, text[-OUTPUT_TAIL:], time.monotonic() - start


def run_timeout(store: Store, run_id: str) -> float:
    """A check's time limit: the run's check_timeout_seconds setting."""
    t = Settings.from_config(run_settings_config(store, run_id)).check_timeout_seconds
    return t if t > 0 else DEFAULT_TIMEOUT


def check_cwd(att: dict[str, Any]) -> tuple[str, str]:
    """Where an attempt's checks run, and why they cannot ('' when they can). A code attempt's
    checks run in its own worktree or not at all: a missing worktree, or a plain directory left
    where it was (git there would find the main checkout), fails them."""
    wt = att.get("worktree_path") or ""
    if att.get("execution_mode") != "code" and not wt:
        return att.get("repo_path") or os.getcwd(), ""
    if not wt:
        return "", "worktree missing: this code attempt has no worktree recorded; the check was not run"
    if not os.path.isdir(wt):
        return wt, f"worktree missing: {wt} does not exist; the check was not run"
    if not os.path.isfile(os.path.join(wt, ".git")):
        return wt, f"worktree missing: {wt} is no git worktree (no .git file); the check was not run"
    return wt, ""


def verify_run(store: Store, *, run_id: str, task_id: str, timeout: float | None = None,
               only_pending: bool = False, names: list[str] | None = None,
               attempt_no: int | None = None) -> dict[str, Any]:
    """Run the task's check commands (all, or `names`) for its latest attempt; with attempt_no,
    refuse if a newer attempt has started meanwhile."""
    check_id(run_id, "--run")
    check_id(task_id, "--task")
    if timeout is not None:
        check_seconds(timeout, "--timeout-seconds", zero_ok=True)  # 0: the run's check_timeout_seconds
    with store.snapshot() as conn:
        task = get_task(conn, run_id, task_id)
        att = latest_attempt(conn, run_id, task_id)
        done = {r[0] for r in conn.execute("SELECT name FROM checks WHERE run_id=? AND task_id=? AND attempt_no=? "
                                           "AND status IN ('passed','failed')",
                                           (run_id, task_id, att["attempt_no"] if att else 0))}
    if att is None:
        raise InvalidState(f"task {task_id} has no attempt to verify")
    if attempt_no is not None and att["attempt_no"] != attempt_no:
        raise InvalidState(f"task {task_id} is on attempt {att['attempt_no']}, not {attempt_no}")
    timeout = timeout or run_timeout(store, run_id)
    required = loads(task["required_checks_json"], [])
    cmds = loads(task["check_cmds_json"], {})
    if not required:
        raise InvalidState(f"task {task_id} has no required checks")
    cwd, missing = check_cwd(att)
    ran, skipped, result = [], [], None
    for name in required:
        if names is not None and name not in names:
            continue
        if only_pending and name in done:
            continue
        cmd = cmds.get(name)
        if not cmd:
            skipped.append({"name": name, "reason": "no command; record its result with `orch verify record`"})
            continue
        if missing:  # never fall back to the main checkout (issue 15, M10): the check fails
            passed, output, seconds = False, missing, 0.0
        else:
            passed, output, seconds = run_command(cmd, cwd, timeout)
        status = "passed" if passed else "failed"
        summary = f"`{cmd}` {status} in {seconds:.1f}s"
        def tx(conn: sqlite3.Connection, n: str = name, st: str = status, su: str = summary,
               o: str = output) -> dict[str, Any]:
            return record_tx(conn, run_id=run_id, task_id=task_id, name=n, status=st, summary=su, output=o,
                             now=now_ts())

        result = store.write(tx)
        ran.append({"name": name, "status": status, "summary": summary, "output_tail": output[-1000:]})
    if result is None:
        result = verify_status(store, run_id=run_id, task_id=task_id)
    return result | {"ran": ran, "skipped": skipped, "cwd": cwd}
