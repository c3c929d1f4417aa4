"""The watcher's memory: its idempotent actions and its event cursor.

Every action the watcher takes (end an attempt, nudge, retry, escalate, dispatch) claims a unique
key in `watcher_actions` inside the same transaction as the action itself, so a watcher killed at
any point and restarted can never take the same action twice. Each action also appends an event
whose payload says why. The cursor (`watcher_state`) is where the watcher's next pass reads the
event log from.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from .db import Store
from .errors import InvalidState
from .records import add_event, rows
from .validate import now_ts

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


@dataclass(frozen=True)
class WatcherAction:
    """A leader's operation (dispatch, retry) taken by the watcher: passed as `action=`, the
    operation claims the key first and records the action's event last, both inside its own
    transaction, so the operation and its claim commit together or not at all."""

    key: str
    action: str
    event_type: str
    run_id: str
    task_id: str
    attempt_no: int | None
    reason: str
    payload: dict[str, Any] = field(default_factory=dict)

    def claim(self, conn: sqlite3.Connection, now: str) -> None:
        """Raises ActionAlreadyTaken (rolling the operation back) when the key is taken."""
        claim_action(conn, self.key, self.action, run_id=self.run_id, task_id=self.task_id,
                     attempt_no=self.attempt_no, reason=self.reason, now=now)

    def record(self, conn: sqlite3.Connection, now: str) -> int:
        return add_event(conn, self.event_type, run_id=self.run_id, task_id=self.task_id,
                         attempt_no=self.attempt_no, agent=WATCHER, summary=self.reason,
                         payload={"action_key": self.key, "reason": self.reason} | self.payload, now=now)


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


def events_after(store: Store, event_id: int, limit: int = 2000, *, run_id: str | None = None
                 ) -> list[dict[str, Any]]:
    """The event log after `event_id`, oldest first: every run's, or one run's."""
    cols = "event_id, event_type, run_id, task_id, thread_id, attempt_no, summary, payload_json"
    if run_id is not None:
        return rows(store.all(f"SELECT {cols} FROM events WHERE run_id=? AND event_id>? ORDER BY event_id LIMIT ?",
                              (run_id, event_id, limit)))
    return rows(store.all(f"SELECT {cols} FROM events WHERE event_id>? ORDER BY event_id LIMIT ?",
                          (event_id, limit)))
