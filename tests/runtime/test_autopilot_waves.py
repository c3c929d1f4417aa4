"""Autopilot over real sim workers driven by a real `orch watch --autopilot` process: the cap, the
path overlaps, and how soon a task starts once its last blocker is done (measured from events)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from orch_console.store.plan import paths_overlap
from orch_console.store.validate import parse_ts
from tests.conftest import ORCH
from tests.runtime.conftest import Rig, until

CAP = 2
TICK = 1.0  # the watcher's timer: liveness_interval_seconds below (its poll granularity is 0.25 s)

# task, paths, deps; priority = wave, so a task freed by its blocker ranks first among the ready.
DAG: list[tuple[str, list[str], list[str]]] = [
    ("a1", ["src/core"], []), ("a2", ["src/api"], []), ("a3", ["docs"], []),
    ("a4", ["src/core/util.py"], []),                          # overlaps a1
    ("b1", ["src/api/v2"], ["a1"]),                            # overlaps a2
    ("b2", ["web"], ["a3"]), ("b3", ["lib"], ["a2", "a4"]),
    ("c1", ["src/*.py"], ["b1", "b2"]),                        # overlaps every src/ task
    ("c2", ["lib/x.py"], ["b3"]), ("c3", ["web/index.html"], ["b2"]),
]


def _live_at(spans: dict[str, tuple[float, float]], t: float) -> set[str]:
    return {k for k, (s, e) in spans.items() if s <= t < e}


def test_autopilot_cap_overlaps_and_start_within_one_tick(rig: Rig) -> None:
    from orch_console.store import runs

    waves = {"a": 0, "b": 1, "c": 2}
    rig.run(autopilot=True, concurrency=CAP, profile="sim", execution_mode="code", liveness_interval_seconds=TICK,
            worker_env={"ORCH_SIM_STEP_SECONDS": "0.15", "ORCH_SIM_LEASE_SECONDS": "10"})
    for tid, paths, _ in DAG:
        rig.task(tid, "progress*2,done", paths=paths, priority=waves[tid[0]])
    for tid, _, deps in DAG:
        for d in deps:
            runs.dep_add(rig.store, run_id=rig.run_id, task_id=tid, depends_on=d)
    watch = subprocess.Popen([ORCH, "--db", rig.store.path, "watch", "--run", rig.run_id, "--autopilot"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        until(lambda: rig.store.scalar("SELECT status FROM runs WHERE run_id=?", (rig.run_id,)) == "done",
              timeout=120, interval=0.2)
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        try:
            watch.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(watch.pid, signal.SIGKILL)
            watch.wait()

    attempts = [dict(a) for a in rig.store.all("SELECT * FROM attempts WHERE run_id=?", (rig.run_id,))]
    assert len(attempts) == 10 and all(a["end_reason"] == "succeeded" for a in attempts)
    spans = {a["task_id"]: (parse_ts(a["started_at"]), parse_ts(a["ended_at"])) for a in attempts}
    paths = {tid: p for tid, p, _ in DAG}

    # 1. Never more than CAP live at once: sweep every start.
    max_live = max(len(_live_at(spans, s)) for s, _ in spans.values())
    assert max_live <= CAP
    assert max_live == CAP  # the cap was reached, so it was what held tasks back

    # 2. Never two live tasks with overlapping paths.
    for x, (sx, ex) in spans.items():
        for y, (sy, ey) in spans.items():
            if x < y and sx < ey and sy < ex:
                assert not paths_overlap(paths[x], paths[y]), (x, y)

    # 3. Start within one tick of the last blocker's task_done, whenever a slot was free and
    #    nothing better ranked took it: replay the spec at each task_done and check the watcher.
    ev = [dict(e) for e in rig.store.all("SELECT event_type, task_id, created_at, payload_json FROM events WHERE"
                                         " run_id=? ORDER BY event_id", (rig.run_id,))]
    done_at = {e["task_id"]: parse_ts(e["created_at"]) for e in ev if e["event_type"] == "task_done"}
    disp_at = {e["task_id"]: parse_ts(e["created_at"]) for e in ev if e["event_type"] == "task_dispatched"}
    deps = {tid: d for tid, _, d in DAG}
    prio = {tid: waves[tid[0]] for tid, _, _ in DAG}
    order = [tid for tid, _, _ in DAG]
    measured: list[tuple[str, str, float]] = []
    for blocker, t in sorted(done_at.items(), key=lambda kv: kv[1]):
        live = {k for k in _live_at(spans, t) if k != blocker}
        ready = [k for k in order if disp_at[k] > t and all(done_at.get(d, 1e18) <= t for d in deps[k])]
        ready.sort(key=lambda k: (-prio[k], order.index(k)))
        holders = [paths[k] for k in live]
        free = CAP - len(live)
        for k in ready:
            if free <= 0:
                break
            if any(paths_overlap(paths[k], h) for h in holders):
                continue
            free -= 1
            holders.append(paths[k])
            if deps[k] and max(done_at[d] for d in deps[k]) == t:  # this done freed it
                measured.append((k, blocker, disp_at[k] - t))
    assert len(measured) >= 2, measured
    worst = max(d for _, _, d in measured)
    assert worst <= TICK, measured
    # The dispatch event says why: the blocker that finished last, its slot, the cap.
    why = {e["task_id"]: json.loads(e["payload_json"]) for e in ev if e["event_type"] == "task_auto_dispatched"}
    for k, blocker, _ in measured:
        assert why[k]["after"] == blocker and why[k]["cap"] == CAP and 1 <= why[k]["slot"] <= CAP
    # Overlap holds were said once per set of holders, never every pass.
    holds = [(e["task_id"], tuple(json.loads(e["payload_json"])["overlaps"])) for e in ev
             if e["event_type"] == "task_overlap_wait"]
    assert len(holds) == len(set(holds))
    _report(max_live, measured, holds, why)


def _report(max_live: int, measured: list[tuple[str, str, float]], holds: list[Any], why: dict[str, Any]) -> None:
    out = Path(os.environ.get("ORCH_TEST_FIGURES", "/dev/null"))
    lines = [f"max live {max_live} (cap {CAP}); start after last blocker (tick {TICK}s): "
             + ", ".join(f"{k}<-{b} {d * 1000:.0f}ms" for k, b, d in measured),
             f"holds: {holds}", "waited_for: " + str({k: v["waited_for"] for k, v in why.items() if v["waited_for"]})]
    with open(out, "a") as f:
        f.write("\n".join(lines) + "\n")


def test_a_commit_during_a_pass_wakes_the_next_pass(rig: Rig) -> None:
    """Lost wake-up: a worker's commit that lands while a pass runs must not wait for the timer."""
    import time

    from orch_console.console.runtime.watcher import Watcher
    from orch_console.store import Store, runs

    rig.run()
    w = Watcher(rig.store.path, rig.run_id)
    other = Store(rig.store.path)
    try:
        w.tick()
        real = w._checkpoint

        def commit_mid_pass() -> None:  # another process's write, while this pass runs
            runs.task_add(other, run_id=rig.run_id, task_id=f"t{time.monotonic_ns()}", title="x")
            real()

        w._checkpoint = commit_mid_pass  # type: ignore[method-assign]
        w.tick()
        w._checkpoint = real  # type: ignore[method-assign]
        first = w.last_tick
        w._next_liveness = time.time() + 3600  # the timer is far away: only a change can wake it
        w._wake(True)
        assert w.last_tick is not first  # the mid-pass commit was seen, so the wake ran a pass
        again = w.last_tick
        w._wake(True)
        assert w.last_tick is again  # and with nothing new, a wake does not pass again
    finally:
        other.close()
        w.close()
