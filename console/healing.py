"""The watcher's healing half: the run's policy for failed tasks (retry with backoff, escalate),
launching what the watcher dispatched, and the autopilot. A mixin of console/watcher.py's Watcher,
split out by feature; the decisions themselves are headless (store/policy.py, store/autopilot.py).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from store import runtime as rt
from store.errors import OrchError
from store.policy import Settings, decide_failure
from store.validate import now_ts, parse_ts

from . import launcher

if TYPE_CHECKING:
    from .watcher import TickResult


class HealingMixin:
    """Needs from the Watcher: db_path, autopilot, store, and _act(res, line, bell)."""

    db_path: str
    autopilot: bool
    store: Any
    _act: Any

    def _policy(self, runs: dict[str, Settings], res: TickResult) -> None:
        from store import dispatch

        now = time.time()
        for run_id, s in runs.items():
            failed = self.store.all(
                "SELECT a.* FROM tasks t JOIN attempts a ON a.run_id=t.run_id AND a.task_id=t.task_id AND"
                " a.attempt_no=(SELECT max(attempt_no) FROM attempts b WHERE b.run_id=t.run_id AND b.task_id=t.task_id)"
                " WHERE t.run_id=? AND t.status='failed' ORDER BY t.task_id", (run_id,))
            for a in map(dict, failed):
                n = a["attempt_no"]
                key = f"retry:{run_id}:{a['task_id']}:a{n}"
                if rt.action_taken(self.store, key) or rt.action_taken(self.store, f"escalate:{run_id}:{a['task_id']}:a{n}"):
                    continue
                d = decide_failure(attempt_no=n, end_reason=a["end_reason"], ended_at=parse_ts(a["ended_at"]),
                                   now=now, settings=s, launched=bool(a["runtime"]))
                try:
                    if d.action == "wait":
                        if rt.schedule_retry(self.store, run_id=run_id, task_id=a["task_id"], attempt_no=n,
                                             reason=d.reason, due_at=now_ts(d.due_at)):
                            self._act(res, f"retry scheduled: {a['task_id']}: {d.reason}")
                    elif d.action == "retry":
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

    def _launch(self, run_id: str, task_id: str, profile: str, runtime: str, res: TickResult,
                s: Settings) -> None:
        if not profile:
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
        from store import autopilot, dispatch

        for run_id, s in runs.items():
            if not (self.autopilot or s.autopilot):
                continue
            picks = autopilot.pick_ready(self.store, run_id, s.concurrency)
            if picks and s.profile:
                picks = picks[:self._profile_slots(s.profile, len(picks))]
            for p in picks:
                task = dict(self.store.one("SELECT * FROM tasks WHERE run_id=? AND task_id=?", (run_id, p["task_id"])))
                n = int(self.store.scalar("SELECT count(*) FROM attempts WHERE run_id=? AND task_id=?",
                                          (run_id, p["task_id"]))) + 1
                profile = self._autopilot_profile(task, s)
                reason = (f"autopilot: {p['task_id']} is ready (wave {p['wave']}, priority {p['priority']}), "
                          f"a slot is free under the cap of {s.concurrency} and no in-flight task shares its paths")
                if rt.action_taken(self.store, f"dispatch:{run_id}:{p['task_id']}:a{n}"):
                    continue  # another watcher (the console's, say) won this one a moment ago
                proxy = rt.with_action(self.store, f"dispatch:{run_id}:{p['task_id']}:a{n}", "dispatch",
                                       event_type="task_auto_dispatched", run_id=run_id, task_id=p["task_id"],
                                       attempt_no=n, reason=reason, payload={"wave": p["wave"], "paths": p["paths"]})
                try:
                    dispatch.dispatch(proxy, run_id=run_id, task_id=p["task_id"],  # type: ignore[arg-type]
                                      execution_mode=s.mode(), to=task["default_to"] or profile or "worker",
                                      repo_path=s.repo_path or None, workspace_root=s.workspace_root or None)
                except rt.ActionAlreadyTaken:
                    continue
                except OrchError as exc:
                    self._act(res, f"autopilot could not dispatch {p['task_id']}: {exc.message}")
                    continue
                self._act(res, f"dispatched {p['task_id']} (wave {p['wave']})")
                self._launch(run_id, p["task_id"], profile, "", res, s)

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
