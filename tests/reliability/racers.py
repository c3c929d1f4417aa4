"""Leader processes for the two-leaders race (test_two_leaders.py), importable by a spawned child.

Each racer runs one job list in lockstep with the other racer: before every job both wait on the
same barrier, then each performs the job through its face: `console` calls console/ops.py (what
the console's leader keys run), `cli` runs the `orch` CLI's main() with --json and reads its exit
status and envelope. Results go back on a queue as (job index, face, "ok" | error code, exit status).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from typing import Any


def run_console(db: str, job: dict[str, Any]) -> tuple[str, int]:
    from orch_console.console.tui import ops
    from orch_console.store.errors import OrchError

    try:
        if job["action"] == "answer":
            ops.answer(db, job["run"], job["task"], job["text"])
        elif job["action"] == "retry":
            ops.retry(db, job["run"], job["task"], to=None, body=job["text"])
        elif job["action"] == "reassign":
            ops.reassign(db, job["run"], job["task"], to=job["to"], body=None)
        elif job["action"] == "dispatch":
            ops.dispatch(db, job["run"], job["task"], mode=job["mode"], to=None, body=None,
                             repo_path=job.get("repo"))
        else:
            raise AssertionError(job)
    except OrchError as exc:
        return exc.code, exc.exit_code
    return "ok", 0


def run_cli(db: str, job: dict[str, Any]) -> tuple[str, int]:
    from orch_console.console.cli import orch

    argv = ["--db", db, "--json", job["action"], "--run", job["run"], "--task", job["task"]]
    if job["action"] == "answer":
        argv += ["--body", job["text"]]
    elif job["action"] == "retry":
        argv += ["--body", job["text"]]
    elif job["action"] == "reassign":
        argv += ["--to", job["to"]]
    elif job["action"] == "dispatch":
        argv += ["--execution-mode", job["mode"]] + (["--repo-path", job["repo"]] if job.get("repo") else [])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = orch.main(argv)
    if "Traceback" in err.getvalue():
        return "traceback", code
    doc = json.loads(out.getvalue())
    return ("ok" if doc["ok"] else doc["error"]["code"]), code


def racer(idx: int, db: str, cwd: str, jobs: list[dict[str, Any]], barrier: Any, results: Any) -> None:
    """idx picks this racer's face per job: job["faces"][idx]."""
    os.chdir(cwd)
    # warm the imports so the race is about the store, not about who imported faster
    from orch_console.console.tui import ops as actions  # noqa: F401
    from orch_console.console.cli import orch  # noqa: F401
    import git  # noqa: F401
    for i, job in enumerate(jobs):
        face = job["faces"][idx]
        fn = run_console if face == "console" else run_cli
        barrier.wait()
        try:
            outcome, code = fn(db, job)
        except Exception as exc:  # noqa: BLE001
            outcome, code = f"crash: {type(exc).__name__}: {exc}", -1
        results.put((i, face, outcome, code))
