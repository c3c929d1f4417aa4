"""Blocking waits over the event log: inbox watch, inbox wait-reply, orch wait.

Each wait polls cheaply: `PRAGMA data_version` tells whether anyone committed since the last
look, and only then is the event query run. Event ids are the cursors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from .db import Store
from .errors import InvalidInput, NoMatchingWork, NotFound, OrchError
from .inbox import _statuses, _thread, advance_cursor, renew
from .records import attach_artifacts, public_event, public_message, row, rows
from .states import TERMINAL_THREAD
from .validate import check_id, check_seconds, check_thread_id, parse_ts

T = TypeVar("T")
POLL_SECONDS = 0.02
# wait-reply renews the waiter's lease when less than this is left (leases default to 900 s).
RENEW_WHEN_LEFT_SECONDS = 300


def last_event_id(store: Store) -> int:
    return int(store.scalar("SELECT coalesce(max(event_id), 0) FROM events"))


def poll_until(store: Store, probe: Callable[[], T | None], timeout_seconds: float,
               on_idle: Callable[[], bool | None] | None = None, what: str = "a match") -> T:
    """Run probe whenever the database changed, until it returns something or time runs out.

    timeout_seconds == 0 waits forever. on_idle runs about once a second while waiting; when it
    returns True (it changed something) the probe runs again.
    """
    check_seconds(timeout_seconds, "--timeout-seconds", zero_ok=True)  # 0: forever; at most a week
    deadline = None if timeout_seconds == 0 else time.monotonic() + timeout_seconds
    seen = None
    idle_at = time.monotonic() + 1.0
    while True:
        version = store.data_version()
        if version != seen:
            seen = version
            found = probe()
            if found is not None:
                return found
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise NoMatchingWork(f"timed out after {timeout_seconds:g}s waiting for {what}")
        if on_idle is not None and now >= idle_at:
            if on_idle():  # it wrote: this connection's own commit does not move data_version
                seen = None
            idle_at = now + 1.0
        time.sleep(POLL_SECONDS if deadline is None else max(0.0, min(POLL_SECONDS, deadline - now)))


def watch(store: Store, *, agent: str, statuses: list[str] | None = None,
          after_event: int | None = None, timeout_seconds: float = 0) -> dict[str, Any]:
    """Wake on the next event touching a thread assigned to agent (optionally in statuses)."""
    check_id(agent, "--agent")
    statuses = _statuses(statuses)
    start = last_event_id(store) if after_event is None else int(after_event)
    status_sql = f" AND t.status IN ({','.join('?' * len(statuses))})" if statuses else ""

    def probe() -> dict[str, Any] | None:
        e = store.one(
            "SELECT e.* FROM events e JOIN threads t ON t.thread_id=e.thread_id WHERE e.event_id>?"
            f" AND t.assigned_to=?{status_sql} ORDER BY e.event_id LIMIT 1",
            (start, agent, *statuses))
        if e is None:
            return None
        event = dict(e)
        thread = row(store.one("SELECT * FROM threads WHERE thread_id=?", (event["thread_id"],)))
        message = None
        if event["message_id"] is not None:
            message = row(store.one("SELECT * FROM messages WHERE message_id=?", (event["message_id"],)))
            if message:
                attach_artifacts(store.conn, [message])
        return {"woke": True, "thread": thread, "message": public_message(message),
                "event": public_event(event), "next_event_id": event["event_id"]}

    return poll_until(store, probe, timeout_seconds, what=f"work for {agent}")


def wait_reply(store: Store, *, thread_id: str, agent: str | None = None,
               after_message: int | None = None, after_event: int | None = None,
               kinds: list[str] | None = None, timeout_seconds: float = 0) -> dict[str, Any]:
    """Wait for the next answer/control/result message on a thread.

    Without a cursor it starts from the agent's read cursor. While it waits, an agent that holds
    the thread's lease keeps it alive: waiting for the leader is not a stall.
    """
    check_thread_id(thread_id)
    check_id(agent, "--agent", required=False)
    if after_message is not None and after_event is not None:
        raise InvalidInput("--after-message and --after-event are mutually exclusive")
    kinds = [k.strip() for k in (kinds or ["answer", "control", "result"]) if k.strip()]
    _thread(store.conn, thread_id)
    if after_message is not None:
        if int(after_message) < 0:
            raise InvalidInput("--after-message must be a message id (0: from the thread's first message)")
        if int(after_message) and store.one("SELECT 1 FROM messages WHERE message_id=? AND thread_id=?",
                                            (int(after_message), thread_id)) is None:
            raise NotFound(f"message {after_message} not found on thread {thread_id}")
    params: list[Any] = [thread_id, *kinds]
    kind_sql = f"m.kind IN ({','.join('?' * len(kinds))})"
    to_sql = ""
    if agent:
        to_sql = " AND m.to_agent=? AND m.from_agent<>?"
        params += [agent, agent]
    if after_event is not None:
        # driven by the (thread_id, event_id) index of events: no scan of the whole event log
        sql = ("SELECT m.*, e.event_id AS event_id FROM events e JOIN messages m ON m.message_id=e.message_id"
               f" WHERE e.thread_id=? AND {kind_sql}{to_sql} AND e.event_id>? ORDER BY e.event_id LIMIT 1")
        params.append(int(after_event))
    else:
        if after_message is None:
            after_message = int(store.scalar(
                "SELECT coalesce((SELECT message_id FROM read_cursors WHERE agent=? AND thread_id=?), 0)",
                (agent or "", thread_id))) if agent else 0
        sql = (f"SELECT m.* FROM messages m WHERE m.thread_id=? AND {kind_sql}{to_sql} AND m.message_id>?"
               " ORDER BY m.message_id LIMIT 1")
        params.append(int(after_message))

    def probe() -> dict[str, Any] | None:
        m = store.one(sql, params)
        return None if m is None else dict(m)

    def keep_lease() -> None:
        if not agent:
            return
        t = store.one("SELECT lease_owner, lease_expires_at, status FROM threads WHERE thread_id=?",
                      (thread_id,))
        if t and t["lease_owner"] == agent and t["status"] not in TERMINAL_THREAD \
                and parse_ts(t["lease_expires_at"]) - time.time() < RENEW_WHEN_LEFT_SECONDS:
            try:
                renew(store, agent=agent, thread_id=thread_id, quiet=True)
            except Exception:  # a lost lease is reported by the next real command, not here
                pass

    m = poll_until(store, probe, timeout_seconds, on_idle=keep_lease,
                   what=f"a reply on {thread_id}")
    m.pop("event_id", None)
    attach_artifacts(store.conn, [m])
    if agent:
        store.write(lambda conn: advance_cursor(conn, agent, thread_id, m["message_id"]))
    nxt = store.scalar("SELECT max(event_id) FROM events WHERE thread_id=? AND message_id=?",
                       (thread_id, m["message_id"]))
    return {"woke": True, "message": public_message(m), "next_event_id": nxt or last_event_id(store)}


def wait_events(store: Store, *, run_id: str, types: list[str], after_event: int | None = None,
                timeout_seconds: float = 0, limit: int = 100) -> dict[str, Any]:
    """orch wait: the run's next events of the given types after the cursor."""
    check_id(run_id, "--run")
    types = [t.strip() for t in types if t.strip()]
    if not types:
        raise InvalidInput("--for needs at least one event type, e.g. task_done,task_blocked")
    start = last_event_id(store) if after_event is None else int(after_event)
    q = ",".join("?" * len(types))

    def probe() -> list[dict[str, Any]] | None:
        found = rows(store.all(f"SELECT * FROM events WHERE run_id=? AND event_id>? AND event_type IN ({q})"
                               " ORDER BY event_id LIMIT ?", (run_id, start, *types, limit)))
        return found or None

    def repair() -> bool:
        """The wait loop reconciles inbox state while polling (orch-contract.md 2.3): a thread that
        moved without its fold is folded here, and its task event wakes this wait."""
        from .views import reconcile

        try:
            return bool(reconcile(store, run_id=run_id, report=False)["updated_tasks"])
        except OrchError:  # a busy or vanished run is the next real command's to report
            return False

    found = poll_until(store, probe, timeout_seconds, on_idle=repair, what=f"{','.join(types)} in run {run_id}")
    events = [public_event(e) for e in found]
    return {"woke": True, "events": events, "event": events[0],
            "next_event_id": events[-1]["event_id"]}
