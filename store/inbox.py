"""The inbox: threads, messages, claims and leases, read cursors (the worker-side operations).

Each state change is one guarded UPDATE checked by RETURNING, inside BEGIN IMMEDIATE, and is
folded into its attempt and task in the same transaction.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from .db import Store
from .errors import InvalidInput, InvalidState, LeaseConflict, NoMatchingWork, NotFound
from .fold import fold_thread
from .records import Artifact, add_event, add_message, attach_artifacts, public_message, rows
from .states import HELD_THREAD, LIVE_THREAD, MESSAGE_KINDS, TERMINAL_THREAD, ThreadStatus, sql_in
from .validate import check_id, check_json, check_text, check_thread_id, now_ts, positive_int
from .validate import lease_seconds as validate_lease_seconds

DEFAULT_LEASE_SECONDS = 900
PRIORITIES = ("low", "normal", "high", "urgent")
SEND_KINDS = MESSAGE_KINDS


def new_thread_id() -> str:
    import secrets  # only when a thread is made; it costs ~5 ms of start-up

    return "thr_" + secrets.token_hex(6)


def lease_until(seconds: int, now: float | None = None) -> str:
    return now_ts((now or time.time()) + seconds)


def _thread(conn: Any, thread_id: str) -> dict[str, Any]:
    t = conn.execute("SELECT * FROM threads WHERE thread_id=?", (thread_id,)).fetchone()
    if t is None:
        raise NotFound(f"thread {thread_id} not found")
    return dict(t)


def get_thread(store: Store, thread_id: str) -> dict[str, Any]:
    check_thread_id(thread_id)
    return _thread(store.conn, thread_id)


def _require_owner(t: dict[str, Any], agent: str, action: str) -> None:
    """update/renew/done/fail need the caller to hold the thread's lease."""
    if t["status"] in TERMINAL_THREAD:
        raise InvalidState(f"thread {t['thread_id']} is {t['status']}; cannot {action}")
    if not t["lease_owner"]:
        raise InvalidState(f"thread {t['thread_id']} has no active lease; claim it first")
    if t["lease_owner"] != agent:
        raise LeaseConflict(f"thread {t['thread_id']} is leased by {t['lease_owner']}, not {agent}")


def _owned_update(conn: sqlite3.Connection, thread_id: str, agent: str, action: str, sets: str,
                  params: tuple[Any, ...]) -> dict[str, Any]:
    """The lease holder's guarded write. Only when it matches nothing is the thread read, to say why."""
    r = conn.execute(f"UPDATE threads SET {sets} WHERE thread_id=? AND lease_owner=? AND status IN "
                     f"{sql_in(HELD_THREAD)} RETURNING *", (*params, thread_id, agent)).fetchone()
    if r is not None:
        return dict(r)
    _require_owner(_thread(conn, thread_id), agent, action)
    raise InvalidState(f"thread {thread_id} changed state; re-read it")


def _touch(conn: sqlite3.Connection, thread_id: str, now: str, **cols: Any) -> dict[str, Any]:
    sets = ", ".join(f"{k}=?" for k in cols)
    r = conn.execute(f"UPDATE threads SET {sets}{', ' if sets else ''}updated_at=? WHERE thread_id=? RETURNING *",
                     (*cols.values(), now, thread_id)).fetchone()
    return dict(r)


# -- send ------------------------------------------------------------------------------------
def send(store: Store, *, from_agent: str, to_agent: str, subject: str | None = None,
         summary: str | None = None, body: str | None = None, run_id: str | None = None,
         task_id: str | None = None, thread_id: str | None = None, kind: str = "task",
         priority: str = "normal", payload_json: str | None = None,
         artifacts: tuple[Artifact, ...] = ()) -> dict[str, Any]:
    check_id(from_agent, "--from agent")
    check_id(to_agent, "--to agent")
    if thread_id:
        check_thread_id(thread_id)
    check_id(run_id, "--run", required=False)
    check_id(task_id, "--task", required=False)
    if kind not in SEND_KINDS:
        raise InvalidInput(f"--kind must be one of {', '.join(SEND_KINDS)}")
    if priority not in PRIORITIES:
        raise InvalidInput(f"--priority must be one of {', '.join(PRIORITIES)}")
    subject = check_text(subject, "--subject")
    summary = check_text(summary, "--summary")
    body = check_text(body, "--body")
    payload = check_json(payload_json)

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        now = now_ts()
        existing = conn.execute("SELECT * FROM threads WHERE thread_id=?", (thread_id,)).fetchone() \
            if thread_id else None
        if existing is not None:
            t = dict(existing)
            if t["status"] in TERMINAL_THREAD:
                raise InvalidState(f"thread {thread_id} is {t['status']}; it takes no new messages")
            t = _touch(conn, t["thread_id"], now)
            created = False
        else:
            if not subject.strip():
                raise InvalidInput("--subject is required when starting a new thread")
            t = dict(conn.execute(
                "INSERT INTO threads (thread_id, run_id, task_id, subject, created_by, assigned_to,"
                " status, priority, created_at, updated_at) VALUES (?,?,?,?,?,?, 'pending', ?,?,?)"
                " RETURNING *",
                (thread_id or new_thread_id(), run_id or "", task_id or "", subject, from_agent,
                 to_agent, priority, now, now)).fetchone())
            created = True
        m = add_message(conn, t["thread_id"], from_agent=from_agent, to_agent=to_agent, kind=kind,
                        summary=summary or subject, body=body, payload_json=payload,
                        artifacts=artifacts, now=now)
        add_event(conn, "thread_created" if created else "thread_message", run_id=t["run_id"],
                  task_id=t["task_id"], thread_id=t["thread_id"], agent=to_agent,
                  message_id=m["message_id"], summary=m["summary"], now=now)
        return {"thread": t, "message": public_message(m), "created": created}

    return store.write(tx)


# -- claim / renew ---------------------------------------------------------------------------
def claim(store: Store, *, agent: str, thread_id: str, lease_seconds: int | None = None) -> dict[str, Any]:
    check_id(agent, "--agent")
    check_thread_id(thread_id)
    seconds = validate_lease_seconds(lease_seconds, DEFAULT_LEASE_SECONDS)
    _lost_claim_early(store, agent, thread_id)

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        now_f = time.time()
        now = now_ts(now_f)
        until = lease_until(seconds, now_f)
        r = conn.execute(
            "UPDATE threads SET status='claimed', assigned_to=?, lease_owner=?, lease_expires_at=?,"
            " lease_expired_noted='', updated_at=? WHERE thread_id=? AND (status='pending' OR ("
            f" status IN {sql_in(HELD_THREAD)} AND (lease_owner='' OR lease_expires_at < ?)))"
            " RETURNING *", (agent, agent, until, now, thread_id, now)).fetchone()
        if r is None:
            t = _thread(conn, thread_id)
            if t["status"] in TERMINAL_THREAD:
                raise InvalidState(f"thread {thread_id} is {t['status']}; it cannot be claimed")
            if t["lease_owner"] != agent:
                raise LeaseConflict(
                    f"thread {thread_id} is leased by {t['lease_owner']} until {t['lease_expires_at']}")
            # The owner claiming again keeps its status and extends its lease: claims are idempotent.
            t = _touch(conn, thread_id, now, lease_expires_at=until)
            return {"thread": t, "message": None, "lease_expires_at": until, "already_claimed": True}
        t = dict(r)
        m = add_message(conn, thread_id, from_agent=agent, to_agent=t["created_by"], kind="event",
                        summary="thread claimed", payload_json=f'{{"lease_seconds":{seconds}}}', now=now)
        add_event(conn, "thread_claim", run_id=t["run_id"], task_id=t["task_id"], thread_id=thread_id,
                  agent=agent, message_id=m["message_id"], summary=f"claimed by {agent}", now=now)
        fold_thread(conn, t, now=now, summary=f"claimed by {agent}")
        return {"thread": t, "message": public_message(m), "lease_expires_at": until, "already_claimed": False}

    return store.write(tx)


def _lost_claim_early(store: Store, agent: str, thread_id: str) -> None:
    """Fail a claim that has already lost from a plain read, without queueing for the write lock.

    Only refusals are decided here, and each is true at the moment of the read (a thread never
    leaves a terminal state, and another agent's lease ends only with the thread (done, failed,
    cancelled) or by expiring, which the read checks). A claim that may win always goes to the guarded UPDATE.
    Under a race for the same threads most claims lose; they no longer take the writers' turn."""
    t = store.one("SELECT status, lease_owner, lease_expires_at FROM threads WHERE thread_id=?", (thread_id,))
    if t is None:
        raise NotFound(f"thread {thread_id} not found")
    if t["status"] in TERMINAL_THREAD:
        raise InvalidState(f"thread {thread_id} is {t['status']}; it cannot be claimed")
    if t["status"] != "pending" and t["lease_owner"] not in ("", agent) and t["lease_expires_at"] >= now_ts():
        raise LeaseConflict(f"thread {thread_id} is leased by {t['lease_owner']} until {t['lease_expires_at']}")


def renew(store: Store, *, agent: str, thread_id: str, lease_seconds: int | None = None,
          quiet: bool = False) -> dict[str, Any]:
    """The heartbeat. quiet=True (used by wait-reply while it waits) writes no message."""
    check_id(agent, "--agent")
    check_thread_id(thread_id)
    seconds = validate_lease_seconds(lease_seconds, DEFAULT_LEASE_SECONDS)

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        now_f = time.time()
        now = now_ts(now_f)
        until = lease_until(seconds, now_f)
        t = _owned_update(conn, thread_id, agent, "renew",
                          "lease_expires_at=?, lease_expired_noted='', updated_at=?", (until, now))
        conn.execute("UPDATE attempts SET last_activity_at=? WHERE thread_id=?", (now, thread_id))
        m = None
        if not quiet:
            m = add_message(conn, thread_id, from_agent=agent, to_agent=t["created_by"], kind="event",
                            summary="lease renewed", payload_json=f'{{"lease_seconds":{seconds}}}', now=now)
            add_event(conn, "lease_renewed", run_id=t["run_id"], task_id=t["task_id"],
                      thread_id=thread_id, agent=agent, message_id=m["message_id"],
                      summary=f"lease renewed for {seconds}s", now=now)
        return {"thread": t, "message": public_message(m), "lease_expires_at": until}

    return store.write(tx)


# -- update / done / fail --------------------------------------------------------------------
def update(store: Store, *, agent: str, thread_id: str, status: str, summary: str,
           body: str | None = None, payload_json: str | None = None,
           artifacts: tuple[Artifact, ...] = ()) -> dict[str, Any]:
    check_id(agent, "--agent")
    check_thread_id(thread_id)
    if status not in (ThreadStatus.IN_PROGRESS, ThreadStatus.BLOCKED):
        raise InvalidInput("--status must be in_progress or blocked")
    summary = check_text(summary, "--summary", required=True)
    body = check_text(body, "--body")
    payload = check_json(payload_json)

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        now = now_ts()
        t = _owned_update(conn, thread_id, agent, "update", "status=?, updated_at=?", (status, now))
        kind = "question" if status == "blocked" else "progress"
        m = add_message(conn, thread_id, from_agent=agent, to_agent=t["created_by"], kind=kind,
                        summary=summary, body=body, payload_json=payload, artifacts=artifacts, now=now)
        add_event(conn, "thread_update", run_id=t["run_id"], task_id=t["task_id"], thread_id=thread_id,
                  agent=agent, message_id=m["message_id"], summary=summary,
                  payload={"status": status}, now=now)
        fold_thread(conn, t, now=now, summary=summary)
        return {"thread": t, "message": public_message(m)}

    return store.write(tx)


def finish(store: Store, *, agent: str, thread_id: str, outcome: str, summary: str,
           body: str | None = None, payload_json: str | None = None,
           artifacts: tuple[Artifact, ...] = ()) -> dict[str, Any]:
    """done or fail: a result message to the thread's creator, and the lease released."""
    check_id(agent, "--agent")
    check_thread_id(thread_id)
    assert outcome in (ThreadStatus.DONE, ThreadStatus.FAILED)
    summary = check_text(summary, "--summary", required=True)
    body = check_text(body, "--body")
    payload = check_json(payload_json)

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        now = now_ts()
        t = _owned_update(conn, thread_id, agent, "done" if outcome == "done" else "fail",
                          "status=?, lease_owner='', lease_expires_at='', updated_at=?", (outcome, now))
        m = add_message(conn, thread_id, from_agent=agent, to_agent=t["created_by"], kind="result",
                        summary=summary, body=body, payload_json=payload, artifacts=artifacts, now=now)
        add_event(conn, "thread_result", run_id=t["run_id"], task_id=t["task_id"], thread_id=thread_id,
                  agent=agent, message_id=m["message_id"], summary=summary,
                  payload={"status": outcome}, now=now)
        fold_thread(conn, t, now=now, summary=summary)
        return {"thread": t, "message": public_message(m)}

    return store.write(tx)


# -- reply / cancel --------------------------------------------------------------------------
def reply_tx(conn: sqlite3.Connection, *, from_agent: str, to_agent: str, thread_id: str,
             summary: str, body: str, payload: str, kind: str, now: str,
             require_blocked: bool = False, artifacts: tuple[Artifact, ...] = ()) -> dict[str, Any]:
    """A reply inside an open transaction. It adds the message and leaves the thread's status as
    it was: a blocked worker resumes itself with `update --status in_progress` (orch-contract.md
    section 3.3). The first answer after a blocked thread's latest question is the answer to it
    (event task_answered); with require_blocked (orch answer) a second one is refused, guarded by
    this write transaction, so two leaders answering the same question cannot both win."""
    t = _thread(conn, thread_id)
    if t["status"] in TERMINAL_THREAD:
        raise InvalidState(f"thread {thread_id} is {t['status']}; it takes no replies")
    open_question = t["status"] == "blocked" and not question_answered(conn, thread_id)
    if require_blocked:
        if t["status"] != "blocked":
            raise InvalidState(f"thread {thread_id} is {t['status']}, not blocked; nothing to answer")
        if not open_question:
            raise InvalidState(f"thread {thread_id}'s question is already answered; waiting for "
                               f"{t['assigned_to']} to resume")
    t = _touch(conn, thread_id, now)
    m = add_message(conn, thread_id, from_agent=from_agent, to_agent=to_agent or t["assigned_to"],
                    kind=kind, summary=summary, body=body, payload_json=payload, artifacts=artifacts,
                    now=now)
    add_event(conn, "thread_reply", run_id=t["run_id"], task_id=t["task_id"], thread_id=thread_id,
              agent=t["assigned_to"], message_id=m["message_id"], summary=summary,
              payload={"kind": kind}, now=now)
    if kind == "answer" and open_question:
        add_event(conn, "task_answered", run_id=t["run_id"], task_id=t["task_id"], thread_id=thread_id,
                  agent=t["assigned_to"], message_id=m["message_id"], summary=summary, now=now)
    return {"thread": t, "message": public_message(m)}


def question_answered(conn: Any, thread_id: str) -> bool:
    """Whether an answer follows the thread's latest question."""
    return conn.execute(
        "SELECT 1 FROM messages WHERE thread_id=? AND kind='answer' AND message_id > coalesce(("
        "SELECT max(message_id) FROM messages WHERE thread_id=? AND kind='question'), 0) LIMIT 1",
        (thread_id, thread_id)).fetchone() is not None


def reply(store: Store, *, from_agent: str, to_agent: str | None, thread_id: str, summary: str | None,
          body: str | None = None, payload_json: str | None = None, kind: str = "answer",
          artifacts: tuple[Artifact, ...] = ()) -> dict[str, Any]:
    check_id(from_agent, "--from agent")
    check_id(to_agent, "--to agent", required=False)
    check_thread_id(thread_id)
    if kind not in ("answer", "control"):
        raise InvalidInput("--kind must be answer or control")
    body = check_text(body, "--body")
    payload = check_json(payload_json)
    summary = check_text(summary, "--summary")
    if not (summary.strip() or body.strip() or payload):
        raise InvalidInput("a reply needs --summary, --body or --payload-json")
    summary = summary or _first_line(body) or "(structured answer)"
    return store.write(lambda conn: reply_tx(
        conn, from_agent=from_agent, to_agent=to_agent or "", thread_id=thread_id, summary=summary,
        body=body, payload=payload, kind=kind, now=now_ts(), artifacts=artifacts))


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def cancel_thread_tx(conn: sqlite3.Connection, thread_id: str, *, by: str, reason: str, now: str,
                     fold: bool = True, artifacts: tuple[Artifact, ...] = ()) -> dict[str, Any] | None:
    """Cancel a live thread; returns None if it was already terminal."""
    r = conn.execute(
        "UPDATE threads SET status='cancelled', lease_owner='', lease_expires_at='', updated_at=?"
        f" WHERE thread_id=? AND status IN {sql_in(LIVE_THREAD)} RETURNING *",
        (now, thread_id)).fetchone()
    if r is None:
        return None
    t = dict(r)
    # A control message, so a worker sitting in wait-reply wakes and stops.
    m = add_message(conn, thread_id, from_agent=by, to_agent=t["assigned_to"], kind="control",
                    summary=f"cancelled: {reason}" if reason else "cancelled",
                    payload_json='{"action":"cancel"}', artifacts=artifacts, now=now)
    add_event(conn, "thread_cancelled", run_id=t["run_id"], task_id=t["task_id"], thread_id=thread_id,
              agent=t["assigned_to"], message_id=m["message_id"], summary=m["summary"], now=now)
    if fold:
        fold_thread(conn, t, now=now, summary=m["summary"])
    return {"thread": t, "message": public_message(m)}


def cancel(store: Store, *, agent: str | None, thread_id: str, reason: str | None = None,
           artifacts: tuple[Artifact, ...] = ()) -> dict[str, Any]:
    check_id(agent, "--agent", required=False)
    check_thread_id(thread_id)
    reason = check_text(reason, "--reason")

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        t = _thread(conn, thread_id)
        if t["status"] in TERMINAL_THREAD:
            raise InvalidState(f"thread {thread_id} is already {t['status']}")
        if agent and t["lease_owner"] and t["lease_owner"] != agent and agent != t["created_by"]:
            raise LeaseConflict(f"thread {thread_id} is leased by {t['lease_owner']}")
        out = cancel_thread_tx(conn, thread_id, by=agent or t["created_by"], reason=reason,
                               now=now_ts(), artifacts=artifacts)
        if out is None:
            raise InvalidState(f"thread {thread_id} changed state; re-read it")
        return out

    return store.write(tx)


# -- reads -----------------------------------------------------------------------------------
def fetch(store: Store, *, agent: str, statuses: list[str] | None = None, limit: int | None = None,
          unread: bool = False) -> dict[str, Any]:
    check_id(agent, "--agent")
    statuses = _statuses(statuses)
    n = positive_int(limit, "--limit", 50)
    where = ["t.assigned_to=?"]
    params: list[Any] = [agent]
    if statuses:
        where.append(f"t.status IN ({','.join('?' * len(statuses))})")
        params += statuses
    if unread:
        where.append("EXISTS (SELECT 1 FROM messages m WHERE m.thread_id=t.thread_id AND m.from_agent<>? "
                     "AND m.message_id > coalesce((SELECT c.message_id FROM read_cursors c WHERE "
                     "c.agent=? AND c.thread_id=t.thread_id), 0))")
        params += [agent, agent]
    found = rows(store.all(f"SELECT t.* FROM threads t WHERE {' AND '.join(where)} "
                           f"ORDER BY t.updated_at DESC, t.thread_id LIMIT ?", (*params, n)))
    if not found:
        raise NoMatchingWork(f"no threads for {agent}"
                                  + (f" with status {','.join(statuses)}" if statuses else ""))
    return {"threads": found, "count": len(found)}


def _statuses(statuses: list[str] | None) -> list[str]:
    out = [s.strip() for s in statuses or [] if s.strip()]
    bad = [s for s in out if s not in LIVE_THREAD + TERMINAL_THREAD]
    if bad:
        raise InvalidInput(f"unknown thread status {', '.join(bad)}; use "
                           f"{', '.join(LIVE_THREAD + TERMINAL_THREAD)}")
    return out


def list_threads(store: Store, *, run_id: str | None = None, statuses: list[str] | None = None,
                 agent: str | None = None, limit: int | None = None) -> dict[str, Any]:
    check_id(run_id, "--run", required=False)
    check_id(agent, "--agent", required=False)
    statuses = _statuses(statuses)
    where, params = ["1=1"], []
    if run_id:
        where.append("run_id=?")
        params.append(run_id)
    if agent:
        where.append("(assigned_to=? OR created_by=?)")
        params += [agent, agent]
    if statuses:
        where.append(f"status IN ({','.join('?' * len(statuses))})")
        params += statuses
    n = positive_int(limit, "--limit", 1000)
    found = rows(store.all(f"SELECT * FROM threads WHERE {' AND '.join(where)} "
                           f"ORDER BY updated_at DESC, thread_id LIMIT ?", (*params, n)))
    return {"threads": found, "count": len(found)}


def show(store: Store, *, thread_id: str, agent: str | None = None, mark_read: bool = False) -> dict[str, Any]:
    check_thread_id(thread_id)
    check_id(agent, "--agent", required=False)
    if mark_read and not agent:
        raise InvalidInput("--mark-read needs --agent (the reader whose cursor advances)")
    with store.snapshot() as conn:
        t = _thread(conn, thread_id)
        messages = rows(conn.execute("SELECT * FROM messages WHERE thread_id=? ORDER BY message_id",
                                     (thread_id,)).fetchall())
        attach_artifacts(conn, messages)
        cursor = None
        if agent:
            c = conn.execute("SELECT message_id FROM read_cursors WHERE agent=? AND thread_id=?",
                             (agent, thread_id)).fetchone()
            cursor = c[0] if c else 0
    if mark_read and messages:
        last = messages[-1]["message_id"]
        store.write(lambda conn: advance_cursor(conn, agent or "", thread_id, last))
        cursor = last
    return {"thread": t, "messages": [public_message(m) for m in messages], "read_cursor": cursor}


def advance_cursor(conn: sqlite3.Connection, agent: str, thread_id: str, message_id: int) -> None:
    conn.execute(
        "INSERT INTO read_cursors (agent, thread_id, message_id) VALUES (?,?,?) "
        "ON CONFLICT(agent, thread_id) DO UPDATE SET message_id=max(message_id, excluded.message_id)",
        (agent, thread_id, message_id))


def expire_leases(store: Store) -> list[dict[str, Any]]:
    """Note each lease that has run out, once (event lease_expired). The watcher calls this.

    A read first: the watcher calls this on every pass, and most passes find nothing to note,
    so they should not queue for the write lock.
    """
    if store.one(f"SELECT 1 FROM threads WHERE status IN {sql_in(HELD_THREAD)} AND lease_owner<>''"
                 " AND lease_expires_at < ? AND lease_expired_noted='' LIMIT 1", (now_ts(),)) is None:
        return []

    def tx(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        now = now_ts()
        expired = rows(conn.execute(
            "UPDATE threads SET lease_expired_noted=? WHERE lease_owner<>'' AND lease_expires_at < ?"
            f" AND lease_expired_noted='' AND status IN {sql_in(HELD_THREAD)} RETURNING *",
            (now, now)).fetchall())
        for t in expired:
            add_event(conn, "lease_expired", run_id=t["run_id"], task_id=t["task_id"],
                      thread_id=t["thread_id"], agent=t["lease_owner"],
                      summary=f"lease of {t['lease_owner']} expired at {t['lease_expires_at']}", now=now)
        return expired

    return store.write(tx)
