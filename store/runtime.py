"""Runtime records: launches, liveness, the watcher's cursor and its idempotent actions.

Every action the watcher takes (end an attempt, nudge, retry, escalate, dispatch) claims a unique
key in `watcher_actions` inside the same transaction as the action itself, so a watcher killed at
any point and restarted can never take the same action twice. Each action also appends an event
whose payload says why.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from .db import Store
from .errors import InvalidState
from .inbox import cancel_thread_tx, reply_tx
from .records import LIVE_THREAD, add_event, add_message, loads, row, rows
from .validate import now_ts

T = TypeVar("T")
WATCHER = "watcher"


class ActionAlreadyTaken(InvalidState):
    """The action's key is already recorded: someone (maybe an earlier life of this watcher) did it."""


# -- idempotent actions ----------------------------------------------------------------------
def claim_action(conn: sqlite3.Connection, key: str, action: str, *, run_id: str = "", task_id: str = "",
                 attempt_no: int | None = None, reason: str = "", now: str | None = None) -> None:
    cur = conn.execute(
        "INSERT OR IGNORE INTO watcher_actions (action_key, action, run_id, task_id, attempt_no, reason,"
        " created_at) VALUES (?,?,?,?,?,?,?)",
        (key, action, run_id, task_id, attempt_no, reason, now or now_ts()))
    if cur.rowcount != 1:
        raise ActionAlreadyTaken(f"action {key} was already taken")


def action_taken(store: Store, key: str) -> bool:
    return store.scalar("SELECT 1 FROM watcher_actions WHERE action_key=?", (key,)) is not None


def actions(store: Store, run_id: str | None = None) -> list[dict[str, Any]]:
    if run_id:
        return rows(store.all("SELECT * FROM watcher_actions WHERE run_id=? ORDER BY created_at, action_key",
                              (run_id,)))
    return rows(store.all("SELECT * FROM watcher_actions ORDER BY created_at, action_key"))


class ActionStore:
    """A Store whose next write also claims an action key and records the action's event, in the
    same transaction. Lets an existing store operation (dispatch, retry) become an idempotent
    watcher action without changing that operation."""

    def __init__(self, store: Store, key: str, action: str, *, event_type: str, run_id: str,
                 task_id: str, attempt_no: int | None, reason: str, payload: dict | None = None) -> None:
        self._store = store
        self._meta = dict(key=key, action=action, event_type=event_type, run_id=run_id, task_id=task_id,
                          attempt_no=attempt_no, reason=reason, payload=payload or {})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        m = self._meta

        def tx(conn: sqlite3.Connection) -> T:
            now = now_ts()
            claim_action(conn, m["key"], m["action"], run_id=m["run_id"], task_id=m["task_id"],
                         attempt_no=m["attempt_no"], reason=m["reason"], now=now)
            out = fn(conn)
            add_event(conn, m["event_type"], run_id=m["run_id"], task_id=m["task_id"],
                      attempt_no=m["attempt_no"], agent=WATCHER, summary=m["reason"],
                      payload={"action_key": m["key"], "reason": m["reason"]} | m["payload"], now=now)
            return out

        return self._store.write(tx)


def with_action(store: Store, key: str, action: str, *, event_type: str, run_id: str, task_id: str,
                attempt_no: int | None, reason: str, payload: dict | None = None) -> ActionStore:
    return ActionStore(store, key, action, event_type=event_type, run_id=run_id, task_id=task_id,
                       attempt_no=attempt_no, reason=reason, payload=payload)


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
LIVE_ATTEMPTS_SQL = """
SELECT a.*, th.status AS thread_status, th.lease_owner, th.lease_expires_at, t.status AS task_status,
       (SELECT max(created_at) FROM messages m WHERE m.thread_id=a.thread_id AND m.kind<>'control'
        AND m.from_agent=a.assigned_to) AS last_message_at
FROM attempts a
JOIN threads th ON th.thread_id=a.thread_id
JOIN tasks t ON t.run_id=a.run_id AND t.task_id=a.task_id
WHERE a.status IN ('pending','claimed','in_progress','blocked') {run_filter}
ORDER BY a.run_id, a.task_id, a.attempt_no
"""


def live_attempts(store: Store, run_id: str | None = None) -> list[dict[str, Any]]:
    if run_id:
        return rows(store.all(LIVE_ATTEMPTS_SQL.format(run_filter="AND a.run_id=?"), (run_id,)))
    return rows(store.all(LIVE_ATTEMPTS_SQL.format(run_filter=""), ()))


ENDED_LIVENESS_SQL = ("UPDATE attempts SET liveness='', liveness_at=? WHERE thread_id=? AND status IN"
                      " ('done','failed','cancelled') AND liveness NOT IN ('', 'stalled', 'crashed', 'timed_out')")


def clear_ended_liveness(store: Store, thread_ids: list[str]) -> int:
    """An ended attempt is no longer alive, idle or waiting: drop the label its last probe left."""
    if not thread_ids:
        return 0
    q = ",".join("?" * len(thread_ids))
    if store.scalar(f"SELECT 1 FROM attempts WHERE thread_id IN ({q}) AND status IN ('done','failed','cancelled')"
                    " AND liveness NOT IN ('', 'stalled', 'crashed', 'timed_out') LIMIT 1", thread_ids) is None:
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
                             " AND status IN ('pending','claimed','in_progress','blocked')"
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
    assert end_reason in ("stalled", "crashed", "timed_out")

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


def note_once(store: Store, *, key: str, action: str, event_type: str, run_id: str, task_id: str,
              attempt_no: int | None, reason: str, payload: dict | None = None) -> int | None:
    """Say something once (an event, under an action key): why nothing happens yet, say. Returns
    the event id, or None if it was already said."""
    def tx(conn: sqlite3.Connection) -> int | None:
        now = now_ts()
        try:
            claim_action(conn, key, action, run_id=run_id, task_id=task_id, attempt_no=attempt_no,
                         reason=reason, now=now)
        except ActionAlreadyTaken:
            return None
        return add_event(conn, event_type, run_id=run_id, task_id=task_id, attempt_no=attempt_no, agent=WATCHER,
                         summary=reason, payload={"action_key": key, "reason": reason} | (payload or {}), now=now)

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
        " WHERE x.run_id=? AND t.status NOT IN ('done','cancelled') AND x.attempt_no=(SELECT max(attempt_no)"
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
            " t.task_id=? AND t.status='verifying' AND c.attempt_no=? AND c.name=? AND c.status IN ('pending','running')"
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
                  summary=f"running check {name}: `{command}`"[:500] + (f" (run {generation})" if generation > 1 else ""),
                  payload={"action_key": key, "check": name, "command": command[:2000], "timeout_seconds": timeout,
                           "generation": generation, "pid": os.getpid()}, now=now)
        return key

    return store.write(tx)


# -- the watcher's cursor --------------------------------------------------------------------
def cursor(store: Store, scope: str) -> int:
    return int(store.scalar("SELECT last_event_id FROM watcher_state WHERE scope=?", (scope,)) or 0)


def save_cursor(store: Store, scope: str, event_id: int, pid: int | None = None) -> None:
    def tx(conn: sqlite3.Connection) -> None:
        now = now_ts()
        conn.execute("INSERT INTO watcher_state (scope, last_event_id, pid, heartbeat_at, updated_at)"
                     " VALUES (?,?,?,?,?) ON CONFLICT(scope) DO UPDATE SET"
                     " last_event_id=max(last_event_id, excluded.last_event_id), pid=excluded.pid,"
                     " heartbeat_at=excluded.heartbeat_at, updated_at=excluded.updated_at",
                     (scope, event_id, pid, now, now))

    store.write(tx)


def events_after(store: Store, event_id: int, limit: int = 2000) -> list[dict[str, Any]]:
    return rows(store.all("SELECT event_id, event_type, run_id, task_id, thread_id, attempt_no, summary,"
                          " payload_json FROM events WHERE event_id>? ORDER BY event_id LIMIT ?",
                          (event_id, limit)))


def run_settings_config(store: Store, run_id: str) -> dict[str, Any]:
    r = store.one("SELECT config_json FROM runs WHERE run_id=?", (run_id,))
    return loads(r[0], {}) if r else {}
