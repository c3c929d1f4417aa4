"""The run's land target at dispatch time (issue 14; store/land.py explains the target and the
graph gate): the base a code attempt starts from, and the target branch made by the run's first
code dispatch. Kept apart from land.py so that dispatch can call it without an import cycle."""

from __future__ import annotations

import sqlite3

from . import git_ops as g
from .db import Store
from .land_state import gate_on, target_of
from .records import add_event
from .runs import get_run
from .validate import now_ts


def code_base(store: Store, *, run_id: str, repo_path: str | None, base_ref: str | None, action: str) -> str | None:
    """Called by dispatch before it makes a worktree: the base to use. The target's tip for a
    rework, and under the graph gate for every dispatch without --base-ref and for retries and
    reassigns; otherwise base_ref unchanged (also while the target does not exist yet: the first
    code dispatch creates it at its own base, after_code_dispatch)."""
    from . import worktrees

    repo = worktrees._repo(repo_path or "")
    top = str(repo.working_tree_dir or repo.working_dir)
    with store.snapshot() as conn:
        get_run(conn, run_id)
        gated = gate_on(conn, run_id)
        target = target_of(conn, run_id)
    tip = g.rev(top, f"refs/heads/{target}")
    if tip is None:
        g.check_branch_name(target)
        return base_ref
    if action == "rework" or (gated and (base_ref is None or action != "dispatch")):
        return tip
    return base_ref


def after_code_dispatch(store: Store, *, run_id: str, repo: str, base_commit: str) -> None:
    """The run's first code dispatch creates the land target at its base (once the dispatch committed)."""
    with store.snapshot() as conn:
        target = target_of(conn, run_id)
        known = conn.execute("SELECT 1 FROM land_targets WHERE run_id=?", (run_id,)).fetchone()
    if known:
        return
    tip = g.rev(repo, f"refs/heads/{target}")
    created = False
    if tip is None:
        created = g.create_branch(repo, target, base_commit)
        tip = g.rev(repo, f"refs/heads/{target}") or base_commit
    _record_target(store, run_id, repo, target, tip, created)


def _record_target(store: Store, run_id: str, repo: str, target: str, base: str, created: bool) -> None:
    def tx(conn: sqlite3.Connection) -> None:
        now = now_ts()
        cur = conn.execute("INSERT OR IGNORE INTO land_targets (run_id, repo_path, target, base_commit, created_branch,"
                           " created_at) VALUES (?,?,?,?,?,?)", (run_id, repo, target, base, int(created), now))
        if cur.rowcount:
            add_event(conn, "land_target_set", run_id=run_id, summary=f"lands into {target}"
                      + (f" (created at {base[:12]})" if created else ""),
                      payload={"target": target, "base_commit": base, "created": created, "repo_path": repo}, now=now)

    store.write(tx)


