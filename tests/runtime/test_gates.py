"""Verification gates run by the watcher: real sim workers, real git worktrees, real check commands."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from orch_console.console.runtime.watcher import Watcher
from orch_console.store import watcher_actions as wa
from tests.conftest import ORCH
from tests.runtime.conftest import Rig, until

# Passes only in attempt 2's worktree: the sim writes "<task> attempt N step k" into its file.
CHECK = ("grep -q 'attempt 2' src/feature.txt || "
         "{ echo 'FEATURE-CHECK: expected attempt 2, found:'; cat src/feature.txt; exit 1; }")


def test_failing_check_fails_the_task_and_the_retry_brief_quotes_it_then_a_pass_is_done(rig: Rig) -> None:
    rig.run()
    rig.task("t", "progress,done", paths=["src/feature.txt"], check_cmds={"feature": CHECK})
    rig.start("t")
    w = Watcher(rig.store.path, rig.run_id)
    statuses: list[str] = []
    try:
        def step() -> None:
            w.tick()
            st = rig.task_status("t")
            if not statuses or statuses[-1] != st:
                statuses.append(st)
        until(lambda: rig.task_status("t") == "done", timeout=60, step=step)
    finally:
        w.close()
    a1, a2 = rig.attempts("t")
    assert a1["end_reason"] == "check_failed" and a2["end_reason"] == "succeeded"
    assert "verifying" in statuses and "failed" in statuses and statuses[-1] == "done"
    checks = {(c["attempt_no"], c["status"]): dict(c) for c in
              rig.store.all("SELECT * FROM checks WHERE run_id=? AND task_id='t'", (rig.run_id,))}
    assert set(checks) == {(1, "failed"), (2, "passed")}
    assert "FEATURE-CHECK: expected attempt 2" in checks[(1, "failed")]["output"]
    assert "t attempt 1 step 1" in checks[(1, "failed")]["output"]
    # The retry's brief carries the failing output.
    brief = Path(a2["brief_path"]).read_text()
    assert "Check feature failed" in brief and "FEATURE-CHECK: expected attempt 2" in brief
    assert "FEATURE-CHECK" not in Path(a1["brief_path"]).read_text()
    # Each check ran once per attempt, each run claimed under its own key and said as an event.
    started = rig.events("task_check_started", "t")
    assert [(e["attempt_no"], e["summary"].split(":")[0]) for e in started] == [(1, "running check feature"),
                                                                               (2, "running check feature")]
    keys = [a["action_key"] for a in wa.actions(rig.store, rig.run_id) if a["action"] == "run_check"]
    assert keys == [f"check:{rig.run_id}:t:a1:feature", f"check:{rig.run_id}:t:a2:feature"]
    failed = rig.events("task_failed", "t")
    assert len(failed) == 1 and '"end_reason":"check_failed"' in failed[0]["payload_json"]


def test_a_slow_check_does_not_hold_up_the_watchers_pass(rig: Rig) -> None:
    rig.run(check_timeout_seconds=1.5)
    rig.task("t", "done", check_cmds={"slow": "echo started; sleep 30"})
    rig.start("t")
    w = Watcher(rig.store.path, rig.run_id)
    try:
        until(lambda: rig.task_status("t") == "verifying", timeout=30, step=w.tick)
        until(lambda: rig.events("task_check_started", "t"), timeout=10, step=w.tick)
        t0 = time.monotonic()
        for _ in range(5):
            w.tick()
        assert time.monotonic() - t0 < 1.0  # the check sleeps 30 s; the passes do not wait for it
        until(lambda: rig.task_status("t") == "failed", timeout=10, step=w.tick)
    finally:
        w.close()
    c = rig.store.one("SELECT * FROM checks WHERE run_id=? AND task_id='t'", (rig.run_id,))
    assert c["status"] == "failed" and "timed out after 1.5s" in c["output"] and "started" in c["output"]


def test_watcher_killed_during_a_check_the_next_one_takes_it_over_once(rig: Rig, tmp_path: Path) -> None:
    marker = tmp_path / "runs.log"
    rig.run(check_timeout_seconds=30)
    rig.task("t", "done", check_cmds={"slow": f"echo run >> {marker}; sleep 2; echo ok"})
    rig.start("t")
    until(lambda: rig.task_status("t") == "verifying", timeout=30)
    watch = subprocess.Popen([ORCH, "--db", rig.store.path, "watch", "--run", rig.run_id],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        until(lambda: marker.exists(), timeout=30)
        os.killpg(watch.pid, signal.SIGKILL)  # the watcher and the check it was running
        watch.wait(timeout=10)
    finally:
        if watch.poll() is None:
            os.killpg(watch.pid, signal.SIGKILL)
            watch.wait()
    assert rig.store.scalar("SELECT status FROM checks WHERE run_id=? AND task_id='t'", (rig.run_id,)) == "running"
    w = Watcher(rig.store.path, rig.run_id)
    try:
        w.tick()
        w.tick()
        until(lambda: rig.task_status("t") == "done", timeout=30, step=w.tick)
        for _ in range(3):
            w.tick()
    finally:
        w.close()
    keys = [a["action_key"] for a in wa.actions(rig.store, rig.run_id) if a["action"] == "run_check"]
    assert keys == [f"check:{rig.run_id}:t:a1:slow", f"check:{rig.run_id}:t:a1:slow:g2"]
    assert marker.read_text() == "run\nrun\n"  # once by the killed watcher, once by its successor
