"""Landing commands on `orch` (issue 14): `land`, `diff`, `rework`. Kept apart from orch.py, which
only registers them. Every handler is one store function."""

from __future__ import annotations

import argparse
from typing import Any

from .common import Context, add_body, body_of, command


def h_land(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import land
    from orch_console.store.errors import InvalidInput

    if args.pr:
        if args.dry_run or args.verify or args.strategy != "merge":
            raise InvalidInput("--pr opens a pull request; it takes no --dry-run, --verify or --strategy")
        from orch_console.store import land_pr

        return land_pr.open_pr(ctx.store, run_id=args.run, task_id=args.task, remote=args.remote)
    return land.land(ctx.store, run_id=args.run, task_id=args.task, strategy=args.strategy,
                     dry_run=args.dry_run, verify=args.verify)


def h_diff(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import land
    from orch_console.store.errors import InvalidInput

    if args.stat and args.name_only:
        raise InvalidInput("--stat and --name-only are mutually exclusive")
    mode = "stat" if args.stat else "name-only" if args.name_only else "patch"
    return land.diff(ctx.store, run_id=args.run, task_id=args.task, attempt_no=args.attempt, mode=mode)


def h_rework(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import land

    return land.rework(ctx.store, run_id=args.run, task_id=args.task, to=args.to, body=body_of(args))


def add_land_commands(sub: argparse._SubParsersAction) -> None:
    c = command(sub, "land", h_land, "land a done task whose checks passed into the run's land target "
                "(merge, squash or rebase, made with plumbing; the target moves by compare-and-swap); "
                "landing twice is a no-op; --pr pushes and opens a pull request instead")
    c.add_argument("--run", required=True)
    c.add_argument("--task", required=True)
    c.add_argument("--strategy", choices=["merge", "squash", "rebase"], default="merge",
                   help="merge commit (default), one squashed commit, or the attempt's commits replayed")
    c.add_argument("--dry-run", action="store_true", help="check everything (conflicts included) and change nothing")
    c.add_argument("--verify", action="store_true",
                   help="re-run the required checks on the landed result, in a temporary worktree, "
                        "before the target moves")
    c.add_argument("--pr", action="store_true", help="push the branch and open a pull request with gh")
    c.add_argument("--remote", default="origin", help="remote for --pr (default origin)")

    c = command(sub, "diff", h_diff, "an attempt's changes against the base it started from")
    c.add_argument("--run", required=True)
    c.add_argument("--task", required=True)
    c.add_argument("--attempt", type=int, help="attempt number (default: the latest)")
    c.add_argument("--stat", action="store_true", help="diffstat only")
    c.add_argument("--name-only", action="store_true", help="changed file names only")

    c = command(sub, "rework", h_rework, "send a done, unlanded task back as a new attempt on the land target's "
                "tip: its brief names the conflicting files and both sides, plus your review (--body); "
                "for an attempt still running, the review goes to its worker as a control reply")
    c.add_argument("--run", required=True)
    c.add_argument("--task", required=True)
    c.add_argument("--to", metavar="AGENT", help="worker (default: the previous attempt's)")
    add_body(c, "review comment / requested changes")
