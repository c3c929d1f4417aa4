"""Thread, attempt, task and run transitions through the store functions."""

from __future__ import annotations

import time

import pytest

from orch_console.store import InvalidInput, InvalidState, LeaseConflict, NotFound, Store
from orch_console.store import dispatch, inbox, runs, verify, views


def events(store: Store, run_id: str = "r") -> list[tuple[str, str]]:
    return [(e["event_type"], e["task_id"]) for e in store.all(
        "SELECT event_type, task_id FROM events WHERE run_id=? ORDER BY event_id", (run_id,))]


def task_status(store: Store, task: str, run_id: str = "r") -> str:
    return store.scalar("SELECT status FROM tasks WHERE run_id=? AND task_id=?", (run_id, task))


@pytest.fixture
def plan(store: Store) -> Store:
    runs.run_init(store, run_id="r", goal="ship it")
    runs.task_add(store, run_id="r", task_id="A", title="first", default_to="w1")
    runs.task_add(store, run_id="r", task_id="B", title="second", default_to="w2")
    runs.dep_add(store, run_id="r", task_id="B", depends_on="A")
    return store


def start(store: Store, task: str = "A", agent: str = "w1") -> str:
    th = dispatch.dispatch(store, run_id="r", task_id=task, execution_mode="analysis")["attempt"]["thread_id"]
    inbox.claim(store, agent=agent, thread_id=th)
    return th


def test_task_without_dependencies_is_ready_and_dependant_is_planned(plan: Store) -> None:
    assert task_status(plan, "A") == "ready"
    assert task_status(plan, "B") == "planned"
    assert [t["task_id"] for t in runs.ready(plan, run_id="r")["tasks"]] == ["A"]


def test_claim_moves_task_to_running_in_same_transaction(plan: Store) -> None:
    th = start(plan)
    assert task_status(plan, "A") == "running"
    assert plan.scalar("SELECT status FROM attempts WHERE thread_id=?", (th,)) == "claimed"
    assert ("task_running", "A") in events(plan)


def test_second_claim_by_other_agent_is_lease_conflict(plan: Store) -> None:
    th = start(plan)
    with pytest.raises(LeaseConflict):
        inbox.claim(plan, agent="w9", thread_id=th)


def test_claim_again_by_owner_keeps_status_and_extends_lease(plan: Store) -> None:
    th = start(plan)
    inbox.update(plan, agent="w1", thread_id=th, status="in_progress", summary="working")
    out = inbox.claim(plan, agent="w1", thread_id=th, lease_seconds=5000)
    assert out["already_claimed"] is True
    assert out["thread"]["status"] == "in_progress"


def test_expired_lease_can_be_reclaimed_and_old_owner_gets_conflict(plan: Store) -> None:
    th = dispatch.dispatch(plan, run_id="r", task_id="A", execution_mode="analysis")["attempt"]["thread_id"]
    inbox.claim(plan, agent="w1", thread_id=th, lease_seconds=1)
    time.sleep(1.1)
    assert [t["thread_id"] for t in inbox.expire_leases(plan)] == [th]
    assert inbox.expire_leases(plan) == []  # noted once
    inbox.claim(plan, agent="w2", thread_id=th)
    with pytest.raises(LeaseConflict):
        inbox.finish(plan, agent="w1", thread_id=th, outcome="done", summary="late result")
    inbox.finish(plan, agent="w2", thread_id=th, outcome="done", summary="new owner's result")
    assert plan.scalar("SELECT summary FROM messages WHERE kind='result'") == "new owner's result"


def test_update_without_claim_is_invalid_state(plan: Store) -> None:
    th = dispatch.dispatch(plan, run_id="r", task_id="A", execution_mode="analysis")["attempt"]["thread_id"]
    with pytest.raises(InvalidState):
        inbox.update(plan, agent="w1", thread_id=th, status="in_progress", summary="x")


def test_done_releases_lease_and_readies_dependant_atomically(plan: Store) -> None:
    th = start(plan)
    inbox.finish(plan, agent="w1", thread_id=th, outcome="done", summary="ok")
    t = inbox.get_thread(plan, th)
    assert t["status"] == "done" and t["lease_owner"] == ""
    assert task_status(plan, "A") == "done"
    assert task_status(plan, "B") == "ready"
    evs = events(plan)
    done_at = evs.index(("task_done", "A"))
    # B's readiness is the very next task event, written in the same transaction
    assert ("task_ready", "B") in evs[done_at + 1:done_at + 3]
    with pytest.raises(InvalidState):
        inbox.finish(plan, agent="w1", thread_id=th, outcome="done", summary="again")


def test_blocked_then_answer_resumes_and_second_answer_is_invalid_state(plan: Store) -> None:
    th = start(plan)
    inbox.update(plan, agent="w1", thread_id=th, status="blocked", summary="which db?",
                 payload_json='{"question": "sqlite or postgres?"}')
    assert task_status(plan, "A") == "blocked"
    assert views.status(plan, run_id="r")["run"]["status"] == "blocked"
    q = views.blocked(plan, run_id="r")["tasks"][0]
    assert q["question"]["payload"] == {"question": "sqlite or postgres?"}
    dispatch.answer(plan, run_id="r", task_id="A", body="sqlite")
    # the answer leaves the thread (and task) blocked until the worker resumes (orch-contract.md 3.3)
    assert task_status(plan, "A") == "blocked"
    assert views.blocked(plan, run_id="r")["tasks"][0]["answered"] is True
    with pytest.raises(InvalidState):
        dispatch.answer(plan, run_id="r", task_id="A", body="postgres")
    assert plan.scalar("SELECT count(*) FROM messages WHERE kind='answer'") == 1
    inbox.update(plan, agent="w1", thread_id=th, status="in_progress", summary="resuming")
    assert task_status(plan, "A") == "running"


def test_failed_task_retry_has_new_attempt_and_failure_context(plan: Store) -> None:
    th = start(plan)
    inbox.finish(plan, agent="w1", thread_id=th, outcome="failed", summary="tests broke", body="E assert 1 == 2")
    assert task_status(plan, "A") == "failed"
    assert views.status(plan, run_id="r")["run"]["status"] == "failed"
    out = dispatch.retry(plan, run_id="r", task_id="A")
    assert out["attempt"]["attempt_no"] == 2
    assert out["previous_attempt"]["attempt_no"] == 1 and out["previous_attempt"]["end_reason"] == "failed"
    assert out["attempt"]["thread_id"] != th
    assert "tests broke" in out["message"]["body"] and "E assert 1 == 2" in out["message"]["body"]
    assert task_status(plan, "A") == "dispatched"


def test_retry_refuses_the_same_prompt(plan: Store) -> None:
    th = dispatch.dispatch(plan, run_id="r", task_id="A", execution_mode="analysis", body="do X")["attempt"]["thread_id"]
    inbox.claim(plan, agent="w1", thread_id=th)
    inbox.finish(plan, agent="w1", thread_id=th, outcome="failed", summary="no")
    with pytest.raises(InvalidInput, match="same"):
        dispatch.retry(plan, run_id="r", task_id="A", body="do X")
    assert dispatch.retry(plan, run_id="r", task_id="A", body="do X, but smaller")["attempt"]["attempt_no"] == 2


def test_retry_of_running_task_is_invalid_state(plan: Store) -> None:
    start(plan)
    with pytest.raises(InvalidState):
        dispatch.retry(plan, run_id="r", task_id="A")


def test_reassign_cancels_old_thread_and_marks_attempt_reassigned(plan: Store) -> None:
    th = start(plan)
    out = dispatch.reassign(plan, run_id="r", task_id="A", to="w7")
    assert inbox.get_thread(plan, th)["status"] == "cancelled"
    assert plan.scalar("SELECT end_reason FROM attempts WHERE thread_id=?", (th,)) == "reassigned"
    assert out["attempt"]["assigned_to"] == "w7" and out["attempt"]["attempt_no"] == 2
    assert task_status(plan, "A") == "dispatched"
    # the old worker's late result cannot land
    with pytest.raises(InvalidState):
        inbox.finish(plan, agent="w1", thread_id=th, outcome="done", summary="late")


def test_cancel_task_cancels_live_thread(plan: Store) -> None:
    th = start(plan)
    dispatch.cancel(plan, run_id="r", task_id="A")
    assert task_status(plan, "A") == "cancelled"
    assert inbox.get_thread(plan, th)["status"] == "cancelled"
    msg = plan.one("SELECT kind, to_agent FROM messages WHERE thread_id=? ORDER BY message_id DESC LIMIT 1", (th,))
    assert (msg["kind"], msg["to_agent"]) == ("control", "w1")


def test_cancel_run_cancels_every_open_task(plan: Store) -> None:
    out = dispatch.cancel(plan, run_id="r")
    assert sorted(out["cancelled_tasks"]) == ["A", "B"]
    assert runs.run_show(plan, run_id="r")["run"]["status"] == "cancelled"
    with pytest.raises(InvalidState):
        dispatch.cancel(plan, run_id="r")


def test_dependency_cycle_and_self_dependency_are_refused(plan: Store) -> None:
    runs.task_add(plan, run_id="r", task_id="C", title="third")
    runs.dep_add(plan, run_id="r", task_id="C", depends_on="B")
    with pytest.raises(InvalidInput, match="cycle"):
        runs.dep_add(plan, run_id="r", task_id="A", depends_on="C")
    with pytest.raises(InvalidInput):
        runs.dep_add(plan, run_id="r", task_id="A", depends_on="A")
    with pytest.raises(NotFound):
        runs.dep_add(plan, run_id="r", task_id="A", depends_on="nope")


def test_required_checks_gate_done(store: Store) -> None:
    runs.run_init(store, run_id="r", goal="g")
    runs.task_add(store, run_id="r", task_id="A", title="t", default_to="w", required_checks=["tests"])
    th = start(store, "A", "w")
    inbox.finish(store, agent="w", thread_id=th, outcome="done", summary="ok")
    assert task_status(store, "A") == "verifying"
    assert verify.verify_status(store, run_id="r", task_id="A")["gate"]["status"] == "pending"
    verify.verify_record(store, run_id="r", task_id="A", name="tests", status="failed", summary="2 failures",
                         output="FAILED test_x")
    assert task_status(store, "A") == "failed"
    assert store.scalar("SELECT end_reason FROM attempts WHERE thread_id=?", (th,)) == "check_failed"
    out = dispatch.retry(store, run_id="r", task_id="A")
    assert "FAILED test_x" in out["message"]["body"]
    th2 = out["attempt"]["thread_id"]
    inbox.claim(store, agent="w", thread_id=th2)
    inbox.finish(store, agent="w", thread_id=th2, outcome="done", summary="fixed")
    verify.verify_record(store, run_id="r", task_id="A", name="tests", status="passed")
    assert task_status(store, "A") == "done"
    assert runs.run_show(store, run_id="r")["run"]["status"] == "done"


def test_run_done_when_every_task_done(plan: Store) -> None:
    for task, agent in (("A", "w1"), ("B", "w2")):
        th = start(plan, task, agent)
        inbox.finish(plan, agent=agent, thread_id=th, outcome="done", summary="ok")
    assert runs.run_show(plan, run_id="r")["run"]["status"] == "done"
    assert ("run_done", "") in events(plan)


def test_reconcile_repairs_a_thread_changed_behind_the_fold(plan: Store) -> None:
    th = start(plan)
    views.reconcile(plan, run_id="r")  # the cursor: changes before it are reported no more
    plan.write(lambda c: c.execute("UPDATE threads SET status='done' WHERE thread_id=?", (th,)))
    out = views.reconcile(plan, run_id="r")
    assert sorted(out["updated_tasks"], key=lambda u: u["task_id"]) == [
        {"task_id": "A", "from": "running", "to": "done"}, {"task_id": "B", "from": "planned", "to": "ready"}]
    assert task_status(plan, "B") == "ready"
    assert views.reconcile(plan, run_id="r")["updated_tasks"] == []


def test_oversized_body_is_refused_and_nothing_written(plan: Store) -> None:
    th = start(plan)
    before = plan.scalar("SELECT count(*) FROM messages")
    with pytest.raises(InvalidInput, match="1 MiB"):
        inbox.update(plan, agent="w1", thread_id=th, status="in_progress", summary="s", body="x" * (2 * 1024 * 1024))
    assert plan.scalar("SELECT count(*) FROM messages") == before


def test_worker_text_is_stored_exactly(plan: Store) -> None:
    th = start(plan)
    nasty = "[/bold] [link=x] \x1b]8;;http://x\x07 \x1b[5m'); DROP TABLE messages;--"
    inbox.update(plan, agent="w1", thread_id=th, status="in_progress", summary="s", body=nasty)
    assert plan.scalar("SELECT body FROM messages WHERE kind='progress'") == nasty


def test_status_lists_latest_attempt_message_and_question(plan: Store) -> None:
    th = start(plan)
    inbox.update(plan, agent="w1", thread_id=th, status="blocked", summary="need input")
    st = views.status(plan, run_id="r")
    a = next(t for t in st["tasks"] if t["task_id"] == "A")
    assert a["latest_attempt"]["thread_id"] == th and a["latest_attempt"]["status"] == "blocked"
    assert a["latest_message"]["kind"] == "question"
    assert a["blocked_question"]["summary"] == "need input"
    assert [t["wave"] for t in st["tasks"]] == [0, 1]


def test_wait_reply_keeps_a_waiting_owners_lease_alive(plan: Store) -> None:
    from orch_console.store import waits

    th = dispatch.dispatch(plan, run_id="r", task_id="A", execution_mode="analysis")["attempt"]["thread_id"]
    inbox.claim(plan, agent="w1", thread_id=th, lease_seconds=2)
    inbox.update(plan, agent="w1", thread_id=th, status="blocked", summary="?")
    with pytest.raises(Exception):
        waits.wait_reply(plan, thread_id=th, agent="w1", timeout_seconds=3)
    lease_left = inbox.get_thread(plan, th)["lease_expires_at"]
    from orch_console.store.validate import parse_ts

    assert parse_ts(lease_left) - time.time() > 60


def test_run_status_probe_agrees_with_counts(store: Store) -> None:
    """The per-write EXISTS probe and the count-based rule give the same run status."""
    import itertools

    from orch_console.store.fold import run_status_from_counts, run_status_probe

    runs.run_init(store, run_id="r", goal="g")
    statuses = ("planned", "ready", "dispatched", "running", "blocked", "verifying", "done", "failed", "cancelled")
    for combo in itertools.chain.from_iterable(itertools.combinations(statuses, k) for k in range(0, 4)):
        def tx(conn, combo=combo):  # type: ignore[no-untyped-def]
            conn.execute("DELETE FROM tasks WHERE run_id='r'")
            for i, st in enumerate(combo):
                conn.execute("INSERT INTO tasks (run_id, task_id, title, status, created_at, updated_at) "
                             "VALUES ('r', ?, 't', ?, 't', 't')", (f"T{i}", st))
            counts = {st: 1 for st in combo}
            assert run_status_probe(conn, "r", "active") == run_status_from_counts(counts, "active"), combo
        store.write(tx)


def test_toggling_a_run_setting_from_two_processes_loses_no_flip(db_path: str) -> None:
    import multiprocessing as mp

    with Store(db_path) as s:
        runs.run_init(s, run_id="r", goal="g")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_toggle_many, args=(db_path, 25)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with Store(db_path) as s:
        # 100 flips from False: back to False, and every flip left its event
        assert runs.run_show(s, run_id="r")["run"]["config"]["autopilot"] is False
        assert s.scalar("SELECT count(*) FROM events WHERE event_type='run_configured'") == 100


def _toggle_many(db_path: str, n: int) -> None:
    with Store(db_path) as s:
        for _ in range(n):
            runs.toggle_setting(s, run_id="r", key="autopilot")


def test_status_for_a_person_shows_a_small_run_whole(plan: Store) -> None:
    """The screenful limit only trims big runs: a two-task run shows its planned task too."""
    start(plan)
    shown = views.status(plan, run_id="r", needs_look_limit=50)["tasks"]
    assert [t["task_id"] for t in shown] == ["A", "B"]
    assert [t["task_id"] for t in views.status(plan, run_id="r", needs_look_limit=1)["tasks"]] == ["A"]


def test_status_encoded_by_sqlite_equals_the_python_view(store: Store) -> None:
    """`orch --json status` takes the tasks as JSON text built by SQLite; it must be the very list
    the Python view builds: attempts (latest only), messages, deps, a blocked question, gates
    (pending, failed), paths, worker text with quotes, controls and non-ASCII."""
    import json

    from orch_console.console.cli.common import encode_envelope

    weird = 'quote " back \\ nl \n tab \t nul-ish \x01 esc \x1b[5m é ☃ 😀 \u2028 \x85'
    runs.run_init(store, run_id="r", goal=weird)
    runs.task_add(store, run_id="r", task_id="A", title=weird, default_to="w1", paths=["src/a.py", "é/b"])
    runs.task_add(store, run_id="r", task_id="B", title="second", default_to="w2", required_checks=["lint", "tests"])
    runs.task_add(store, run_id="r", task_id="C", title="third", default_to="w1")
    runs.task_add(store, run_id="r", task_id="D", title="fourth", default_to="w1")
    for task, dep in (("C", "B"), ("C", "A"), ("D", "C")):
        runs.dep_add(store, run_id="r", task_id=task, depends_on=dep)
    th = start(store, "A", "w1")
    inbox.finish(store, agent="w1", thread_id=th, outcome="failed", summary=weird)
    th = dispatch.retry(store, run_id="r", task_id="A", body="again")["attempt"]["thread_id"]
    inbox.claim(store, agent="w1", thread_id=th)
    inbox.update(store, agent="w1", thread_id=th, status="blocked", summary=weird, body=weird,
                 payload_json='{"options": ["é", 1, null, true]}')
    th_b = start(store, "B", "w2")
    inbox.finish(store, agent="w2", thread_id=th_b, outcome="done", summary="ok")
    verify.verify_record(store, run_id="r", task_id="B", name="lint", status="passed")
    views_py = views.status(store, run_id="r")
    enc = views.status(store, run_id="r", encoded=True)
    assert enc["tasks"].value() == views_py["tasks"]
    assert {k: v for k, v in enc.items() if k != "tasks"} == {k: v for k, v in views_py.items() if k != "tasks"}
    # the envelope the CLI prints is the same document, ASCII only, on one line
    line = encode_envelope({"ok": True, "command": "status", "data": enc})
    assert line.isascii() and "\n" not in line
    assert json.loads(line)["data"] == json.loads(json.dumps(views_py))
    a = next(t for t in views_py["tasks"] if t["task_id"] == "A")
    assert a["blocked_question"]["body"] == weird and a["latest_attempt"]["attempt_no"] == 2
    b = next(t for t in views_py["tasks"] if t["task_id"] == "B")
    assert b["gate"]["status"] == "pending" and [c["status"] for c in b["gate"]["checks"]] == ["passed", "pending"]
    assert next(t for t in views_py["tasks"] if t["task_id"] == "C")["depends_on"] == ["A", "B"]


def test_a_task_move_inside_one_run_class_cannot_change_the_run_status() -> None:
    """set_task_status skips the run's probes when old and new share a RUN_CLASS: check that for
    every such pair and many task mixes the run's status is indeed the same before and after."""
    import itertools
    import random

    from orch_console.store.fold import run_status_from_counts
    from orch_console.store.states import RUN_CLASS

    rnd = random.Random(7)
    statuses = list(RUN_CLASS)
    for old, new in itertools.product(statuses, statuses):
        if RUN_CLASS[old] != RUN_CLASS[new] or old == new:
            continue
        for _ in range(300):
            others = {s: rnd.choice((0, 0, 1, 3)) for s in statuses}
            before = dict(others, **{old: others[old] + 1})
            after = dict(others, **{new: others[new] + 1})
            for current in ("active", "blocked", "failed", "done", "cancelled"):
                assert run_status_from_counts(before, current) == run_status_from_counts(after, current), \
                    (old, new, others, current)


def test_status_json_of_a_run_whose_rows_interleave_with_another_runs(store: Store) -> None:
    """The SQL-built status scans the run's rowid range; other runs' rows inside it stay out."""
    runs.run_init(store, run_id="r", goal="g")
    runs.run_init(store, run_id="other", goal="interleaved rows of another run")
    for i in range(6):
        runs.task_add(store, run_id="other", task_id=f"o{i}", title="not this run", default_to="w")
        runs.task_add(store, run_id="r", task_id=f"t{i}", title=f"task {i}", default_to="w")
    runs.dep_add(store, run_id="r", task_id="t5", depends_on="t0")
    th = start(store, "t1", "w")
    inbox.update(store, agent="w", thread_id=th, status="blocked", summary="which way?")
    enc = views.status(store, run_id="r", encoded=True)["tasks"].value()
    assert enc == views.status(store, run_id="r")["tasks"]
    assert [t["task_id"] for t in enc] == [f"t{i}" for i in range(6)]
    runs.run_init(store, run_id="empty", goal="no tasks yet")
    assert views.status(store, run_id="empty", encoded=True)["tasks"].value() == []


def test_a_payload_with_an_escaped_lone_surrogate_is_stored_as_an_escape(plan: Store) -> None:
    """'{"q": "\\ud800"}' is valid JSON whose string has no UTF-8 form; it is kept as the escape
    (found by the CLI fuzz test: it used to end in internal_error)."""
    import json

    th = start(plan)
    payload = '{"q": "\\ud800 and \\u00e9"}'
    out = inbox.update(plan, agent="w1", thread_id=th, status="in_progress", summary="s", payload_json=payload)
    stored = plan.scalar("SELECT payload_json FROM messages WHERE message_id=?", (out["message"]["message_id"],))
    assert json.loads(stored) == json.loads(payload)
    assert out["message"]["payload"] == {"q": "\ud800 and é"}


def test_live_attempts_carry_when_the_open_question_was_answered(plan: Store) -> None:
    """The watcher's liveness reads answered_at: set by the answer to the latest question, and
    cleared by a new question (the worker is blocked on the leader again)."""
    from orch_console.store import runtime as rt

    th = start(plan)
    inbox.update(plan, agent="w1", thread_id=th, status="blocked", summary="which db?")
    assert rt.live_attempts(plan, "r")[0]["answered_at"] is None
    dispatch.answer(plan, run_id="r", task_id="A", body="sqlite")
    assert rt.live_attempts(plan, "r")[0]["answered_at"]
    inbox.update(plan, agent="w1", thread_id=th, status="blocked", summary="and the host?")
    assert rt.live_attempts(plan, "r")[0]["answered_at"] is None
