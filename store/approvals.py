"""Approvals as questions (issue 12 item 6): an agent's permission request waiting on the leader.

A permission request (Claude Code's or Codex's PermissionRequest hook, through `inbox hook`)
becomes one `approvals` row: the tool, what it acts on (the command, or the file), the options the
agent offers. The leader answers it once (`orch approve`): allow, always (allow, and add a rule
"always allow this in this run"), or deny with a reason. The hook command, waiting in bounded
polls, reads the answer and hands it back to the agent. A rule answers the next matching request
by itself, and the worker's own `inbox` commands never wait for anybody.

Every request, decision, rule and expiry is an event: approval_requested, approval_decided,
approval_rule_added, approval_expired.

Rules: for a shell tool (Bash, exec_command, shell) the pattern is the command's first word, and a
rule matches only a simple command (no `;`, `&&`, `||`, `|`, backticks or `$(`), so "always allow
git" never lets `git status; rm -rf ~` through. For any other tool (Edit, Write, ...) the rule
covers the tool in this run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import time
from typing import Any

from .db import Store
from .errors import InvalidInput, InvalidState, NotFound
from .records import add_event, row, rows
from .validate import check_id, now_ts, parse_ts

DECISIONS = ("allow", "always", "deny")
SHELL_TOOLS = {"bash", "shell", "exec_command", "shell_command", "local_shell", "run_shell_command"}
COMPOUND = re.compile(r";|&&|\|\||\||`|\$\(|\n")
OPTIONS = {
    "claude": [{"decision": "allow", "label": "Yes", "key": "1"},
               {"decision": "always", "label": "Yes, and don't ask again (this run)", "key": "2"},
               {"decision": "deny", "label": "No, and tell Claude what to do differently", "key": "3"}],
    "codex": [{"decision": "allow", "label": "Yes, proceed", "key": "y"},
              {"decision": "always", "label": "Yes, and don't ask again (this run)", "key": "y"},
              {"decision": "deny", "label": "No, and tell Codex what to do differently", "key": "Escape"}],
}
DEFAULT_OPTIONS = [{"decision": d, "label": d, "key": ""} for d in DECISIONS]


# -- rules (pure) ------------------------------------------------------------------------------
def first_word(command: str) -> str:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    for w in words:
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", w):
            continue  # VAR=value prefixes
        return w
    return ""


def rule_for(tool: str, subject: str) -> tuple[str, str]:
    """The rule an "always" decision adds: (tool, pattern)."""
    if tool.lower() in SHELL_TOOLS:
        return tool, first_word(subject)
    return tool, ""


def rule_matches(rule_tool: str, pattern: str, tool: str, subject: str) -> bool:
    if rule_tool.lower() != tool.lower():
        return False
    if tool.lower() in SHELL_TOOLS:
        if not pattern or COMPOUND.search(subject):
            return False
        return first_word(subject) == pattern
    return pattern == "" or pattern == subject


def is_own_inbox_command(tool: str, subject: str, inbox_path: str = "") -> bool:
    """The worker's own `inbox` command (a simple command whose program is inbox): never waits."""
    if tool.lower() not in SHELL_TOOLS or COMPOUND.search(subject):
        return False
    prog = first_word(subject)
    return os.path.basename(prog) == "inbox" or bool(inbox_path and prog == inbox_path)


# -- requests ----------------------------------------------------------------------------------
def _attempt(conn: sqlite3.Connection, thread_id: str) -> dict[str, Any]:
    a = row(conn.execute("SELECT run_id, task_id, attempt_no, thread_id, assigned_to, status FROM attempts"
                         " WHERE thread_id=?", (thread_id,)).fetchone())
    if a is None:
        raise NotFound(f"no attempt has thread {thread_id}")
    return a


def public(r: dict[str, Any] | None) -> dict[str, Any] | None:
    if r is None:
        return None
    out = dict(r)
    out["options"] = json.loads(out.pop("options_json") or "[]")
    out.pop("payload_json", None)
    return out


def request(store: Store, *, thread_id: str, tool: str = "", subject: str = "", source: str = "", agent: str = "",
            payload: dict[str, Any] | None = None, inbox_path: str = "", via: str = "hook",
            hook_event: str = "") -> dict[str, Any]:
    """A permission request from the agent of thread_id. Returns the approval: already decided when
    a rule (or the worker's own inbox command) answers it, else pending for the leader. With
    hook_event, the hook call itself is recorded in the same commit (tool and subject then come
    from its payload)."""
    options = OPTIONS.get(source, DEFAULT_OPTIONS)
    text = json.dumps(payload or {}, sort_keys=True, ensure_ascii=False)[:64 * 1024]

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        nonlocal tool, subject
        if hook_event:
            from .hook_events import record_tx

            rec = record_tx(conn, thread_id=thread_id, event=hook_event, payload=payload or {}, agent=agent,
                            source=source)
            tool, subject = rec["tool"] or "tool", rec["detail"]
        a = _attempt(conn, thread_id)
        now = now_ts()
        base = (a["run_id"], a["task_id"], a["attempt_no"], thread_id, agent or a["assigned_to"], source, tool,
                subject[:8000], json.dumps(options), text, via, now)
        cols = ("run_id, task_id, attempt_no, thread_id, agent, source, tool, subject, options_json, payload_json,"
                " via, created_at")
        auto: tuple[str, int | None, str] | None = None
        if is_own_inbox_command(tool, subject, inbox_path):
            auto = ("orch", None, "the worker's own inbox command never waits for an approval")
        else:
            for r in conn.execute("SELECT rule_id, tool, pattern FROM approval_rules WHERE run_id=? ORDER BY rule_id",
                                  (a["run_id"],)).fetchall():
                if rule_matches(r[1], r[2], tool, subject):
                    auto = ("rule", int(r[0]), f"always allowed in this run: {r[1]} {r[2]}".rstrip())
                    break
        if auto is not None:
            by, rule_id, reason = auto
            cur = conn.execute(
                f"INSERT INTO approvals ({cols}, status, decision, reason, decided_by, rule_id, decided_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'decided','allow',?,?,?,?)", (*base, reason, by, rule_id, now))
            aid = int(cur.lastrowid or 0)  # an INSERT always sets it
            add_event(conn, "approval_decided", run_id=a["run_id"], task_id=a["task_id"], thread_id=thread_id,
                      attempt_no=a["attempt_no"], agent=by, summary=f"allowed {tool}: {subject[:200]} ({reason})",
                      payload={"approval_id": aid, "decision": "allow", "by": by, "rule_id": rule_id,
                               "tool": tool, "subject": subject[:500]})
        else:
            cur = conn.execute(f"INSERT INTO approvals ({cols}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", base)
            aid = int(cur.lastrowid or 0)  # an INSERT always sets it
            add_event(conn, "approval_requested", run_id=a["run_id"], task_id=a["task_id"], thread_id=thread_id,
                      attempt_no=a["attempt_no"], agent=agent or a["assigned_to"],
                      summary=f"{source or 'agent'} asks to run {tool}: {subject[:200]}",
                      payload={"approval_id": aid, "tool": tool, "subject": subject[:500], "source": source,
                               "options": [o["decision"] for o in options]})
        return dict(conn.execute("SELECT * FROM approvals WHERE approval_id=?", (aid,)).fetchone())

    return public(store.write(tx))  # type: ignore[return-value]


def pending_id(store: Store, thread_id: str) -> int:
    """The attempt's newest pending request (0: none)."""
    r = store.one("SELECT approval_id FROM approvals WHERE thread_id=? AND status='pending' ORDER BY approval_id"
                  " DESC LIMIT 1", (thread_id,))
    return int(r[0]) if r else 0


def decided_within(store: Store, thread_id: str, seconds: float) -> bool:
    """A request of the attempt was decided in the last `seconds`: the agent may still show the
    menu it drew while its hook waited, until the hook hands the answer back and it redraws."""
    since = now_ts(time.time() - seconds)
    return store.scalar("SELECT 1 FROM approvals WHERE thread_id=? AND status='decided' AND decided_at>? LIMIT 1",
                        (thread_id, since)) is not None


def answerable_in_pane(store: Store, run_id: str, task_id: str) -> bool:
    """The console's answer box answers a permission request: the task has one waiting and no
    blocked question (a question comes first)."""
    return store.scalar("SELECT 1 FROM tasks t WHERE t.run_id=? AND t.task_id=? AND t.status<>'blocked' AND EXISTS"
                        " (SELECT 1 FROM approvals a WHERE a.run_id=t.run_id AND a.task_id=t.task_id AND"
                        " a.status='pending')", (run_id, task_id)) is not None


def get(store: Store, approval_id: int) -> dict[str, Any] | None:
    return public(row(store.one("SELECT * FROM approvals WHERE approval_id=?", (approval_id,))))


def wait_decision(store: Store, approval_id: int, timeout: float, poll: float = 0.2) -> dict[str, Any] | None:
    """Wait (bounded) until the approval is no longer pending; None when the time ran out."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        r = store.one("SELECT status FROM approvals WHERE approval_id=?", (approval_id,))
        if r is None:
            raise NotFound(f"no approval {approval_id}")
        if r[0] != "pending":
            return get(store, approval_id)
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll)


def mark_delivered(store: Store, approval_id: int) -> None:
    store.write(lambda conn: conn.execute("UPDATE approvals SET delivered_at=? WHERE approval_id=? AND delivered_at=''",
                                          (now_ts(), approval_id)))


def expire(store: Store, approval_id: int, reason: str) -> bool:
    """The hook stopped waiting: the agent shows its own menu now (the leader answers it by keys)."""
    def tx(conn: sqlite3.Connection) -> bool:
        r = row(conn.execute("UPDATE approvals SET status='expired', reason=? WHERE approval_id=? AND"
                             " status='pending' RETURNING run_id, task_id, thread_id, attempt_no, tool, subject",
                             (reason, approval_id)).fetchone())
        if r is None:
            return False
        add_event(conn, "approval_expired", run_id=r["run_id"], task_id=r["task_id"], thread_id=r["thread_id"],
                  attempt_no=r["attempt_no"], summary=f"{r['tool']}: {reason}",
                  payload={"approval_id": approval_id, "reason": reason})
        return True

    return store.write(tx)


# -- decisions ---------------------------------------------------------------------------------
def _decide_tx(conn: sqlite3.Connection, r: dict[str, Any], decision: str, reason: str, by: str,
               rule_id: int | None = None) -> dict[str, Any] | None:
    now = now_ts()
    done = conn.execute("UPDATE approvals SET status='decided', decision=?, reason=?, decided_by=?, rule_id=?,"
                        " decided_at=? WHERE approval_id=? AND status IN ('pending','expired')",
                        (decision, reason, by, rule_id, now, r["approval_id"])).rowcount
    if done != 1:
        return None
    add_event(conn, "approval_decided", run_id=r["run_id"], task_id=r["task_id"], thread_id=r["thread_id"],
              attempt_no=r["attempt_no"], agent=by,
              summary=f"{decision} {r['tool']}: {r['subject'][:200]}" + (f" ({reason})" if reason else ""),
              payload={"approval_id": r["approval_id"], "decision": decision, "reason": reason, "by": by,
                       "rule_id": rule_id, "tool": r["tool"], "subject": r["subject"][:500]})
    return dict(conn.execute("SELECT * FROM approvals WHERE approval_id=?", (r["approval_id"],)).fetchone())


def decide(store: Store, *, run_id: str, task_id: str, decision: str, reason: str = "", by: str = "leader",
           approval_id: int | None = None) -> dict[str, Any]:
    """The leader's answer to the task's open permission request (the oldest pending one, or
    approval_id). `always` also adds the run's rule and answers every other pending request it
    matches. Returns {approval, rule, also_allowed}."""
    check_id(run_id, "run")
    check_id(task_id, "task")
    if decision not in DECISIONS:
        raise InvalidInput(f"--decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    if reason and len(reason) > 4000:
        raise InvalidInput("--reason is longer than 4000 characters")
    if decision == "deny" and not reason:
        reason = "denied by the leader"

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        if conn.execute("SELECT 1 FROM tasks WHERE run_id=? AND task_id=?", (run_id, task_id)).fetchone() is None:
            raise NotFound(f"no task {task_id} in run {run_id}")
        if approval_id is not None:
            r = row(conn.execute("SELECT * FROM approvals WHERE approval_id=? AND run_id=? AND task_id=?",
                                 (approval_id, run_id, task_id)).fetchone())
            if r is None:
                raise NotFound(f"no approval {approval_id} for task {task_id} in run {run_id}")
            if r["status"] not in ("pending", "expired"):
                raise InvalidState(f"approval {approval_id} was already answered ({r['decision']} by "
                                   f"{r['decided_by']})")
        else:
            r = row(conn.execute("SELECT a.* FROM approvals a JOIN attempts x ON x.thread_id=a.thread_id WHERE"
                                 " a.run_id=? AND a.task_id=? AND a.status='pending' AND x.status IN"
                                 " ('pending','claimed','in_progress','blocked') ORDER BY a.approval_id LIMIT 1",
                                 (run_id, task_id)).fetchone())
            if r is None:
                r = row(conn.execute(
                    "SELECT a.* FROM approvals a WHERE a.run_id=? AND a.task_id=? AND a.status='expired' AND"
                    " a.attempt_no=(SELECT max(attempt_no) FROM attempts WHERE run_id=? AND task_id=?)"
                    " ORDER BY a.approval_id DESC LIMIT 1", (run_id, task_id, run_id, task_id)).fetchone())
            if r is None:
                raise NotFound(f"task {task_id} has no permission request waiting for an answer")
        rule = None
        rule_id = None
        if decision == "always":
            tool, pattern = rule_for(r["tool"], r["subject"])
            conn.execute("INSERT OR IGNORE INTO approval_rules (run_id, tool, pattern, created_by, from_approval,"
                         " created_at) VALUES (?,?,?,?,?,?)", (run_id, tool, pattern, by, r["approval_id"], now_ts()))
            rule = dict(conn.execute("SELECT * FROM approval_rules WHERE run_id=? AND tool=? AND pattern=?",
                                     (run_id, tool, pattern)).fetchone())
            rule_id = rule["rule_id"]
            add_event(conn, "approval_rule_added", run_id=run_id, task_id=task_id, agent=by,
                      summary=f"always allow {tool} {pattern}".rstrip() + " in this run",
                      payload={"rule_id": rule_id, "tool": tool, "pattern": pattern,
                               "from_approval": r["approval_id"]})
        decided = _decide_tx(conn, r, decision, reason, by, rule_id)
        if decided is None:
            raise InvalidState(f"approval {r['approval_id']} was answered meanwhile")
        also = []
        if rule is not None:
            for other in rows(conn.execute("SELECT * FROM approvals WHERE run_id=? AND status='pending'",
                                           (run_id,)).fetchall()):
                if rule_matches(rule["tool"], rule["pattern"], other["tool"], other["subject"]):
                    d = _decide_tx(conn, other, "allow", f"always allowed in this run: {rule['tool']} "
                                   f"{rule['pattern']}".rstrip(), "rule", rule_id)
                    if d is not None:
                        also.append(d["approval_id"])
        return {"approval": decided, "rule": rule, "also_allowed": also, "was": r["status"]}

    out = store.write(tx)
    out["approval"] = public(out["approval"])
    return out


def rules(store: Store, run_id: str) -> list[dict[str, Any]]:
    return rows(store.all("SELECT * FROM approval_rules WHERE run_id=? ORDER BY rule_id", (run_id,)))


def pending_approvals(conn: sqlite3.Connection, run_id: str, now: float | None = None) -> list[dict[str, Any]]:
    """Permission requests of the run waiting on the leader, oldest first, for the attention queue
    and the console's blocked pane: task, tool, what it acts on, the options, how long it waited."""
    now = time.time() if now is None else now
    out = []
    for r in conn.execute(
            "SELECT a.approval_id, a.run_id, a.task_id, a.attempt_no, a.thread_id, a.agent, a.source, a.tool,"
            " a.subject, a.options_json, a.via, a.created_at, t.title FROM approvals a JOIN tasks t ON"
            " t.run_id=a.run_id AND t.task_id=a.task_id JOIN attempts x ON x.thread_id=a.thread_id"
            " WHERE a.run_id=? AND a.status='pending' AND x.status IN ('pending','claimed','in_progress','blocked')"
            " ORDER BY a.approval_id", (run_id,)).fetchall():
        d = dict(r)
        d["options"] = json.loads(d.pop("options_json") or "[]")
        d["kind"] = "approval"
        d["waited_seconds"] = max(0.0, now - parse_ts(d["created_at"]))
        out.append(d)
    return out


def list_for_run(store: Store, run_id: str, status: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM approvals WHERE run_id=?"
    params: list[Any] = [run_id]
    if status:
        sql += " AND status=?"
        params.append(status)
    return [public(r) for r in rows(store.all(sql + " ORDER BY approval_id", params))]  # type: ignore[misc]


ANSWER_HINT = "answer: allow | always | deny: <reason>"


def blocked_items(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    """Pending approvals shaped like the console's blocked-question entries (views.blocked), with
    kind 'approval': the blocked pane lists them beside the questions and answers them in place."""
    out = []
    for a in pending_approvals(conn, run_id):
        opts = ", ".join(f"{o['decision']} ({o['label']})" for o in a["options"])
        out.append({"task_id": a["task_id"], "title": a["title"], "attempt_no": a["attempt_no"],
                    "thread_id": a["thread_id"], "asked_by": a["agent"], "asked_at": a["created_at"],
                    "kind": "approval", "approval_id": a["approval_id"],
                    "question": {"message_id": None, "kind": "approval",
                                 "summary": f"permission: {a['tool']} {a['subject']}"[:500],
                                 "body": f"{a['source'] or 'the agent'} asks to run {a['tool']}:\n{a['subject']}\n\n"
                                         f"options: {opts}\n{ANSWER_HINT}",
                                 "payload_json": "", "payload": None, "from_agent": a["agent"],
                                 "created_at": a["created_at"]}})
    return out


def parse_answer(text: str) -> tuple[str, str]:
    """The leader's typed answer to an approval: 'allow', 'always', or 'deny[: reason]' (also
    yes / no). Raises InvalidInput otherwise."""
    t = text.strip()
    word, _, rest = _split(t)
    w = word.lower()
    decision = {"allow": "allow", "yes": "allow", "y": "allow", "always": "always", "deny": "deny", "no": "deny",
                "n": "deny"}.get(w)
    if decision is None:
        raise InvalidInput(f"a permission request is answered with {ANSWER_HINT}; not {t[:40]!r}")
    return decision, rest.strip()


def _split(t: str) -> tuple[str, str, str]:
    m = re.match(r"^([A-Za-z]+)\s*[:\-,]?\s*(.*)$", t, re.S)
    return (m.group(1), "", m.group(2)) if m else (t, "", "")


def attention_items(conn: sqlite3.Connection, run_id: str) -> list[dict[str, Any]]:
    """Pending approvals as items of the attention queue (store/attention.py `queue` on main):
    kind 'approval', the same keys as its question and waiting_input items, plus the request's
    approval_id, tool, subject and options. The queue lists these in place of a waiting_input flag
    of the same task (that flag is the same request, seen by the watcher)."""
    out = []
    for a in pending_approvals(conn, run_id):
        out.append({"task_id": a["task_id"], "title": a["title"], "kind": "approval",
                    "text": f"permission: {a['tool']} {a['subject']}".splitlines()[0][:200], "agent": a["agent"],
                    "attempt_no": a["attempt_no"], "thread_id": a["thread_id"], "since": a["created_at"],
                    "message_id": None, "question": None, "approval_id": a["approval_id"], "tool": a["tool"],
                    "subject": a["subject"], "options": a["options"]})
    return out
