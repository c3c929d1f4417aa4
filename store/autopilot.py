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
from .states import HOLDS_PATHS_TASK, IN_FLIGHT_TASK


def select(store: Store, run_id: str, cap: int) -> dict[str, Any]:
    """The autopilot's whole decision for one pass, with its reasons.

    `picks`: ready tasks to dispatch now, in order, so that in-flight stays <= cap and no two tasks
    that would then be in flight (or failed awaiting retry) touch overlapping paths. Each says why:
    its wave and priority, its slot (k of cap), the blocker whose finishing made it ready (the
    dependency that finished last), when it became ready, and which overlaps it waited for before.
    `held`: ready tasks kept back because their paths overlap a task in flight (or one picked
    before them in this pass), with those tasks. Ready tasks that only wait for a free slot are
    neither (in_flight == cap says why).
    """
    with store.snapshot() as conn:
        tasks = rows(conn.execute("SELECT task_id, status, paths_json, priority, created_at, updated_at, wave"
                                  " FROM tasks WHERE run_id=?", (run_id,)).fetchall())
    cap = max(0, int(cap))
    in_flight = sum(1 for t in tasks if t["status"] in IN_FLIGHT_TASK)
    out: dict[str, Any] = {"cap": cap, "in_flight": in_flight, "picks": [], "held": []}
    ready = [t for t in tasks if t["status"] == "ready"]
    if not ready:
        return out
    holders = [(t["task_id"], t["status"], loads(t["paths_json"], []))
               for t in tasks if t["status"] in HOLDS_PATHS_TASK]
    holders = [h for h in holders if h[2]]
    waves = {t["task_id"]: t["wave"] for t in tasks}
    ready.sort(key=lambda t: (-t["priority"], waves.get(t["task_id"], 0), t["created_at"], t["task_id"]))
    slots = max(0, cap - in_flight)
    picks: list[dict[str, Any]] = []
    for t in ready:
        paths = loads(t["paths_json"], [])
        clash = [(tid, st) for tid, st, hp in holders if paths and paths_overlap(paths, hp)]
        if clash:
            out["held"].append({"task_id": t["task_id"], "wave": waves.get(t["task_id"], 0), "paths": paths,
                                "overlaps": [{"task_id": tid, "status": st} for tid, st in clash]})
            continue
        if len(picks) >= slots:
            continue  # waits for a slot; keep looking for overlaps to report
        picks.append({"task_id": t["task_id"], "priority": t["priority"], "wave": waves.get(t["task_id"], 0),
                      "paths": paths, "slot": in_flight + len(picks) + 1, "cap": cap, "ready_at": t["updated_at"]})
        if paths:
            holders.append((t["task_id"], "picked", paths))
    if picks:
        _explain(store, run_id, picks)
    out["picks"] = picks
    return out


def _explain(store: Store, run_id: str, picks: list[dict[str, Any]]) -> None:
    """Add to each pick the blocker that finished last and the overlaps it was held back for."""
    ids = [p["task_id"] for p in picks]
    q = ",".join("?" * len(ids))
    with store.snapshot() as conn:
        deps = [(r[0], r[1]) for r in conn.execute(
            f"SELECT task_id, depends_on FROM deps WHERE run_id=? AND task_id IN ({q})", (run_id, *ids))]
        wanted = {d for _t, d in deps}
        done_at = {r[0]: r[1] for r in conn.execute(
            f"SELECT task_id, updated_at FROM tasks WHERE run_id=? AND task_id IN ({','.join('?' * len(wanted))})",
            (run_id, *wanted))} if wanted else {}
        waits = conn.execute(f"SELECT task_id, action_key FROM watcher_actions WHERE run_id=? AND task_id IN ({q})"
                             " AND action='overlap_wait' ORDER BY created_at", (run_id, *ids)).fetchall()
    waited: dict[str, list[str]] = {}
    for task_id, key in waits:
        for other in key.rsplit(":", 1)[1].split(","):
            if other and other not in waited.setdefault(task_id, []):
                waited[task_id].append(other)
    for p in picks:
        mine = [d for t, d in deps if t == p["task_id"]]
        p["after"] = max(mine, key=lambda d: (done_at.get(d, ""), d)) if mine else ""
        p["after_done_at"] = done_at.get(p["after"], "") if mine else ""
        p["waited_for"] = waited.get(p["task_id"], [])


def wait_key(run_id: str, task_id: str, attempt_no: int, overlaps: list[str]) -> str:
    """The action key that says once that a ready task waits for these overlapping tasks."""
    return f"overlap_wait:{run_id}:{task_id}:a{attempt_no}:{','.join(sorted(overlaps))}"


def pick_ready(store: Store, run_id: str, cap: int) -> list[dict[str, Any]]:
    """The ready tasks to dispatch now, in order (select()'s picks)."""
    return select(store, run_id, cap)["picks"]
