"""What the watcher saw of each live attempt on its earlier passes, kept in the store.

A watcher judges silence by comparing screens over time: the screen's signature and when it last
changed, when the process was first seen gone, the last commit. Kept only in memory, a watcher that
starts afresh on every pass (`orch watch --once` from cron or a script) would see every screen as
freshly changed and never call anything stalled or crashed; a restarted watcher would restart every
clock. So the memory lives here, one row per live attempt's thread, written only when it changed,
and forgotten when the attempt ends.
"""

from __future__ import annotations

import sqlite3
from dataclasses import astuple, dataclass

from .db import Store
from .validate import now_ts


_COLUMNS = "output_hash, output_changed_at, dead_since, commit_sha, commit_at"


@dataclass
class Memory:
    output_hash: str = ""
    output_changed_at: float = 0.0
    dead_since: float = 0.0
    commit_sha: str = ""
    commit_at: float = 0.0

    def key(self) -> tuple[object, ...]:
        return astuple(self)


def load(store: Store, thread_ids: list[str]) -> dict[str, Memory]:
    """The remembered state of these threads; a thread never seen before is absent."""
    out: dict[str, Memory] = {}
    for i in range(0, len(thread_ids), 500):
        chunk = thread_ids[i:i + 500]
        marks = ",".join("?" * len(chunk))
        for r in store.all(f"SELECT thread_id, {_COLUMNS} FROM watch_memory WHERE thread_id IN ({marks})", chunk):
            out[r[0]] = Memory(str(r[1]), float(r[2]), float(r[3]), str(r[4]), float(r[5]))
    return out


def save(store: Store, changed: dict[str, Memory]) -> int:
    """Upsert the memories that changed this pass, in one transaction."""
    if not changed:
        return 0
    now = now_ts()

    def tx(conn: sqlite3.Connection) -> int:
        conn.executemany(
            f"INSERT INTO watch_memory (thread_id, {_COLUMNS}, updated_at) VALUES (?,?,?,?,?,?,?)"
            " ON CONFLICT(thread_id) DO UPDATE SET output_hash=excluded.output_hash,"
            " output_changed_at=excluded.output_changed_at, dead_since=excluded.dead_since,"
            " commit_sha=excluded.commit_sha, commit_at=excluded.commit_at, updated_at=excluded.updated_at",
            [(tid, *m.key(), now) for tid, m in changed.items()])
        return len(changed)

    return store.write(tx)


def forget_ended(store: Store) -> int:
    """Drop the memory of attempts that are no longer live (cheap: the table holds live ones only)."""
    if store.scalar("SELECT 1 FROM watch_memory w JOIN attempts a ON a.thread_id=w.thread_id WHERE a.status"
                    " NOT IN ('pending','claimed','in_progress','blocked') LIMIT 1") is None:
        return 0
    return store.write(lambda conn: conn.execute(
        "DELETE FROM watch_memory WHERE thread_id IN (SELECT thread_id FROM attempts WHERE status NOT IN"
        " ('pending','claimed','in_progress','blocked'))").rowcount)
