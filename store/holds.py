"""Profile holds: an agent that hit its usage limit, or cannot reach its API, takes no new work.

When the watcher reads a usage-limit, network, API or login error on a worker's screen, starting
more workers of the same profile only burns attempts on the same wall. A hold says so: the
autopilot (and the watcher's pending launches) start nothing with that profile until the hold
lifts, at the reset time the screen gave, after a default pause, or when the leader releases it
(`orch release --profile P`, or the console). Every hold and release is an event; the report
counts them.
"""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import datetime, timedelta
from typing import Any

from .db import Store
from .errors import InvalidInput, NotFound
from .records import add_event, rows
from .validate import check_id, now_ts, parse_ts

KINDS = ("usage_limit", "network", "api", "auth")
# How long a hold lasts when the screen names no reset time. A login problem waits for the leader.
DEFAULT_SECONDS = {"usage_limit": 3600.0, "network": 300.0, "api": 300.0, "auth": 0.0}

_IN = re.compile(r"(?:resets?|try again|retry|available again)\s+in\s+((?:\d+\s*(?:hours?|hrs?|h|minutes?|mins?|m|"
                 r"seconds?|secs?|s)\b[\s,and]*)+)", re.IGNORECASE)
_AT = re.compile(r"(?:resets?|try again|available again)\s+(?:at\s+)?(\d{1,2})(?::(\d{2}))?\s*(am|pm)?\b",
                 re.IGNORECASE)
_PART = re.compile(r"(\d+)\s*(hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)\b", re.IGNORECASE)


def reset_after(line: str, now: float) -> float | None:
    """The epoch time a screen line says the limit resets ("resets in 2h 5m", "try again in 37
    minutes", "resets at 3pm", "resets 15:30"), or None when it names none. Clock times are local
    and, once past today, tomorrow's."""
    m = _IN.search(line or "")
    if m:
        total = 0.0
        for n, unit in _PART.findall(m.group(1)):
            u = unit.lower()
            total += int(n) * (3600 if u.startswith("h") else 60 if u.startswith("m") else 1)
        return now + total if total else None
    m = _AT.search(line or "")
    if m and (m.group(2) or m.group(3)):
        hour, minute = int(m.group(1)), int(m.group(2) or 0)
        ampm = (m.group(3) or "").lower()
        if ampm == "pm" and hour < 12:
            hour += 12
        if ampm == "am" and hour == 12:
            hour = 0
        if hour > 23 or minute > 59:
            return None
        base = datetime.fromtimestamp(now)
        at = base.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if at.timestamp() <= now:
            at += timedelta(days=1)
        return at.timestamp()
    return None


def hold(store: Store, *, profile: str, kind: str, reason: str, run_id: str = "", task_id: str = "",
         attempt_no: int | None = None, line: str = "", now: float | None = None) -> dict[str, Any] | None:
    """Hold a profile. Returns the new hold, or None when it was already held for this kind (the
    first sighting sets the reset time; later sightings of the same screen change nothing)."""
    if kind not in KINDS:
        raise InvalidInput(f"hold kind must be one of {', '.join(KINDS)}, not {kind!r}")
    now = time.time() if now is None else now
    until = reset_after(line, now)
    if until is None and DEFAULT_SECONDS[kind]:
        until = now + DEFAULT_SECONDS[kind]
    until_at = now_ts(until) if until else ""

    def tx(conn: sqlite3.Connection) -> dict[str, Any] | None:
        ts = now_ts(now)
        cur = conn.execute("SELECT kind, until_at FROM profile_holds WHERE profile=?", (profile,)).fetchone()
        if cur is not None and cur[0] == kind and (not cur[1] or cur[1] > ts):
            return None
        if task_id and _released_since_sighted(conn, profile, kind, run_id, task_id, attempt_no):
            return None  # the leader lifted what this attempt showed; its screen still shows it
        conn.execute("INSERT INTO profile_holds (profile, kind, reason, run_id, task_id, attempt_no, until_at,"
                     " created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(profile) DO UPDATE SET kind=excluded.kind,"
                     " reason=excluded.reason, run_id=excluded.run_id, task_id=excluded.task_id,"
                     " attempt_no=excluded.attempt_no, until_at=excluded.until_at, created_at=excluded.created_at",
                     (profile, kind, reason, run_id, task_id, attempt_no, until_at, ts))
        add_event(conn, "profile_held", run_id=run_id, task_id=task_id, attempt_no=attempt_no, agent="watcher",
                  summary=f"{profile} held ({kind}){' until ' + until_at if until_at else ' until released'}: "
                          f"{reason}"[:500],
                  payload={"profile": profile, "kind": kind, "until_at": until_at}, now=ts)
        return {"profile": profile, "kind": kind, "reason": reason, "until_at": until_at, "created_at": ts}

    return store.write(tx)


def _released_since_sighted(conn: sqlite3.Connection, profile: str, kind: str, run_id: str, task_id: str,
                            attempt_no: int | None) -> bool:
    """Did the leader release the profile after this very attempt held it for this kind? Then the
    same screen, still up in that attempt's pane, holds nothing again (a new attempt that meets the
    wall does)."""
    r = conn.execute("SELECT max(event_id) FROM events WHERE event_type='profile_held' AND run_id=? AND task_id=?"
                     " AND attempt_no IS ? AND json_extract(payload_json, '$.profile')=? AND"
                     " json_extract(payload_json, '$.kind')=?", (run_id, task_id, attempt_no, profile, kind)).fetchone()
    if r is None or r[0] is None:
        return False
    return conn.execute("SELECT 1 FROM events WHERE event_type='profile_released' AND event_id>? AND"
                        " json_extract(payload_json, '$.profile')=? LIMIT 1", (r[0], profile)).fetchone() is not None


def release(store: Store, *, profile: str, by: str) -> dict[str, Any]:
    """The leader lifts a hold (the limit was raised, the network is back)."""
    check_id(profile, "--profile")

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        r = conn.execute("DELETE FROM profile_holds WHERE profile=? RETURNING *", (profile,)).fetchone()
        if r is None:
            raise NotFound(f"profile {profile} is not held")
        held = dict(r)
        add_event(conn, "profile_released", run_id=held["run_id"], agent=by,
                  summary=f"{profile} released by {by} (was held: {held['kind']})",
                  payload={"profile": profile, "kind": held["kind"]})
        return {"released": held}

    return store.write(tx)


def active(store: Store, now: float | None = None) -> dict[str, dict[str, Any]]:
    """Holds in force: profile -> hold. A hold past its reset time is simply no longer in force."""
    ts = now_ts(time.time() if now is None else now)
    return {r["profile"]: r for r in rows(store.all(
        "SELECT * FROM profile_holds WHERE until_at='' OR until_at>? ORDER BY created_at", (ts,)))}


def remaining(hold_row: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds until a hold lifts by itself, or None when it waits for the leader."""
    if not hold_row["until_at"]:
        return None
    return max(0.0, parse_ts(hold_row["until_at"]) - (time.time() if now is None else now))
