"""Low-level writes used inside transactions: events, messages, artifacts, rows as dicts.

Every function here takes the open connection of a write transaction; none commits.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, NamedTuple

from .validate import now_ts


class Artifact(NamedTuple):
    path: str
    kind: str = ""
    metadata_json: str = ""


class RawJSON:
    """A value already encoded as JSON text: a big read model built by SQLite itself
    (json_object), which the CLI splices into its envelope without decoding it. The text may hold
    non-ASCII characters; the envelope writer escapes them."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def value(self) -> Any:
        return json.loads(self.text)

    def __repr__(self) -> str:
        return f"RawJSON({len(self.text)} chars)"


def row(r: sqlite3.Row | None) -> dict[str, Any] | None:
    return None if r is None else dict(r)


def rows(rs: list[sqlite3.Row]) -> list[dict[str, Any]]:
    return [dict(r) for r in rs]


def loads(text: str, default: Any = None) -> Any:
    if not text:
        return default
    # the common empty values, without a trip through the JSON decoder (hot in status views)
    if text == "[]":
        return []
    if text == "{}":
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return default


# json.dumps with non-default arguments builds a new encoder on every call; events are hot.
compact_json = json.JSONEncoder(separators=(",", ":")).encode


def add_event(conn: sqlite3.Connection, event_type: str, *, run_id: str = "", task_id: str = "",
              thread_id: str = "", attempt_no: int | None = None, agent: str = "",
              message_id: int | None = None, summary: str = "", payload: dict | None = None,
              now: str | None = None) -> int:
    cur = conn.execute(
        "INSERT INTO events (event_type, run_id, task_id, thread_id, attempt_no, agent, message_id,"
        " summary, payload_json, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (event_type, run_id or "", task_id or "", thread_id or "", attempt_no, agent or "",
         message_id, summary or "", compact_json(payload) if payload else "",
         now or now_ts()))
    return int(cur.lastrowid or 0)  # an INSERT always sets it


MESSAGE_COLUMNS = ("message_id", "thread_id", "from_agent", "to_agent", "kind", "summary", "body",
                   "payload_json", "created_at")


def add_message(conn: sqlite3.Connection, thread_id: str, *, from_agent: str, to_agent: str,
                kind: str, summary: str = "", body: str = "", payload_json: str = "",
                artifacts: list[Artifact] | tuple[Artifact, ...] = (), now: str | None = None) -> dict:
    now = now or now_ts()
    # No RETURNING: every column but the id is ours already (a RETURNING row costs a buffered result).
    values = (thread_id, from_agent, to_agent or "", kind, summary or "", body or "", payload_json or "", now)
    cur = conn.execute(
        "INSERT INTO messages (thread_id, from_agent, to_agent, kind, summary, body, payload_json,"
        " created_at) VALUES (?,?,?,?,?,?,?,?)", values)
    message: dict[str, Any] = dict(zip(MESSAGE_COLUMNS, (cur.lastrowid, *values)))
    saved = []
    for a in artifacts:
        conn.execute("INSERT INTO artifacts (message_id, path, kind, metadata_json) VALUES (?,?,?,?)",
                     (message["message_id"], a.path, a.kind, a.metadata_json))
        saved.append({"path": a.path, "kind": a.kind, "metadata": loads(a.metadata_json, {})})
    message["artifacts"] = saved
    return message


def public_message(m: dict[str, Any] | None) -> dict[str, Any] | None:
    """A message as the JSON envelope shows it: payload parsed, artifacts listed."""
    if m is None:
        return None
    out = dict(m)
    out["payload"] = loads(out.get("payload_json", ""), None)
    out.setdefault("artifacts", [])
    return out


def public_event(e: dict[str, Any]) -> dict[str, Any]:
    out = dict(e)
    out["payload"] = loads(out.pop("payload_json", ""), None)
    return out


def attach_artifacts(conn: sqlite3.Connection | Any, messages: list[dict[str, Any]]) -> None:
    if not messages:
        return
    ids = [m["message_id"] for m in messages]
    found: dict[int, list[dict[str, Any]]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        q = ",".join("?" * len(chunk))
        for a in conn.execute(f"SELECT * FROM artifacts WHERE message_id IN ({q}) ORDER BY artifact_id",
                              chunk).fetchall():
            found.setdefault(a["message_id"], []).append(
                {"path": a["path"], "kind": a["kind"], "metadata": loads(a["metadata_json"], {})})
    for m in messages:
        m["artifacts"] = found.get(m["message_id"], [])
