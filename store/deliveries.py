"""Answers a worker has not picked up.

The brief tells a worker to wait for the leader's answer with `inbox wait-reply`, in slices that fit
its shell tool's time limit. A real agent sometimes ends its turn instead and sits at its prompt:
the answer is in the store, and nobody reads it. The watcher then types it into the agent's session.
This module says which answers are waiting: an answer on a live tmux attempt's thread, older than
a grace period, after which the worker has written nothing (it did not resume), and not yet typed.
"""

from __future__ import annotations

from typing import Any

from .db import Store
from .records import rows
from .validate import now_ts

ACTION = "type_answer"


def key(thread_id: str, message_id: int) -> str:
    return f"{ACTION}:{thread_id}:m{message_id}"


def awaiting_pickup(store: Store, run_id: str | None, *, older_than: float) -> list[dict[str, Any]]:
    """Live tmux attempts whose latest answer (older than the given epoch time) has no message
    from the worker after it and was not typed into the session yet."""
    return rows(store.all(
        "SELECT a.run_id, a.task_id, a.attempt_no, a.thread_id, a.runtime_ref, m.message_id, m.summary, m.body, m.created_at"
        " FROM attempts a JOIN threads t ON t.thread_id=a.thread_id"
        " JOIN messages m ON m.message_id=(SELECT max(message_id) FROM messages x WHERE x.thread_id=a.thread_id"
        "   AND x.kind='answer')"
        " WHERE a.runtime='tmux' AND a.runtime_ref<>'' AND a.status IN ('claimed','in_progress','blocked')"
        + (" AND a.run_id=?" if run_id else "") +
        " AND m.created_at<=?"
        " AND NOT EXISTS (SELECT 1 FROM messages w WHERE w.thread_id=a.thread_id AND w.message_id>m.message_id"
        "   AND w.from_agent=t.assigned_to)"
        " AND NOT EXISTS (SELECT 1 FROM watcher_actions k WHERE k.action_key="
        f"   '{ACTION}:' || a.thread_id || ':m' || m.message_id)",
        ((run_id,) if run_id else ()) + (now_ts(older_than),)))
