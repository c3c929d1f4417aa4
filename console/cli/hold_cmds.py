"""Profile holds on `orch` (issue 12, item 8): `orch holds` lists the agent profiles that take no
new work (a usage limit, an unreachable API, a login problem read from a worker's screen), and
`orch release --profile P` lifts one (the leader raised the limit, the network is back).

The holds themselves are store/holds.py; the watcher sets them and the autopilot respects them
(console/runtime/watcher.py, healing.py). Kept apart from orch.py, which only registers them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import Context, command


def h_holds(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import holds

    now_held = holds.active(ctx.store)
    rows = [{**h, "remaining_seconds": holds.remaining(h)} for h in now_held.values()]
    data = {"holds": rows}
    if ctx.json:
        return data
    if not rows:
        sys.stdout.write("no profile is held: the autopilot and the watcher launch every profile\n")
        raise SystemExit(0)
    out = ["held profiles (the autopilot and the watcher start no new work with them):"]
    for h in rows:
        left = h["remaining_seconds"]
        until = f"until {h['until_at']} ({left:.0f}s)" if left is not None else "until released"
        where = f" [{h['run_id']}/{h['task_id']} attempt {h['attempt_no']}]" if h["task_id"] else ""
        out.append(f"  {h['profile']:20} {h['kind']:12} {until}{where}")
        out.append(f"      {h['reason']}")
    out.append("release one with: orch release --profile NAME")
    sys.stdout.write("\n".join(out) + "\n")
    raise SystemExit(0)


def h_release(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import holds
    from orch_console.store.dispatch import leader_name

    data = holds.release(ctx.store, profile=args.profile, by=leader_name())
    if ctx.json:
        return data
    was = data["released"]
    sys.stdout.write(f"released {was['profile']} (was held: {was['kind']}: {was['reason']})\n")
    raise SystemExit(0)


def add_hold_commands(sub: argparse._SubParsersAction) -> None:
    command(sub, "holds", h_holds, "agent profiles held by the watcher (usage limit, API unreachable, login "
                                   "needed): the autopilot starts no new work with them until the reset time "
                                   "or `orch release`")
    c = command(sub, "release", h_release, "lift a profile's hold: the autopilot and the watcher launch it again "
                                           "(an event records who released it)")
    c.add_argument("--profile", required=True, metavar="NAME", help="the held profile (not held: exit 40)")
