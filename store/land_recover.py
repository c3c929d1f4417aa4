"""Settling a land that died between its intent and its record (issue 14; store/land.py explains
the protocol): from git itself, landed if the target holds landed_commit, else not landed. Kept
apart from land.py so that `orch status` (views) and land.py can both reach it without a cycle."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from . import git_ops as g
from .db import Store
from .land_state import gate_on, public_land
from .records import add_event, row, rows
from .validate import now_ts

# An intent of this very process older than this is a land that died in a thread (an exception
# between the ref move and the record); a younger one is a land another thread is doing.
OWN_INTENT_GRACE = 120.0


def recover_if_needed(store: Store, run_id: str) -> None:
    """Settle a land interrupted by kill -9, if there is one (one indexed count otherwise)."""
    if store.scalar("SELECT count(*) FROM lands WHERE run_id=? AND status='landing'", (run_id,)):
        recover(store, run_id)


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def recover(store: Store, run_id: str) -> list[dict[str, Any]]:
    """Settle the intents of landers that died: landed if the target holds landed_commit, else not."""
    with store.snapshot() as conn:
        pending = rows(conn.execute(
            "SELECT l.*, a.repo_path FROM lands l JOIN attempts a ON a.run_id=l.run_id AND a.task_id=l.task_id AND"
            " a.attempt_no=l.attempt_no WHERE l.run_id=? AND l.status='landing'", (run_id,)).fetchall())
    settled = []
    from .validate import parse_ts

    for p in pending:
        mine = p["landing_pid"] == os.getpid()
        if _pid_alive(p["landing_pid"]) and (not mine or time.time() - parse_ts(p["checked_at"]) < OWN_INTENT_GRACE):
            continue  # a live lander (another thread of this process too) finishes its own land
        tip = g.rev(p["repo_path"], f"refs/heads/{p['target']}")
        done = tip is not None and (tip == p["landed_commit"] or g.is_ancestor(p["repo_path"], p["landed_commit"], tip))
        if done:
            _finalize(store, p, recovered=True)
        else:
            def undo(conn: sqlite3.Connection, p: dict[str, Any] = p, tip: str | None = tip) -> None:
                conn.execute("UPDATE lands SET status='clean', landing_pid=NULL WHERE run_id=? AND task_id=? AND"
                             " attempt_no=? AND status='landing'", (p["run_id"], p["task_id"], p["attempt_no"]))
                add_event(conn, "task_land_abandoned", run_id=p["run_id"], task_id=p["task_id"],
                          attempt_no=p["attempt_no"], summary=f"an interrupted land into {p['target']} did not "
                          f"move it; not landed", payload={"target": p["target"], "target_now": tip or ""})
            store.write(undo)
        settled.append({"task_id": p["task_id"], "landed": done})
    return settled


def _finalize(store: Store, p: dict[str, Any], *, recovered: bool = False) -> dict[str, Any]:
    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        now = now_ts()
        cur = conn.execute(
            "UPDATE lands SET status='landed', landing_pid=NULL, landed_at=? WHERE run_id=? AND task_id=? AND"
            " attempt_no=? AND landed_commit=? AND status<>'landed'",
            (now, p["run_id"], p["task_id"], p["attempt_no"], p["landed_commit"]))
        if cur.rowcount:
            add_event(conn, "task_landed", run_id=p["run_id"], task_id=p["task_id"], attempt_no=p["attempt_no"],
                      summary=f"landed into {p['target']} at {p['landed_commit'][:12]} ({p['strategy']}) by "
                              f"{p['landed_by']}" + (" (recovered after an interrupted land)" if recovered else ""),
                      payload={"target": p["target"], "commit": p["landed_commit"], "strategy": p["strategy"],
                               "by": p["landed_by"], "target_before": p["target_before"], "recovered": recovered},
                      now=now)
            if gate_on(conn, p["run_id"]):
                from .fold import promote_dependents, refresh_run

                promote_dependents(conn, p["run_id"], p["task_id"], now=now)
                refresh_run(conn, p["run_id"], now=now)
        return public_land(row(conn.execute("SELECT * FROM lands WHERE run_id=? AND task_id=? AND attempt_no=?",
                                            (p["run_id"], p["task_id"], p["attempt_no"])).fetchone())) or {}

    return store.write(tx)


