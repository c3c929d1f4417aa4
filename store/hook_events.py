"""What a real agent's own hooks said, per attempt (issue 12 item 5).

Claude Code and Codex run orch's hook command (`inbox hook`) on their lifecycle events with the
event's JSON on stdin. Each call is one row of `hook_events` for the attempt whose thread the
hook names; a call that changes what the hooks say about the attempt (working, waiting for a
permission, idle at the prompt, session over) also appends an `attempt_hook` event, so the
watcher and the console wake on it. The watcher fuses the latest hook with the screen
(console/runtime/hooks.py `fuse`).

A hook never says "done": only `inbox done`, a process exit or a result ends an attempt.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any, NamedTuple

from .db import Store
from .errors import NotFound
from .records import add_event, row
from .validate import now_ts

MAX_PAYLOAD = 64 * 1024

# hook event name -> what it says about the agent ('' says nothing new)
STATES = {
    "SessionStart": "starting",
    "UserPromptSubmit": "working",
    "PreToolUse": "working",
    "PostToolUse": "working",
    "PermissionRequest": "waiting_input",
    "PermissionDecision": "working",  # orch's own row: the leader's answer went back through the hook
    "Stop": "idle",
    "SubagentStop": "",
    "PreCompact": "working",
    "SessionEnd": "exited",
}


def hook_state(event: str, payload: dict[str, Any]) -> str:
    """What one hook event says about the agent: working, waiting_input, idle, starting, exited or ''."""
    if event == "Notification":
        kind = str(payload.get("notification_type") or "")
        msg = str(payload.get("message") or "").lower()
        if kind == "permission_prompt" or "permission" in msg:
            return "waiting_input"
        if kind == "idle_prompt" or "waiting for your input" in msg:
            return "idle"
        return ""
    return STATES.get(event, "")


def tool_and_detail(payload: dict[str, Any]) -> tuple[str, str]:
    """(tool, what it acts on: the command, or the file) from a tool hook's payload."""
    tool = str(payload.get("tool_name") or "")
    ti = payload.get("tool_input")
    if not isinstance(ti, dict):
        return tool, ""
    for key in ("command", "cmd", "file_path", "path", "notebook_path", "url", "pattern"):
        v = ti.get(key)
        if isinstance(v, list):
            v = " ".join(str(x) for x in v)
        if v:
            return tool, str(v)
    return tool, json.dumps(ti, sort_keys=True)[:2000]


class HookState(NamedTuple):
    state: str
    event: str
    at: float
    detail: str = ""


def attempt_of_thread(conn: sqlite3.Connection, thread_id: str) -> dict[str, Any]:
    a = row(conn.execute("SELECT run_id, task_id, attempt_no, thread_id, status, assigned_to FROM attempts"
                         " WHERE thread_id=?", (thread_id,)).fetchone())
    if a is None:
        raise NotFound(f"no attempt has thread {thread_id}")
    return a


def record(store: Store, *, thread_id: str, event: str, payload: dict[str, Any], agent: str = "",
           source: str = "", at: float | None = None) -> dict[str, Any]:
    """One hook call: a row for the attempt, and an `attempt_hook` event when what the hooks say
    about the attempt changed (or the event matters on its own: a permission, a turn's end)."""
    return store.write(lambda conn: record_tx(conn, thread_id=thread_id, event=event, payload=payload, agent=agent,
                                              source=source, at=at))


def record_tx(conn: sqlite3.Connection, *, thread_id: str, event: str, payload: dict[str, Any], agent: str = "",
              source: str = "", at: float | None = None) -> dict[str, Any]:
    """record() inside the caller's write transaction (a permission request records its hook and
    its approval in one commit)."""
    at = time.time() if at is None else at
    state = hook_state(event, payload)
    tool, detail = tool_and_detail(payload)
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False)
    if len(text) > MAX_PAYLOAD:
        text = json.dumps({"truncated": True, "hook_event_name": event, "tool_name": tool, "detail": detail[:4000]})
    a = attempt_of_thread(conn, thread_id)
    prev = conn.execute("SELECT state FROM hook_events WHERE thread_id=? AND state<>'' ORDER BY hook_id DESC"
                        " LIMIT 1", (thread_id,)).fetchone()
    cur = conn.execute(
        "INSERT INTO hook_events (thread_id, run_id, task_id, attempt_no, agent, source, event, state, tool,"
        " detail, payload_json, at, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (thread_id, a["run_id"], a["task_id"], a["attempt_no"], agent or a["assigned_to"], source, event, state,
         tool, detail[:4000], text, at, now_ts(at)))
    hook_id = int(cur.lastrowid or 0)  # an INSERT always sets it
    changed = bool(state) and (prev is None or prev[0] != state)
    if changed or event in ("PermissionRequest", "Stop", "SessionEnd"):
        add_event(conn, "attempt_hook", run_id=a["run_id"], task_id=a["task_id"], thread_id=thread_id,
                  attempt_no=a["attempt_no"], agent=agent or a["assigned_to"],
                  summary=f"{source or 'agent'} hook {event}" + (f": {state}" if state else ""),
                  payload={"hook_id": hook_id, "event": event, "state": state, "tool": tool,
                           "detail": detail[:500], "source": source})
    return {"hook_id": hook_id, "event": event, "state": state, "tool": tool, "detail": detail,
            "run_id": a["run_id"], "task_id": a["task_id"], "attempt_no": a["attempt_no"]}


def latest(store: Store, thread_id: str) -> HookState | None:
    """The newest hook that said something about the attempt's state."""
    r = store.one("SELECT state, event, at, detail FROM hook_events WHERE thread_id=? AND state<>''"
                  " ORDER BY hook_id DESC LIMIT 1", (thread_id,))
    return HookState(r[0], r[1], float(r[2]), r[3]) if r else None


def latest_many(store: Store, thread_ids: list[str]) -> dict[str, HookState]:
    """latest() for several attempts in one statement (the watcher's pass)."""
    if not thread_ids:
        return {}
    marks = ",".join("?" * len(thread_ids))
    rs = store.all(
        "SELECT h.thread_id, h.state, h.event, h.at, h.detail FROM hook_events h JOIN ("
        f" SELECT thread_id, max(hook_id) AS m FROM hook_events WHERE state<>'' AND thread_id IN ({marks})"
        " GROUP BY thread_id) x ON h.hook_id=x.m", thread_ids)
    return {r[0]: HookState(r[1], r[2], float(r[3]), r[4]) for r in rs}


def for_attempt(store: Store, thread_id: str, limit: int = 200) -> list[dict[str, Any]]:
    return [dict(r) for r in store.all(
        "SELECT hook_id, event, state, tool, detail, source, created_at FROM hook_events WHERE thread_id=?"
        " ORDER BY hook_id DESC LIMIT ?", (thread_id, limit))][::-1]
