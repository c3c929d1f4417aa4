"""The watcher's healing half: the run's policy for failed tasks (retry with backoff, escalate),
the verification gates (run by check_runner.py), launching what the watcher dispatched, and the
autopilot. A Healer is held
by console/runtime/watcher.py's Watcher and says what it did through the `act` callback; the
decisions themselves are headless (store/policy.py, store/autopilot.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orch_console.store import autopilot, dispatch, holds
from orch_console.store import runtime as rt
from orch_console.store import watcher_actions as wa
from orch_console.store.db import Store
from orch_console.store.errors import OrchError
from orch_console.store.policy import Settings, decide_failure
from orch_console.store.records import loads
from orch_console.store.validate import now_ts, parse_ts_or

from orch_console.console.runtime import check_runner, launcher

# What the healer says it did: (line, ring the bell).
Act = Callable[[str, bool], None]


class Healer:
    """Heals the runs a Watcher looks after, one pass at a time, on the Watcher's connection."""

    def __init__(self, store: Store, db_path: str, act: Act, *, autopilot: bool = False) -> None:
        """autopilot: run the autopilot on every run, not only those whose settings ask for it."""
        self.store = store
        self.db_path = db_path
        self.act = act
        self.autopilot = autopilot

    def _say(self, line: str, bell: bool = False) -> None:
        self.act(line, bell)

    def apply_policy(self, runs: dict[str, Settings]) -> None:
        """The failure policy of each run: schedule, retry (under the autopilot's cap), escalate."""
        now = time.time()
        for run_id, s in runs.items():
            capped = self.autopilot or s.autopilot
            in_flight = rt.in_flight_count(self.store, run_id) if capped else 0
            for a in rt.failed_latest_attempts(self.store, run_id):
                n = a["attempt_no"]
                key = f"retry:{run_id}:{a['task_id']}:a{n}"
                escalated = f"escalate:{run_id}:{a['task_id']}:a{n}"
                if wa.action_taken(self.store, key) or wa.action_taken(self.store, escalated):
                    continue
                d = decide_failure(attempt_no=n, end_reason=a["end_reason"], ended_at=parse_ts_or(a["ended_at"], 0.0),
                                   now=now, settings=s, launched=bool(a["runtime"]))
                try:
                    if d.action == "wait":
                        if rt.schedule_retry(self.store, run_id=run_id, task_id=a["task_id"], attempt_no=n,
                                             reason=d.reason, due_at=now_ts(d.due_at)):
                            self._say(f"retry scheduled: {a['task_id']}: {d.reason}")
                    elif d.action == "retry" and capped and in_flight >= s.concurrency:
                        # The autopilot's cap holds for its retries too; the retry takes the next free slot.
                        if wa.note_once(self.store, key=f"retry_wait:{run_id}:{a['task_id']}:a{n}", action="retry_wait",
                                        event_type="task_retry_waiting", run_id=run_id, task_id=a["task_id"],
                                        attempt_no=n, reason=f"{d.reason}; waits for a slot ({in_flight} in flight, "
                                                             f"cap {s.concurrency})"):
                            self._say(f"retry of {a['task_id']} waits for a slot (cap {s.concurrency})")
                    elif d.action == "retry":
                        in_flight += 1
                        action = wa.WatcherAction(key, "retry", event_type="task_auto_retried", run_id=run_id,
                                                  task_id=a["task_id"], attempt_no=n + 1, reason=d.reason)
                        dispatch.retry(self.store, run_id=run_id, task_id=a["task_id"], action=action)
                        self._say(f"retried {a['task_id']}: {d.reason}")
                        self._launch(run_id, a["task_id"], a["profile"] or s.profile, a["runtime"], s)
                    elif s.escalate:
                        if rt.flag_attention(self.store, run_id=run_id, task_id=a["task_id"], attempt_no=n,
                                             kind="escalate", reason=d.reason):
                            self._say(f"escalated {a['task_id']} to the leader: {d.reason}", bell=True)
                except wa.ActionAlreadyTaken:
                    continue
                except OrchError as exc:
                    self._say(f"could not heal {a['task_id']}: {exc.message}")

    # -- verification gates ------------------------------------------------------------------
    def run_gates(self, runs: dict[str, Settings]) -> None:
        """Tasks in `verifying`: run each pending check's command in a background thread, one check
        per task at a time, so the pass never waits for a check. Each run is claimed under an action
        key per (task, attempt, check); a claim whose runner died without a result (its watcher was
        killed) is taken over by a later generation, so no check is run twice while one runs."""
        for run_id, s in runs.items():
            by_task: dict[str, list[dict[str, Any]]] = {}
            for r in rt.pending_checks(self.store, run_id):
                by_task.setdefault(r["task_id"], []).append(r)
            for task_id, pending in by_task.items():
                required = loads(pending[0]["required_checks_json"], [])
                cmds = loads(pending[0]["check_cmds_json"], {})
                pending.sort(key=lambda c: required.index(c["name"]) if c["name"] in required else len(required))
                n = pending[0]["attempt_no"]
                runnable = [c for c in pending if cmds.get(c["name"])]
                for c in pending:
                    manual = f"check_manual:{run_id}:{task_id}:a{n}:{c['name']}"
                    if not cmds.get(c["name"]) and not wa.action_taken(self.store, manual):
                        wa.note_once(self.store, key=manual,
                                     action="check_manual", event_type="task_check_manual", run_id=run_id,
                                     task_id=task_id, attempt_no=n,
                                     reason=f"check {c['name']} has no command: record its result with "
                                            f"`orch verify record`")
                if runnable:
                    self._start_check(run_id, task_id, n, runnable[0]["name"], cmds[runnable[0]["name"]], s)

    def _start_check(self, run_id: str, task_id: str, n: int, name: str, command: str, s: Settings) -> None:
        generation = check_runner.start(self.store, self.db_path, run_id=run_id, task_id=task_id, attempt_no=n,
                                        name=name, command=command, timeout=s.check_timeout_seconds)
        if generation is not None:
            self._say(f"checking {task_id} attempt {n}: {name} (`{command}`)"
                      + (f", run {generation}: the earlier run died without a result" if generation > 1 else ""))

    def _profiles_confirmed(self, run_id: str, s: Settings) -> bool:
        """The watcher launches only with the agent profiles the leader confirmed for the run: the
        file as it was at the run's first launch (pinned then), or as confirmed since
        with `orch run config --run R --set profiles_sha=current`. A worker can write the file
        (its directory holds the database), so a changed file waits for the leader (issue 15)."""
        from orch_console.store import runs

        now = launcher.profiles_digest(self.db_path)
        if not s.profiles_sha:
            s_now = runs.run_show(self.store, run_id=run_id)["run"]["config"].get("profiles_sha")
            if not s_now:
                return True  # the run's first launch pins the file (launcher.launch)
            s = type(s).from_config({"profiles_sha": s_now})
        if s.profiles_sha == now:
            return True
        reason = (f"the agent profiles file {launcher.profiles_file(self.db_path)} changed since the leader "
                  f"confirmed it ({s.profiles_sha} -> {now}); the watcher launches nothing for {run_id} until "
                  f"the leader checks it and runs `orch run config --run {run_id} --set profiles_sha=current`")
        if wa.note_once(self.store, key=f"profiles_changed:{run_id}:{now}", action="profiles_changed",
                        event_type="profiles_changed", run_id=run_id, task_id="", attempt_no=None, reason=reason,
                        payload={"confirmed": s.profiles_sha, "now": now}) is not None:
            self._say(f"not launching for {run_id}: agent profiles changed; the leader must confirm", bell=True)
        return False

    def _held(self, run_id: str, task_id: str, profile: str, what: str) -> bool:
        """The profile is held (a usage limit, its API unreachable, a login needed: store/holds.py):
        nothing starts with it until the hold lifts. Said once per task and hold."""
        h = holds.active(self.store).get(profile) if profile else None
        if h is None:
            return False
        n = rt.next_attempt_no(self.store, run_id, task_id)
        until = f"until {h['until_at']}" if h["until_at"] else "until the leader releases it"
        reason = (f"{what} {task_id} waits: profile {profile} is held ({h['kind']}) {until}: {h['reason']}; "
                  f"`orch release --profile {profile}` lifts it")
        if wa.note_once(self.store, key=f"held:{run_id}:{task_id}:{profile}:{h['created_at']}", action="held_wait",
                        event_type="task_held_by_profile", run_id=run_id, task_id=task_id, attempt_no=n,
                        reason=reason, payload={"profile": profile, "kind": h["kind"], "until_at": h["until_at"]}):
            self._say(f"not starting {task_id}: profile {profile} is held ({h['kind']}) {until}")
        return True

    def _launch(self, run_id: str, task_id: str, profile: str, runtime: str, s: Settings) -> None:
        if not profile:
            return
        if not self._profiles_confirmed(run_id, s):
            return
        if self._held(run_id, task_id, profile, "launch of"):
            return
        try:
            out = launcher.launch(self.store, run_id=run_id, task_id=task_id, profile=profile,
                                  runtime=runtime or s.runtime or None)
            self._say(f"launched {task_id} attempt {out['attempt']['attempt_no']} with {out['profile']} "
                      f"({out['runtime']})")
        except OrchError as exc:
            self._say(f"could not launch {task_id}: {exc.message}")

    def launch_pending(self, runs: dict[str, Settings]) -> None:
        """Attempts this watcher created (retry, autopilot) whose launch did not happen, e.g. the
        watcher died in between, or the profile was at its parallel limit: launch them now."""
        for run_id, s in runs.items():
            for a in rt.unlaunched_attempts(self.store, run_id):
                queued = rt.queued_launch(self.store, run_id, a["task_id"], a["attempt_no"])
                if queued is not None:  # `dispatch --launch` found no free slot: launch it now if one is
                    self._launch(run_id, a["task_id"], queued["profile"], queued["runtime"], s)
                    continue
                mine = wa.action_taken(self.store, f"retry:{run_id}:{a['task_id']}:a{a['attempt_no'] - 1}") or \
                    wa.action_taken(self.store, f"dispatch:{run_id}:{a['task_id']}:a{a['attempt_no']}")
                if not mine:
                    continue
                profile = a["prev_profile"] or self._autopilot_profile(a, s)
                self._launch(run_id, a["task_id"], profile, a["prev_runtime"] or "", s)

    def _autopilot_profile(self, task: dict[str, Any], s: Settings) -> str:
        if s.profile:
            return s.profile
        to = task.get("default_to") or task.get("assigned_to") or ""
        try:
            return to if to in launcher.load_profiles(self.db_path) else ""
        except OrchError:
            return ""

    def run_autopilot(self, runs: dict[str, Settings]) -> None:
        """Dispatch (then launch) what each autopiloted run's selection picks."""
        from orch_console.console.runtime.landing import land_pass

        for run_id, s in runs.items():
            land_pass(self.store, run_id, s, self._say)  # issue 14: land first, then dispatch what it unblocked
            if not (self.autopilot or s.autopilot):
                continue
            sel = autopilot.select(self.store, run_id, s.concurrency)
            for h in sel["held"]:
                self._note_overlap_wait(run_id, h)
            picks = sel["picks"]
            if picks and s.profile:
                picks = picks[:self._profile_slots(s.profile, len(picks))]
            launches: list[tuple[str, str]] = []
            for p in picks:
                task = rt.task_row(self.store, run_id, p["task_id"])
                n = rt.next_attempt_no(self.store, run_id, p["task_id"])
                profile = self._autopilot_profile(task, s)
                if self._held(run_id, p["task_id"], profile, "autopilot: dispatch of"):
                    continue  # no worktree for a worker that could not start
                key = f"dispatch:{run_id}:{p['task_id']}:a{n}"
                if wa.action_taken(self.store, key):
                    continue  # another watcher (the console's, say) won this one a moment ago
                reason, payload = _dispatch_reason(p, sel["in_flight"])
                action = wa.WatcherAction(key, "dispatch", event_type="task_auto_dispatched", run_id=run_id,
                                          task_id=p["task_id"], attempt_no=n, reason=reason, payload=payload)
                try:
                    dispatch.dispatch(self.store, run_id=run_id, task_id=p["task_id"], execution_mode=s.mode(),
                                      to=task["default_to"] or profile or "worker", repo_path=s.repo_path or None,
                                      workspace_root=s.workspace_root or None, action=action)
                except wa.ActionAlreadyTaken:
                    continue
                except OrchError as exc:
                    self._say(f"autopilot could not dispatch {p['task_id']}: {exc.message}")
                    continue
                self._say(f"dispatched {p['task_id']} (wave {p['wave']}, slot {p['slot']}/{p['cap']}"
                          + (f", after {p['after']}" if p["after"] else "") + ")")
                launches.append((p["task_id"], profile))
            # Every pick is dispatched before any is launched: a launch never delays the next start.
            for task_id, profile in launches:
                self._launch(run_id, task_id, profile, "", s)

    def _note_overlap_wait(self, run_id: str, held: dict[str, Any]) -> None:
        """A ready task kept back by overlapping paths: said once per set of tasks it waits for."""
        others = [o["task_id"] for o in held["overlaps"]]
        n = rt.next_attempt_no(self.store, run_id, held["task_id"])
        key = autopilot.wait_key(run_id, held["task_id"], n, others)
        if wa.action_taken(self.store, key):
            return
        who = ", ".join(f"{o['task_id']} ({'picked this pass' if o['status'] == 'picked' else o['status']})"
                        for o in held["overlaps"])
        reason = f"autopilot: {held['task_id']} is ready but waits: its paths overlap {who}"
        if wa.note_once(self.store, key=key, action="overlap_wait", event_type="task_overlap_wait", run_id=run_id,
                        task_id=held["task_id"], attempt_no=n, reason=reason,
                        payload={"overlaps": others, "paths": held["paths"], "wave": held["wave"]}):
            self._say(f"holding {held['task_id']}: paths overlap {', '.join(others)}")

    def _profile_slots(self, profile: str, wanted: int) -> int:
        """How many more workers the profile's max_parallel allows (all runs count)."""
        try:
            prof = launcher.load_profiles(self.db_path).get(profile)
        except OrchError:
            return wanted
        if prof is None or not prof.max_parallel:
            return wanted
        running = rt.running_workers(self.store, profile)
        return max(0, min(wanted, prof.max_parallel - running))


def _dispatch_reason(p: dict[str, Any], in_flight: int) -> tuple[str, dict[str, Any]]:
    """Why the autopilot dispatched this task now: the event's summary and payload."""
    why = f"autopilot: {p['task_id']} ready " + (f"after {p['after']} finished" if p["after"] else "(no dependencies)")
    why += f"; wave {p['wave']}, priority {p['priority']}; slot {p['slot']} of cap {p['cap']}"
    why += (f"; waited for overlapping {', '.join(p['waited_for'])}" if p["waited_for"]
            else "; no in-flight task shares its paths")
    payload = {k: p[k] for k in ("wave", "priority", "paths", "slot", "cap", "after", "after_done_at", "ready_at",
                                 "waited_for")}
    return why, payload | {"in_flight_before": in_flight}
