"""`orch demo`: the whole loop on an embedded default (DESIGN.md section 9).

A fresh database and scratch git repository, a run of 12 tasks in 4 waves, simulated workers (two
block with a question, one fails once, one crashes once, one hangs and is caught by the watcher,
two pass verification gates: a check script committed in the scratch repository),
the watcher with autopilot dispatching each task as its blockers clear, and the console open on
it. `--headless` runs it to the end without a screen, answering questions after a short delay,
and prints the wave report (store.report, the same as `orch report --format md`).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orch_console.store import dispatch, runs
from orch_console.store import runtime as rt
from orch_console.store import watcher_actions as wa
from orch_console.store.db import Store
from orch_console.store.errors import InvalidInput, InvalidState
from orch_console.store.states import FINISHED_TASK, RunStatus, TaskStatus

RUN_ID = "demo"
ANSWER_DELAY = 1.0
NORMAL = "progress*3,done"

# The scratch repository's check script: every named path exists and is not empty.
CHECK_SCRIPT = """#!/bin/sh
# Verification gate of the demo: each argument must be a non-empty file, or a non-empty directory.
for p in "$@"; do
  if [ -f "$p" ] && [ -s "$p" ]; then echo "ok   $p ($(wc -l < "$p") line(s))"
  elif [ -d "$p" ] && [ -n "$(ls -A "$p")" ]; then echo "ok   $p/ ($(ls -A "$p" | wc -l) entr(ies))"
  else echo "FAIL $p is missing or empty"; exit 1
  fi
done
"""
# task -> its verification gates (name -> command, run in the attempt's worktree by the watcher)
CHECKS: dict[str, dict[str, str]] = {
    "schema": {"files": "sh checks/files.sh src/db/schema.py"},
    "api": {"files": "sh checks/files.sh src/api", "layout": "test -d src/api && ! test -e src/api.py"},
}

# task, title, paths, dependencies, sim script
TASKS: list[tuple[str, str, list[str], list[str], str]] = [
    ("schema", "Design the storage schema", ["src/db/schema.py"], [], NORMAL),
    ("config", "Load settings from a TOML file", ["src/config.py"], [], NORMAL),
    ("outline", "Outline the user guide", ["docs/outline.md"], [], "progress*2,done"),
    ("api", "HTTP API over the schema", ["src/api"], ["schema"], NORMAL),
    ("auth", "Token authentication", ["src/auth.py"], ["config"], "progress,block,progress,done"),
    ("migrations", "Schema migrations", ["src/db/migrations"], ["schema"], "progress,crash | progress*2,done"),
    ("ui", "Terminal UI for the API", ["src/ui"], ["api"], NORMAL),
    ("cli", "Command-line client", ["src/cli.py"], ["api", "auth"], "progress,fail | progress*2,done"),
    ("search", "Full-text search", ["src/search.py"], ["migrations"], "progress,hang | progress*2,done"),
    ("e2e", "End-to-end tests", ["tests/e2e"], ["ui", "cli"], "progress,block,progress,done"),
    ("guide", "Write the user guide", ["docs/guide.md"], ["outline", "cli"], NORMAL),
    ("release", "Release notes and changelog", ["docs", "CHANGELOG.md"], ["ui", "cli", "search"], "progress*2,done"),
]

DEMO_CONFIG: dict[str, Any] = {
    "autopilot": True, "concurrency": 5, "profile": "sim", "execution_mode": "code",
    "auto_land": True,  # issue 14: land in graph order; dependants start from their parents' landed code
    "liveness_interval_seconds": 0.5, "nudge_seconds": 3.0, "stall_seconds": 5.0, "idle_seconds": 10.0,
    "crash_grace_seconds": 0.3, "max_attempts": 3, "retry_backoff_seconds": 1.0, "retry_backoff_max_seconds": 4.0,
    "worker_env": {"ORCH_SIM_STEP_SECONDS": "0.25", "ORCH_SIM_LEASE_SECONDS": "4"},
}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=orch-demo", "-c", "user.email=orch-demo@orch.invalid", *args],
                   cwd=repo, check=True, capture_output=True, stdin=subprocess.DEVNULL)


def create(root: Path, *, tmux: bool = False, db: str | None = None) -> tuple[str, str]:
    """Make the scratch repository, database and run; returns (db_path, run_id). db: the
    database to use (`orch --db PATH demo`), else ROOT/.agents/coord.db."""
    repo = root / "repo"
    repo.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, capture_output=True)
    (repo / "README.md").write_text("# demo project\n\nA scratch repository made by `orch demo`.\n")
    (repo / "src").mkdir()
    (repo / "src" / "__init__.py").write_text("")
    (repo / "checks").mkdir()
    (repo / "checks" / "files.sh").write_text(CHECK_SCRIPT)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "initial commit")
    if db is None:
        (root / ".agents").mkdir(parents=True, exist_ok=True)
        db = str(root / ".agents" / "coord.db")
    cfg = dict(DEMO_CONFIG, repo_path=str(repo), profile="sim-tmux" if tmux else "sim")
    with Store(db) as s:
        runs.run_init(s, run_id=RUN_ID, goal="Ship a small service: storage, API, auth, UI, CLI, search, docs",
                      summary="12 tasks in 4 waves, simulated workers", config=cfg)
        for task_id, title, paths, _deps, script in TASKS:
            runs.task_add(s, run_id=RUN_ID, task_id=task_id, title=title, default_to="sim", paths=paths,
                          spec=f"sim-script: {script}", check_cmds=CHECKS.get(task_id))
        for task_id, _t, _p, deps, _s in TASKS:
            for d in deps:
                runs.dep_add(s, run_id=RUN_ID, task_id=task_id, depends_on=d)
    return db, RUN_ID


# -- running it ------------------------------------------------------------------------------
PROGRESS_EVENTS = {
    "task_auto_dispatched": "dispatched", "task_running": "running", "task_blocked": "blocked",
    "task_answered": "answered", "task_done": "done", "task_failed": "failed", "attempt_crashed": "crashed",
    "attempt_stalled": "stalled", "attempt_nudged": "nudged", "task_auto_retried": "retrying",
    "task_escalated": "escalated", "lease_expired": "lease expired", "run_done": "run done",
    "task_verifying": "verifying", "task_check_started": "checking", "task_verification_recorded": "check",
    "task_overlap_wait": "waiting", "task_landed": "landed", "task_conflicts": "conflicts",
}


class _Progress:
    def __init__(self, store: Store, run_id: str, out: Any) -> None:
        self.store, self.run_id, self.out = store, run_id, out
        self.cursor = 0
        self.t0 = time.monotonic()

    def pump(self) -> None:
        for e in wa.events_after(self.store, self.cursor, 10_000, run_id=self.run_id):
            self.cursor = e["event_id"]
            label = PROGRESS_EVENTS.get(e["event_type"])
            if label:
                who = f"{e['task_id']}" + (f" a{e['attempt_no']}" if e["attempt_no"] else "")
                self.out.write(f"{time.monotonic() - self.t0:6.1f}s  {label:<13} {who:<14} {e['summary'][:90]}\n")
                self.out.flush()


def _answer_blocked(store: Store, run_id: str, seen: dict[str, float]) -> None:
    """Headless stand-in for the leader: answer each question after a short delay."""
    now = time.monotonic()
    from orch_console.store import views

    # an answered question stays blocked until its worker resumes: only the open ones wait for us
    for task_id in [b["task_id"] for b in views.blocked(store, run_id=run_id)["tasks"] if not b["answered"]]:
        first = seen.setdefault(task_id, now)
        if now - first >= ANSWER_DELAY:
            try:
                dispatch.answer(store, run_id=run_id, task_id=task_id, summary="Take option A",
                                body="Keep the current API (option A); note the rename as a follow-up.")
            except Exception:  # answered meanwhile, or the worker moved on
                pass
            seen.pop(task_id, None)


def _finished(store: Store, run_id: str) -> bool:
    if runs.run_status_of(store, run_id) == RunStatus.DONE:
        # with auto_land the last wave lands after the run is done: wait for it
        from orch_console.store.land_state import done_not_landed

        return done_not_landed(store, run_id) == 0
    if runs.run_status_of(store, run_id) == RunStatus.CANCELLED:
        return True
    # Everything left is failed and escalated: nothing more will happen without the leader.
    statuses = runs.task_statuses(store, run_id)
    if any(s not in (*FINISHED_TASK, TaskStatus.FAILED) for s in statuses.values()):
        return False
    failed = {t for t, s in statuses.items() if s == TaskStatus.FAILED}
    return bool(failed) and failed <= rt.needs_attention(store, run_id)


def _stop_workers(db: str, run_id: str) -> None:
    from orch_console.console.runtime import launcher

    with Store(db) as s:
        for a in rt.run_attempts(s, run_id):
            if a["runtime"]:
                launcher.stop(db, a, grace=0.5)
    launcher.kill_server(db)


def _exit_on_signal(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(*, directory: str | None = None, headless: bool = False, as_json: bool = False,
         timeout: float = 110.0, tmux: bool = False, db: str | None = None) -> dict[str, Any]:
    out = sys.stderr if as_json else sys.stdout
    if db is not None:  # an explicit --db: the demo's run goes there (refused before anything is made)
        db = str(Path(db).expanduser().absolute())
        with Store(db, create_dirs=True) as s:
            if runs.run_exists(s, RUN_ID):
                raise InvalidState(f"{db} already has a run {RUN_ID}; give a new --db for the demo")
    if directory:
        root = Path(directory).expanduser().resolve()
        if root.exists() and any(root.iterdir()):
            raise InvalidInput(f"--dir {root} is not empty; give a new or empty directory")
    else:
        root = Path(tempfile.mkdtemp(prefix="orch-demo-"))
    console_run: Callable[..., int] | None = None
    if not headless:
        try:
            from orch_console.console.tui.app import run as console_run  # lazy: the CLI never imports textual otherwise
        except ImportError as exc:
            out.write(f"the console is not available ({exc}); running headless instead\n")
            headless = True
    use_tmux = tmux or (not headless and shutil.which("tmux") is not None)
    db, run_id = create(root, tmux=use_tmux, db=db)
    out.write(f"orch demo in {root}\n  database {db}\n  repository {root / 'repo'}\n"
              f"  run {run_id}: {len(TASKS)} tasks in 4 waves, simulated workers "
              f"({'tmux' if use_tmux else 'processes'}), autopilot on, cap {DEMO_CONFIG['concurrency']}\n\n")
    out.flush()
    from orch_console.console.runtime.watcher import Watcher

    if threading.current_thread() is threading.main_thread():
        # A closed terminal (SIGHUP) or a kill (SIGTERM) still runs the cleanup below, so no
        # simulated worker or tmux server outlives the demo.
        for sig in (signal.SIGHUP, signal.SIGTERM):
            signal.signal(sig, _exit_on_signal)
    stop = threading.Event()
    watcher = Watcher(db, run_id, autopilot=True)
    thread = threading.Thread(target=watcher.run_forever, args=(stop,), name="orch-demo-watcher", daemon=True)
    thread.start()
    t0 = time.monotonic()
    try:
        if not headless and console_run is not None:
            console_run(db, run_id)
        else:
            store = Store(db)
            progress = _Progress(store, run_id, out)
            seen: dict[str, float] = {}
            try:
                while time.monotonic() - t0 < timeout:
                    progress.pump()
                    _answer_blocked(store, run_id, seen)
                    if _finished(store, run_id):
                        break
                    time.sleep(0.1)
                progress.pump()
            finally:
                store.close()
    finally:
        stop.set()
        thread.join(timeout=5)
        watcher.close()
        _stop_workers(db, run_id)
    elapsed = time.monotonic() - t0
    from orch_console.store.report import render

    with Store(db) as s:
        report = render(s, run_id=run_id, fmt="md")
        not_done = sum(st != TaskStatus.DONE for st in runs.task_statuses(s, run_id).values())
        attempts = len(rt.run_attempts(s, run_id))
    out.write("\n" + report + "\n")
    out.write(f"\n{len(TASKS) - not_done}/{len(TASKS)} tasks done, {attempts} attempts, in {elapsed:.1f}s "
              f"({root})\n")
    out.flush()
    return {"directory": str(root), "db": db, "run_id": run_id, "headless": headless,
            "all_done": not_done == 0, "not_done": not_done,
            "attempts": attempts, "seconds": round(elapsed, 1), "report": report if as_json else None}


if __name__ == "__main__":
    res = main(headless="--headless" in sys.argv)
    print(json.dumps({k: v for k, v in res.items() if k != "report"}))
