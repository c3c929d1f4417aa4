"""Schema, created and migrated on open through sqlite-utils Migrations.

Opening is on every CLI call's hot path, so the check is one `PRAGMA user_version` read; the
sqlite-utils import (about 150 ms) happens only when a migration is actually pending. Concurrent
first opens are serialised by an advisory lock file beside the database.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Callable
from collections import defaultdict, deque
from typing import Any

from .land_schema import LAND_DDL
from .errors import StoreUnavailable
# The CHECK constraints spell the vocabulary of states.py; changing a vocabulary there needs a
# migration here too (a new status is refused by the CHECK of an existing database).
from .states import CHECK_STATUSES, END_REASONS, MESSAGE_KINDS, RUN_STATUSES, TASK_STATUSES, THREAD_STATUSES


def _enum(col: str, values: tuple[str, ...]) -> str:
    # str(): the members are StrEnums, whose repr is not the SQL literal
    return f"CHECK ({col} IN ({', '.join(repr(str(v)) for v in values)}))"


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
    status TEXT NOT NULL {_enum('status', CHECK_STATUSES)},
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

# The watcher's memory of each live attempt's screen, process and commits (store/watch_memory.py).
WATCH_MEMORY = """
CREATE TABLE watch_memory (
    thread_id TEXT PRIMARY KEY,
    output_hash TEXT NOT NULL DEFAULT '',
    output_changed_at REAL NOT NULL DEFAULT 0,
    dead_since REAL NOT NULL DEFAULT 0,
    commit_sha TEXT NOT NULL DEFAULT '',
    commit_at REAL NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
)
"""

# A profile that hit its usage limit or cannot reach its API takes no new work (store/holds.py).
PROFILE_HOLDS = """
CREATE TABLE profile_holds (
    profile TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('usage_limit', 'network', 'api', 'auth')),
    reason TEXT NOT NULL DEFAULT '',
    run_id TEXT NOT NULL DEFAULT '',
    task_id TEXT NOT NULL DEFAULT '',
    attempt_no INTEGER,
    until_at TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
)
"""


def _m005_stored_waves(conn: Any) -> None:
    """Each task keeps its wave (longest dependency chain below it), maintained by dep add, so
    readers (status, the console's window, the autopilot) never recompute the whole plan.

    Frozen: a migration must do what it did the day it shipped, so it carries its own copy of the
    levelling instead of calling store/waves.py, which may change with the live schema."""
    conn.execute("ALTER TABLE tasks ADD COLUMN wave INTEGER NOT NULL DEFAULT 0")
    conn.execute("CREATE INDEX tasks_wave ON tasks(run_id, wave)")
    for (run_id,) in conn.execute("SELECT run_id FROM runs").fetchall():
        ids = [r[0] for r in conn.execute("SELECT task_id FROM tasks WHERE run_id=?", (run_id,)).fetchall()]
        deps = conn.execute("SELECT task_id, depends_on FROM deps WHERE run_id=?", (run_id,)).fetchall()
        wave = _m005_levels(ids, [(r[0], r[1]) for r in deps])
        conn.executemany("UPDATE tasks SET wave=? WHERE run_id=? AND task_id=? AND wave<>?",
                         [(w, run_id, t, w) for t, w in wave.items()])


def _m005_levels(task_ids: list[str], deps: list[tuple[str, str]]) -> dict[str, int]:
    """Kahn levels (the longest chain of dependencies below each task), as of m005."""
    children: dict[str, list[str]] = defaultdict(list)
    indeg = dict.fromkeys(task_ids, 0)
    for task, dep in deps:
        if task in indeg and dep in indeg:
            children[dep].append(task)
            indeg[task] += 1
    wave = dict.fromkeys(task_ids, 0)
    queue = deque(t for t in task_ids if indeg[t] == 0)
    while queue:
        t = queue.popleft()
        for c in children[t]:
            wave[c] = max(wave[c], wave[t] + 1)
            indeg[c] -= 1
            if indeg[c] == 0:
                queue.append(c)
    return wave


# There is no m003. Names are never renumbered or reused: a database records the names it applied.


# Worker tokens (issue 15): the hash of each launched attempt's secret, never the secret.
V8_WORKER_TOKENS = """
CREATE TABLE attempt_tokens (
    token_hash TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    attempt_no INTEGER NOT NULL,
    agent TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX attempt_tokens_thread ON attempt_tokens(thread_id)
"""

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

# Model and reasoning effort chosen at dispatch (issue 12): '' is the profile's; a retry of the
# same agent keeps them, so the watcher relaunches with what the leader chose.
V_MODEL_EFFORT = """
ALTER TABLE attempts ADD COLUMN model TEXT NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN effort TEXT NOT NULL DEFAULT ''
"""

MIGRATIONS: list[tuple[str, str | Callable[[Any], None]]] = [
    ("m001_initial", V1),
    ("m002_runtime", V2_RUNTIME),
    ("m004_lean_write_indexes", V4_LEAN_INDEXES),
    ("m005_stored_waves", _m005_stored_waves),
    ("m006_watch_memory", WATCH_MEMORY),
    ("m007_profile_holds", PROFILE_HOLDS),
    ("m008_land", LAND_DDL),  # issue 14: land targets and per-attempt land state (land_schema.py)
    ("m009_worker_tokens", V8_WORKER_TOKENS),
    ("m010_hooks_approvals", V_HOOKS_APPROVALS),
    ("m011_model_effort", V_MODEL_EFFORT),
]
SCHEMA_VERSION = len(MIGRATIONS)


def ensure_schema(conn: sqlite3.Connection, path: str) -> None:
    """Bring the file at `path` (open as `conn`) up to SCHEMA_VERSION; a no-op costing one pragma
    read when it already is."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version >= SCHEMA_VERSION:
        if version > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"{path} has schema version {version}, newer than this orch "
                f"({SCHEMA_VERSION}); upgrade orch-console")
        return
    lock_path = path + ".migrate-lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version >= SCHEMA_VERSION:
            return
        _apply(conn)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _apply(conn: sqlite3.Connection) -> None:
    import sqlite_utils  # only when a migration is pending: ~150 ms of start-up otherwise
    from sqlite_utils.migrations import Migrations

    conn.execute("PRAGMA journal_mode=WAL")
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
    db = sqlite_utils.Database(conn)
    migrations.apply(db)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
