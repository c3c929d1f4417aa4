"""Importing a plan: a task-orchestrator manifest, or the JSON of `gh issue list`.

Each import is one transaction: a malformed file imports nothing, and importing the same file
again changes nothing (existing tasks and dependencies are left as they are and reported).
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from .db import Store
from .errors import InvalidInput
from .fold import refresh_run
from .records import add_event
from .runs import TaskSpec, dep_add_tx, insert_task_tx, task_spec
from .validate import MAX_FIELD_BYTES, check_id, now_ts, read_capped

DEP_RE = re.compile(r"(?i)\b(?:depends\s+on|blocked\s+by)\s*:?\s*((?:#\d+[\s,;&]*(?:and\s+)?)+)")
FILES_RE = re.compile(r"(?im)^\s*(?:files|paths)\s*:\s*(.+)$")
PRIORITY_LABELS = {"p0": 3, "p1": 2, "p2": 1, "p3": 0, "priority:critical": 3, "priority:high": 2,
                   "priority:medium": 1, "priority:low": 0, "critical": 3, "urgent": 3}


def _load(path: str) -> Any:
    # capped however the file reports its size: /dev/zero and pipes say 0 (issue 15, M12)
    data = read_capped(path, "", 32 * MAX_FIELD_BYTES)
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} is not valid JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise InvalidInput(f"{path} is not valid JSON: nested too deeply") from None


def _apply(store: Store, run_id: str, goal: str, specs: list[TaskSpec], deps: list[tuple[str, str]],
           source: str) -> dict[str, Any]:
    def tx(conn: sqlite3.Connection) -> dict[str, Any]:
        now = now_ts()
        created_run = False
        if conn.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone() is None:
            conn.execute("INSERT INTO runs (run_id, goal, summary, status, created_at, updated_at) VALUES "
                         "(?,?,?, 'active', ?, ?)", (run_id, goal, f"imported from {source}", now, now))
            add_event(conn, "run_created", run_id=run_id, summary=goal, now=now)
            created_run = True
        added, existing = [], []
        for s in specs:
            if conn.execute("SELECT 1 FROM tasks WHERE run_id=? AND task_id=?", (run_id, s.task_id)).fetchone():
                existing.append(s.task_id)
            else:
                insert_task_tx(conn, s, now=now)
                added.append(s.task_id)
        new_deps = [{"task_id": t, "depends_on": d} for t, d in deps if dep_add_tx(conn, run_id, t, d, now=now)]
        if added or new_deps:
            add_event(conn, "plan_imported", run_id=run_id, summary=f"{len(added)} tasks, {len(new_deps)} "
                      f"dependencies from {source}", payload={"source": source}, now=now)
        refresh_run(conn, run_id, now=now)
        return {"run_id": run_id, "run_created": created_run, "added_tasks": added, "existing_tasks": existing,
                "added_dependencies": new_deps, "changed": bool(added or new_deps or created_run)}

    return store.write(tx)


def _check_unique(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise InvalidInput(f"{what}: task id {i!r} appears twice")
        seen.add(i)


def import_manifest(store: Store, *, path: str, run_id: str) -> dict[str, Any]:
    """seeds/001 task-orchestrator manifest: phases of tasks with `dependsOn` and `files`.
    Each phase gates the next: its tasks wait for every task of the phase before."""
    check_id(run_id, "--run")
    doc = _load(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("phases"), list):
        raise InvalidInput(f"{path}: a manifest is an object with a `phases` list")
    specs: list[TaskSpec] = []
    deps: list[tuple[str, str]] = []
    previous_phase: list[str] = []
    for pi, phase in enumerate(doc["phases"]):
        if not isinstance(phase, dict) or not isinstance(phase.get("tasks"), list):
            raise InvalidInput(f"{path}: phase {pi} needs a `tasks` list")
        name = str(phase.get("name") or f"Phase {pi + 1}")
        ids = []
        for ti, t in enumerate(phase["tasks"]):
            where = f"{path}: phase {pi} task {ti}"
            if not isinstance(t, dict) or not isinstance(t.get("id"), str) or not t.get("title"):
                raise InvalidInput(f"{where} needs a string `id` and a `title`")
            files = t.get("files") or []
            depends = t.get("dependsOn") or []
            if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
                raise InvalidInput(f"{where}: `files` must be a list of paths")
            if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
                raise InvalidInput(f"{where}: `dependsOn` must be a list of task ids")
            issue = t.get("issue")
            summary = f"{name}" + (f"; issue #{issue}" if issue not in (None, "") else "")
            try:
                specs.append(task_spec(run_id=run_id, task_id=t["id"], title=str(t["title"]), summary=summary,
                                       paths=files, default_to=t.get("agent") or t.get("owner"),
                                       priority=t.get("priority") if isinstance(t.get("priority"), int) else None))
            except InvalidInput as exc:
                raise InvalidInput(f"{where}: {exc.message}") from None
            deps += [(t["id"], d) for d in depends]
            ids.append(t["id"])
        in_phase = set(ids)
        has_dependant = {d for t, d in deps if t in in_phase and d in in_phase}
        deps += [(t, p) for t in ids for p in previous_phase]
        previous_phase = [t for t in ids if t not in has_dependant] or previous_phase
    _check_unique([s.task_id for s in specs], path)
    known = {s.task_id for s in specs}
    unknown = sorted({d for _t, d in deps if d not in known})
    if unknown:
        raise InvalidInput(f"{path}: dependsOn names tasks that are not in the manifest: {', '.join(unknown)}")
    goal = str(doc.get("project") or doc.get("repo") or f"imported from {Path(path).name}")
    return _apply(store, run_id, goal, specs, list(dict.fromkeys(deps)), Path(path).name)


def import_gh_issues(store: Store, *, path: str, run_id: str) -> dict[str, Any]:
    """`gh issue list --json number,title,body,labels`: one task per issue (`gh-N`), dependencies
    from "depends on #N" and "blocked by #N" in bodies; references outside the file are reported."""
    check_id(run_id, "--run")
    doc = _load(path)
    if not isinstance(doc, list):
        raise InvalidInput(f"{path}: expected the JSON array printed by "
                           f"`gh issue list --json number,title,body,labels`")
    specs: list[TaskSpec] = []
    deps: list[tuple[str, str]] = []
    numbers: set[int] = set()
    refs: list[tuple[int, int]] = []
    for i, issue in enumerate(doc):
        where = f"{path}: item {i}"
        if not isinstance(issue, dict) or not isinstance(issue.get("number"), int) or not issue.get("title"):
            raise InvalidInput(f"{where} needs an integer `number` and a `title`")
        n = issue["number"]
        body = issue.get("body") or ""
        if not isinstance(body, str):
            raise InvalidInput(f"{where}: `body` must be text")
        labels = issue.get("labels") or []
        if not isinstance(labels, list):
            raise InvalidInput(f"{where}: `labels` must be a list")
        names = [str(lb.get("name", "")) if isinstance(lb, dict) else str(lb) for lb in labels]
        priority = max((PRIORITY_LABELS.get(x.lower(), 0) for x in names), default=0)
        paths = [p.strip().strip("`") for m in FILES_RE.findall(body) for p in m.split(",") if p.strip().strip("`")]
        summary = f"GitHub issue #{n}" + (f"; labels: {', '.join(names)}" if names else "")
        try:
            specs.append(task_spec(run_id=run_id, task_id=f"gh-{n}", title=str(issue["title"]), summary=summary,
                                   spec=body, paths=paths, priority=priority))
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.message}") from None
        numbers.add(n)
        for group in DEP_RE.findall(body):
            refs += [(n, int(x)) for x in re.findall(r"#(\d+)", group) if int(x) != n]
    _check_unique([s.task_id for s in specs], path)
    outside = sorted({d for _n, d in refs if d not in numbers})
    deps = list(dict.fromkeys((f"gh-{n}", f"gh-{d}") for n, d in refs if d in numbers))
    out = _apply(store, run_id, f"GitHub issues from {Path(path).name}", specs, deps, Path(path).name)
    out["references_outside_file"] = [f"#{d}" for d in outside]
    return out
