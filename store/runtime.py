"""Runtime records: launches, liveness, nudges, ends, attention, the checks the watcher runs, and
the reads the watcher and its healer make each pass.

Each action here claims its key (store/watcher_actions.py) in the same transaction as the action,
so a restarted watcher never repeats one.
"""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

from .db import Store
from .errors import NotFound
from .inbox import cancel_thread_tx, reply_tx
from .records import add_event, add_message, loads, row, rows
from .states import (ENDED_ATTEMPT, ENDING_LIVENESS, FINISHED_TASK, IN_FLIGHT_TASK, KEPT_LIVENESS, LIVE_ATTEMPT,
                     LIVE_THREAD, OPEN_CHECK, WATCHED_RUN, RunStatus, TaskStatus, ThreadStatus, sql_in)
from .validate import now_ts
from .watcher_actions import WATCHER, ActionAlreadyTaken, claim_action, note_once


# -- launches --------------------------------------------------------------------------------
def get_attempt(store: Store, run_id: str, task_id: str, attempt_no: int | None = None) -> dict[str, Any] | None:
    if attempt_no is None:
        return row(store.one("SELECT * FROM attempts WHERE run_id=? AND task_id=? ORDER BY attempt_no DESC "
                             "LIMIT 1", (run_id, task_id)))
    return row(store.one("SELECT * FROM attempts WHERE run_id=? AND task_id=? AND attempt_no=?",
                         (run_id, task_id, attempt_no)))


def record_launch_intent(store: Store, *, thread_id: str, runtime: str, runtime_ref: str, profile: str,
                         brief_path: str, log_path: str, token_hash: str = "") -> dict[str, Any] | None:
    """Reserve the attempt for one launch before any process starts, and record the hash of its
    worker token (store/tokens.py) in the same transaction. None: it was already launched (or has
    ended), so the caller must not start another worker."""
    def tx(conn: sqlite3.Connection) -> dict[str, Any] | None:
        now = now_ts()
        r = conn.execute(
            "UPDATE attempts SET runtime=?, runtime_ref=?, profile=?, brief_path=?, log_path=?,"
            " liveness='launching', liveness_at=?, last_activity_at=? WHERE thread_id=? AND runtime=''"
            f" AND status IN ({','.join('?' * len(LIVE_THREAD))}) RETURNING *",
            (runtime, runtime_ref, profile, brief_path, log_path, now, now, thread_id, *LIVE_THREAD)).fetchone()
        if r is not None and token_hash:
            from .tokens import issue_tx

            issue_tx(conn, token_hash_=token_hash, attempt=r, now=now)
        return None if r is None else dict(r)

    return store.write(tx)


def queue_launch(store: Store, *, thread_id: str, profile: str, runtime: str, reason: str) -> bool:
    """A launch that has to wait (its profile is at max_parallel): recorded under an action key the
    watcher's pending-launch pass looks for, with the profile and runtime to launch with. False if
    the attempt was launched or ended meanwhile, or is already queued."""
    def tx(conn: sqlite3.Connection) -> bool:
        now = now_ts()
        a = conn.execute("SELECT * FROM attempts WHERE thread_id=?", (thread_id,)).fetchone()
        if a is None or a["runtime"] != "" or a["status"] not in LIVE_THREAD:
            return False
        key = launch_queue_key(a["run_id"], a["task_id"], a["attempt_no"])
        try:
            claim_action(conn, key, "launch_queued", run_id=a["run_id"], task_id=a["task_id"],
                         attempt_no=a["attempt_no"], reason=reason, now=now)
        except ActionAlreadyTaken:
            return False
        add_event(conn, "attempt_launch_queued", run_id=a["run_id"], task_id=a["task_id"], thread_id=thread_id,
                  attempt_no=a["attempt_no"], summary=f"launch queued: {reason}",
                  payload={"action_key": key, "profile": profile, "runtime": runtime, "reason": reason}, now=now)
        return True

    return store.write(tx)


def launch_queue_key(run_id: str, task_id: str, attempt_no: int) -> str:
    return f"launch_queue:{run_id}:{task_id}:a{attempt_no}"


def queued_launch(store: Store, run_id: str, task_id: str, attempt_no: int) -> dict[str, Any] | None:
    """The profile and runtime a queued launch waits to start with; None if it was never queued."""
    r = store.one("SELECT payload_json FROM events WHERE event_type='attempt_launch_queued' AND run_id=? AND"
                  " task_id=? AND attempt_no=? ORDER BY event_id DESC LIMIT 1", (run_id, task_id, attempt_no))
    if r is None:
        return None
    p = loads(r[0], {})
    return {"profile": str(p.get("profile") or ""), "runtime": str(p.get("runtime") or "")}


def record_launched(store: Store, *, thread_id: str, pid: int | None, command: str) -> dict[str, Any]:
    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        now = now_ts()
        a = dict(conn.execute("UPDATE attempts SET pid=?, liveness='starting', liveness_at=?,"
                              " last_activity_at=? WHERE thread_id=? RETURNING *",
                              (pid, now, now, thread_id)).fetchone())
        add_event(conn, "attempt_launched", run_id=a["run_id"], task_id=a["task_id"], thread_id=thread_id,
                  attempt_no=a["attempt_no"], agent=a["assigned_to"],
                  summary=f"launched {a['profile']} ({a['runtime']}{' ' + a['runtime_ref'] if a['runtime_ref'] else ''}"
                          f"{', pid ' + str(pid) if pid else ''})",
                  payload={"runtime": a["runtime"], "runtime_ref": a["runtime_ref"], "pid": pid,
                           "profile": a["profile"], "log_path": a["log_path"], "brief_path": a["brief_path"],
                           "command": command[:2000]}, now=now)
        return a

    return store.write(tx)


def adopt_pid(store: Store, *, thread_id: str, pid: int) -> bool:
    """Record the pid of a live attempt's worker that its launcher never recorded (it died between
    starting the worker and record_launched). False if a pid was recorded meanwhile."""
    def tx(conn: sqlite3.Connection) -> bool:
        now = now_ts()
        r = conn.execute("UPDATE attempts SET pid=? WHERE thread_id=? AND runtime='process' AND"
                         " (pid IS NULL OR pid=0) RETURNING run_id, task_id, attempt_no", (pid, thread_id)).fetchone()
        if r is None:
            return False
        add_event(conn, "attempt_pid_adopted", run_id=r["run_id"], task_id=r["task_id"], thread_id=thread_id,
                  attempt_no=r["attempt_no"], agent=WATCHER,
                  summary=f"found the worker (pid {pid}) by ORCH_THREAD; its launcher died before recording it",
                  payload={"pid": pid}, now=now)
        return True

    return store.write(tx)


def record_input_sent(store: Store, *, thread_id: str, text: str, by: str) -> None:
    """The leader typed into a worker's terminal (tmux send-keys)."""
    def tx(conn: sqlite3.Connection) -> None:
        a = conn.execute("SELECT * FROM attempts WHERE thread_id=?", (thread_id,)).fetchone()
        add_event(conn, "attempt_input_sent", run_id=a["run_id"], task_id=a["task_id"], thread_id=thread_id,
                  attempt_no=a["attempt_no"], agent=by, summary=f"{by} typed {text!r} into the worker's terminal",
                  payload={"text": text}, now=now_ts())
        conn.execute("DELETE FROM attention WHERE run_id=? AND task_id=? AND attempt_no=? AND kind='waiting_input'",
                     (a["run_id"], a["task_id"], a["attempt_no"]))

    store.write(tx)


# -- liveness --------------------------------------------------------------------------------
LIVE_ATTEMPTS_SQL = f"""
SELECT a.*, th.status AS thread_status, th.lease_owner, th.lease_expires_at, t.status AS task_status,
       (SELECT max(created_at) FROM messages m WHERE m.thread_id=a.thread_id AND m.kind<>'control'
        AND m.from_agent=a.assigned_to) AS last_message_at,
       (SELECT max(m.created_at) FROM messages m WHERE m.thread_id=a.thread_id AND m.kind='answer'
        AND m.message_id > coalesce((SELECT max(q.message_id) FROM messages q WHERE q.thread_id=a.thread_id
        AND q.kind='question'), 0)) AS answered_at
FROM attempts a
JOIN threads th ON th.thread_id=a.thread_id
JOIN tasks t ON t.run_id=a.run_id AND t.task_id=a.task_id
WHERE a.status IN {sql_in(LIVE_ATTEMPT)} {{run_filter}}
ORDER BY a.run_id, a.task_id, a.attempt_no
"""


def live_attempts(store: Store, run_id: str | None = None) -> list[dict[str, Any]]:
    if run_id:
        return rows(store.all(LIVE_ATTEMPTS_SQL.format(run_filter="AND a.run_id=?"), (run_id,)))
    return rows(store.all(LIVE_ATTEMPTS_SQL.format(run_filter=""), ()))


# An ended attempt that still carries a running verdict (alive, idle, waiting): not its end verdict.
_ENDED_WITH_LIVENESS = f"status IN {sql_in(ENDED_ATTEMPT)} AND liveness NOT IN {sql_in(KEPT_LIVENESS)}"
ENDED_LIVENESS_SQL = f"UPDATE attempts SET liveness='', liveness_at=? WHERE thread_id=? AND {_ENDED_WITH_LIVENESS}"


def clear_ended_liveness(store: Store, thread_ids: list[str]) -> int:
    """An ended attempt is no longer alive, idle or waiting: drop the label its last probe left."""
    if not thread_ids:
        return 0
    q = ",".join("?" * len(thread_ids))
    if store.scalar(f"SELECT 1 FROM attempts WHERE thread_id IN ({q}) AND {_ENDED_WITH_LIVENESS} LIMIT 1",
                    thread_ids) is None:
        return 0

    def tx(conn: sqlite3.Connection) -> int:
        now = now_ts()
        return sum(conn.execute(ENDED_LIVENESS_SQL, (now, t)).rowcount for t in thread_ids)

    return store.write(tx)


def set_liveness(store: Store, changes: list[tuple[str, str]]) -> int:
    """Write attempts.liveness for the attempts whose judgement changed; one transaction."""
    if not changes:
        return 0

    def tx(conn: sqlite3.Connection) -> int:
        now = now_ts()
        n = 0
        for thread_id, liveness in changes:
            old = conn.execute("SELECT liveness FROM attempts WHERE thread_id=?", (thread_id,)).fetchone()
            r = conn.execute("UPDATE attempts SET liveness=?, liveness_at=? WHERE thread_id=? AND liveness<>?"
                             f" AND status IN {sql_in(LIVE_ATTEMPT)}"
                             " RETURNING run_id, task_id, attempt_no", (liveness, now, thread_id, liveness)).fetchone()
            if r is not None:
                n += 1
                # an event, so the console and the report see liveness move from the event cursor
                add_event(conn, "attempt_liveness", run_id=r["run_id"], task_id=r["task_id"], thread_id=thread_id,
                          attempt_no=r["attempt_no"], summary=f"{old[0] or 'unknown'} -> {liveness}",
                          payload={"from": old[0], "to": liveness}, now=now)
        return n

    return store.write(tx)


def end_attempt(store: Store, *, thread_id: str, end_reason: str, summary: str, evidence: str = "",
                action_key: str | None = None) -> dict[str, Any] | None:
    """End a live attempt the watcher judged stalled, crashed or timed out: its end reason, a result
    message carrying the evidence (the next attempt's brief quotes it), the thread cancelled (a
    worker still waiting wakes and stops), the task failed. None if it had already ended."""
    assert end_reason in ENDING_LIVENESS

    def tx(conn: sqlite3.Connection) -> dict[str, Any] | None:
        now = now_ts()
        a = conn.execute("SELECT * FROM attempts WHERE thread_id=?", (thread_id,)).fetchone()
        if a is None or a["status"] not in LIVE_THREAD:
            return None
        key = action_key or f"end:{a['run_id']}:{a['task_id']}:a{a['attempt_no']}"
        claim_action(conn, key, end_reason, run_id=a["run_id"], task_id=a["task_id"],
                     attempt_no=a["attempt_no"], reason=summary, now=now)
        conn.execute("UPDATE attempts SET end_reason=?, liveness=?, liveness_at=? WHERE thread_id=?",
                     (end_reason, end_reason, now, thread_id))
        add_message(conn, thread_id, from_agent=WATCHER, to_agent=a["assigned_to"], kind="result",
                    summary=f"{end_reason}: {summary}", body=evidence[-4000:],
                    payload_json=json.dumps({"end_reason": end_reason}), now=now)
        cancel_thread_tx(conn, thread_id, by=WATCHER, reason=f"{end_reason}: {summary}", now=now)
        eid = add_event(conn, f"attempt_{end_reason}", run_id=a["run_id"], task_id=a["task_id"],
                        thread_id=thread_id, attempt_no=a["attempt_no"], agent=WATCHER, summary=summary,
                        payload={"action_key": key, "reason": summary, "end_reason": end_reason}, now=now)
        return dict(conn.execute("SELECT * FROM attempts WHERE thread_id=?", (thread_id,)).fetchone()) \
            | {"event_id": eid}

    return store.write(tx)


def nudge(store: Store, *, thread_id: str, reason: str, action_key: str | None = None) -> bool:
    """One control message asking a quiet worker for its status. False if already nudged."""
    def tx(conn: sqlite3.Connection) -> bool:
        now = now_ts()
        a = conn.execute("SELECT * FROM attempts WHERE thread_id=?", (thread_id,)).fetchone()
        if a is None or a["status"] not in LIVE_THREAD:
            return False
        key = action_key or f"nudge:{a['run_id']}:{a['task_id']}:a{a['attempt_no']}"
        try:
            claim_action(conn, key, "nudge", run_id=a["run_id"], task_id=a["task_id"],
                         attempt_no=a["attempt_no"], reason=reason, now=now)
        except ActionAlreadyTaken:
            return False
        reply_tx(conn, from_agent=WATCHER, to_agent=a["assigned_to"], thread_id=thread_id,
                 summary="Status check: are you stuck? Report progress, ask a question, or fail.",
                 body=reason, payload=json.dumps({"action": "nudge"}), kind="control", now=now)
        add_event(conn, "attempt_nudged", run_id=a["run_id"], task_id=a["task_id"], thread_id=thread_id,
                  attempt_no=a["attempt_no"], agent=WATCHER, summary=reason,
                  payload={"action_key": key, "reason": reason}, now=now)
        return True

    return store.write(tx)


def flag_attention(store: Store, *, run_id: str, task_id: str, attempt_no: int, kind: str, reason: str,
                   event_type: str = "task_escalated", key: str | None = None) -> int | None:
    """Ask for the leader (needs attention in the console, a bell in `orch watch`). Once per key
    (default: per attempt and kind); returns the event id, or None if it was already flagged."""
    def tx(conn: sqlite3.Connection) -> int | None:
        now = now_ts()
        key_ = key or f"{kind}:{run_id}:{task_id}:a{attempt_no}"
        try:
            claim_action(conn, key_, kind, run_id=run_id, task_id=task_id, attempt_no=attempt_no,
                         reason=reason, now=now)
        except ActionAlreadyTaken:
            return None
        eid = add_event(conn, event_type, run_id=run_id, task_id=task_id, attempt_no=attempt_no,
                        agent=WATCHER, summary=reason, payload={"action_key": key_, "reason": reason,
                                                                "kind": kind}, now=now)
        conn.execute("INSERT OR REPLACE INTO attention (run_id, task_id, attempt_no, kind, reason, event_id,"
                     " created_at) VALUES (?,?,?,?,?,?,?)", (run_id, task_id, attempt_no, kind, reason, eid, now))
        return eid

    return store.write(tx)


def schedule_retry(store: Store, *, run_id: str, task_id: str, attempt_no: int, reason: str,
                   due_at: str) -> bool:
    """Say once that a retry is waiting out its backoff, so the leader sees why nothing happens."""
    return note_once(store, key=f"schedule:{run_id}:{task_id}:a{attempt_no}", action="schedule_retry",
                     event_type="task_retry_scheduled", run_id=run_id, task_id=task_id, attempt_no=attempt_no,
                     reason=reason, payload={"due_at": due_at}) is not None


def attention(store: Store, run_id: str) -> list[dict[str, Any]]:
    """What needs the leader now: escalations on a task's latest attempt while the task is not
    finished, and live attempts whose screen waits for input."""
    found = rows(store.all(
        "SELECT x.run_id, x.task_id, x.attempt_no, x.kind, x.reason, x.created_at, t.status AS task_status"
        " FROM attention x JOIN tasks t ON t.run_id=x.run_id AND t.task_id=x.task_id"
        f" WHERE x.run_id=? AND t.status NOT IN {sql_in(FINISHED_TASK)} AND x.attempt_no=(SELECT max(attempt_no)"
        " FROM attempts a WHERE a.run_id=x.run_id AND a.task_id=x.task_id)"
        " AND (x.kind<>'waiting_input' OR EXISTS (SELECT 1 FROM attempts a WHERE a.run_id=x.run_id AND"
        " a.task_id=x.task_id AND a.attempt_no=x.attempt_no AND a.liveness='waiting_input'))"
        " ORDER BY x.created_at", (run_id,)))
    return found


def needs_attention(store: Store, run_id: str) -> set[str]:
    return {a["task_id"] for a in attention(store, run_id)}


# -- verification checks run by the watcher --------------------------------------------------
def check_key(run_id: str, task_id: str, attempt_no: int, name: str, generation: int = 1) -> str:
    """One action key per (task, attempt, check); a later generation only when the run that held
    the key died without recording a result."""
    base = f"check:{run_id}:{task_id}:a{attempt_no}:{name}"
    return base if generation <= 1 else f"{base}:g{generation}"


def check_claims(store: Store, run_id: str, task_id: str, attempt_no: int, name: str) -> list[dict[str, Any]]:
    """The claims to run this check so far, oldest first, each with its owner's pid."""
    base = check_key(run_id, task_id, attempt_no, name)
    found = [c for c in rows(store.all(
        "SELECT action_key, reason, created_at FROM watcher_actions WHERE run_id=? AND task_id=? AND attempt_no=?"
        " AND action='run_check' ORDER BY created_at", (run_id, task_id, attempt_no)))
        if c["action_key"] == base or c["action_key"].startswith(base + ":g")]
    for c in found:
        head = c["reason"].split(":", 1)[0]
        c["owner_pid"] = int(head[4:]) if head.startswith("pid ") and head[4:].isdigit() else 0
    return found


def claim_check(store: Store, *, run_id: str, task_id: str, attempt_no: int, name: str, command: str,
                timeout: float, generation: int = 1) -> str | None:
    """Claim the running of one check (its key, the check marked running, a task_check_started
    event), only while the task is verifying on this attempt and the check has no result yet.
    Returns the key, or None when there is nothing to run or someone claimed it first."""
    key = check_key(run_id, task_id, attempt_no, name, generation)

    def tx(conn: sqlite3.Connection) -> str | None:
        now = now_ts()
        ok = conn.execute(
            "SELECT 1 FROM tasks t JOIN checks c ON c.run_id=t.run_id AND c.task_id=t.task_id WHERE t.run_id=? AND"
            f" t.task_id=? AND t.status='{TaskStatus.VERIFYING}' AND c.attempt_no=? AND c.name=? AND c.status IN"
            f" {sql_in(OPEN_CHECK)}"
            " AND c.attempt_no=(SELECT max(attempt_no) FROM attempts a WHERE a.run_id=t.run_id AND"
            " a.task_id=t.task_id)", (run_id, task_id, attempt_no, name)).fetchone()
        if ok is None:
            return None
        reason = f"pid {os.getpid()}: running check {name}: `{command}` (timeout {timeout:g}s)"
        try:
            claim_action(conn, key, "run_check", run_id=run_id, task_id=task_id, attempt_no=attempt_no,
                         reason=reason, now=now)
        except ActionAlreadyTaken:
            return None
        conn.execute("UPDATE checks SET status='running', created_at=? WHERE run_id=? AND task_id=? AND attempt_no=?"
                     " AND name=?", (now, run_id, task_id, attempt_no, name))
        add_event(conn, "task_check_started", run_id=run_id, task_id=task_id, attempt_no=attempt_no, agent=WATCHER,
                  summary=(f"running check {name}: `{command}`"[:500]
                           + (f" (run {generation})" if generation > 1 else "")),
                  payload={"action_key": key, "check": name, "command": command[:2000], "timeout_seconds": timeout,
                           "generation": generation, "pid": os.getpid()}, now=now)
        return key

    return store.write(tx)


def run_settings_config(store: Store, run_id: str) -> dict[str, Any]:
    r = store.one("SELECT config_json FROM runs WHERE run_id=?", (run_id,))
    return loads(r[0], {}) if r else {}


# -- what the watcher and its healer read each pass -------------------------------------------
def watched_runs(store: Store, run_id: str | None = None) -> dict[str, dict[str, Any]]:
    """run_id -> config of the runs a watcher looks after: the one named (unless cancelled), or
    every run still active, blocked or failed."""
    if run_id:
        found = store.all("SELECT run_id, status, config_json FROM runs WHERE run_id=?", (run_id,))
    else:
        # issue 14: a done run with auto_land still has its last wave to land
        found = store.all(f"SELECT run_id, status, config_json FROM runs WHERE status IN {sql_in(WATCHED_RUN)} OR"
                          " (status='done' AND json_extract(config_json, '$.auto_land') IN (1, 'true'))")
    return {r["run_id"]: loads(r["config_json"], {}) for r in found if r["status"] != RunStatus.CANCELLED}


def inputs_sent(store: Store, thread_id: str) -> int:
    """How often the leader answered this worker's screen: typed into its terminal or decided a
    permission request (one prompt flag per answer)."""
    return int(store.scalar("SELECT count(*) FROM events WHERE thread_id=? AND event_type IN"
                            " ('attempt_input_sent', 'approval_decided')", (thread_id,)))


def ended_launched_attempts(store: Store, *, since: str, run_id: str | None = None) -> list[dict[str, Any]]:
    """Launched attempts that ended at or after `since`: their workers may still need stopping."""
    sql = f"SELECT * FROM attempts WHERE runtime<>'' AND status IN {sql_in(ENDED_ATTEMPT)} AND ended_at>=?"
    if run_id:
        return rows(store.all(sql + " AND run_id=?", (since, run_id)))
    return rows(store.all(sql, (since,)))


def failed_latest_attempts(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The latest attempt of every failed task of the run (what the failure policy decides on)."""
    return rows(store.all(
        "SELECT a.* FROM tasks t JOIN attempts a ON a.run_id=t.run_id AND a.task_id=t.task_id AND"
        " a.attempt_no=(SELECT max(attempt_no) FROM attempts b WHERE b.run_id=t.run_id AND b.task_id=t.task_id)"
        f" WHERE t.run_id=? AND t.status='{TaskStatus.FAILED}' ORDER BY t.task_id", (run_id,)))


def pending_checks(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Checks without a result on the latest attempt of each verifying task, with the task's
    commands and required checks."""
    return rows(store.all(
        "SELECT t.task_id, t.check_cmds_json, t.required_checks_json, c.attempt_no, c.name, c.status"
        " FROM tasks t JOIN checks c ON c.run_id=t.run_id AND c.task_id=t.task_id WHERE t.run_id=? AND"
        f" t.status='{TaskStatus.VERIFYING}' AND c.status IN {sql_in(OPEN_CHECK)} AND c.attempt_no=(SELECT"
        " max(attempt_no) FROM attempts a WHERE a.run_id=t.run_id AND a.task_id=t.task_id)"
        " ORDER BY t.task_id", (run_id,)))


def in_flight_count(store: Store, run_id: str) -> int:
    """Tasks of the run that count against the autopilot's cap."""
    return int(store.scalar(f"SELECT count(*) FROM tasks WHERE run_id=? AND status IN"
                            f" ({','.join('?' * len(IN_FLIGHT_TASK))})", (run_id, *IN_FLIGHT_TASK)))


def unlaunched_attempts(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Pending attempts nobody launched, each with its previous attempt's profile and runtime."""
    return rows(store.all(
        "SELECT a.*, (SELECT p.profile FROM attempts p WHERE p.run_id=a.run_id AND p.task_id=a.task_id"
        " AND p.attempt_no=a.attempt_no-1) AS prev_profile, (SELECT p.runtime FROM attempts p WHERE"
        " p.run_id=a.run_id AND p.task_id=a.task_id AND p.attempt_no=a.attempt_no-1) AS prev_runtime"
        f" FROM attempts a WHERE a.run_id=? AND a.runtime='' AND a.status='{ThreadStatus.PENDING}'", (run_id,)))


def task_row(store: Store, run_id: str, task_id: str) -> dict[str, Any]:
    r = store.one("SELECT * FROM tasks WHERE run_id=? AND task_id=?", (run_id, task_id))
    if r is None:
        raise NotFound(f"task {task_id} not found in run {run_id}")
    return dict(r)


def next_attempt_no(store: Store, run_id: str, task_id: str) -> int:
    return int(store.scalar("SELECT count(*) FROM attempts WHERE run_id=? AND task_id=?", (run_id, task_id))) + 1


def run_attempts(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Every attempt of the run, launched or not."""
    return rows(store.all("SELECT * FROM attempts WHERE run_id=? ORDER BY task_id, attempt_no", (run_id,)))


def running_workers(store: Store, profile: str) -> int:
    """Launched workers of a profile whose attempts are live, across every run (max_parallel)."""
    return int(store.scalar(f"SELECT count(*) FROM attempts WHERE profile=? AND runtime<>'' AND status IN"
                            f" {sql_in(LIVE_ATTEMPT)}", (profile,)))
