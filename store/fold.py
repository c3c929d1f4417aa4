"""Folding worker (thread) state into attempt, task and run state.

Called inside the same transaction as the thread change that caused it, so a task, its attempt
and its thread never disagree (DESIGN.md section 3). `reconcile` re-runs the same fold over a
whole run as an idempotent repair.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .records import add_event, loads
from .states import (END_REASON_OF_THREAD, FINISHED_TASK, FOLDABLE_TASK, MOVING_TASK, RUN_CLASS, TASK_EVENT,
                     TERMINAL_THREAD, THREAD_TO_TASK, UNFINISHED_TASK, RunStatus, TaskStatus, sql_in)


def set_task_status(conn: sqlite3.Connection, run_id: str, task_id: str, new: str,
                    allowed_from: tuple[str, ...], *, now: str, summary: str = "",
                    thread_id: str = "", attempt_no: int | None = None,
                    payload: dict | None = None, event: str | None = None,
                    old: str | None = None) -> bool:
    """The one guarded task transition; appends its event when it wins. old: the status the
    caller read in this transaction, if it did (lets a same-class move skip the run refresh)."""
    q = ",".join("?" * len(allowed_from))
    if old is None:  # one primary-key read: the event records where the task came from
        r = conn.execute("SELECT status FROM tasks WHERE run_id=? AND task_id=?", (run_id, task_id)).fetchone()
        old = r[0] if r is not None else None
    cur = conn.execute(
        f"UPDATE tasks SET status=?, updated_at=? WHERE run_id=? AND task_id=? AND status IN ({q})",
        (new, now, run_id, task_id, *allowed_from))
    if cur.rowcount != 1:
        return False
    add_event(conn, event or TASK_EVENT[new], run_id=run_id, task_id=task_id, thread_id=thread_id,
              attempt_no=attempt_no, summary=summary, payload={**(payload or {}), "from_status": old}, now=now)
    if new == "done":
        promote_dependents(conn, run_id, task_id, now=now)
    if old is None or RUN_CLASS.get(old) != RUN_CLASS.get(new):
        refresh_run(conn, run_id, now=now)
    return True


def promote_dependents(conn: sqlite3.Connection, run_id: str, task_id: str, *, now: str) -> list[str]:
    """Tasks whose last unfinished dependency was task_id become ready, in this transaction.
    With the run's land gate on (store/land.py), a dependency counts only once it has landed."""
    from .land_state import gate_on, unlanded_dependency_sql

    unlanded = f" OR {unlanded_dependency_sql('u')}" if gate_on(conn, run_id) else ""
    ready = [r[0] for r in conn.execute(
        "SELECT t.task_id FROM deps d JOIN tasks t ON t.run_id=d.run_id AND t.task_id=d.task_id "
        "WHERE d.run_id=? AND d.depends_on=? AND t.status='planned' AND NOT EXISTS ("
        "  SELECT 1 FROM deps d2 JOIN tasks u ON u.run_id=d2.run_id AND u.task_id=d2.depends_on "
        f"  WHERE d2.run_id=t.run_id AND d2.task_id=t.task_id AND (u.status <> 'done'{unlanded}))",
        (run_id, task_id)).fetchall()]
    for t in ready:
        conn.execute("UPDATE tasks SET status='ready', updated_at=? WHERE run_id=? AND task_id=? "
                     "AND status='planned'", (now, run_id, t))
        add_event(conn, "task_ready", run_id=run_id, task_id=t, summary=f"unblocked by {task_id}",
                  payload={"unblocked_by": task_id}, now=now)
    return ready


def run_status(current: str, *, unfinished: bool, finished: bool, blocked: bool, failed: bool,
               live: bool) -> str:
    """The one rule for a run's status, over which kinds of task it holds (RUN_CLASS): done when
    every task is finished, blocked while any is, failed when a task failed and nothing else can
    move; a cancelled run stays cancelled."""
    if current == RunStatus.CANCELLED:
        return current
    if not unfinished:
        return RunStatus.DONE if finished else RunStatus.ACTIVE
    if blocked:
        return RunStatus.BLOCKED
    if failed and not live:
        return RunStatus.FAILED
    return RunStatus.ACTIVE


def run_status_from_counts(counts: dict[str, int], current: str) -> str:
    """run_status from a run's task counts by status (reconcile has them at hand)."""
    def some(statuses: tuple[str, ...]) -> bool:
        return any(counts.get(s, 0) for s in statuses)

    return run_status(current, unfinished=some(UNFINISHED_TASK), finished=some(FINISHED_TASK),
                      blocked=some((TaskStatus.BLOCKED,)), failed=some((TaskStatus.FAILED,)),
                      live=some(MOVING_TASK))


def task_counts(conn: Any, run_id: str) -> dict[str, int]:
    return {r[0]: r[1] for r in conn.execute(
        "SELECT status, count(*) FROM tasks WHERE run_id=? GROUP BY status", (run_id,)).fetchall()}


# One query for a run's status: its row and five indexed EXISTS probes over (run_id, status). No
# count over every task (this runs in task transitions: a GROUP BY would cost O(tasks) per write),
# and one statement rather than one per probe (each costs a round trip on the write path).
_RUN_PROBE_SQL = f"""SELECT status,
  EXISTS (SELECT 1 FROM tasks WHERE run_id=r.run_id AND status IN
          {sql_in(UNFINISHED_TASK)}),
  EXISTS (SELECT 1 FROM tasks WHERE run_id=r.run_id AND status IN {sql_in(FINISHED_TASK)}),
  EXISTS (SELECT 1 FROM tasks WHERE run_id=r.run_id AND status='{TaskStatus.BLOCKED}'),
  EXISTS (SELECT 1 FROM tasks WHERE run_id=r.run_id AND status='{TaskStatus.FAILED}'),
  EXISTS (SELECT 1 FROM tasks WHERE run_id=r.run_id AND status IN {sql_in(MOVING_TASK)})
FROM runs r WHERE run_id=?"""


def _status_from_probe(current: str, unfinished: int, finished: int, blocked: int, failed: int,
                       live: int) -> str:
    return run_status(current, unfinished=bool(unfinished), finished=bool(finished), blocked=bool(blocked),
                      failed=bool(failed), live=bool(live))


def run_status_probe(conn: Any, run_id: str, current: str) -> str:
    """What the run's status should be, given its current one (run_status, from probes)."""
    r = conn.execute(_RUN_PROBE_SQL, (run_id,)).fetchone()
    return current if r is None else _status_from_probe(current, *r[1:])


def refresh_run(conn: sqlite3.Connection, run_id: str, *, now: str) -> str:
    r = conn.execute(_RUN_PROBE_SQL, (run_id,)).fetchone()
    if r is None:
        return ""
    current = r[0]
    new = _status_from_probe(current, *r[1:])
    if new != current:
        conn.execute("UPDATE runs SET status=?, updated_at=? WHERE run_id=?", (new, now, run_id))
        add_event(conn, "run_done" if new == "done" else f"run_{new}", run_id=run_id,
                  summary=f"run {current} -> {new}", payload={"from": current, "to": new},
                  now=now)
    return new


def fold_thread(conn: sqlite3.Connection, thread: dict[str, Any], *, now: str,
                summary: str = "") -> bool:
    """Mirror a thread's status onto its attempt and, for the latest attempt, onto its task."""
    att = conn.execute(
        "SELECT a.run_id, a.task_id, a.attempt_no, a.status, a.end_reason, t.status AS task_status,"
        " t.required_checks_json, (SELECT max(attempt_no) FROM attempts b WHERE b.run_id=a.run_id AND"
        " b.task_id=a.task_id) AS latest_no FROM attempts a JOIN tasks t ON t.run_id=a.run_id AND"
        " t.task_id=a.task_id WHERE a.thread_id=?", (thread["thread_id"],)).fetchone()
    if att is None:
        return False
    status = thread["status"]
    terminal = status in TERMINAL_THREAD
    if att["status"] != status:
        end_reason = att["end_reason"] or (END_REASON_OF_THREAD.get(status, "") if terminal else "")
        conn.execute(
            "UPDATE attempts SET status=?, end_reason=?, ended_at=CASE WHEN ? THEN ? ELSE ended_at END,"
            " last_activity_at=? WHERE thread_id=?",
            (status, end_reason, terminal, now, now, thread["thread_id"]))
    else:
        conn.execute("UPDATE attempts SET last_activity_at=? WHERE thread_id=?", (now, thread["thread_id"]))
    if att["latest_no"] != att["attempt_no"]:
        return False
    target = THREAD_TO_TASK[status]
    required = loads(att["required_checks_json"], []) if att["required_checks_json"] != "[]" else []
    if target == "done" and required:
        target = "verifying"
    if target == att["task_status"] or att["task_status"] not in FOLDABLE_TASK or target == "dispatched":
        return False
    changed = set_task_status(
        conn, att["run_id"], att["task_id"], target, FOLDABLE_TASK, now=now,
        summary=summary or f"thread {thread['thread_id']} {status}", thread_id=thread["thread_id"],
        attempt_no=att["attempt_no"], old=att["task_status"])
    if changed and target == "verifying":
        for name in required:
            conn.execute(
                "INSERT OR IGNORE INTO checks (run_id, task_id, attempt_no, name, status, created_at)"
                " VALUES (?,?,?,?, 'pending', ?)", (att["run_id"], att["task_id"], att["attempt_no"],
                                                     name, now))
    return changed
