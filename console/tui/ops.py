"""The leader's actions as the console runs them: each opens its own short-lived Store (the reader
connection is never used for writes) and calls the one store function the CLI calls too. Called
from thread workers only; returns the line shown in the notification, or raises OrchError."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

# Not plain `dispatch`: this module defines its own dispatch() (the console form), which would shadow it.
from orch_console.store import dispatch as store_dispatch
from orch_console.store import runs
from orch_console.store.db import Store
from orch_console.store.errors import InvalidInput, NotFound, OrchError
from orch_console.store.worktrees import is_dirty

# Imported by the operations that use them, not at start-up (this module loads with the console,
# and each of these adds to its first paint): the launcher (~9 ms), store.runtime (~3 ms) and
# store.report (~4 ms).


def _with_store(db_path: str, fn: Any) -> Any:
    s = Store(db_path)
    try:
        return fn(s)
    finally:
        s.close()


def prefill(db_path: str, run_id: str, task_id: str) -> dict[str, Any]:
    """What the dispatch/retry/reassign/cleanup forms start from: the task and its latest attempt."""
    def read(s: Store) -> dict[str, Any]:
        with s.snapshot() as conn:
            t = runs.get_task(conn, run_id, task_id)
            a = store_dispatch.latest_attempt(conn, run_id, task_id)
        return {"task": t, "attempt": a}

    out = _with_store(db_path, read)
    out.update(launch_choices(db_path, run_id, out["task"], out["attempt"]))
    a = out["attempt"]
    if a and a["worktree_path"] and a["workspace_status"] == "created" and os.path.isdir(a["worktree_path"]):
        out["dirty"] = is_dirty(a["worktree_path"])
    else:
        out["dirty"] = False
    return out


def launch_choices(db_path: str, run_id: str, task: dict[str, Any], attempt: dict[str, Any] | None
                   ) -> dict[str, Any]:
    """The dispatch form's launch part: the agent profiles (built-ins and .agents/orch.toml), the
    one to preselect (the run's `profile`, else `sim`) and whether launching starts ticked (the run
    names a profile, or the task's worker is a profile's name)."""
    from orch_console.console.runtime import launcher
    from orch_console.store import runtime as rt

    problem = ""
    try:
        profiles = launcher.load_profiles(db_path)
    except OrchError as exc:  # a broken orch.toml: the built-ins still work, the form says why
        profiles, problem = dict(launcher.BUILTIN), exc.message
    cfg = _with_store(db_path, lambda s: rt.run_settings_config(s, run_id))
    run_profile = str(cfg.get("profile") or "")
    to = (attempt or {}).get("assigned_to") or task.get("default_to") or ""
    default = next((p for p in (run_profile, to) if p and p in profiles), "sim")
    return {"profiles": sorted(profiles), "profile": default, "problem": problem,
            "launch": bool(run_profile in profiles and run_profile) or to in profiles}


def dispatch(db_path: str, run_id: str, task_id: str, *, mode: str, to: str | None, body: str | None,
             repo_path: str | None, workspace_root: str | None = None, launch_profile: str | None = None) -> str:
    """Dispatch, and with `launch_profile` start the worker too: the same two calls as
    `orch dispatch --launch` (console/cli/runtime_cmds.py), profile checked before dispatching."""
    from orch_console.console.runtime import launcher

    def go(s: Store) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if launch_profile:
            launcher.resolve_profile(launcher.load_profiles(s.path), launch_profile)
        d = store_dispatch.dispatch(s, run_id=run_id, task_id=task_id, execution_mode=mode, to=to or None,
                                    body=body, repo_path=repo_path, workspace_root=workspace_root or None)
        if not launch_profile:
            return d, None
        return d, launcher.launch_or_queue(s, run_id=run_id, task_id=task_id,
                                           attempt_no=d["attempt"]["attempt_no"], profile=launch_profile)

    d, launched = _with_store(db_path, go)
    a = d["attempt"]
    where = f" in {a['worktree_path']}" if a.get("worktree_path") else ""
    msg = f"{task_id}: attempt {a['attempt_no']} dispatched to {a['assigned_to']} ({a['execution_mode']}){where}"
    if launched is not None and launched.get("queued"):
        msg += "; launch queued: " + launched["reason"]
    elif launched is not None:
        msg += "; " + launched_line(launched)
    return msg


def launched_line(launched: dict[str, Any]) -> str:
    a = launched["attempt"]
    if launched["runtime"] == "tmux":
        where = f"tmux session {a['runtime_ref']} (A attaches)"
    else:
        where = f"pid {a['pid']}"
    return f"launched {launched['profile']}: {where}, log {a['log_path']}"


def answer(db_path: str, run_id: str, task_id: str, text: str) -> str:
    """Plain text becomes the answer's body (its first line the summary); a JSON object or array
    is sent as the structured payload."""
    approved = _approve_if_asked(db_path, run_id, task_id, text)
    if approved:
        return approved
    stripped = text.strip()
    payload = None
    if stripped[:1] in "{[":
        try:
            json.loads(stripped)
            payload = stripped
        except ValueError:
            payload = None
    if payload is not None:
        _with_store(db_path, lambda s: store_dispatch.answer(s, run_id=run_id, task_id=task_id,
                                                             payload_json=payload, summary="(structured answer)"))
    else:
        _with_store(db_path, lambda s: store_dispatch.answer(s, run_id=run_id, task_id=task_id, body=text))
    return f"{task_id}: answer sent; the worker resumes"


def _approve_if_asked(db_path: str, run_id: str, task_id: str, text: str) -> str:
    """A task with a permission request waiting (and no question) is answered allow / always /
    deny: reason, through the same function as `orch approve`."""
    def go(s: Store) -> str:
        from orch_console.console.runtime import approve
        from orch_console.store import approvals

        if not approvals.answerable_in_pane(s, run_id, task_id):
            return ""
        decision, reason = approvals.parse_answer(text)
        out = approve.approve(s, run_id=run_id, task_id=task_id, decision=decision, reason=reason,
                            by=store_dispatch.leader_name())
        return f"{task_id}: {decision} sent to the agent ({out['delivered']})"

    return _with_store(db_path, go)


def retry(db_path: str, run_id: str, task_id: str, *, to: str | None, body: str | None) -> str:
    if body is not None and not body.strip():
        raise InvalidInput("the retry needs an instruction; say what to do differently")
    d = _with_store(db_path, lambda s: store_dispatch.retry(s, run_id=run_id, task_id=task_id, to=to, body=body))
    a = d["attempt"]
    return f"{task_id}: retry dispatched as attempt {a['attempt_no']} to {a['assigned_to']}"


def reassign(db_path: str, run_id: str, task_id: str, *, to: str | None, body: str | None) -> str:
    if not to:
        raise InvalidInput("reassign needs the new worker's name")
    d = _with_store(db_path, lambda s: store_dispatch.reassign(s, run_id=run_id, task_id=task_id, to=to,
                                                               body=body if body and body.strip() else None))
    a = d["attempt"]
    return f"{task_id}: reassigned to {a['assigned_to']} as attempt {a['attempt_no']}"


def cancel(db_path: str, run_id: str, task_id: str) -> str:
    _with_store(db_path, lambda s: store_dispatch.cancel(s, run_id=run_id, task_id=task_id,
                                                         reason="cancelled from the console"))
    return f"{task_id}: cancelled"


def cleanup(db_path: str, run_id: str, task_id: str, *, force: bool) -> str:
    d = _with_store(db_path, lambda s: store_dispatch.cleanup(s, run_id=run_id, task_id=task_id, force=force))
    parts = [f"{task_id}: {d['count']} worktree(s) removed (branches kept)"]
    parts += [f"skipped a{x['attempt_no']}: {x['reason']}" for x in d["skipped"]]
    return "; ".join(parts)


def export_report(db_path: str, run_id: str, report_dir: str | None) -> str:
    """The wave report (store.report, as `orch report`) as Markdown, in `reports/` beside the
    database unless the console config names another folder."""
    from orch_console.store.report import render

    text = _with_store(db_path, lambda s: render(s, run_id=run_id, fmt="md"))
    folder = Path(report_dir).expanduser() if report_dir else Path(db_path).resolve().parent / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}-{time.strftime('%Y%m%d-%H%M%S')}.md"
    n = 1
    while path.exists():  # two exports in the same second keep both
        n += 1
        path = folder / f"{run_id}-{time.strftime('%Y%m%d-%H%M%S')}-{n}.md"
    path.write_text(text, encoding="utf-8")
    return f"wave report written to {path.resolve()}"


def toggle_autopilot(db_path: str, run_id: str) -> str:
    on = _with_store(db_path, lambda s: runs.toggle_setting(s, run_id=run_id, key="autopilot"))
    return f"autopilot {'ON' if on else 'off'} for {run_id}"


def held_profiles(db_path: str) -> list[dict[str, Any]]:
    from orch_console.store import holds

    return list(_with_store(db_path, holds.active).values())


def release_holds(db_path: str, profiles: list[str]) -> str:
    """`orch release --profile P` for each held profile the leader confirmed."""
    from orch_console.store import holds
    from orch_console.store.dispatch import leader_name

    done = []
    for p in profiles:
        try:
            _with_store(db_path, lambda s, p=p: holds.release(s, profile=p, by=leader_name()))
            done.append(p)
        except NotFound:
            continue  # lifted meanwhile (its reset time came)
    return f"released {', '.join(done)}" if done else "no profile was held any more"


def send_keys(db_path: str, run_id: str, task_id: str, text: str) -> str:
    """Type a line into a tmux worker's terminal (launcher.send_keys records the event)."""
    from orch_console.console.runtime import launcher

    out = _with_store(db_path, lambda s: launcher.send_keys(s, run_id=run_id, task_id=task_id, text=text))
    return f"{task_id}: typed {text!r} + Enter into tmux session {out['session']}"


def worker_attempt(db_path: str, run_id: str, task_id: str) -> dict[str, Any]:
    """The task's latest attempt, for the keys that reach its worker (send keys, attach)."""
    from orch_console.store import runtime as rt

    a = _with_store(db_path, lambda s: rt.get_attempt(s, run_id, task_id))
    if a is None:
        raise NotFound(f"{task_id} has no attempt yet; dispatch it first")
    return a


def attach_argv(db_path: str, run_id: str, task_id: str) -> list[str]:
    from orch_console.console.runtime import launcher

    return launcher.attach_argv(db_path, worker_attempt(db_path, run_id, task_id))
