"""DAG layout data for the console: tasks placed in wave columns, edges, the critical path of the
remaining work, and what a task unblocks. Headless; the widget only draws what this returns.

Small runs are laid out whole. A run past `max_nodes` tasks is laid out as the neighbourhood of the
selected task (its ancestors and descendants, nearest first), because a 50,000-node picture helps
nobody and would cost a full scan per refresh.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .db import Store
from .models import DagLayout, DagNode
from .states import FINISHED_TASK, sql_in


def dag_layout(store: Store, run_id: str, waves: dict[str, int], *, focus: str | None = None,
               max_nodes: int = 300) -> DagLayout:
    total = len(waves)
    with store.snapshot() as conn:
        if total <= max_nodes:
            ids = set(waves)
            deps = [(r[0], r[1]) for r in conn.execute(
                "SELECT task_id, depends_on FROM deps WHERE run_id=?", (run_id,))]
        else:
            ids = _neighbourhood(conn, run_id, focus, max_nodes)
            marks = ",".join("?" * len(ids))
            deps = [(r[0], r[1]) for r in conn.execute(
                f"SELECT task_id, depends_on FROM deps WHERE run_id=? AND task_id IN ({marks})"
                f" AND depends_on IN ({marks})", (run_id, *ids, *ids))] if ids else []
        info = {}
        id_list = list(ids)
        for i in range(0, len(id_list), 500):
            chunk = id_list[i:i + 500]
            for r in conn.execute(f"SELECT task_id, title, status FROM tasks WHERE run_id=? AND task_id IN "
                                  f"({','.join('?' * len(chunk))})", (run_id, *chunk)):
                info[r[0]] = (r[1], r[2])
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for t, d in deps:
        up[t].append(d)
        down[d].append(t)
    by_wave: dict[int, list[str]] = defaultdict(list)
    for t in info:
        by_wave[waves.get(t, 0)].append(t)
    first = min(by_wave) if by_wave else 0
    columns: list[list[str]] = []
    row_of: dict[str, int] = {}
    for w in range(first, (max(by_wave) + 1) if by_wave else first):
        col = sorted(by_wave.get(w, []))
        # Barycentre ordering: place a task near the rows of what it waits on, so edges cross less.
        col.sort(key=lambda t: (sum(row_of.get(d, 0) for d in up[t]) / len(up[t])) if up[t] else -1)
        for i, t in enumerate(col):
            row_of[t] = i
        columns.append(col)
    nodes = {t: DagNode(task_id=t, title=info[t][0], status=info[t][1], wave=waves.get(t, 0), row=row_of[t],
                        deps=tuple(sorted(up[t])), dependants=tuple(sorted(down[t]))) for t in info}
    return DagLayout(nodes=nodes, columns=columns, first_wave=first, edges=sorted((d, t) for t, d in deps),
                     critical=frozenset(_critical(nodes, columns)), total=total, partial=total > max_nodes)


def _neighbourhood(conn: Any, run_id: str, focus: str | None, cap: int) -> set[str]:
    """The focus task plus its nearest ancestors and descendants, breadth first, up to cap."""
    if focus is None:
        r = conn.execute(f"SELECT task_id FROM tasks WHERE run_id=? AND status NOT IN {sql_in(FINISHED_TASK)}"
                         " ORDER BY rowid LIMIT 1", (run_id,)).fetchone() \
            or conn.execute("SELECT task_id FROM tasks WHERE run_id=? ORDER BY rowid LIMIT 1",
                            (run_id,)).fetchone()
        if r is None:
            return set()
        focus = r[0]
    seen = {focus}
    frontier = [focus]
    while frontier and len(seen) < cap:
        marks = ",".join("?" * len(frontier))
        nxt = [r[0] for r in conn.execute(
            f"SELECT depends_on FROM deps WHERE run_id=? AND task_id IN ({marks}) UNION "
            f"SELECT task_id FROM deps WHERE run_id=? AND depends_on IN ({marks})",
            (run_id, *frontier, run_id, *frontier))]
        frontier = [t for t in nxt if t not in seen][: cap - len(seen)]
        seen.update(frontier)
    return seen


def _critical(nodes: dict[str, DagNode], columns: list[list[str]]) -> list[str]:
    """The longest dependency chain of unfinished tasks (the work that bounds the run's end);
    if everything is finished, the longest chain overall."""
    pending = {t for t, n in nodes.items() if n.status not in FINISHED_TASK}
    pool = pending or set(nodes)
    best: dict[str, tuple[int, str | None]] = {}
    for col in columns:  # columns are in topological (wave) order
        for t in col:
            if t not in pool:
                continue
            prev = max(((best[d][0], d) for d in nodes[t].deps if d in best), default=(0, None))
            best[t] = (prev[0] + 1, prev[1])
    if not best:
        return []
    end: str | None = max(best, key=lambda k: (best[k][0], k))
    chain = []
    while end is not None:
        chain.append(end)
        end = best[end][1]
    return chain[::-1] if len(chain) > 1 else chain


def unblocks(store: Store, run_id: str, task_id: str) -> int:
    """How many unfinished tasks wait, directly or transitively, on task_id."""
    return int(store.scalar(
        "WITH RECURSIVE down(id) AS (SELECT task_id FROM deps WHERE run_id=? AND depends_on=? UNION "
        "SELECT d.task_id FROM deps d JOIN down ON d.depends_on=down.id WHERE d.run_id=?) "
        "SELECT count(*) FROM down JOIN tasks t ON t.run_id=? AND t.task_id=down.id "
        f"WHERE t.status NOT IN {sql_in(FINISHED_TASK)}", (run_id, task_id, run_id, run_id)) or 0)
