"""Runs, tasks and dependencies: the leader's plan."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, NamedTuple

from .db import Store
from .errors import InvalidInput, InvalidState, NotFound
from .fold import refresh_run, task_counts
from .records import add_event, loads, row, rows
from .states import OPEN_RUN, UNSTARTED_TASK, sql_in
from .validate import check_id, check_json, check_text, now_ts
from .waves import raise_wave

TASK_FIELDS_JSON = ("paths_json", "required_checks_json", "check_cmds_json")


def get_run(conn: Any, run_id: str) -> dict[str, Any]:
    r = conn.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
    if r is None:
        raise NotFound(f"run {run_id} not found")
    return dict(r)


def get_task(conn: Any, run_id: str, task_id: str) -> dict[str, Any]:
    t = conn.execute("SELECT * FROM tasks WHERE run_id=? AND task_id=?", (run_id, task_id)).fetchone()
    if t is None:
        get_run(conn, run_id)
        raise NotFound(f"task {task_id} not found in run {run_id}")
    return dict(t)


def public_task(t: dict[str, Any]) -> dict[str, Any]:
    out = dict(t)
    out["paths"] = loads(out.pop("paths_json", "[]"), [])
    out["required_checks"] = loads(out.pop("required_checks_json", "[]"), [])
    out["check_cmds"] = loads(out.pop("check_cmds_json", "{}"), {})
    out["acceptance"] = loads(out.pop("acceptance_json", ""), None)
    return out


def public_run(r: dict[str, Any], counts: dict[str, int] | None = None) -> dict[str, Any]:
    out = dict(r)
    out["config"] = loads(out.pop("config_json", "{}"), {})
    if counts is not None:
        out["counts"] = counts
        out["total_tasks"] = sum(counts.values())
    return out


# -- runs ------------------------------------------------------------------------------------
def run_init(store: Store, *, run_id: str, goal: str, summary: str | None = None,
             config: dict[str, Any] | None = None) -> dict[str, Any]:
    check_id(run_id, "--run")
    goal = check_text(goal, "--goal", required=True)
    summary = check_text(summary, "--summary")

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        if conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone():
            raise InvalidState(f"run {run_id} already exists")
        now = now_ts()
        r = dict(conn.execute(
            "INSERT INTO runs (run_id, goal, summary, status, created_at, updated_at, config_json)"
            " VALUES (?,?,?, 'active', ?,?,?) RETURNING *",
            (run_id, goal, summary, now, now, json.dumps(config or {}))).fetchone())
        add_event(conn, "run_created", run_id=run_id, summary=goal, now=now)
        return {"run": public_run(r, {})}

    return store.write(tx)


def run_show(store: Store, *, run_id: str) -> dict[str, Any]:
    check_id(run_id, "--run")
    with store.snapshot() as conn:
        r = get_run(conn, run_id)
        return {"run": public_run(r, task_counts(conn, run_id))}


def run_list(store: Store) -> dict[str, Any]:
    with store.snapshot() as conn:
        runs = rows(conn.execute("SELECT * FROM runs ORDER BY created_at DESC, run_id").fetchall())
        counts: dict[str, dict[str, int]] = {}
        for r in conn.execute("SELECT run_id, status, count(*) FROM tasks GROUP BY run_id, status"):
            counts.setdefault(r[0], {})[r[1]] = r[2]
    return {"runs": [public_run(r, counts.get(r["run_id"], {})) for r in runs]}


def run_config(store: Store, *, run_id: str, updates: dict[str, Any]) -> dict[str, Any]:
    """Merge settings (concurrency cap, liveness thresholds, policy) into the run's config."""
    check_id(run_id, "--run")

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        r = get_run(conn, run_id)
        cfg = loads(r["config_json"], {}) | updates
        now = now_ts()
        conn.execute("UPDATE runs SET config_json=?, updated_at=? WHERE run_id=?",
                     (json.dumps(cfg), now, run_id))
        add_event(conn, "run_configured", run_id=run_id, summary=json.dumps(updates), payload=updates, now=now)
        return {"run": public_run(get_run(conn, run_id), task_counts(conn, run_id))}

    return store.write(tx)


def toggle_setting(store: Store, *, run_id: str, key: str) -> bool:
    """Flip a boolean run setting (autopilot) in one transaction, so two leaders toggling at once
    each see the other's flip instead of both writing the same stale value."""
    check_id(run_id, "--run")

    def tx(conn: sqlite3.Connection) -> bool:
        r = get_run(conn, run_id)
        cfg = loads(r["config_json"], {})
        value = not bool(cfg.get(key))
        cfg[key] = value
        now = now_ts()
        conn.execute("UPDATE runs SET config_json=?, updated_at=? WHERE run_id=?", (json.dumps(cfg), now, run_id))
        add_event(conn, "run_configured", run_id=run_id, summary=f"{key}={value}", payload={key: value}, now=now)
        return value

    return store.write(tx)


# -- tasks -----------------------------------------------------------------------------------
class TaskSpec(NamedTuple):
    """A validated task, ready to insert (task add and the importers share it)."""

    run_id: str
    task_id: str
    title: str
    summary: str = ""
    default_to: str = ""
    acceptance: str = ""
    spec: str = ""
    paths: tuple[str, ...] = ()
    required_checks: tuple[str, ...] = ()
    check_cmds: tuple[tuple[str, str], ...] = ()
    priority: int = 0


def task_spec(*, run_id: str, task_id: str, title: str, summary: str | None = None,
              default_to: str | None = None, acceptance_json: str | None = None, spec: str | None = None,
              paths: list[str] | None = None, required_checks: list[str] | None = None,
              check_cmds: dict[str, str] | None = None, priority: int | None = None) -> TaskSpec:
    check_id(run_id, "--run")
    check_id(task_id, "--task")
    check_id(default_to, "--default-to", required=False)
    cmds = dict(check_cmds or {})
    required = list(dict.fromkeys(required_checks or []))
    for name in list(required) + list(cmds):
        check_id(name, "check name")
    for name in cmds:
        if name not in required:
            required.append(name)
    for cmd in cmds.values():
        check_text(cmd, "--check-cmd", required=True)
    try:
        prio = 0 if priority is None else int(priority)
    except (TypeError, ValueError):
        raise InvalidInput(f"--priority must be an integer, not {priority!r}") from None
    return TaskSpec(run_id=run_id, task_id=task_id, title=check_text(title, "--title", required=True),
                    summary=check_text(summary, "--summary"), default_to=default_to or "",
                    acceptance=check_json(acceptance_json, "--acceptance-json"),
                    spec=check_text(spec, "--spec-file"),
                    paths=tuple(dict.fromkeys(_check_path(p) for p in paths or [])),
                    required_checks=tuple(required), check_cmds=tuple(cmds.items()), priority=prio)


def insert_task_tx(conn: sqlite3.Connection, t: TaskSpec, *, now: str) -> dict[str, Any]:
    r = get_run(conn, t.run_id)
    if r["status"] == "cancelled":
        raise InvalidState(f"run {t.run_id} is cancelled")
    if conn.execute("SELECT 1 FROM tasks WHERE run_id=? AND task_id=?", (t.run_id, t.task_id)).fetchone():
        raise InvalidState(f"task {t.task_id} already exists in run {t.run_id}")
    row_ = dict(conn.execute(
        "INSERT INTO tasks (run_id, task_id, title, summary, default_to, status, paths_json,"
        " required_checks_json, check_cmds_json, acceptance_json, spec, priority, created_at, updated_at)"
        " VALUES (?,?,?,?,?, 'ready', ?,?,?,?,?,?,?,?) RETURNING *",
        (t.run_id, t.task_id, t.title, t.summary, t.default_to, json.dumps(list(t.paths)),
         json.dumps(list(t.required_checks)), json.dumps(dict(t.check_cmds)), t.acceptance, t.spec,
         t.priority, now, now)).fetchone())
    add_event(conn, "task_added", run_id=t.run_id, task_id=t.task_id, summary=t.title, now=now)
    add_event(conn, "task_ready", run_id=t.run_id, task_id=t.task_id, summary="no dependencies", now=now)
    return row_


def task_add(store: Store, *, run_id: str, task_id: str, title: str, summary: str | None = None,
             default_to: str | None = None, acceptance_json: str | None = None,
             spec: str | None = None, paths: list[str] | None = None,
             required_checks: list[str] | None = None, check_cmds: dict[str, str] | None = None,
             priority: int | None = None) -> dict[str, Any]:
    spec_ = task_spec(run_id=run_id, task_id=task_id, title=title, summary=summary, default_to=default_to,
                      acceptance_json=acceptance_json, spec=spec, paths=paths, required_checks=required_checks,
                      check_cmds=check_cmds, priority=priority)

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        now = now_ts()
        t = insert_task_tx(conn, spec_, now=now)
        refresh_run(conn, run_id, now=now)
        return {"task": public_task(t)}

    return store.write(tx)


def _check_path(p: str) -> str:
    p = check_text(p, "--path", required=True).strip()
    if "\x00" in p or len(p) > 4096:
        raise InvalidInput(f"invalid --path {p!r}")
    return p.rstrip("/") or "/"


def dep_add_tx(conn: sqlite3.Connection, run_id: str, task_id: str, depends_on: str, *, now: str) -> bool:
    """Record task_id -> depends_on; False if it already existed. Refuses cycles and started tasks."""
    if task_id == depends_on:
        raise InvalidInput(f"task {task_id} cannot depend on itself")
    t = get_task(conn, run_id, task_id)
    d = get_task(conn, run_id, depends_on)
    if conn.execute("SELECT 1 FROM deps WHERE run_id=? AND task_id=? AND depends_on=?",
                    (run_id, task_id, depends_on)).fetchone():
        return False
    # A cycle exists if task_id is already reachable from depends_on's own dependencies.
    cycle = conn.execute(
        "WITH RECURSIVE up(id) AS (SELECT ? UNION SELECT d.depends_on FROM deps d JOIN up ON "
        "d.task_id=up.id WHERE d.run_id=?) SELECT 1 FROM up WHERE id=? LIMIT 1",
        (depends_on, run_id, task_id)).fetchone()
    if cycle:
        raise InvalidInput(f"{task_id} -> {depends_on} would make a dependency cycle")
    if t["status"] not in UNSTARTED_TASK:
        raise InvalidState(f"task {task_id} is {t['status']}; dependencies can only be added "
                           f"before it is dispatched")
    conn.execute("INSERT INTO deps (run_id, task_id, depends_on) VALUES (?,?,?)", (run_id, task_id, depends_on))
    raise_wave(conn, run_id, task_id, d["wave"] + 1)
    from .land_state import gate_on, is_landed  # issue 14: under the land gate a dependency counts once landed

    if (d["status"] != "done" or (gate_on(conn, run_id) and not is_landed(conn, run_id, depends_on))) \
            and t["status"] == "ready":
        conn.execute("UPDATE tasks SET status='planned', updated_at=? WHERE run_id=? AND task_id=?",
                     (now, run_id, task_id))
        add_event(conn, "task_planned", run_id=run_id, task_id=task_id, summary=f"waits for {depends_on}", now=now)
    add_event(conn, "dep_added", run_id=run_id, task_id=task_id, summary=f"{task_id} depends on {depends_on}",
              payload={"depends_on": depends_on}, now=now)
    return True


def dep_add(store: Store, *, run_id: str, task_id: str, depends_on: str) -> dict[str, Any]:
    check_id(run_id, "--run")
    check_id(task_id, "--task")
    check_id(depends_on, "--depends-on")
    if task_id == depends_on:
        raise InvalidInput(f"task {task_id} cannot depend on itself")

    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        now = now_ts()
        created = dep_add_tx(conn, run_id, task_id, depends_on, now=now)
        if created:
            refresh_run(conn, run_id, now=now)
        return {"dependency": {"run_id": run_id, "task_id": task_id, "depends_on": depends_on},
                "task": public_task(get_task(conn, run_id, task_id)), "created": created}

    return store.write(tx)


def ready(store: Store, *, run_id: str) -> dict[str, Any]:
    check_id(run_id, "--run")
    with store.snapshot() as conn:
        get_run(conn, run_id)
        found = rows(conn.execute("SELECT * FROM tasks WHERE run_id=? AND status='ready' "
                                  "ORDER BY priority DESC, created_at, task_id", (run_id,)).fetchall())
    return {"tasks": [public_task(t) for t in found], "count": len(found)}


def deps_of(conn: Any, run_id: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in conn.execute(
        "SELECT task_id, depends_on FROM deps WHERE run_id=?", (run_id,)).fetchall()]


def run_status_of(store: Store, run_id: str) -> str | None:
    return store.scalar("SELECT status FROM runs WHERE run_id=?", (run_id,))


def task_statuses(store: Store, run_id: str) -> dict[str, str]:
    """task_id -> status for every task of the run (small runs: the demo's, the tests')."""
    return {r[0]: r[1] for r in store.all("SELECT task_id, status FROM tasks WHERE run_id=?", (run_id,))}


def run_exists(store: Store, run_id: str) -> bool:
    return store.one("SELECT 1 FROM runs WHERE run_id=?", (run_id,)) is not None


def latest_run(store: Store) -> dict[str, Any] | None:
    """The run the console opens on: the most recently active one, else the newest."""
    r = store.one(f"SELECT * FROM runs WHERE status IN {sql_in(OPEN_RUN)} ORDER BY updated_at DESC LIMIT 1") \
        or store.one("SELECT * FROM runs ORDER BY updated_at DESC LIMIT 1")
    return row(r)
