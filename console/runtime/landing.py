"""The watcher's landing pass (issue 14): with `auto_land`, land what passed its gate in graph
order (which promotes what that unblocked, dispatched by the autopilot right after); with only a
land target set, check done tasks for conflicts so the leader sees them before merging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orch_console.store.errors import OrchError
from orch_console.store.policy import Settings


def land_pass(store: Any, run_id: str, s: Settings, act: Callable[[str, bool], None]) -> None:
    from orch_console.store import land

    if not (s.auto_land or s.land_target):
        return
    try:
        if s.auto_land:
            for r in land.auto_land(store, run_id, strategy=s.land_strategy, verify=s.land_verify):
                if r.get("landed") and not r.get("noop"):
                    ld = r["land"]
                    act(f"landed {ld['task_id']} into {ld['target']} at {ld['landed_commit'][:12]}", False)
                elif not r.get("landed"):
                    act(f"could not land {r['task_id']}: {r['error']}", "conflicts" in r["error"])
        else:
            for r in land.scan(store, run_id):
                if r["conflicts"]:
                    act(f"{r['task_id']} conflicts with {r['target']}: {', '.join(r['conflicts'])}", True)
    except OrchError as exc:
        act(f"could not land in {run_id}: {exc.message}", False)
