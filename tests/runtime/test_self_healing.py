"""Real simulated workers misbehaving, and the watcher healing within bounds (real processes,
real git, real tmux on a private socket)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orch_console.console.runtime import launcher
from orch_console.console.runtime.watcher import Watcher
from orch_console.store import runtime as rt

from tests.runtime.conftest import Rig, until


def test_crashed_worker_is_marked_crashed_and_retried_in_a_fresh_worktree(rig: Rig) -> None:
    rig.run()
    rig.task("t", "progress,crash | progress,done")
    rig.start("t")
    w = Watcher(rig.store.path, rig.run_id)
    try:
        until(lambda: rig.task_status("t") == "done", timeout=90, step=w.tick)
    finally:
        w.close()
    a1, a2 = rig.attempts("t")
    assert (a1["end_reason"], a1["liveness"]) == ("crashed", "crashed")
    assert a2["end_reason"] == "succeeded" and a2["profile"] == "sim" and a2["pid"]
    assert a1["worktree_path"] != a2["worktree_path"] and Path(a2["worktree_path"]).is_dir()
    assert a1["branch_name"].endswith("/a1") and a2["branch_name"].endswith("/a2")
    # The retry's brief carries the failure context: never the same prompt twice.
    brief = Path(a2["brief_path"]).read_text()
    assert "crashed" in brief and brief != Path(a1["brief_path"]).read_text()
    assert len(rig.events("attempt_crashed", "t")) == 1
    retried = rig.events("task_auto_retried", "t")
    assert len(retried) == 1 and "ended crashed" in retried[0]["summary"]


def test_retries_stop_at_the_bound_and_the_task_escalates(rig: Rig) -> None:
    rig.run(max_attempts=2)
    rig.task("t", "crash")
    rig.start("t")
    bells: list[str] = []
    w = Watcher(rig.store.path, rig.run_id, on_action=lambda line, bell: bells.append(line) if bell else None)
    try:
        until(lambda: rt.needs_attention(rig.store, rig.run_id) == {"t"}, timeout=90, step=w.tick)
        for _ in range(10):  # more passes change nothing: the bound holds
            w.tick(force_liveness=True)
    finally:
        w.close()
    assert [a["end_reason"] for a in rig.attempts("t")] == ["crashed", "crashed"]
    assert rig.task_status("t") == "failed"
    escalated = rig.events("task_escalated", "t")
    assert len(escalated) == 1 and "gave up after 2" in escalated[0]["summary"]
    assert any("escalated t" in line for line in bells)


def test_hung_worker_lease_expires_it_is_stalled_and_the_policy_retries(rig: Rig) -> None:
    rig.run()
    rig.task("t", "progress,hang | progress,done")
    first = rig.start("t")
    w = Watcher(rig.store.path, rig.run_id)
    try:
        until(lambda: rig.task_status("t") == "done", timeout=90, step=w.tick)
    finally:
        w.close()
    assert len(rig.events("lease_expired", "t")) >= 1
    # the hung attempt is nudged once (a retry slow to start on a loaded machine may be nudged too:
    # the policy's nudge is 1.5 s of quiet here)
    assert [e["attempt_no"] for e in rig.events("attempt_nudged", "t")].count(1) == 1
    stalled = rig.events("attempt_stalled", "t")
    assert len(stalled) == 1 and "no heartbeat" in stalled[0]["summary"]
    a1, a2 = rig.attempts("t")
    assert a1["end_reason"] == "stalled" and a2["end_reason"] == "succeeded"
    # The hung process was stopped, not left behind.
    assert launcher.pid_alive(first["attempt"]["pid"]) is False


@pytest.mark.tmux
def test_worker_waiting_at_a_prompt_needs_attention_and_the_leaders_answer_reaches_it(rig: Rig) -> None:
    rig.run(stall_seconds=60, nudge_seconds=60)
    rig.task("t", "progress,prompt,progress,done")
    out = rig.start("t", profile="sim-tmux")
    assert out["runtime"] == "tmux" and out["attach"][:2] == ["tmux", "-L"]
    w = Watcher(rig.store.path, rig.run_id)
    try:
        until(lambda: rt.needs_attention(rig.store, rig.run_id) == {"t"}, timeout=60, step=w.tick)
        a = rig.attempts("t")[0]
        assert a["liveness"] == "waiting_input"
        assert "Continue? [y/n]" in launcher.capture(rig.store.path, a)
        assert rig.task_status("t") == "running"
        launcher.send_keys(rig.store, run_id=rig.run_id, task_id="t", text="y")
        until(lambda: rig.task_status("t") == "done", timeout=60, step=w.tick)
    finally:
        w.close()
    assert rt.needs_attention(rig.store, rig.run_id) == set()
    assert len(rig.events("attempt_waiting_input", "t")) == 1
    assert rig.events("attempt_input_sent", "t")[0]["payload_json"] == '{"text":"y"}'
    log = Path(rig.attempts("t")[0]["log_path"]).read_text()
    assert "continuing" in log


def test_a_second_launch_of_the_same_attempt_is_refused(rig: Rig) -> None:
    rig.run()
    rig.task("t", "progress*2,done")
    rig.start("t", mode="analysis")
    from orch_console.store.errors import InvalidState

    with pytest.raises(InvalidState, match="already launched"):
        launcher.launch(rig.store, run_id=rig.run_id, task_id="t")
    until(lambda: rig.task_status("t") == "done", timeout=60)
    a = rig.attempts("t")[0]
    # Analysis mode: the worker ran in a scratch directory beside the database.
    assert a["runtime"] == "process" and Path(a["log_path"]).exists() and "scratch" not in a["worktree_path"]
    assert (Path(a["brief_path"]).parent / "scratch" / "sim" / "t.txt").exists()
