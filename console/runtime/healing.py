"""The watcher's healing half: the run's policy for failed tasks (retry with backoff, escalate),
launching what the watcher dispatched, and the autopilot. A mixin of console/watcher.py's Watcher,
split out by feature; the decisions themselves are headless (store/policy.py, store/autopilot.py).
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

from orch_console.store import runtime as rt
from orch_console.store.errors import OrchError
from orch_console.store.policy import Settings, decide_failure
from orch_console.store.records import loads
from orch_console.store.validate import now_ts, parse_ts_or

from orch_console.console.runtime import launcher

if TYPE_CHECKING:
    from orch_console.console.runtime.watcher import TickResult

# Checks running in this process: claim key -> the thread running it (shared by every Watcher in
# the process, so the console's engine and another Watcher never run one check twice).
_CHECKS: dict[str, threading.Thread] = {}
_CHECKS_LOCK = threading.Lock()
STALE_CHECK_GRACE = 60.0   # a claim held this long past its timeout by a live pid is taken over


class HealingMixin:
    """Needs from the Watcher: db_path, autopilot, store, and _act(res, line, bell)."""

    db_path: str
    autopilot: bool
    store: Any
    _act: Any

    def _policy(self, runs: dict[str, Settings], res: TickResult) -> None:
        from orch_console.store import dispatch

        now = time.time()
        for run_id, s in runs.items():
            capped = self.autopilot or s.autopilot
            in_flight = self._in_flight(run_id) if capped else 0
            failed = self.store.all(
                "SELECT a.* FROM tasks t JOIN attempts a ON a.run_id=t.run_id AND a.task_id=t.task_id AND"
                " a.attempt_no=(SELECT max(attempt_no) FROM attempts b WHERE b.run_id=t.run_id AND b.task_id=t.task_id)"
                " WHERE t.run_id=? AND t.status='failed' ORDER BY t.task_id", (run_id,))
            for a in map(dict, failed):
                n = a["attempt_no"]
                key = f"retry:{run_id}:{a['task_id']}:a{n}"
                if rt.action_taken(self.store, key) or rt.action_taken(self.store, f"escalate:{run_id}:{a['task_id']}:a{n}"):
                    continue
                d = decide_failure(attempt_no=n, end_reason=a["end_reason"], ended_at=parse_ts_or(a["ended_at"], 0.0),
                                   now=now, settings=s, launched=bool(a["runtime"]))
                try:
                    if d.action == "wait":
                        if rt.schedule_retry(self.store, run_id=run_id, task_id=a["task_id"], attempt_no=n,
                                             reason=d.reason, due_at=now_ts(d.due_at)):
                            self._act(res, f"retry scheduled: {a['task_id']}: {d.reason}")
                    elif d.action == "retry" and capped and in_flight >= s.concurrency:
                        # The autopilot's cap holds for its retries too; the retry takes the next free slot.
                        if rt.note_once(self.store, key=f"retry_wait:{run_id}:{a['task_id']}:a{n}", action="retry_wait",
                                        event_type="task_retry_waiting", run_id=run_id, task_id=a["task_id"],
                                        attempt_no=n, reason=f"{d.reason}; waits for a slot ({in_flight} in flight, "
                                                             f"cap {s.concurrency})"):
                            self._act(res, f"retry of {a['task_id']} waits for a slot (cap {s.concurrency})")
                    elif d.action == "retry":
                        in_flight += 1
                        proxy = rt.with_action(self.store, key, "retry", event_type="task_auto_retried",
                                               run_id=run_id, task_id=a["task_id"], attempt_no=n + 1, reason=d.reason)
                        dispatch.retry(proxy, run_id=run_id, task_id=a["task_id"])  # type: ignore[arg-type]
                        self._act(res, f"retried {a['task_id']}: {d.reason}")
                        self._launch(run_id, a["task_id"], a["profile"] or s.profile, a["runtime"], res, s)
                    elif s.escalate:
                        if rt.flag_attention(self.store, run_id=run_id, task_id=a["task_id"], attempt_no=n,
                                             kind="escalate", reason=d.reason):
                            self._act(res, f"escalated {a['task_id']} to the leader: {d.reason}", bell=True)
                except rt.ActionAlreadyTaken:
                    continue
                except OrchError as exc:
                    self._act(res, f"could not heal {a['task_id']}: {exc.message}")

    # -- verification gates ------------------------------------------------------------------
    def _gates(self, runs: dict[str, Settings], res: TickResult) -> None:
        """Tasks in `verifying`: run each pending check's command in a background thread, one check
        per task at a time, so the pass never waits for a check. Each run is claimed under an action
        key per (task, attempt, check); a claim whose runner died without a result (its watcher was
        killed) is taken over by a later generation, so no check is run twice while one runs."""
        for run_id, s in runs.items():
            pending = self.store.all(
                "SELECT t.task_id, t.check_cmds_json, t.required_checks_json, c.attempt_no, c.name, c.status"
                " FROM tasks t JOIN checks c ON c.run_id=t.run_id AND c.task_id=t.task_id WHERE t.run_id=? AND"
                " t.status='verifying' AND c.status IN ('pending','running') AND c.attempt_no=(SELECT"
                " max(attempt_no) FROM attempts a WHERE a.run_id=t.run_id AND a.task_id=t.task_id)"
                " ORDER BY t.task_id", (run_id,))
            by_task: dict[str, list[Any]] = {}
            for r in pending:
                by_task.setdefault(r["task_id"], []).append(r)
            for task_id, checks in by_task.items():
                required = loads(checks[0]["required_checks_json"], [])
                cmds = loads(checks[0]["check_cmds_json"], {})
                checks.sort(key=lambda c: required.index(c["name"]) if c["name"] in required else len(required))
                n = checks[0]["attempt_no"]
                runnable = [c for c in checks if cmds.get(c["name"])]
                for c in checks:
                    manual = f"check_manual:{run_id}:{task_id}:a{n}:{c['name']}"
                    if not cmds.get(c["name"]) and not rt.action_taken(self.store, manual):
                        rt.note_once(self.store, key=manual,
                                     action="check_manual", event_type="task_check_manual", run_id=run_id,
                                     task_id=task_id, attempt_no=n,
                                     reason=f"check {c['name']} has no command: record its result with "
                                            f"`orch verify record`")
                if runnable:
                    self._start_check(run_id, task_id, n, runnable[0]["name"], cmds[runnable[0]["name"]], s, res)

    def _start_check(self, run_id: str, task_id: str, n: int, name: str, command: str, s: Settings,
                     res: TickResult) -> None:
        claims = rt.check_claims(self.store, run_id, task_id, n, name)
        if claims and not self._claim_dead(claims[-1], s):
            return  # running (here or in another watcher): one check per task at a time
        key = rt.check_key(run_id, task_id, n, name, len(claims) + 1)
        t = threading.Thread(target=_run_check, args=(self.db_path, run_id, task_id, n, name,
                                                      s.check_timeout_seconds, key),
                             name=f"orch-check-{task_id}-{name}", daemon=True)
        with _CHECKS_LOCK:  # registered before the claim commits: no other pass here sees it ownerless
            _CHECKS[key] = t
        claimed = None
        try:
            claimed = rt.claim_check(self.store, run_id=run_id, task_id=task_id, attempt_no=n, name=name,
                                     command=command, timeout=s.check_timeout_seconds,
                                     generation=len(claims) + 1)
        finally:
            if claimed is None:
                with _CHECKS_LOCK:
                    _CHECKS.pop(key, None)
        if claimed is None:
            return
        t.start()
        self._act(res, f"checking {task_id} attempt {n}: {name} (`{command}`)"
                       + (f", run {len(claims) + 1}: the earlier run died without a result" if claims else ""))

    @staticmethod
    def _claim_dead(claim: dict[str, Any], s: Settings) -> bool:
        """Did the run holding this claim die without recording a result?"""
        with _CHECKS_LOCK:
            t = _CHECKS.get(claim["action_key"])
        if t is not None and (t.ident is None or t.is_alive()):
            return False  # starting or running in this process
        pid = claim["owner_pid"]
        if not pid or pid == os.getpid():
            return True  # ours, and no thread runs it any more
        if not launcher.pid_alive(pid):
            return True
        return time.time() - parse_ts_or(claim["created_at"], 0.0) > s.check_timeout_seconds + STALE_CHECK_GRACE

    def _in_flight(self, run_id: str) -> int:
        from orch_console.store.autopilot import IN_FLIGHT

        return int(self.store.scalar(f"SELECT count(*) FROM tasks WHERE run_id=? AND status IN"
                                     f" ({','.join('?' * len(IN_FLIGHT))})", (run_id, *IN_FLIGHT)))

    def _profiles_confirmed(self, run_id: str, s: Settings, res: TickResult) -> bool:
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
        if rt.note_once(self.store, key=f"profiles_changed:{run_id}:{now}", action="profiles_changed",
                        event_type="profiles_changed", run_id=run_id, task_id="", attempt_no=None, reason=reason,
                        payload={"confirmed": s.profiles_sha, "now": now}) is not None:
            self._act(res, f"not launching for {run_id}: agent profiles changed; the leader must confirm", bell=True)
        return False

    def _launch(self, run_id: str, task_id: str, profile: str, runtime: str, res: TickResult,
                s: Settings) -> None:
        if not profile:
            return
        if not self._profiles_confirmed(run_id, s, res):
            return
        try:
            out = launcher.launch(self.store, run_id=run_id, task_id=task_id, profile=profile,
                                  runtime=runtime or s.runtime or None)
            self._act(res, f"launched {task_id} attempt {out['attempt']['attempt_no']} with {out['profile']} "
                           f"({out['runtime']})")
        except OrchError as exc:
            self._act(res, f"could not launch {task_id}: {exc.message}")

    def _launch_pending(self, runs: dict[str, Settings], res: TickResult) -> None:
        """Attempts this watcher created (retry, autopilot) whose launch did not happen, e.g. the
        watcher died in between, or the profile was at its parallel limit: launch them now."""
        for run_id, s in runs.items():
            rows = self.store.all(
                "SELECT a.*, (SELECT p.profile FROM attempts p WHERE p.run_id=a.run_id AND p.task_id=a.task_id"
                " AND p.attempt_no=a.attempt_no-1) AS prev_profile, (SELECT p.runtime FROM attempts p WHERE"
                " p.run_id=a.run_id AND p.task_id=a.task_id AND p.attempt_no=a.attempt_no-1) AS prev_runtime"
                " FROM attempts a WHERE a.run_id=? AND a.runtime='' AND a.status='pending'", (run_id,))
            for a in map(dict, rows):
                queued = rt.queued_launch(self.store, run_id, a["task_id"], a["attempt_no"])
                if queued is not None:  # `dispatch --launch` found no free slot: launch it now if one is
                    self._launch(run_id, a["task_id"], queued["profile"], queued["runtime"], res, s)
                    continue
                mine = rt.action_taken(self.store, f"retry:{run_id}:{a['task_id']}:a{a['attempt_no'] - 1}") or \
                    rt.action_taken(self.store, f"dispatch:{run_id}:{a['task_id']}:a{a['attempt_no']}")
                if not mine:
                    continue
                profile = a["prev_profile"] or self._autopilot_profile(a, s)
                self._launch(run_id, a["task_id"], profile, a["prev_runtime"] or "", res, s)

    def _autopilot_profile(self, task: dict[str, Any], s: Settings) -> str:
        if s.profile:
            return s.profile
        to = task.get("default_to") or task.get("assigned_to") or ""
        try:
            return to if to in launcher.load_profiles(self.db_path) else ""
        except OrchError:
            return ""

    def _autopilot(self, runs: dict[str, Settings], res: TickResult) -> None:
        from orch_console.store import autopilot, dispatch

        for run_id, s in runs.items():
            if not (self.autopilot or s.autopilot):
                continue
            sel = autopilot.select(self.store, run_id, s.concurrency)
            for h in sel["held"]:
                self._note_overlap_wait(run_id, h, res)
            picks = sel["picks"]
            if picks and s.profile:
                picks = picks[:self._profile_slots(s.profile, len(picks))]
            launches: list[tuple[str, str]] = []
            for p in picks:
                task = dict(self.store.one("SELECT * FROM tasks WHERE run_id=? AND task_id=?", (run_id, p["task_id"])))
                n = self._next_attempt_no(run_id, p["task_id"])
                profile = self._autopilot_profile(task, s)
                key = f"dispatch:{run_id}:{p['task_id']}:a{n}"
                if rt.action_taken(self.store, key):
                    continue  # another watcher (the console's, say) won this one a moment ago
                reason, payload = _dispatch_reason(p, sel["in_flight"])
                proxy = rt.with_action(self.store, key, "dispatch", event_type="task_auto_dispatched", run_id=run_id,
                                       task_id=p["task_id"], attempt_no=n, reason=reason, payload=payload)
                try:
                    dispatch.dispatch(proxy, run_id=run_id, task_id=p["task_id"],  # type: ignore[arg-type]
                                      execution_mode=s.mode(), to=task["default_to"] or profile or "worker",
                                      repo_path=s.repo_path or None, workspace_root=s.workspace_root or None)
                except rt.ActionAlreadyTaken:
                    continue
                except OrchError as exc:
                    self._act(res, f"autopilot could not dispatch {p['task_id']}: {exc.message}")
                    continue
                self._act(res, f"dispatched {p['task_id']} (wave {p['wave']}, slot {p['slot']}/{p['cap']}"
                               + (f", after {p['after']}" if p["after"] else "") + ")")
                launches.append((p["task_id"], profile))
            # Every pick is dispatched before any is launched: a launch never delays the next start.
            for task_id, profile in launches:
                self._launch(run_id, task_id, profile, "", res, s)

    def _next_attempt_no(self, run_id: str, task_id: str) -> int:
        return int(self.store.scalar("SELECT count(*) FROM attempts WHERE run_id=? AND task_id=?",
                                     (run_id, task_id))) + 1

    def _note_overlap_wait(self, run_id: str, held: dict[str, Any], res: TickResult) -> None:
        """A ready task kept back by overlapping paths: said once per set of tasks it waits for."""
        from orch_console.store import autopilot

        others = [o["task_id"] for o in held["overlaps"]]
        n = self._next_attempt_no(run_id, held["task_id"])
        key = autopilot.wait_key(run_id, held["task_id"], n, others)
        if rt.action_taken(self.store, key):
            return
        who = ", ".join(f"{o['task_id']} ({'picked this pass' if o['status'] == 'picked' else o['status']})"
                        for o in held["overlaps"])
        reason = f"autopilot: {held['task_id']} is ready but waits: its paths overlap {who}"
        if rt.note_once(self.store, key=key, action="overlap_wait", event_type="task_overlap_wait", run_id=run_id,
                        task_id=held["task_id"], attempt_no=n, reason=reason,
                        payload={"overlaps": others, "paths": held["paths"], "wave": held["wave"]}):
            self._act(res, f"holding {held['task_id']}: paths overlap {', '.join(others)}")

    def _profile_slots(self, profile: str, wanted: int) -> int:
        """How many more workers the profile's max_parallel allows (all runs count)."""
        try:
            prof = launcher.load_profiles(self.db_path).get(profile)
        except OrchError:
            return wanted
        if prof is None or not prof.max_parallel:
            return wanted
        running = int(self.store.scalar("SELECT count(*) FROM attempts WHERE profile=? AND runtime<>'' AND status IN"
                                        " ('pending','claimed','in_progress','blocked')", (profile,)))
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


def _run_check(db_path: str, run_id: str, task_id: str, attempt_no: int, name: str, timeout: float,
               key: str) -> None:
    """One check, in its own thread and on its own connection; a check that cannot run is
    recorded as failed (with why), never left pending."""
    from orch_console.store import checks, verify
    from orch_console.store.db import Store

    store = None
    try:
        store = Store(db_path)
        try:
            checks.verify_run(store, run_id=run_id, task_id=task_id, timeout=timeout, only_pending=True,
                              names=[name], attempt_no=attempt_no)
        except Exception as exc:  # noqa: BLE001 - anything that stops the check is its result
            why = exc.message if isinstance(exc, OrchError) else f"{type(exc).__name__}: {exc}"
            try:
                if rt.get_attempt(store, run_id, task_id)["attempt_no"] == attempt_no:
                    verify.verify_record(store, run_id=run_id, task_id=task_id, name=name, status="failed",
                                         summary=f"could not run: {why}"[:500], output=why)
            except Exception:  # noqa: BLE001 - the database itself is gone: the claim goes stale
                pass
    finally:
        if store is not None:
            store.close()
        with _CHECKS_LOCK:
            _CHECKS.pop(key, None)
