"""Approvals on `orch`: `approve` answers a worker's permission request once, `approvals` lists
them (with the run's "always allow" rules). Imports no textual."""

from __future__ import annotations

import argparse
from typing import Any

from .common import Context, command


def h_approve(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.console.runtime import approve
    from orch_console.store.dispatch import leader_name
    from orch_console.store.validate import check_id

    return approve.approve(ctx.store, run_id=check_id(args.run, "--run"), task_id=check_id(args.task, "--task"),
                         decision=args.decision, reason=args.reason or "", by=leader_name(),
                         approval_id=args.approval)


def h_approvals(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import approvals
    from orch_console.store.runs import get_run
    from orch_console.store.validate import check_id

    run_id = check_id(args.run, "--run")
    get_run(ctx.store.conn, run_id)
    if args.status == "pending":
        with ctx.store.snapshot() as conn:
            items = approvals.pending_approvals(conn, run_id)
    else:
        items = approvals.list_for_run(ctx.store, run_id, args.status)
    return {"run_id": run_id, "approvals": items, "rules": approvals.rules(ctx.store, run_id)}


def add_approval_commands(sub: argparse._SubParsersAction) -> None:
    c = command(sub, "approve", h_approve, "answer a worker's permission request once: allow, always (allow, and "
                "always allow the same in this run) or deny with a reason; goes back through the agent's hook, "
                "or is typed into its pane when no hook waits")
    c.add_argument("--run", required=True)
    c.add_argument("--task", required=True)
    c.add_argument("--decision", required=True, choices=["allow", "always", "deny"])
    c.add_argument("--reason", help="why (told to the agent when denied)")
    c.add_argument("--approval", type=int, metavar="ID", help="a particular request (default: the task's oldest)")

    c = command(sub, "approvals", h_approvals, "permission requests of a run (pending by default) and its "
                "always-allow rules")
    c.add_argument("--run", required=True)
    c.add_argument("--status", default="pending", choices=["pending", "decided", "expired", "cancelled"])
