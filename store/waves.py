"""Each task's stored wave (the longest dependency chain below it), kept in tasks.wave so that
readers (status, the console's window, the autopilot) never recompute the whole plan.

`raise_wave` runs inside `dep add`'s transaction; `recompute_waves` is for bulk loaders that
bypass it. Both take the connection of an open write transaction and never commit.
"""

from __future__ import annotations

from typing import Any

from .plan import topo_order


def recompute_waves(conn: Any, run_id: str) -> int:
    """Store every task's wave from scratch (migrations, and bulk loaders that bypass dep add)."""
    ids = [r[0] for r in conn.execute("SELECT task_id FROM tasks WHERE run_id=?", (run_id,)).fetchall()]
    deps = [(r[0], r[1]) for r in conn.execute("SELECT task_id, depends_on FROM deps WHERE run_id=?", (run_id,))]
    _, wave = topo_order(ids, deps)
    conn.executemany("UPDATE tasks SET wave=? WHERE run_id=? AND task_id=? AND wave<>?",
                     [(w, run_id, t, w) for t, w in wave.items()])
    return len(ids)


def raise_wave(conn: Any, run_id: str, task_id: str, at_least: int) -> int:
    """After task_id gained a dependency: its wave and its dependants' waves grow as needed.
    Walks only the part of the graph whose wave actually changes."""
    changed = 0
    stack = [(task_id, at_least)]
    while stack:
        t, w = stack.pop()
        if conn.execute("UPDATE tasks SET wave=? WHERE run_id=? AND task_id=? AND wave<?",
                        (w, run_id, t, w)).rowcount:
            changed += 1
            stack += [(r[0], w + 1) for r in conn.execute(
                "SELECT task_id FROM deps WHERE run_id=? AND depends_on=?", (run_id, t)).fetchall()]
    return changed
