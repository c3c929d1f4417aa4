"""The headless decisions of the runtime: liveness verdicts, retry policy, autopilot selection."""

from __future__ import annotations

import pytest

from orch_console.store import dispatch, runs
from orch_console.store.autopilot import pick_ready
from orch_console.store.plan import paths_overlap
from orch_console.store.liveness import Facts, classify_pane, judge
from orch_console.store.policy import Settings, backoff_seconds, decide_failure

S = Settings(nudge_seconds=10, stall_seconds=30, crash_grace_seconds=1, idle_seconds=20)


def facts(**kw) -> Facts:
    base = dict(now=1000.0, started_at=900.0, thread_status="in_progress", launched=True, process_alive=True,
                lease_owner="w", lease_expires_at=2000.0, heartbeat_at=995.0)
    return Facts(**(base | kw))


# -- liveness --------------------------------------------------------------------------------
def test_recent_heartbeat_is_alive() -> None:
    v = judge(facts(), S)
    assert (v.liveness, v.action) == ("alive", "")


def test_dead_process_with_live_thread_is_crashed_after_grace() -> None:
    assert judge(facts(process_alive=False, dead_since=999.5), S).action == ""
    v = judge(facts(process_alive=False, dead_since=998.0), S)
    assert (v.liveness, v.action) == ("crashed", "crashed")


def test_quiet_worker_is_nudged_then_stalled() -> None:
    assert judge(facts(heartbeat_at=985.0), S).action == "nudge"
    v = judge(facts(heartbeat_at=960.0, lease_expires_at=990.0), S)
    assert v.action == "stalled" and "lease expired" in v.reason


def test_any_signal_counts_as_life() -> None:
    old = dict(heartbeat_at=900.0, lease_expires_at=950.0)
    for signal in ("last_message_at", "worktree_write_at", "last_commit_at", "output_changed_at"):
        assert judge(facts(**old, **{signal: 999.0}), S).action == "", signal
    assert judge(facts(**old), S).action == "stalled"


def test_blocked_worker_waiting_for_the_leader_is_not_stalled() -> None:
    v = judge(facts(thread_status="blocked", heartbeat_at=100.0, lease_expires_at=150.0), S)
    assert (v.liveness, v.action) == ("blocked", "")


def test_answered_blocked_worker_is_due_to_resume_and_watched_from_the_answer() -> None:
    """A reply leaves the thread blocked until its worker resumes: once answered, the time is the
    worker's again, counted from the answer."""
    old = dict(thread_status="blocked", heartbeat_at=100.0, lease_expires_at=150.0)
    v = judge(facts(**old, answered_at=998.0), S)
    assert (v.liveness, v.action) == ("alive", "")
    assert judge(facts(**old, answered_at=985.0), S).action == "nudge"
    assert judge(facts(**old, answered_at=960.0), S).action == "stalled"


def test_unlaunched_pending_attempt_is_never_stalled() -> None:
    v = judge(facts(thread_status="pending", launched=False, process_alive=None, lease_owner="",
                    heartbeat_at=0.0, started_at=0.0), S)
    assert v.action == ""


def test_unlaunched_claimed_attempt_stalls_only_when_its_lease_is_gone() -> None:
    quiet = dict(launched=False, process_alive=None, heartbeat_at=900.0)
    assert judge(facts(**quiet, lease_expires_at=2000.0), S).action == "nudge"
    assert judge(facts(**quiet, lease_expires_at=950.0), S).action == "stalled"


def test_prompt_on_screen_needs_attention_not_a_stall() -> None:
    v = judge(facts(heartbeat_at=100.0, pane_state="waiting_input", pane_line="Continue? [y/n]"), S)
    assert (v.liveness, v.action) == ("waiting_input", "attention")
    assert "Continue?" in v.reason


def test_attempt_timeout() -> None:
    s = Settings(attempt_timeout_seconds=50)
    assert judge(facts(), s).action == "timed_out"


def test_ended_attempt_gets_no_verdict() -> None:
    assert judge(facts(thread_status="done", process_alive=False, dead_since=1.0), S).action == ""


@pytest.mark.parametrize("screen,state", [
    ("building...\nContinue? [y/n] ", "waiting_input"),
    ("Overwrite file? (y/n)", "waiting_input"),
    ("Press any key to continue", "waiting_input"),
    ("compiling\nerror: cannot find module foo\n", "error"),
    ("Traceback (most recent call last):\n  File x\nValueError: bad", "error"),
    ("step 1\nstep 2\n", "active"),
    ("Continue? [y/n] y\ncontinuing\nstep 3\nstep 4\n", "active"),
    ("step 1\nContinue? [y/n] y", "active"),
])
def test_classify_pane(screen: str, state: str) -> None:
    assert classify_pane(screen)[0] == state


# -- policy ----------------------------------------------------------------------------------
def test_backoff_is_exponential_and_capped() -> None:
    s = Settings(retry_backoff_seconds=2, retry_backoff_max_seconds=10)
    assert [backoff_seconds(n, s) for n in (1, 2, 3, 4, 5)] == [2, 4, 8, 10, 10]


def test_failure_waits_out_its_backoff_then_retries() -> None:
    s = Settings(retry_backoff_seconds=5, max_attempts=3)
    d = decide_failure(attempt_no=1, end_reason="crashed", ended_at=100.0, now=102.0, settings=s, launched=True)
    assert d.action == "wait" and d.due_at == 105.0
    d = decide_failure(attempt_no=2, end_reason="stalled", ended_at=100.0, now=110.5, settings=s, launched=True)
    assert d.action == "retry" and d.due_at == 110.0


def test_retries_stop_at_the_bound_and_escalate() -> None:
    s = Settings(max_attempts=2)
    d = decide_failure(attempt_no=2, end_reason="failed", ended_at=0.0, now=1e9, settings=s, launched=True)
    assert d.action == "escalate" and "gave up after 2" in d.reason


def test_leader_decisions_are_not_retried() -> None:
    for reason in ("cancelled", "reassigned"):
        d = decide_failure(attempt_no=1, end_reason=reason, ended_at=0.0, now=1e9, settings=Settings(), launched=True)
        assert d.action == "escalate"


def test_unlaunched_attempt_escalates_instead_of_retrying() -> None:
    d = decide_failure(attempt_no=1, end_reason="failed", ended_at=0.0, now=1e9, settings=Settings(), launched=False)
    assert d.action == "escalate"


def test_settings_from_config_ignores_bad_values() -> None:
    s = Settings.from_config({"stall_seconds": "12", "max_attempts": "x", "autopilot": "true", "nudge": False,
                              "unknown": 1})
    assert s.stall_seconds == 12.0 and s.max_attempts == 3 and s.autopilot is True and s.nudge is False
    assert Settings.from_config({"repo_path": "/r"}).mode() == "code"
    assert Settings.from_config({}).mode() == "analysis"


# -- autopilot -------------------------------------------------------------------------------
@pytest.mark.parametrize("a,b,overlap", [
    (["src"], ["src/app.py"], True), (["src/a"], ["src/ab"], False), (["docs/x.md"], ["docs/x.md"], True),
    (["./src/"], ["src/x"], True), (["a"], ["b", "a/c"], True), (["a"], ["b"], False),
    (["src/*.py"], ["src/app.py"], True), (["src/*.py"], ["lib/x.py"], False), ([""], ["anything"], True),
])
def test_paths_overlap(a: list[str], b: list[str], overlap: bool) -> None:
    assert paths_overlap(a, b) is overlap and paths_overlap(b, a) is overlap


def test_autopilot_has_no_overlap_of_its_own() -> None:
    import orch_console.store.autopilot as ap

    # One implementation: the autopilot's check is store.plan's (globs own their directory).
    assert ap.paths_overlap is paths_overlap and not hasattr(ap, "_norm")


def test_pick_ready_respects_cap_paths_and_priority(store) -> None:
    runs.run_init(store, run_id="r", goal="g")
    runs.task_add(store, run_id="r", task_id="busy", title="t", default_to="w", paths=["src"])
    dispatch.dispatch(store, run_id="r", task_id="busy", execution_mode="analysis")
    runs.task_add(store, run_id="r", task_id="clash", title="t", default_to="w", paths=["src/app.py"], priority=9)
    runs.task_add(store, run_id="r", task_id="low", title="t", default_to="w", paths=["docs"])
    runs.task_add(store, run_id="r", task_id="high", title="t", default_to="w", paths=["lib"], priority=5)
    runs.task_add(store, run_id="r", task_id="twin", title="t", default_to="w", paths=["lib/x.py"], priority=4)
    picked = [p["task_id"] for p in pick_ready(store, "r", cap=5)]
    assert picked == ["high", "low"]  # clash overlaps in-flight busy; twin overlaps the picked high
    assert [p["task_id"] for p in pick_ready(store, "r", cap=2)] == ["high"]
    assert pick_ready(store, "r", cap=1) == []


def test_select_says_why_each_task_starts_or_waits(store) -> None:
    from orch_console.store import inbox
    from orch_console.store.autopilot import select

    runs.run_init(store, run_id="r", goal="g")
    for tid, paths, prio in (("a", ["src/db"], 0), ("b", ["lib"], 0), ("c", ["src/*.py"], 0),
                             ("d", ["src/db/x.py"], 3), ("e", ["docs"], 1), ("f", ["web"], 0)):
        runs.task_add(store, run_id="r", task_id=tid, title=tid, default_to="w", paths=paths, priority=prio)
    runs.dep_add(store, run_id="r", task_id="c", depends_on="a")
    runs.dep_add(store, run_id="r", task_id="c", depends_on="b")
    for tid in ("b", "a"):  # a finishes last: c becomes ready after a
        dispatch.dispatch(store, run_id="r", task_id=tid, execution_mode="analysis")
        th = dispatch.latest_attempt(store.conn, "r", tid)["thread_id"]
        inbox.claim(store, agent="w", thread_id=th)
        inbox.finish(store, agent="w", thread_id=th, outcome="done", summary="ok")
    dispatch.dispatch(store, run_id="r", task_id="f", execution_mode="analysis")
    sel = select(store, "r", cap=3)
    # d (priority 3) first; c (wave 1) overlaps d picked before it (src/*.py owns src/); e next.
    assert [p["task_id"] for p in sel["picks"]] == ["d", "e"]
    assert [(p["slot"], p["cap"]) for p in sel["picks"]] == [(2, 3), (3, 3)] and sel["in_flight"] == 1
    assert [(h["task_id"], [o["task_id"] for o in h["overlaps"]]) for h in sel["held"]] == [("c", ["d"])]
    # With d out of the way c goes, and names the blocker that finished last.
    store.conn.execute("UPDATE tasks SET priority=-1 WHERE run_id='r' AND task_id='d'")
    store.conn.commit()
    picks = {p["task_id"]: p for p in select(store, "r", cap=5)["picks"]}
    assert (picks["c"]["after"], picks["c"]["wave"]) == ("a", 1) and picks["e"]["after"] == ""
