"""Answering an agent's permission request (`orch approve`, the console's answer box): through the
hook that waits for it, else by typing the menu's key into the agent's pane and checking that the
menu went away. Above hooks.py and launcher.py (which installs the hooks at launch)."""

from __future__ import annotations

import time
from typing import Any

from .hooks import _menu_line, _screen_agent, agent_of, keys_for, menu_shown


def approve_by_keys(db_path: str, attempt: dict[str, Any], source: str, decision: str,
                    settle_seconds: float = 8.0) -> bool:
    """Type the menu key for decision into the attempt's pane; True once the menu went away."""
    from orch_console.console.runtime import launcher

    screen = launcher.capture(db_path, attempt, lines=60)
    if not menu_shown(screen):
        return False
    for k in keys_for(source, decision, screen):
        launcher.tmux(db_path, "send-keys", "-t", attempt["runtime_ref"], k)
    deadline = time.monotonic() + settle_seconds
    while time.monotonic() < deadline:
        time.sleep(0.3)
        if not menu_shown(launcher.capture(db_path, attempt, lines=60)):
            return True
    return False


def approve(store: Any, *, run_id: str, task_id: str, decision: str, reason: str = "", by: str = "leader",
            approval_id: int | None = None) -> dict[str, Any]:
    """`orch approve`: answer the task's permission request once. Through the waiting hook when
    there is one; else (no hook, or the hook gave up) by typing the menu's key into the pane and
    checking that the menu went away. Every decision is an event (store/approvals.py)."""
    from orch_console.console.runtime import launcher
    from orch_console.store import approvals
    from orch_console.store import runtime as rt
    from orch_console.store.errors import NotFound
    from orch_console.store.records import add_event

    try:
        out = approvals.decide(store, run_id=run_id, task_id=task_id, decision=decision, reason=reason, by=by,
                               approval_id=approval_id)
    except NotFound:
        if approval_id is not None:
            raise
        att = rt.get_attempt(store, run_id, task_id)
        screen = launcher.capture(store.path, att, lines=60) if att and att["runtime"] == "tmux" else ""
        if not att or not menu_shown(screen):
            raise NotFound(f"task {task_id} has no permission request waiting: no hook asked, and its screen "
                           f"shows no permission menu") from None
        source = agent_of(att.get("command") or "") or _screen_agent(screen)
        ap = approvals.request(store, thread_id=att["thread_id"], tool="screen", subject=_menu_line(screen),
                               source=source, via="screen")
        out = approvals.decide(store, run_id=run_id, task_id=task_id, decision=decision, reason=reason, by=by,
                               approval_id=ap["approval_id"])
        out["was"] = "screen"
    ap = out["approval"]
    out["delivered"] = "hook"
    if out.get("was") in ("expired", "screen"):
        att = rt.get_attempt(store, run_id, task_id, ap["attempt_no"])
        gone = att is not None and att["runtime"] == "tmux" and approve_by_keys(store.path, att, ap["source"],
                                                                                 decision)
        out["delivered"] = "keys" if gone else "keys_unconfirmed"
        if gone and decision == "deny" and reason and att:
            # the menu's "No" returns to the agent's prompt: the reason goes in as the next message
            time.sleep(0.5)
            launcher.tmux(store.path, "send-keys", "-t", att["runtime_ref"], "-l", reason)
            launcher.tmux(store.path, "send-keys", "-t", att["runtime_ref"], "Enter")
        store.write(lambda conn: add_event(
            conn, "approval_keys_typed", run_id=run_id, task_id=task_id, thread_id=ap["thread_id"],
            attempt_no=ap["attempt_no"], agent=by,
            summary=f"{decision} typed into the pane; " + ("the menu went away" if gone else "the menu is still shown"),
            payload={"approval_id": ap["approval_id"], "decision": decision, "menu_gone": gone}))
    return out
