"""The attempt log read model: a task's attempts, the selected attempt's messages (by kind), the tail
of its worker's output and its worktree's diff stat. Headless; the console renders it as plain text.
"""

from __future__ import annotations

import os
from typing import Any

from .db import Store
from .errors import NotFound
from .models import AttemptInfo, AttemptLog, LogMessage, Preview
from .records import rows
from .states import FINISHED_TASK, LIVE_ATTEMPT, MessageKind, TaskStatus, sql_in
from .worktrees import diff_stat


def _attempt_info(a: dict[str, Any]) -> AttemptInfo:
    """An attempt row as the log shows it: NULL columns (pid, say) as empty text."""
    values: dict[str, Any] = {k: (a[k] if a[k] is not None else "") for k in AttemptInfo.__dataclass_fields__}
    return AttemptInfo(**values)


def attempt_log(store: Store, run_id: str, task_id: str, attempt_no: int | None = None, *,
                kinds: tuple[str, ...] | None = None, message_limit: int = 500,
                tail_bytes: int = 64 * 1024, with_files: bool = True) -> AttemptLog:
    with store.snapshot() as conn:
        task = conn.execute("SELECT title, status FROM tasks WHERE run_id=? AND task_id=?",
                            (run_id, task_id)).fetchone()
        atts = [_attempt_info(a) for a in rows(conn.execute("SELECT * FROM attempts WHERE run_id=? AND task_id=?"
                                                            " ORDER BY attempt_no", (run_id, task_id)).fetchall())]
        chosen = next((a for a in atts if a.attempt_no == attempt_no), atts[-1] if atts else None)
        msgs: list[LogMessage] = []
        counts: dict[str, int] = {}
        hidden = 0
        if chosen is not None:
            counts = {r[0]: r[1] for r in conn.execute(
                "SELECT kind, count(*) FROM messages WHERE thread_id=? GROUP BY kind", (chosen.thread_id,))}
            ksql, kparams = "", []
            if kinds:
                ksql = f" AND kind IN ({','.join('?' * len(kinds))})"
                kparams = list(kinds)
            # Newest N, shown oldest first: a chatty worker's thread never loads whole.
            got = conn.execute(f"SELECT message_id, kind, from_agent, to_agent, summary, body, payload_json,"
                               f" created_at FROM messages WHERE thread_id=?{ksql} ORDER BY message_id DESC"
                               f" LIMIT ?", (chosen.thread_id, *kparams, message_limit)).fetchall()
            msgs = [LogMessage(*r) for r in reversed(got)]
            shown_total = sum(v for k, v in counts.items() if not kinds or k in kinds)
            hidden = max(0, shown_total - len(msgs))
    if task is None:
        raise NotFound(f"task {task_id} not found in run {run_id}")
    diff, source = "", ""
    output: list[str] = []
    if chosen is not None and with_files:
        if chosen.worktree_path and chosen.workspace_status == "created" and os.path.isdir(chosen.worktree_path):
            diff = diff_stat(chosen.worktree_path, chosen.base_commit)
        output, source = output_tail(chosen, tail_bytes)
    return AttemptLog(run_id=run_id, task_id=task_id, title=task[0], task_status=task[1], attempts=atts,
                      attempt=chosen, messages=msgs, kind_counts=counts, diff_stat=diff, output=output,
                      output_source=source, truncated_messages=hidden)


def output_tail(a: AttemptInfo, tail_bytes: int = 64 * 1024) -> tuple[list[str], str]:
    """The end of a process worker's log. (A tmux worker's screen lives on the database's private
    tmux server; the console reads it with console/runtime/launcher.py capture.)"""
    if a.log_path and os.path.isfile(a.log_path):
        try:
            with open(a.log_path, "rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - tail_bytes))
                data = fh.read()
        except OSError as exc:
            return [f"(cannot read {a.log_path}: {exc.strerror})"], a.log_path
        lines = data.decode("utf-8", errors="replace").splitlines()
        if size > tail_bytes and lines:
            lines = lines[1:]  # the first line was cut by the seek
        return lines, a.log_path
    return [], ""


# What the worker said (the preview's "latest"), and what a leader's key answers for each thing asked.
_SAID = (MessageKind.PROGRESS, MessageKind.QUESTION, MessageKind.RESULT)
ANSWER_KEYS = {"question": "a", "waiting_input": "k", "escalation": "r", "approval": "a"}


def preview(store: Store, run_id: str, task_id: str, *, tail_lines: int = 8) -> Preview:
    """The selected task at a glance (the board's preview under the table). A tmux worker's screen
    is not read here (it lives on the private tmux server): the console adds it."""
    with store.snapshot() as conn:
        task = conn.execute("SELECT title, status, default_to FROM tasks WHERE run_id=? AND task_id=?",
                            (run_id, task_id)).fetchone()
        if task is None:
            raise NotFound(f"task {task_id} not found in run {run_id}")
        a = conn.execute("SELECT * FROM attempts WHERE run_id=? AND task_id=? ORDER BY attempt_no DESC LIMIT 1",
                         (run_id, task_id)).fetchone()
        att = _attempt_info(dict(a)) if a is not None else None
        latest = None
        asks, kind = "", ""
        if att is not None:
            m = conn.execute("SELECT message_id, kind, from_agent, to_agent, summary, body, payload_json, created_at"
                             f" FROM messages WHERE thread_id=? AND kind IN {sql_in(_SAID)}"
                             " ORDER BY message_id DESC LIMIT 1", (att.thread_id,)).fetchone()
            latest = LogMessage(*m) if m is not None else None
            if task["status"] == TaskStatus.BLOCKED and latest is not None and latest.kind == MessageKind.QUESTION:
                asks, kind = "\n".join(x for x in (latest.summary, latest.body) if x), "question"
            elif att.status in LIVE_ATTEMPT:
                flag = conn.execute("SELECT kind, reason FROM attention WHERE run_id=? AND task_id=? AND attempt_no=?"
                                    " ORDER BY created_at DESC LIMIT 1", (run_id, task_id, att.attempt_no)).fetchone()
                if flag is not None and (flag[0] != "waiting_input" or att.liveness == "waiting_input"):
                    asks, kind = flag[1], "waiting_input" if flag[0] == "waiting_input" else "escalation"
            if not kind and task["status"] not in FINISHED_TASK:
                flag = conn.execute("SELECT reason FROM attention WHERE run_id=? AND task_id=? AND attempt_no=?"
                                    " AND kind<>'waiting_input' LIMIT 1", (run_id, task_id, att.attempt_no)).fetchone()
                if flag is not None:
                    asks, kind = flag[0], "escalation"
    tail, source = ([], "")
    if att is not None and att.runtime != "tmux":
        lines, source = output_tail(att, 16 * 1024)
        tail = lines[-tail_lines:]
    return Preview(task_id=task_id, title=task["title"], status=task["status"],
                   owner=(att.assigned_to if att else "") or task["default_to"] or "", attempt=att, latest=latest,
                   asks=asks, asks_kind=kind, asks_key=ANSWER_KEYS.get(kind, ""), tail=tail, tail_source=source)
