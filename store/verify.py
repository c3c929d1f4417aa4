"""Verification gates: required checks recorded per attempt; all passing makes the task done."""

from __future__ import annotations

import sqlite3
from typing import Any

from .db import Store
from .dispatch import latest_attempt
from .errors import InvalidInput, InvalidState
from .fold import set_task_status
from .records import add_event, loads, rows
from .runs import get_task
from .states import CHECK_RESULTS
from .validate import check_id, check_text, now_ts
from .views import gate_of


def verify_status(store: Store, *, run_id: str, task_id: str) -> dict[str, Any]:
    check_id(run_id, "--run")
    check_id(task_id, "--task")
    with store.snapshot() as conn:
        task = get_task(conn, run_id, task_id)
        att = latest_attempt(conn, run_id, task_id)
        checks = rows(conn.execute("SELECT * FROM checks WHERE run_id=? AND task_id=? AND attempt_no=?",
                                   (run_id, task_id, att["attempt_no"])).fetchall()) if att else []
    gate = gate_of(loads(task["required_checks_json"], []), checks)
    gate["attempt_no"] = att["attempt_no"] if att else None
    return {"task_id": task_id, "task_status": task["status"], "gate": gate,
            "check_cmds": loads(task["check_cmds_json"], {})}


def record_tx(conn: sqlite3.Connection, *, run_id: str, task_id: str, name: str, status: str,
              summary: str, output: str, now: str) -> dict[str, Any]:
    task = get_task(conn, run_id, task_id)
    required = loads(task["required_checks_json"], [])
    if name not in required:
        raise InvalidInput(f"{name} is not a required check of {task_id} (required: {', '.join(required) or 'none'})")
    att = latest_attempt(conn, run_id, task_id)
    if att is None:
        raise InvalidState(f"task {task_id} has no attempt to verify")
    conn.execute(
        "INSERT INTO checks (run_id, task_id, attempt_no, name, status, summary, output, created_at)"
        " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(run_id, task_id, attempt_no, name) DO UPDATE SET"
        " status=excluded.status, summary=excluded.summary, output=excluded.output, created_at=excluded.created_at",
        (run_id, task_id, att["attempt_no"], name, status, summary, output, now))
    add_event(conn, "task_verification_recorded", run_id=run_id, task_id=task_id, thread_id=att["thread_id"],
              attempt_no=att["attempt_no"], summary=f"{name} {status}: {summary}"[:500],
              payload={"check": name, "status": status}, now=now)
    checks = rows(conn.execute("SELECT * FROM checks WHERE run_id=? AND task_id=? AND attempt_no=?",
                               (run_id, task_id, att["attempt_no"])).fetchall())
    gate = gate_of(required, checks)
    if task["status"] == "verifying":
        if gate["status"] == "failed":
            conn.execute("UPDATE attempts SET end_reason='check_failed' WHERE thread_id=?", (att["thread_id"],))
            set_task_status(conn, run_id, task_id, "failed", ("verifying",), now=now,
                            summary=f"check {name} failed", thread_id=att["thread_id"],
                            attempt_no=att["attempt_no"], payload={"end_reason": "check_failed"})
        elif gate["status"] == "passed":
            set_task_status(conn, run_id, task_id, "done", ("verifying",), now=now,
                            summary="all required checks passed", thread_id=att["thread_id"],
                            attempt_no=att["attempt_no"])
    gate["attempt_no"] = att["attempt_no"]
    return {"task_id": task_id, "task_status": get_task(conn, run_id, task_id)["status"], "gate": gate}


def verify_record(store: Store, *, run_id: str, task_id: str, name: str, status: str,
                  summary: str | None = None, output: str | None = None) -> dict[str, Any]:
    check_id(run_id, "--run")
    check_id(task_id, "--task")
    check_id(name, "--check")
    if status not in CHECK_RESULTS:
        raise InvalidInput("--status must be passed or failed")
    summary = check_text(summary, "--summary")
    output = check_text(output, "--output")
    return store.write(lambda conn: record_tx(conn, run_id=run_id, task_id=task_id, name=name,
                                              status=status, summary=summary, output=output, now=now_ts()))
