"""Schema, created and migrated on open through sqlite-utils Migrations.

Opening is on every CLI call's hot path, so the check is one `PRAGMA user_version` read; the
sqlite-utils import (about 150 ms) happens only when a migration is actually pending. Concurrent
first opens are serialised by an advisory lock file beside the database.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .db import Store

THREAD_STATUSES = ("pending", "claimed", "in_progress", "blocked", "done", "failed", "cancelled")
TASK_STATUSES = ("planned", "ready", "dispatched", "running", "blocked", "verifying", "done",
                 "failed", "cancelled")
RUN_STATUSES = ("active", "blocked", "done", "failed", "cancelled")
MESSAGE_KINDS = ("task", "progress", "question", "answer", "result", "control", "event")
END_REASONS = ("", "succeeded", "failed", "check_failed", "stalled", "timed_out", "crashed",
               "cancelled", "reassigned")


def _enum(col: str, values: tuple[str, ...]) -> str:
    return f"CHECK ({col} IN ({', '.join(repr(v) for v in values)}))"


V1 = f"""
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    goal TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'active' {_enum('status', RUN_STATUSES)},
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    config_json TEXT NOT NULL DEFAULT '{{}}'
);
CREATE TABLE tasks (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    task_id TEXT NOT NULL,
    title TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    default_to TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL {_enum('status', TASK_STATUSES)},
    paths_json TEXT NOT NULL DEFAULT '[]',
    required_checks_json TEXT NOT NULL DEFAULT '[]',
    check_cmds_json TEXT NOT NULL DEFAULT '{{}}',
    acceptance_json TEXT NOT NULL DEFAULT '',
    spec TEXT NOT NULL DEFAULT '',
    priority INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (run_id, task_id)
);
CREATE INDEX tasks_run_status ON tasks(run_id, status);
CREATE TABLE deps (
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    PRIMARY KEY (run_id, task_id, depends_on),
    FOREIGN KEY (run_id, task_id) REFERENCES tasks(run_id, task_id),
    FOREIGN KEY (run_id, depends_on) REFERENCES tasks(run_id, task_id),
    CHECK (task_id <> depends_on)
);
CREATE INDEX deps_reverse ON deps(run_id, depends_on);
CREATE TABLE threads (
    thread_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL DEFAULT '',
    task_id TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    assigned_to TEXT NOT NULL,
    status TEXT NOT NULL {_enum('status', THREAD_STATUSES)},
    priority TEXT NOT NULL DEFAULT 'normal',
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_expires_at TEXT NOT NULL DEFAULT '',
    lease_expired_noted TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX threads_assigned ON threads(assigned_to, status, updated_at);
CREATE INDEX threads_task ON threads(run_id, task_id);
CREATE INDEX threads_lease ON threads(lease_expires_at) WHERE lease_owner <> '';
CREATE TABLE messages (
    message_id INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id TEXT NOT NULL REFERENCES threads(thread_id),
    from_agent TEXT NOT NULL,
    to_agent TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL {_enum('kind', MESSAGE_KINDS)},
    summary TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL DEFAULT '',
    payload_json TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX messages_thread ON messages(thread_id, message_id);
CREATE TABLE artifacts (
    artifact_id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id INTEGER NOT NULL REFERENCES messages(message_id),
    path TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT '',
    metadata_json TEXT NOT NULL DEFAULT ''
);
CREATE INDEX artifacts_message ON artifacts(message_id);
CREATE TABLE read_cursors (
    agent TEXT NOT NULL,
    thread_id TEXT NOT NULL REFERENCES threads(thread_id),
    message_id INTEGER NOT NULL,
    PRIMARY KEY (agent, thread_id)
);
CREATE TABLE attempts (
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    attempt_no INTEGER NOT NULL,
    thread_id TEXT NOT NULL UNIQUE REFERENCES threads(thread_id),
    assigned_to TEXT NOT NULL,
    execution_mode TEXT NOT NULL CHECK (execution_mode IN ('analysis', 'code')),
    status TEXT NOT NULL {_enum('status', THREAD_STATUSES)},
    end_reason TEXT NOT NULL DEFAULT '' {_enum('end_reason', END_REASONS)},
    base_ref TEXT NOT NULL DEFAULT '',
    base_commit TEXT NOT NULL DEFAULT '',
    branch_name TEXT NOT NULL DEFAULT '',
    worktree_path TEXT NOT NULL DEFAULT '',
    repo_path TEXT NOT NULL DEFAULT '',
    workspace_status TEXT NOT NULL DEFAULT '',
    runtime TEXT NOT NULL DEFAULT '',
    runtime_ref TEXT NOT NULL DEFAULT '',
    pid INTEGER,
    log_path TEXT NOT NULL DEFAULT '',
    brief_path TEXT NOT NULL DEFAULT '',
    instruction TEXT NOT NULL DEFAULT '',
    liveness TEXT NOT NULL DEFAULT '',
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL DEFAULT '',
    last_activity_at TEXT NOT NULL,
    PRIMARY KEY (run_id, task_id, attempt_no),
    FOREIGN KEY (run_id, task_id) REFERENCES tasks(run_id, task_id)
);
CREATE TABLE checks (
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    attempt_no INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'passed', 'failed')),
    summary TEXT NOT NULL DEFAULT '',
    output TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, task_id, attempt_no, name)
);
CREATE TABLE events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_type TEXT NOT NULL,
    run_id TEXT NOT NULL DEFAULT '',
    task_id TEXT NOT NULL DEFAULT '',
    thread_id TEXT NOT NULL DEFAULT '',
    attempt_no INTEGER,
    agent TEXT NOT NULL DEFAULT '',
    message_id INTEGER,
    summary TEXT NOT NULL DEFAULT '',
    payload_json TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX events_run ON events(run_id, event_id);
CREATE INDEX events_thread ON events(thread_id, event_id);
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Runtime (issue 4): the watcher's cursor, its idempotent actions, what needs the leader.
V2_RUNTIME = """
CREATE TABLE watcher_state (
    scope TEXT PRIMARY KEY,
    last_event_id INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    heartbeat_at TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL
);
CREATE TABLE watcher_actions (
    action_key TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    run_id TEXT NOT NULL DEFAULT '',
    task_id TEXT NOT NULL DEFAULT '',
    attempt_no INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX watcher_actions_task ON watcher_actions(run_id, task_id);
CREATE TABLE attention (
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    attempt_no INTEGER NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    event_id INTEGER,
    created_at TEXT NOT NULL,
    PRIMARY KEY (run_id, task_id, attempt_no, kind)
);
ALTER TABLE attempts ADD COLUMN profile TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN liveness_at TEXT NOT NULL DEFAULT '';
CREATE INDEX attempts_status ON attempts(status, run_id)
"""

# Write-path indexes that do not move on every heartbeat: `updated_at` and the lease expiry
# change on each renew, so indexing them rewrote index pages in every worker transaction.
V4_LEAN_INDEXES = """
DROP INDEX threads_assigned;
CREATE INDEX threads_assigned ON threads(assigned_to, status);
DROP INDEX threads_lease;
CREATE INDEX threads_live ON threads(status) WHERE status IN ('claimed', 'in_progress', 'blocked');
"""

def _m005_stored_waves(conn: Any) -> None:
    """Each task keeps its wave (longest dependency chain below it), maintained by dep add, so
    readers (status, the console's window, the autopilot) never recompute the whole plan."""
    conn.execute("ALTER TABLE tasks ADD COLUMN wave INTEGER NOT NULL DEFAULT 0")
    conn.execute("CREATE INDEX tasks_wave ON tasks(run_id, wave)")
    from .plan import recompute_waves

    for (run_id,) in conn.execute("SELECT run_id FROM runs").fetchall():
        recompute_waves(conn, run_id)


# Hooks and approvals (issue 12 items 5 and 6): what an agent's own hooks said per attempt, and
# each permission request waiting on the leader, with the run's "always allow" rules.
V_HOOKS_APPROVALS = """
CREATE TABLE hook_events (
    hook_id INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id TEXT NOT NULL,
    run_id TEXT NOT NULL DEFAULT '',
    task_id TEXT NOT NULL DEFAULT '',
    attempt_no INTEGER,
    agent TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    event TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT '',
    tool TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    payload_json TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX hook_events_thread ON hook_events(thread_id, hook_id);
CREATE TABLE approvals (
    approval_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    attempt_no INTEGER,
    thread_id TEXT NOT NULL,
    agent TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    tool TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    options_json TEXT NOT NULL DEFAULT '[]',
    payload_json TEXT NOT NULL DEFAULT '',
    via TEXT NOT NULL DEFAULT 'hook' CHECK (via IN ('hook', 'screen')),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'decided', 'expired', 'cancelled')),
    decision TEXT NOT NULL DEFAULT '' CHECK (decision IN ('', 'allow', 'always', 'deny')),
    reason TEXT NOT NULL DEFAULT '',
    decided_by TEXT NOT NULL DEFAULT '',
    rule_id INTEGER,
    delivered_at TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    decided_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX approvals_run_status ON approvals(run_id, status);
CREATE INDEX approvals_thread ON approvals(thread_id, status);
CREATE TABLE approval_rules (
    rule_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    pattern TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL DEFAULT '',
    from_approval INTEGER,
    created_at TEXT NOT NULL,
    UNIQUE (run_id, tool, pattern)
)
"""

MIGRATIONS: list[tuple[str, str | Callable[[Any], None]]] = [
    ("m001_initial", V1),
    ("m002_runtime", V2_RUNTIME),
    ("m004_lean_write_indexes", V4_LEAN_INDEXES),
    ("m005_stored_waves", _m005_stored_waves),
    ("m_hooks_approvals", V_HOOKS_APPROVALS),
]
SCHEMA_VERSION = len(MIGRATIONS)


def ensure_schema(store: Store) -> None:
    """Bring the file up to SCHEMA_VERSION; a no-op costing one pragma read when it already is."""
    version = int(store.conn.execute("PRAGMA user_version").fetchone()[0])
    if version >= SCHEMA_VERSION:
        if version > SCHEMA_VERSION:
            from .errors import StoreUnavailable

            raise StoreUnavailable(
                f"{store.path} has schema version {version}, newer than this orch "
                f"({SCHEMA_VERSION}); upgrade orch-console")
        return
    lock_path = store.path + ".migrate-lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        version = int(store.conn.execute("PRAGMA user_version").fetchone()[0])
        if version >= SCHEMA_VERSION:
            return
        _apply(store)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _apply(store: Store) -> None:
    import sqlite_utils
    from sqlite_utils.migrations import Migrations

    store.conn.execute("PRAGMA journal_mode=WAL")
    migrations = Migrations("orch")
    for name, ddl in MIGRATIONS:
        def step(db: sqlite_utils.Database, ddl: str | Callable[[Any], None] = ddl) -> None:
            if callable(ddl):
                ddl(db.conn)
                return
            for statement in ddl.split(";"):
                if statement.strip():
                    db.execute(statement)
        migrations(name=name)(step)
    db = sqlite_utils.Database(store.conn)
    migrations.apply(db)
    store.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
