"""The watcher: wakes on every change of the database (and its WAL) and on a timer, folds what
changed, judges every running attempt's liveness, and heals within the run's bounds.

One engine for `orch watch` (run_forever) and the console (which calls tick() from a thread).
The decisions are headless (store/liveness.py, store/policy.py, store/autopilot.py); this module
gathers the facts that need IO (tmux panes, processes, worktree writes, git commits) and records
every action through store/runtime.py, each under a unique key in the same transaction as the
action, so a watcher restarted after SIGKILL never repeats one. The healing half (policy, gates,
launches, autopilot) is the Healer it holds (console/runtime/healing.py).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orch_console.console.runtime import agents, launcher, procs, screen_judge
from orch_console.console.runtime.healing import Healer
from orch_console.store import deliveries, holds, inbox, views, watch_memory
from orch_console.store import runtime as rt
from orch_console.store import watcher_actions as wa
from orch_console.store.db import Store
from orch_console.store.errors import OrchError
from orch_console.store.liveness import Facts, Verdict, judge, screen_signature
from orch_console.store.policy import Settings
from orch_console.store.sanitize import one_line
from orch_console.store.states import ENDING_LIVENESS, STOP_REASONS, THREAD_END_EVENTS, EndReason
from orch_console.store.validate import MAX_LEASE_SECONDS, now_ts, parse_ts, parse_ts_or

WAL_CHECKPOINT_BYTES = 64 * 1024 * 1024
SCREEN_POLL_SECONDS = 0.5  # the quick look at tmux screens between liveness passes
SESSION_LINGER_SECONDS = 5.0  # an ended attempt's session stays this long for its last output
POLL_MS = 250          # fallback: data_version poll and timer resolution
WORKTREE_SCAN_LIMIT = 5000
RECONCILE_EVENTS = 5000
# A crashed process worker is gone already; the others may still run and are stopped.
_PROCESS_STOP_REASONS = tuple(r for r in STOP_REASONS if r != EndReason.CRASHED)


@dataclass
class TickResult:
    events: int = 0
    cursor: int = 0
    actions: list[str] = field(default_factory=list)
    bells: int = 0
    reconciled_at: float = 0.0
    liveness_checked: bool = False


class Watcher:
    def __init__(self, db_path: str, run_id: str | None = None, *, autopilot: bool = False,
                 on_action: Callable[[str, bool], None] | None = None) -> None:
        self.db_path = str(db_path)
        self.run_id = run_id
        self.autopilot = autopilot
        self.scope = run_id or "*"
        self.on_action = on_action
        self.store = Store(self.db_path)
        self.healer = Healer(self.store, self.db_path, self._act, autopilot=autopilot)
        self._lock = threading.RLock()
        self._res = TickResult()   # the pass in progress: what _act records into
        self._cursor = wa.cursor(self.store, self.scope)
        # What earlier passes saw of each live attempt; loaded from the store for attempts this
        # process has not seen yet (a restart, or `orch watch --once`), saved when it changes.
        self._memo: dict[str, watch_memory.Memory] = {}
        self._repos: dict[str, Any] = {}
        self._next_liveness = 0.0
        self._judge_now = False    # an event asks for a liveness pass at once (a hook, a launch)
        self._dv = -1
        self._swept = False
        self._said: set[str] = set()
        self._agents: dict[str, str] = {}       # profile name -> the known agent its command runs
        self._profiles_digest = ""
        self._screens: dict[str, screen_judge.ScreenRead] = {}  # the last reading of each tmux worker
        self._exits: dict[str, screen_judge.ScreenRead] = {}    # why each headless agent exited
        self._next_screen = 0.0
        self._released: set[tuple[str, str]] = set()  # (thread, kind) sightings the leader released
        self.last_tick: TickResult | None = None
        self.on_reconciled: Callable[[int, float], None] | None = None

    # -- the pass ----------------------------------------------------------------------------
    def tick(self, *, force_liveness: bool = False) -> TickResult:
        """One full pass. Safe to call from any thread; passes never overlap."""
        with self._lock:
            res = self._res = TickResult()
            # Read before the pass reads anything: a commit by another connection during the pass
            # moves data_version past this, so the next wake ticks again instead of sleeping on it.
            dv = self.store.data_version()
            now = time.time()
            runs = self._runs()
            self._reconcile(res)
            self._expire_leases()
            woken, self._judge_now = self._judge_now, False  # (a forced pass answers it too)
            if force_liveness or now >= self._next_liveness or woken or self._screen_turned(now):
                self._liveness(runs, res)
                interval = min((s.liveness_interval_seconds for s in runs.values()), default=2.0)
                self._next_liveness = time.time() + interval
            self.healer.run_gates(runs)
            self.healer.apply_policy(runs)
            self.healer.launch_pending(runs)
            self.healer.run_autopilot(runs)
            self._checkpoint()
            if res.cursor > self._cursor:
                wa.save_cursor(self.store, self.scope, res.cursor, os.getpid())
                self._cursor = res.cursor
            self._dv = dv
            self.last_tick = res
            return res

    def next_due(self) -> float:
        """When the next pass has something to do without a database change: the liveness timer,
        or the quick look at tmux screens while any tmux worker runs."""
        return min(self._next_liveness, self._next_screen) if self._screens else self._next_liveness

    def _screen_turned(self, now: float) -> bool:
        """A quick look between liveness passes (every SCREEN_POLL_SECONDS while tmux workers
        run): capture each tmux worker's screen and say whether one turned to a question, a menu
        or an error, so the full pass (and the leader's attention flag) follows at once instead
        of at the next liveness interval. A known agent's menu or field whose words are those of
        the last pass's reading, on a screen that changed since, is a new prompt too: the next
        permission menu after the leader answered one reads the same ("Do you want to proceed?
        [1. Yes ..."). (A generic prompt on a changed screen waits for a still screen anyway.)"""
        if not self._screens or now < self._next_screen:
            return False
        self._next_screen = now + SCREEN_POLL_SECONDS
        turned = False
        for a in rt.live_attempts(self.store, self.run_id):
            last = self._screens.get(a["thread_id"])
            if a["runtime"] != "tmux" or not a["runtime_ref"] or last is None:
                continue
            output = launcher.capture(self.db_path, a, lines=60)
            r = screen_judge.read(output, self._agent_of(a), claimed=a["thread_status"] != "pending")
            if r.pane_state not in ("waiting_input", "error"):
                continue
            if (r.pane_state, r.line) != (last.pane_state, last.line):
                turned = True
            elif r.settled:
                memo = self._memo.get(a["thread_id"])
                turned = turned or memo is None or memo.output_hash != _screen_hash(output)
        return turned

    def _refresh_agents(self) -> None:
        """Which known agent each profile runs (re-read when the profiles file changes)."""
        digest = launcher.profiles_digest(self.db_path)
        if digest == self._profiles_digest:
            return
        try:
            profiles = launcher.load_profiles(self.db_path)
        except OrchError:  # a malformed file: the built-in profiles still say which agent is which
            profiles = {**launcher.BUILTIN, **agents.builtin_profiles()}
        self._agents = {name: agents.agent_of(p.command) for name, p in profiles.items()}
        self._profiles_digest = digest

    def _reading(self, thread_id: str) -> screen_judge.ScreenRead | None:
        return self._screens.get(thread_id) or self._exits.get(thread_id)

    def _agent_of(self, a: dict[str, Any]) -> str:
        return self._agents.get(a.get("profile") or "", "")

    def _runs(self) -> dict[str, Settings]:
        return {run_id: Settings.from_config(cfg) for run_id, cfg in rt.watched_runs(self.store, self.run_id).items()}

    def _act(self, line: str, bell: bool = False) -> None:
        """Say what this pass did (the healer says it through here too)."""
        res = self._res
        if line.startswith(("could not", "autopilot could not")):
            # A refusal that persists (a profile at its parallel limit) is said once, not every pass.
            if line in self._said:
                return
            self._said.add(line)
        res.actions.append(line)
        if bell:
            res.bells += 1
        if self.on_action is not None:
            try:
                self.on_action(line, bell)
            except Exception:  # a display callback must never stop the watcher
                pass

    def _reconcile(self, res: TickResult) -> set[str]:
        touched: set[str] = set()
        ended: list[str] = []
        cursor = self._cursor
        while True:
            events = wa.events_after(self.store, cursor, RECONCILE_EVENTS)
            if not events:
                break
            for e in events:
                if e["run_id"] and (self.run_id is None or e["run_id"] == self.run_id):
                    touched.add(e["run_id"])
                    if e["event_type"] in ("attempt_hook", "approval_requested", "attempt_launched"):
                        # an agent's hook spoke, or a worker started: judge it now (a new worker's
                        # screen is then quick-looked from its start, not from the next liveness
                        # interval: an agent may ask within a second of its launch)
                        self._judge_now = True
                    if e["event_type"] in THREAD_END_EVENTS and e["thread_id"]:
                        ended.append(e["thread_id"])
            res.events += len(events)
            cursor = events[-1]["event_id"]
            if len(events) < RECONCILE_EVENTS:
                break
        for run_id in sorted(touched):
            try:
                views.reconcile(self.store, run_id=run_id, report=False)
            except OrchError:
                continue
        rt.clear_ended_liveness(self.store, ended[-500:])
        res.cursor = cursor
        res.reconciled_at = time.time()
        if self.on_reconciled is not None and res.events:
            self.on_reconciled(cursor, res.reconciled_at)
        return touched

    def _expire_leases(self) -> None:
        # expire_leases reads first and takes the write lock only when some lease really ran out.
        for t in inbox.expire_leases(self.store):
            if self.run_id is None or t["run_id"] == self.run_id:
                self._act(f"lease expired: {t['task_id'] or t['thread_id']} ({t['lease_owner']})")

    # -- liveness ----------------------------------------------------------------------------
    def _liveness(self, runs: dict[str, Settings], res: TickResult) -> None:
        res.liveness_checked = True
        live = [a for a in rt.live_attempts(self.store, self.run_id) if a["run_id"] in runs]
        if any(a["runtime"] for a in live):
            self._refresh_agents()
        panes = launcher.tmux_panes(self.db_path) if any(a["runtime"] == "tmux" for a in live) \
            or not self._swept else {}
        changes: list[tuple[str, str]] = []
        verdicts = []
        unseen = [a["thread_id"] for a in live if a["thread_id"] not in self._memo]
        if unseen:
            self._memo.update(watch_memory.load(self.store, unseen))
        before = {a["thread_id"]: self._memo[a["thread_id"]].key() for a in live if a["thread_id"] in self._memo}
        for a in live:
            # One row must never stop the pass for every run (issue 15, M1): a value the facts
            # cannot use is judged as unknown and said once as an event; anything else that
            # fails on this row skips it, said the same way.
            try:
                bad: list[tuple[str, str]] = []
                facts = self._facts(a, panes, bad)
                v = judge(facts, runs[a["run_id"]])
            except Exception as exc:  # noqa: BLE001 - skip the row, never the pass
                self._bad_row(a, "row", f"{type(exc).__name__}: {exc}")
                continue
            for column, value in bad:
                self._bad_row(a, column, value)
            if v.liveness and v.liveness != a["liveness"] and v.action not in ENDING_LIVENESS:
                changes.append((a["thread_id"], v.liveness))
            verdicts.append((a, v))
        # The liveness is written before any action it justifies (an attention flag, a nudge), so a
        # reader woken by the action's event already sees the liveness that explains it.
        rt.set_liveness(self.store, changes)
        watch_memory.save(self.store, {a["thread_id"]: self._memo[a["thread_id"]] for a in live
                                       if a["thread_id"] in self._memo
                                       and self._memo[a["thread_id"]].key() != before.get(a["thread_id"])})
        for a, v in verdicts:
            try:
                self._apply_verdict(a, v)
                self._hold_profile(a)
            except OrchError as exc:
                self._act(f"could not act on {a['task_id']}: {exc.message}")
        self._sweep(panes)
        self._deliver_answers(runs)
        live_ids = {a["thread_id"] for a in live}
        for tid in [t for t in self._memo if t not in live_ids]:
            self._memo.pop(tid, None)
        self._screens = {t: r for t, r in self._screens.items() if t in live_ids}
        self._exits = {t: r for t, r in self._exits.items() if t in live_ids}
        if self._screens and not self._next_screen:
            self._next_screen = time.time() + SCREEN_POLL_SECONDS
        watch_memory.forget_ended(self.store)
        for path in [p for p in self._repos if p not in {a["worktree_path"] for a in live}]:
            repo = self._repos.pop(path)
            if repo is not None:
                repo.close()

    def _bad_row(self, a: dict[str, Any], column: str, value: str) -> None:
        """Say once (per attempt, column and value) that the watcher could not use a value."""
        digest = hashlib.blake2b(value.encode("utf-8", "replace"), digest_size=6).hexdigest()
        reason = (f"{column} of {a['task_id']} attempt {a['attempt_no']} is unusable ({value[:200]!r}); "
                  f"judged without it")
        try:
            said = wa.note_once(self.store, key=f"bad_row:{a['run_id']}:{a['task_id']}:a{a['attempt_no']}:{column}:"
                                f"{digest}", action="bad_row", event_type="watcher_bad_row", run_id=a["run_id"],
                                task_id=a["task_id"], attempt_no=a["attempt_no"], reason=reason,
                                payload={"column": column, "value": value[:200]})
        except OrchError:
            said = None
        if said is not None:
            self._act(f"skipped a bad value: {reason}")

    def _facts(self, a: dict[str, Any], panes: dict[str, dict[str, Any]],
               bad: list[tuple[str, str]] | None = None) -> Facts:
        now = time.time()

        def ts(column: str) -> float:
            value = a.get(column) or ""
            t = parse_ts_or(value, -1.0)
            # Stored timestamps are ours (now_ts), so never far in the future: a lease is at most
            # MAX_LEASE_SECONDS ahead. Anything else is a row no command of ours wrote.
            if t < 0 or t > now + MAX_LEASE_SECONDS + 86400:
                if bad is not None:
                    bad.append((column, str(value)))
                return 0.0
            return t

        memo = self._memo.setdefault(a["thread_id"], watch_memory.Memory())
        alive: bool | None = None
        pane_state, pane_line, output = "", "", ""
        if a["runtime"] == "tmux" and a["runtime_ref"]:
            info = panes.get(a["runtime_ref"])
            alive = info is not None and not info["dead"]
            if info:
                output = launcher.capture(self.db_path, a, lines=60)
                seen = screen_judge.read(output, self._agent_of(a), claimed=a["thread_status"] != "pending")
                self._screens[a["thread_id"]] = seen
                pane_state, pane_line = seen.pane_state, seen.line
        elif a["runtime"] == "process":
            if not a["pid"]:
                self._adopt_worker(a)
            alive = launcher.pid_alive(a["pid"], a["thread_id"]) if a["pid"] else None
            output = _log_signature(a["log_path"])
            if alive is False and a["thread_id"] not in self._exits and self._agent_of(a):
                # A headless agent that exited: its last lines say why (a usage limit, no network,
                # no login). Read once, and only then: a running agent's log is its transcript,
                # where "rate limit" may well be the code it is writing.
                self._exits[a["thread_id"]] = screen_judge.read_exit(launcher.tail_file(a["log_path"], 40),
                                                                     self._agent_of(a))
        if alive is False:
            memo.dead_since = memo.dead_since or now
        else:
            memo.dead_since = 0.0
        if output:
            # The signature leaves out ticking timers and spinners: they are not progress.
            h = _screen_hash(output) if a["runtime"] == "tmux" else _hash(output)
            if h != memo.output_hash:
                memo.output_hash, memo.output_changed_at = h, now
                # A prompt counts once the screen holds still at it for a whole pass: keys the
                # leader just typed, or a prompt that flashes by, raise no alarm. A known agent's
                # menu or field does not flash by: it waits for an answer, reported at once.
                seen_now = self._screens.get(a["thread_id"])
                if pane_state == "waiting_input" and not (seen_now is not None and seen_now.settled):
                    pane_state, pane_line = "active", ""
        from orch_console.console.runtime import hooks as agent_hooks  # fused with the agent's own hooks

        pane_state, pane_line = agent_hooks.fuse_for_attempt(
            self.store, self.__dict__.setdefault("_hook_memo", {}), a, now=now, pane_state=pane_state,
            pane_line=pane_line, output_changed_at=memo.output_changed_at)
        return Facts(
            now=now, started_at=ts("started_at"), thread_status=a["thread_status"],
            launched=bool(a["runtime"]), process_alive=alive, dead_since=memo.dead_since,
            lease_owner=a["lease_owner"], lease_expires_at=ts("lease_expires_at"),
            heartbeat_at=ts("last_activity_at"), last_message_at=ts("last_message_at"),
            worktree_write_at=_newest_write(a["worktree_path"]), last_commit_at=self._last_commit(a, memo),
            output_changed_at=memo.output_changed_at, pane_state=pane_state, pane_line=pane_line,
            answered_at=parse_ts(a.get("answered_at") or "") if a["thread_status"] == "blocked" else 0.0)

    def _adopt_worker(self, a: dict[str, Any]) -> None:
        """A process attempt with no pid: its launcher died between starting the worker and
        recording it (issue 15, M6). Find the worker by ORCH_THREAD and record its pid, so it is
        judged, and stopped with its attempt, like any other."""
        found = launcher.find_worker_pids(a["thread_id"], self.db_path)
        if found and rt.adopt_pid(self.store, thread_id=a["thread_id"], pid=found[0]):
            a["pid"] = found[0]

    def _last_commit(self, a: dict[str, Any], memo: watch_memory.Memory) -> float:
        """The worktree's last commit time, if a commit was made after the attempt's base."""
        path = a["worktree_path"]
        if not path or not os.path.isdir(path):
            return 0.0
        repo = self._repos.get(path)
        try:
            if repo is None:
                import git  # GitPython costs ~150 ms: only once a worktree is watched

                repo = self._repos[path] = git.Repo(path)
            sha = repo.head.commit.hexsha
            if sha == a["base_commit"]:
                return 0.0
            if sha != memo.commit_sha:
                memo.commit_sha, memo.commit_at = sha, float(repo.head.commit.committed_date)
            return memo.commit_at
        except Exception:  # a worktree mid-rewrite or removed: no signal, not an error
            self._repos[path] = None
            return 0.0

    def _apply_verdict(self, a: dict[str, Any], v: Verdict) -> None:
        who = f"{a['task_id']} attempt {a['attempt_no']}"
        if v.action in ENDING_LIVENESS:
            evidence = launcher.capture(self.db_path, a, lines=40) if a["runtime"] else ""
            reason = v.reason
            seen = self._reading(a["thread_id"])
            if seen is not None and seen.pane_state in ("error", "waiting_input") and seen.line:
                # why it ended, in the leader's words: "exited: ... Unable to connect to Anthropic services"
                reason = f"{reason}; its last output: {seen.line}"
            ended = rt.end_attempt(self.store, thread_id=a["thread_id"], end_reason=v.action, summary=reason,
                                   evidence=evidence)
            if ended is not None:
                launcher.stop(self.db_path, a)
                self._act(f"{v.action}: {who}: {reason}")
        elif v.action == "nudge":
            if rt.nudge(self.store, thread_id=a["thread_id"], reason=v.reason):
                self._act(f"nudged {who}: {v.reason}")
        elif v.action == "attention":
            # One flag per prompt: after the leader typed an answer, a new prompt flags again.
            answered = rt.inputs_sent(self.store, a["thread_id"])
            key = f"waiting_input:{a['run_id']}:{a['task_id']}:a{a['attempt_no']}:{answered}"
            if rt.flag_attention(self.store, run_id=a["run_id"], task_id=a["task_id"], attempt_no=a["attempt_no"],
                                 kind="waiting_input", reason=v.reason, event_type="attempt_waiting_input", key=key):
                self._act(f"needs attention: {who}: {v.reason}", bell=True)

    def _hold_profile(self, a: dict[str, Any]) -> None:
        """A worker's screen shows a usage limit, an unreachable API or a login problem: the same
        profile would hit the same wall, so it takes no new work (store/holds.py) until the reset
        time the screen gave, a default pause, or `orch release --profile P`. Said once per hold."""
        seen = self._reading(a["thread_id"])
        profile = a.get("profile") or ""
        if seen is None or not seen.hold_kind or not profile:
            return
        sighting = (a["thread_id"], seen.hold_kind)
        if sighting in self._released:
            return
        cur = holds.active(self.store).get(profile)
        if cur is not None and cur["kind"] == seen.hold_kind:
            return
        who = f"{a['task_id']} attempt {a['attempt_no']}"
        h = holds.hold(self.store, profile=profile, kind=seen.hold_kind, reason=f"{who}: {seen.line}",
                       run_id=a["run_id"], task_id=a["task_id"], attempt_no=a["attempt_no"], line=seen.line)
        if h is None and cur is None:
            self._released.add(sighting)  # the leader released what this attempt shows: not again
        if h is not None:
            until = f"until {h['until_at']}" if h["until_at"] else "until the leader releases it"
            self._act(f"held profile {profile} ({seen.hold_kind}) {until}: {who} shows {seen.line}; no new work "
                      f"starts with it (orch release --profile {profile} lifts it)", bell=True)

    def _deliver_answers(self, runs: dict[str, Settings]) -> None:
        """Type the leader's answer into the session of an agent that ended its turn instead of
        waiting for it (the brief asks it to wait; real agents do not always). An agent whose own
        `inbox wait-reply` is running gets the answer there, and nothing is typed."""
        if not runs:
            return
        now = time.time()
        grace = min(s.answer_grace_seconds for s in runs.values())
        for d in deliveries.awaiting_pickup(self.store, self.run_id, older_than=now - grace):
            if d["run_id"] not in runs or procs.running(d["thread_id"], "wait-reply"):
                continue
            if parse_ts_or(d["created_at"], 0.0) > now - runs[d["run_id"]].answer_grace_seconds:
                continue
            answer = one_line(" ".join(x for x in (d["summary"], d["body"]) if x), 600)
            who = f"{d['task_id']} attempt {d['attempt_no']}"
            if wa.note_once(self.store, key=deliveries.key(d["thread_id"], d["message_id"]), action=deliveries.ACTION,
                            event_type="attempt_answer_typed", run_id=d["run_id"], task_id=d["task_id"],
                            attempt_no=d["attempt_no"], reason=f"typed the leader's answer into {who}") is None:
                continue
            text = (f"The leader answered your question on thread {d['thread_id']}: {answer} -- Resume with "
                    f"inbox update --status in_progress, then continue the task.")
            try:
                launcher.send_keys(self.store, run_id=d["run_id"], task_id=d["task_id"], text=text, by=rt.WATCHER)
                self._act(f"typed the leader's answer into {who}: it had stopped waiting")
            except OrchError as exc:
                self._act(f"could not type the answer into {who}: {exc.message}")

    def _sweep(self, panes: dict[str, dict[str, Any]]) -> None:
        """Close what ended attempts left running: an interactive agent that reported done sits at
        its prompt for ever, a stalled one may still be spinning, and an agent's own background
        daemons outlive its terminal. Each ended attempt's session or process, and every process
        still carrying its ORCH_THREAD, is stopped once the attempt has been over for
        SESSION_LINGER_SECONDS (its last words reach the log first). Cheap when nothing ended."""
        since = now_ts(time.time() - 3600) if self._swept else ""
        ended = rt.ended_launched_attempts(self.store, since=since, run_id=self.run_id)
        self._swept = True
        now = time.time()
        if not panes and any(a["runtime"] == "tmux" for a in ended):
            panes = launcher.tmux_panes(self.db_path)
        for a in ended:
            if (now - parse_ts_or(a["ended_at"], 0.0) < SESSION_LINGER_SECONDS
                    and a["end_reason"] == EndReason.SUCCEEDED):
                continue
            running = False
            if a["runtime"] == "tmux" and a["runtime_ref"] in panes:
                running = not panes[a["runtime_ref"]]["dead"]
                launcher.stop(self.db_path, a)
            elif a["runtime"] == "process" and a["pid"] and launcher.pid_alive(a["pid"], a["thread_id"]):
                running = True
                launcher.stop(self.db_path, a)
            left = procs.carrying(a["thread_id"])
            if left:
                procs.terminate(left)
            if running or left:
                self._act(f"stopped the worker of {a['task_id']} attempt {a['attempt_no']} "
                          f"({a['end_reason']}){f', and {len(left)} process(es) it left' if left else ''}")

    def _checkpoint(self) -> None:
        if self.store.wal_size() > WAL_CHECKPOINT_BYTES:
            busy, log, done = self.store.checkpoint("RESTART")
            self._act(f"checkpointed the WAL ({done}/{log} frames{', busy' if busy else ''})")

    # -- the loop ----------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Tick on every change of the database or its WAL, and on the timer, until stop is set."""
        stop = stop or threading.Event()
        self.tick(force_liveness=True)
        db = Path(self.db_path).resolve()
        names = {db.name, db.name + "-wal"}
        try:
            import watchfiles  # optional, and only for the long-running loop: without it, poll
        except ImportError:
            watchfiles = None  # type: ignore[assignment]
        if watchfiles is not None:
            try:
                for changes in watchfiles.watch(db.parent, watch_filter=lambda _c, p: Path(p).name in names,
                                                step=5, debounce=30, rust_timeout=POLL_MS, yield_on_timeout=True,
                                                stop_event=stop, recursive=False, raise_interrupt=False):
                    if stop.is_set():
                        return
                    self._wake(bool(changes))
                return
            except (OSError, RuntimeError):
                pass  # no inotify (limits, odd filesystems): poll instead
        while not stop.wait(POLL_MS / 1000 / 5):
            self._wake(False)

    def _wake(self, changed: bool) -> None:
        """Tick when another connection committed (data_version moved), or the timer is due. A
        file event caused only by our own writes leaves data_version where it was: no tick."""
        with self._lock:
            due = time.time() >= self.next_due()
            if not due and self.store.data_version() == self._dv:
                return
            self.tick()

    def close(self) -> None:
        for repo in self._repos.values():
            if repo is not None:
                repo.close()
        self._repos.clear()
        self.store.close()


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=16).hexdigest()


def _screen_hash(output: str) -> str:
    """What the watcher remembers of a tmux screen (Memory.output_hash): its signature, without
    ticking timers and spinners, hashed."""
    return _hash(screen_signature(output))


def _log_signature(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return ""
    return f"{st.st_size}:{st.st_mtime_ns}"


def _newest_write(path: str) -> float:
    """Newest mtime under a worktree (not .git), looking at no more than WORKTREE_SCAN_LIMIT entries."""
    if not path or not os.path.isdir(path):
        return 0.0
    newest, seen = 0.0, 0
    stack = [path]
    while stack and seen < WORKTREE_SCAN_LIMIT:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    seen += 1
                    if e.name == ".git":
                        continue
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        else:
                            newest = max(newest, e.stat(follow_symlinks=False).st_mtime)
                    except OSError:
                        continue
        except OSError:
            continue
    return newest
