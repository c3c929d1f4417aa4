"""Worker tokens (issue 15): workers act only on their own attempt.

Each launched attempt gets a secret token in its environment (ORCH_TOKEN); only its SHA-256 is
stored. With a token, `inbox` acts only on that attempt's thread, as that attempt's agent; the
leader's commands and message kinds refuse it. A run setting, `require_worker_tokens` (on by
default), makes the token required for every worker write on the thread of a launched attempt;
threads that were never launched (a hand-run worker script) need none, as with the original CLIs.
Every refusal is a `token_refused` event the leader sees.

What this does not do: a process that drops ORCH_TOKEN from its environment is a leader to orch,
as every process of this user was before; tokens make the safe path the default for an agent that
does what its environment and brief lead it to, they are no sandbox.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from typing import Any

from .db import Store
from .errors import InvalidInput
from .records import add_event, loads
from .validate import now_ts

ENV = "ORCH_TOKEN"
LEADER_KINDS = frozenset({"task", "answer", "control"})
# inbox commands that write on a thread as its worker
WORKER_WRITES = frozenset({"claim", "renew", "update", "done", "fail", "send", "reply"})
# inbox commands only the leader uses
LEADER_INBOX_COMMANDS = frozenset({"cancel"})


def new_token() -> tuple[str, str]:
    """(token, its hash)."""
    token = "orcht_" + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def issue_tx(conn: sqlite3.Connection, *, token_hash_: str, attempt: Any, now: str) -> None:
    conn.execute("INSERT INTO attempt_tokens (token_hash, thread_id, run_id, task_id, attempt_no, agent, created_at)"
                 " VALUES (?,?,?,?,?,?,?)", (token_hash_, attempt["thread_id"], attempt["run_id"], attempt["task_id"],
                                             attempt["attempt_no"], attempt["assigned_to"], now))


def identity(store: Store, token: str) -> dict[str, Any] | None:
    r = store.one("SELECT * FROM attempt_tokens WHERE token_hash=?", (token_hash(token),))
    return dict(r) if r is not None else None


def thread_requires_token(store: Store, thread_id: str) -> bool:
    """A launched attempt's thread, in a run whose require_worker_tokens is on (the default)."""
    r = store.one("SELECT t.run_id FROM attempt_tokens t WHERE t.thread_id=? LIMIT 1", (thread_id,))
    if r is None:
        return False
    cfg = store.one("SELECT config_json FROM runs WHERE run_id=?", (r["run_id"],))
    value = loads(cfg[0], {}).get("require_worker_tokens", True) if cfg else True
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")


def refuse(store: Store, reason: str, *, command: str, ident: dict[str, Any] | None = None,
           thread_id: str | None = None) -> None:
    """Record the refusal (an event the leader sees), then raise invalid_input."""
    run_id = task_id = ""
    attempt_no = None
    if ident is not None:
        run_id, task_id, attempt_no = ident["run_id"], ident["task_id"], ident["attempt_no"]
    elif thread_id:
        r = store.one("SELECT run_id, task_id FROM threads WHERE thread_id=?", (thread_id,))
        if r is not None:
            run_id, task_id = r["run_id"], r["task_id"]

    def tx(conn: sqlite3.Connection) -> None:
        add_event(conn, "token_refused", run_id=run_id, task_id=task_id,
                  thread_id=(ident or {}).get("thread_id") or thread_id or "", attempt_no=attempt_no,
                  agent=(ident or {}).get("agent") or "", summary=f"refused {command}: {reason}"[:500],
                  payload={"command": command, "reason": reason, "token": bool(ident),
                           "target_thread": thread_id or ""}, now=now_ts())

    try:
        store.write(tx)
    except Exception:  # noqa: BLE001 - the refusal stands even if it cannot be recorded
        pass
    raise InvalidInput(f"refused: {reason}")


def gate_inbox(store: Store, *, token: str | None, command: str, thread_id: str | None, agents: list[str],
               kind: str | None) -> dict[str, Any] | None:
    """Check one inbox command against the caller's token. Returns the token's identity (None
    without a token); raises invalid_input, after recording a token_refused event, when the
    command is not the token's attempt's to make."""
    kind = kind or ""
    if token:
        ident = identity(store, token)
        if ident is None:
            refuse(store, f"{ENV} is not the token of any attempt in this database", command=command,
                   thread_id=thread_id)
        assert ident is not None
        who = f"the worker token of {ident['task_id']} attempt {ident['attempt_no']}"
        if command in LEADER_INBOX_COMMANDS:
            refuse(store, f"{command} is the leader's; {who} cannot use it (a worker ends its attempt with "
                          f"done or fail)", command=command, ident=ident, thread_id=thread_id)
        if command == "reply" or (command == "send" and kind in LEADER_KINDS):
            refuse(store, f"{kind or 'answer'} messages are the leader's; {who} cannot send them", command=command,
                   ident=ident, thread_id=thread_id)
        if command == "send" and not thread_id:
            refuse(store, f"{who} acts only on its own thread {ident['thread_id']}; it cannot start threads",
                   command=command, ident=ident)
        if thread_id and thread_id != ident["thread_id"]:
            refuse(store, f"{who} acts only on its own thread {ident['thread_id']}, not {thread_id}",
                   command=command, ident=ident, thread_id=thread_id)
        for a in agents:
            if a and a != ident["agent"]:
                refuse(store, f"{who} acts only as {ident['agent']}, not as {a}", command=command, ident=ident,
                       thread_id=thread_id)
        return ident
    if command in WORKER_WRITES and thread_id and not (command in ("reply", "send") and kind in LEADER_KINDS) \
            and thread_requires_token(store, thread_id):
        refuse(store, f"thread {thread_id} belongs to a launched attempt: worker writes on it need that "
                      f"attempt's {ENV} (run setting require_worker_tokens)", command=command, thread_id=thread_id)
    return None


def gate_orch(store: Store, *, token: str | None, command: str, read_only: bool) -> None:
    """`orch` is the leader's tool: with a worker token in the environment only its reads work."""
    if not token or read_only:
        return
    ident = identity(store, token)
    refuse(store, f"orch {command} is the leader's; a worker ({ENV} set"
                  + (f", {ident['task_id']} attempt {ident['attempt_no']}" if ident else "") + ") cannot use it",
           command=f"orch {command}", ident=ident)
