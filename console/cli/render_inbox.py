"""Readable output of each inbox command (without --json)."""

from __future__ import annotations

import json
from typing import Any

from .output import block, kv, line, status_text, table, text


def _threads(d: dict[str, Any], args: Any = None) -> None:
    table(None, ["thread", "status", "assigned", "lease", "subject", "updated"],
          [[t["thread_id"], status_text(t["status"]), t["assigned_to"], t["lease_owner"] or "-",
            t["subject"], t["updated_at"]] for t in d["threads"]])
    line(f"{d['count']} thread(s)")


def _thread_line(d: dict[str, Any], verb: str) -> None:
    t = d["thread"]
    line(f"{verb} ", text(t["thread_id"], "bold"), " ", status_text(t["status"]),
         f"  lease: {t['lease_owner'] or '-'} {t.get('lease_expires_at') or ''}")


def _show(d: dict[str, Any], args: Any = None) -> None:
    t = d["thread"]
    kv([("thread", t["thread_id"]), ("status", status_text(t["status"])), ("subject", t["subject"]),
        ("run / task", f"{t['run_id'] or '-'} / {t['task_id'] or '-'}"),
        ("created by", t["created_by"]), ("assigned to", t["assigned_to"]),
        ("lease", f"{t['lease_owner'] or '-'} until {t['lease_expires_at'] or '-'}")])
    for m in d["messages"]:
        line("")
        line(text(f"#{m['message_id']} {m['kind']}", "bold"),
             f"  {m['from_agent']} -> {m['to_agent']}  {m['created_at']}")
        line("  ", text(m["summary"]))
        if m["body"]:
            block(m["body"])
        if m.get("payload") is not None:
            block("payload: " + json.dumps(m["payload"], ensure_ascii=False))
        for a in m.get("artifacts", []):
            line(f"  artifact: {a['path']} {a['kind']}")


def _message(d: dict[str, Any], args: Any = None) -> None:
    m = d.get("message") or {}
    line(text(f"{m.get('kind', '')} #{m.get('message_id', '')}", "bold"), "  from ", m.get("from_agent", ""),
         ": ", text(m.get("summary", "")))
    if m.get("body"):
        block(m["body"])
    if m.get("payload") is not None:
        block("payload: " + json.dumps(m["payload"], ensure_ascii=False))
    if "next_event_id" in d:
        line(f"next event: {d['next_event_id']}")


def _hook(d: dict[str, Any], args: Any = None) -> None:
    """Exactly what the agent reads: the decision JSON of a PermissionRequest, else nothing."""
    import sys

    if d.get("output") is not None:
        sys.stdout.write(json.dumps(d["output"]) + "\n")
        sys.stdout.flush()


RENDERERS = {
    "hook": _hook,
    "init": lambda d, a=None: line(f"database ready: {d['db']} (schema {d['schema_version']}, {d['journal_mode']})"),
    "send": lambda d, a=None: _thread_line(d, "sent on" if not d["created"] else "created"),
    "fetch": _threads,
    "list": _threads,
    "claim": lambda d, a=None: _thread_line(d, "claimed"),
    "renew": lambda d, a=None: _thread_line(d, "renewed"),
    "update": lambda d, a=None: _thread_line(d, "updated"),
    "reply": lambda d, a=None: _thread_line(d, "replied on"),
    "finish": lambda d, a=None: _thread_line(d, "finished"),
    "cancel": lambda d, a=None: _thread_line(d, "cancelled"),
    "show": _show,
    "watch": _message,
    "wait-reply": _message,
}
