"""The light half of landing (issue 14): the run's land target, the graph gate and the read
model of each task's land state. Imported on hot paths (`orch status`, every task transition's
fold), so it imports no subprocess, git or tempfile; store/land.py does the git work.
"""

from __future__ import annotations

from typing import Any

from .records import loads, rows

DEFAULT_SUFFIX = "_land"


def default_target(run_id: str) -> str:
    return f"orch/{run_id}/{DEFAULT_SUFFIX}"


def _config(conn: Any, run_id: str) -> dict[str, Any]:
    r = conn.execute("SELECT config_json FROM runs WHERE run_id=?", (run_id,)).fetchone()
    return loads(r[0], {}) if r else {}


def _truthy(v: Any) -> bool:
    return v is True or str(v).lower() in ("1", "true", "yes", "on")


def gate_on(conn: Any, run_id: str) -> bool:
    """With a land target set (or auto_land), dependants wait for their dependencies to land."""
    cfg = _config(conn, run_id)
    return bool(cfg.get("land_target")) or _truthy(cfg.get("auto_land", False))


def target_of(conn: Any, run_id: str) -> str:
    cfg = _config(conn, run_id)
    if cfg.get("land_target"):
        return str(cfg["land_target"])
    r = conn.execute("SELECT target FROM land_targets WHERE run_id=?", (run_id,)).fetchone()
    return r[0] if r else default_target(run_id)


def is_landed(conn: Any, run_id: str, task_id: str) -> bool:
    return conn.execute("SELECT 1 FROM lands WHERE run_id=? AND task_id=? AND status='landed' LIMIT 1",
                        (run_id, task_id)).fetchone() is not None


def unlanded_dependency_sql(alias: str) -> str:
    """SQL (for fold.promote_dependents) true when dependency row `alias` has not landed."""
    return (f"NOT EXISTS (SELECT 1 FROM lands l WHERE l.run_id={alias}.run_id AND l.task_id={alias}.task_id"
            " AND l.status='landed')")


def public_land(r: dict[str, Any] | None) -> dict[str, Any] | None:
    if r is None:
        return None
    out = dict(r)
    out["conflicts"] = loads(out.pop("conflicts_json", "[]"), [])
    out.pop("landing_pid", None)
    return out


def summary(conn: Any, run_id: str) -> dict[str, Any]:
    """For `orch status`: the target, whether the gate is on, and each task's latest land state."""
    found = rows(conn.execute(
        "SELECT * FROM lands l WHERE run_id=? AND attempt_no=(SELECT max(attempt_no) FROM lands m WHERE"
        " m.run_id=l.run_id AND m.task_id=l.task_id)", (run_id,)).fetchall())
    landed = {r["task_id"] for r in rows(conn.execute(
        "SELECT DISTINCT task_id FROM lands WHERE run_id=? AND status='landed'", (run_id,)).fetchall())}
    tasks = {}
    for r in found:
        st = "landed" if r["task_id"] in landed else r["status"]
        tasks[r["task_id"]] = {"status": st, "attempt_no": r["attempt_no"],
                               "conflicts": loads(r["conflicts_json"], []) if st == "conflicts" else [],
                               "landed_commit": r["landed_commit"] if st == "landed" else "",
                               "strategy": r["strategy"] if st == "landed" else "",
                               "pr_number": r["pr_number"], "pr_url": r["pr_url"]}
    return {"target": target_of(conn, run_id), "gate": gate_on(conn, run_id), "tasks": tasks}


def done_not_landed(store: Any, run_id: str) -> int:
    """How many done tasks of the run have not landed (the demo waits for its last wave's lands)."""
    return int(store.scalar(
        "SELECT count(*) FROM tasks t WHERE t.run_id=? AND t.status='done' AND NOT EXISTS (SELECT 1 FROM lands l"
        " WHERE l.run_id=t.run_id AND l.task_id=t.task_id AND l.status='landed')", (run_id,)))
