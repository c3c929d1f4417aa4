"""Restarting the watcher, even after SIGKILL, never repeats an action: each one is keyed in the
same transaction that performs it, and the event cursor is persisted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter

from orch_console.console.runtime.watcher import Watcher
from orch_console.store import runtime as rt
from orch_console.store import watcher_actions as wa
from tests.conftest import ORCH, git_env
from tests.runtime.conftest import Rig, until


def _watch(rig: Rig) -> subprocess.Popen[str]:
    return subprocess.Popen([ORCH, "--db", rig.store.path, "watch", "--run", rig.run_id, "--autopilot"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=git_env(),
                            start_new_session=True)


def _kill(p: subprocess.Popen[str]) -> str:
    os.killpg(p.pid, signal.SIGKILL)
    out, _ = p.communicate(timeout=10)
    return out


def _action_counts(rig: Rig) -> Counter[tuple[str, str, int | None]]:
    types = ("task_auto_dispatched", "task_auto_retried", "attempt_nudged", "attempt_stalled", "attempt_launched")
    return Counter((e["event_type"], e["task_id"], e["attempt_no"]) for t in types for e in rig.events(t))


def test_watcher_killed_with_sigkill_resumes_without_repeating_an_action(rig: Rig) -> None:
    rig.run()
    rig.task("f", "fail | progress,done")
    rig.task("q", "progress,hang | progress,done")
    first = _watch(rig)
    try:
        # Kill it in the middle of healing: after the nudge of the hung worker, before it is done.
        until(lambda: rig.events("attempt_nudged", "q"), timeout=40)
    finally:
        out1 = _kill(first)
    saved = wa.cursor(rig.store, rig.run_id)
    assert saved > 0, out1
    second = _watch(rig)
    try:
        until(lambda: rig.task_status("f") == "done" and rig.task_status("q") == "done", timeout=60)
        time.sleep(1.0)  # a few more passes of the restarted watcher
    finally:
        out2 = _kill(second)
    counts = _action_counts(rig)
    assert counts and max(counts.values()) == 1, (counts, out1, out2)
    assert counts[("task_auto_dispatched", "f", 1)] == 1 and counts[("task_auto_dispatched", "q", 1)] == 1
    assert counts[("task_auto_retried", "f", 2)] == 1 and counts[("task_auto_retried", "q", 2)] == 1
    assert counts[("attempt_nudged", "q", 1)] == 1 and counts[("attempt_stalled", "q", 1)] == 1
    assert [len(rig.attempts(t)) for t in ("f", "q")] == [2, 2]
    assert wa.cursor(rig.store, rig.run_id) > saved


def test_a_watcher_that_lost_its_cursor_repeats_nothing(rig: Rig) -> None:
    rig.run(autopilot=True, max_attempts=2)
    rig.task("f", "crash")
    w = Watcher(rig.store.path, rig.run_id)
    try:
        until(lambda: rt.needs_attention(rig.store, rig.run_id), timeout=40, step=w.tick)
        w.tick(force_liveness=True)
    finally:
        w.close()
    before = _action_counts(rig)
    actions_before = len(wa.actions(rig.store, rig.run_id))
    # As if it had been killed after acting but before saving its cursor: start from zero.
    rig.store.write(lambda conn: conn.execute("UPDATE watcher_state SET last_event_id=0"))
    again = Watcher(rig.store.path, rig.run_id)
    try:
        assert again._cursor == 0
        for _ in range(5):
            again.tick(force_liveness=True)
            time.sleep(0.1)
    finally:
        again.close()
    assert _action_counts(rig) == before
    assert len(wa.actions(rig.store, rig.run_id)) == actions_before
    assert len(rig.events("task_escalated", "f")) == 1


def test_restarted_watcher_starts_from_the_saved_cursor(rig: Rig) -> None:
    rig.run()
    rig.task("t", "progress,done")
    rig.start("t", mode="analysis")
    w = Watcher(rig.store.path, rig.run_id)
    try:
        until(lambda: rig.task_status("t") == "done", timeout=30, step=w.tick)
        w.tick()
    finally:
        w.close()
    saved = wa.cursor(rig.store, rig.run_id)
    last = rig.store.scalar("SELECT max(event_id) FROM events")
    assert saved == last
    p = subprocess.run([ORCH, "--db", rig.store.path, "--json", "watch", "--run", rig.run_id, "--once"],
                       capture_output=True, text=True, env=git_env(), timeout=30)
    data = json.loads(p.stdout)["data"]
    assert p.returncode == 0 and data["events"] == 0 and data["cursor"] == saved


def test_watch_once_escalates_an_unlaunched_failure_with_a_bell(rig: Rig) -> None:
    from orch_console.store import dispatch, inbox

    rig.run()
    rig.task("t", "done")
    th = dispatch.dispatch(rig.store, run_id=rig.run_id, task_id="t", execution_mode="analysis")["thread"]
    inbox.claim(rig.store, agent="sim", thread_id=th["thread_id"])
    inbox.finish(rig.store, agent="sim", thread_id=th["thread_id"], outcome="failed", summary="could not build")
    p = subprocess.run([ORCH, "--db", rig.store.path, "watch", "--run", rig.run_id, "--once"], capture_output=True,
                       text=True, env=git_env(), timeout=30)
    assert p.returncode == 0, p.stderr
    assert "escalated t to the leader" in p.stdout and "\a" in p.stdout
    assert rt.needs_attention(rig.store, rig.run_id) == {"t"} and len(rig.attempts("t")) == 1


def test_watcher_checkpoints_a_grown_wal(rig: Rig, monkeypatch) -> None:
    import orch_console.console.runtime.watcher as cw

    rig.run()
    rig.task("t", "done")
    monkeypatch.setattr(cw, "WAL_CHECKPOINT_BYTES", 0)
    w = Watcher(rig.store.path, rig.run_id)
    try:
        res = w.tick()
    finally:
        w.close()
    assert any(a.startswith("checkpointed the WAL") for a in res.actions)


def test_autopilot_respects_a_profiles_parallel_limit(rig: Rig) -> None:
    from pathlib import Path

    (Path(rig.store.path).parent / "orch.toml").write_text(
        '[agents.slow]\ncommand = "sleep 30"\nruntime = "process"\nmax_parallel = 1\n')
    rig.run(autopilot=True, profile="slow", execution_mode="analysis", concurrency=5)
    for t in ("a", "b", "c"):
        rig.task(t, "done")
    w = Watcher(rig.store.path, rig.run_id)
    try:
        for _ in range(3):
            w.tick(force_liveness=True)
    finally:
        w.close()
    launched = rig.store.scalar("SELECT count(*) FROM attempts WHERE runtime<>''")
    dispatched = rig.store.scalar("SELECT count(*) FROM attempts")
    assert (launched, dispatched) == (1, 1)
