"""Which ready tasks to start next: the autopilot's selection, headless and pure over the store.

Rules (DESIGN.md section 7): at most `cap` tasks in flight; never two in-flight tasks whose
declared paths overlap; by priority, then wave, then creation order. A task never waits for its
whole wave, only for its own dependencies (the store makes it ready when they are done).
"""

from __future__ import annotations

from typing import Any

from .db import Store
from .plan import paths_overlap
from .records import loads, rows
from .views import compute_waves

IN_FLIGHT = ("dispatched", "running", "blocked", "verifying")
# A failed task that is waiting for its retry still owns its files.
HOLDS_PATHS = IN_FLIGHT + ("failed",)


def pick_ready(store: Store, run_id: str, cap: int) -> list[dict[str, Any]]:
    """Ready tasks to dispatch now, in order, so that in-flight stays <= cap and no two tasks that
    would then be in flight (or failed awaiting retry) touch overlapping paths."""
    with store.snapshot() as conn:
        tasks = rows(conn.execute("SELECT task_id, status, paths_json, priority, created_at FROM tasks"
                                  " WHERE run_id=?", (run_id,)).fetchall())
        deps = [(r[0], r[1]) for r in conn.execute("SELECT task_id, depends_on FROM deps WHERE run_id=?",
                                                   (run_id,)).fetchall()]
    in_flight = sum(1 for t in tasks if t["status"] in IN_FLIGHT)
    slots = max(0, int(cap) - in_flight)
    if slots == 0:
        return []
    held = [loads(t["paths_json"], []) for t in tasks if t["status"] in HOLDS_PATHS]
    ready = [t for t in tasks if t["status"] == "ready"]
    if not ready:
        return []
    waves = compute_waves([t["task_id"] for t in tasks], deps)
    ready.sort(key=lambda t: (-t["priority"], waves.get(t["task_id"], 0), t["created_at"], t["task_id"]))
    picked: list[dict[str, Any]] = []
    for t in ready:
        paths = loads(t["paths_json"], [])
        if paths and any(paths_overlap(paths, h) for h in held if h):
            continue
        picked.append({"task_id": t["task_id"], "priority": t["priority"], "wave": waves.get(t["task_id"], 0),
                       "paths": paths})
        held.append(paths)
        if len(picked) >= slots:
            break
    return picked
