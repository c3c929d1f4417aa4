"""The watcher: wakes on every change of the database (and its WAL) and on a timer, folds what
changed, judges every running attempt's liveness, and heals within the run's bounds.

One engine for `orch watch` (run_forever) and the console (which calls tick() from a thread).
The decisions are headless (store/liveness.py, store/policy.py, store/autopilot.py); this module
gathers the facts that need IO (tmux panes, processes, worktree writes, git commits) and records
every action through store/runtime.py, each under a unique key in the same transaction as the
action, so a watcher restarted after SIGKILL never repeats one. The healing half (policy, launches,
autopilot) is console/healing.py.
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

from orch_console.store import runtime as rt
from orch_console.store.db import Store
from orch_console.store.errors import OrchError
from orch_console.store.liveness import Facts, classify_pane, judge
from orch_console.store.policy import Settings
from orch_console.store.records import loads
from orch_console.store.validate import now_ts, parse_ts

from orch_console.console.runtime import launcher
from orch_console.console.runtime.healing import HealingMixin

WAL_CHECKPOINT_BYTES = 64 * 1024 * 1024
POLL_MS = 250          # fallback: data_version poll and timer resolution
WORKTREE_SCAN_LIMIT = 5000
RECONCILE_EVENTS = 5000


@dataclass
class _Memo:
    """What the watcher remembers about one attempt between ticks (lost on restart: harmless,
    every clock here only delays a verdict)."""
    output_hash: str = ""
    output_changed_at: float = 0.0
    dead_since: float = 0.0
    commit_sha: str = ""
    commit_at: float = 0.0


@dataclass
class TickResult:
    events: int = 0
    cursor: int = 0
    actions: list[str] = field(default_factory=list)
    bells: int = 0
    reconciled_at: float = 0.0
    liveness_checked: bool = False


class Watcher(HealingMixin):
    def __init__(self, db_path: str, run_id: str | None = None, *, autopilot: bool = False,
                 on_action: Callable[[str, bool], None] | None = None) -> None:
        self.db_path = str(db_path)
        self.run_id = run_id
        self.autopilot = autopilot
        self.scope = run_id or "*"
        self.on_action = on_action
        self.store = Store(self.db_path)
        self._lock = threading.RLock()
        self._cursor = rt.cursor(self.store, self.scope)
        self._memo: dict[str, _Memo] = {}
        self._repos: dict[str, Any] = {}
        self._next_liveness = 0.0
        self._dv = -1
        self._swept = False
        self._said: set[str] = set()
        self.last_tick: TickResult | None = None
        self.on_reconciled: Callable[[int, float], None] | None = None

    # -- the pass ----------------------------------------------------------------------------
    def tick(self, *, force_liveness: bool = False) -> TickResult:
        """One full pass. Safe to call from any thread; passes never overlap."""
        with self._lock:
            res = TickResult()
            # Read before the pass reads anything: a commit by another connection during the pass
            # moves data_version past this, so the next wake ticks again instead of sleeping on it.
            dv = self.store.data_version()
            now = time.time()
            runs = self._runs()
            self._reconcile(res)
            self._expire_leases(res)
            if force_liveness or now >= self._next_liveness or self.__dict__.pop("_hook_wake", False):
                self._liveness(runs, res)
                interval = min((s.liveness_interval_seconds for s in runs.values()), default=2.0)
                self._next_liveness = time.time() + interval
            self._gates(runs, res)
            self._policy(runs, res)
            self._launch_pending(runs, res)
            self._autopilot(runs, res)
            self._checkpoint(res)
            if res.cursor > self._cursor:
                rt.save_cursor(self.store, self.scope, res.cursor, os.getpid())
                self._cursor = res.cursor
            self._dv = dv
            self.last_tick = res
            return res

    def _runs(self) -> dict[str, Settings]:
        if self.run_id:
            rows = self.store.all("SELECT run_id, status, config_json FROM runs WHERE run_id=?", (self.run_id,))
        else:
            rows = self.store.all("SELECT run_id, status, config_json FROM runs WHERE status IN "
                                  "('active','blocked','failed')")
        return {r["run_id"]: Settings.from_config(loads(r["config_json"], {})) for r in rows
                if r["status"] not in ("cancelled",)}

    def _act(self, res: TickResult, line: str, bell: bool = False) -> None:
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
        from orch_console.store import views

        touched: set[str] = set()
        ended: list[str] = []
        cursor = self._cursor
        while True:
            events = rt.events_after(self.store, cursor, RECONCILE_EVENTS)
            if not events:
                break
            for e in events:
                if e["run_id"] and (self.run_id is None or e["run_id"] == self.run_id):
                    touched.add(e["run_id"])
                    if e["event_type"] in ("attempt_hook", "approval_requested"):
                        self._hook_wake = True  # an agent's hook spoke: judge its attempt now
                    if e["event_type"] in ("thread_result", "thread_cancelled") and e["thread_id"]:
                        ended.append(e["thread_id"])
            res.events += len(events)
            cursor = events[-1]["event_id"]
            if len(events) < RECONCILE_EVENTS:
                break
        for run_id in sorted(touched):
            try:
                views.reconcile(self.store, run_id=run_id)
            except OrchError:
                continue
        rt.clear_ended_liveness(self.store, ended[-500:])
        res.cursor = cursor
        res.reconciled_at = time.time()
        if self.on_reconciled is not None and res.events:
            self.on_reconciled(cursor, res.reconciled_at)
        return touched

    def _expire_leases(self, res: TickResult) -> None:
        from orch_console.store import inbox

        # A read first: the write lock is taken only when some lease really ran out.
        if self.store.scalar("SELECT 1 FROM threads WHERE lease_owner<>'' AND lease_expires_at<? AND "
                             "lease_expired_noted='' AND status IN ('claimed','in_progress','blocked') LIMIT 1",
                             (now_ts(),)) is None:
            return
        for t in inbox.expire_leases(self.store):
            if self.run_id is None or t["run_id"] == self.run_id:
                self._act(res, f"lease expired: {t['task_id'] or t['thread_id']} ({t['lease_owner']})")

    # -- liveness ----------------------------------------------------------------------------
    def _liveness(self, runs: dict[str, Settings], res: TickResult) -> None:
        res.liveness_checked = True
        live = [a for a in rt.live_attempts(self.store, self.run_id) if a["run_id"] in runs]
        panes = launcher.tmux_panes(self.db_path) if any(a["runtime"] == "tmux" for a in live) \
            or not self._swept else {}
        changes: list[tuple[str, str]] = []
        verdicts = []
        for a in live:
            v = judge(self._facts(a, panes), runs[a["run_id"]])
            if v.liveness and v.liveness != a["liveness"] and v.action not in ("stalled", "crashed", "timed_out"):
                changes.append((a["thread_id"], v.liveness))
            verdicts.append((a, v))
        # The liveness is written before any action it justifies (an attention flag, a nudge), so a
        # reader woken by the action's event already sees the liveness that explains it.
        rt.set_liveness(self.store, changes)
        for a, v in verdicts:
            try:
                self._apply_verdict(a, v, res)
            except OrchError as exc:
                self._act(res, f"could not act on {a['task_id']}: {exc.message}")
        self._sweep(panes, res)
        live_ids = {a["thread_id"] for a in live}
        for tid in [t for t in self._memo if t not in live_ids]:
            self._memo.pop(tid, None)
        for path in [p for p in self._repos if p not in {a["worktree_path"] for a in live}]:
            repo = self._repos.pop(path)
            if repo is not None:
                repo.close()

    def _facts(self, a: dict[str, Any], panes: dict[str, dict[str, Any]]) -> Facts:
        now = time.time()
        memo = self._memo.setdefault(a["thread_id"], _Memo())
        alive: bool | None = None
        pane_state, pane_line, output = "", "", ""
        if a["runtime"] == "tmux" and a["runtime_ref"]:
            info = panes.get(a["runtime_ref"])
            alive = bool(info) and not info["dead"]
            if info:
                output = launcher.capture(self.db_path, a, lines=60)
                pane_state, pane_line = classify_pane(output)
        elif a["runtime"] == "process":
            alive = launcher.pid_alive(a["pid"], a["thread_id"]) if a["pid"] else None
            output = _log_signature(a["log_path"])
        if alive is False:
            memo.dead_since = memo.dead_since or now
        else:
            memo.dead_since = 0.0
        if output:
            h = hashlib.blake2b(output.encode("utf-8", "replace"), digest_size=16).hexdigest()
            if h != memo.output_hash:
                memo.output_hash, memo.output_changed_at = h, now
                # A prompt counts once the screen holds still at it for a whole pass: keys the
                # leader just typed, or a prompt that flashes by, raise no alarm.
                if pane_state == "waiting_input":
                    pane_state, pane_line = "active", ""
        from orch_console.console.runtime import hooks as agent_hooks  # fused with the agent's own hooks

        pane_state, pane_line = agent_hooks.fuse_for_attempt(
            self.store, self.__dict__.setdefault("_hook_memo", {}), a, now=now, pane_state=pane_state,
            pane_line=pane_line, output_changed_at=memo.output_changed_at)
        return Facts(
            now=now, started_at=parse_ts(a["started_at"]), thread_status=a["thread_status"],
            launched=bool(a["runtime"]), process_alive=alive, dead_since=memo.dead_since,
            lease_owner=a["lease_owner"], lease_expires_at=parse_ts(a["lease_expires_at"]),
            heartbeat_at=parse_ts(a["last_activity_at"]), last_message_at=parse_ts(a["last_message_at"] or ""),
            worktree_write_at=_newest_write(a["worktree_path"]), last_commit_at=self._last_commit(a, memo),
            output_changed_at=memo.output_changed_at, pane_state=pane_state, pane_line=pane_line)

    def _last_commit(self, a: dict[str, Any], memo: _Memo) -> float:
        """The worktree's last commit time, if a commit was made after the attempt's base."""
        path = a["worktree_path"]
        if not path or not os.path.isdir(path):
            return 0.0
        repo = self._repos.get(path)
        try:
            if repo is None:
                import git

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

    def _apply_verdict(self, a: dict[str, Any], v: Any, res: TickResult) -> None:
        who = f"{a['task_id']} attempt {a['attempt_no']}"
        if v.action in ("stalled", "crashed", "timed_out"):
            evidence = launcher.capture(self.db_path, a, lines=40) if a["runtime"] else ""
            ended = rt.end_attempt(self.store, thread_id=a["thread_id"], end_reason=v.action, summary=v.reason,
                                   evidence=evidence)
            if ended is not None:
                launcher.stop(self.db_path, a)
                self._act(res, f"{v.action}: {who}: {v.reason}")
        elif v.action == "nudge":
            if rt.nudge(self.store, thread_id=a["thread_id"], reason=v.reason):
                self._act(res, f"nudged {who}: {v.reason}")
        elif v.action == "attention":
            # One flag per prompt: after the leader typed an answer, a new prompt flags again.
            answered = self.store.scalar("SELECT count(*) FROM events WHERE thread_id=? AND "
                                         "event_type IN ('attempt_input_sent','approval_decided')", (a["thread_id"],))
            key = f"waiting_input:{a['run_id']}:{a['task_id']}:a{a['attempt_no']}:{answered}"
            if rt.flag_attention(self.store, run_id=a["run_id"], task_id=a["task_id"], attempt_no=a["attempt_no"],
                                 kind="waiting_input", reason=v.reason, event_type="attempt_waiting_input", key=key):
                self._act(res, f"needs attention: {who}: {v.reason}", bell=True)

    def _sweep(self, panes: dict[str, dict[str, Any]], res: TickResult) -> None:
        """Stop workers whose attempts ended without them (stalled, cancelled, ...) and close the
        dead tmux sessions of ended attempts. Runs every liveness pass; cheap when nothing ended."""
        since = now_ts(time.time() - 3600) if self._swept else ""
        ended = self.store.all(
            "SELECT * FROM attempts WHERE runtime<>'' AND status IN ('done','failed','cancelled')"
            " AND ended_at>=?" + (" AND run_id=?" if self.run_id else ""),
            (since, self.run_id) if self.run_id else (since,))
        self._swept = True
        for a in map(dict, ended):
            if a["runtime"] == "tmux" and a["runtime_ref"] in panes:
                info = panes[a["runtime_ref"]]
                if info["dead"] or a["end_reason"] in ("stalled", "timed_out", "crashed", "cancelled", "reassigned"):
                    launcher.stop(self.db_path, a)
            elif a["runtime"] == "process" and a["pid"] and a["end_reason"] in (
                    "stalled", "timed_out", "cancelled", "reassigned") and launcher.pid_alive(a["pid"], a["thread_id"]):
                launcher.stop(self.db_path, a)
                self._act(res, f"stopped the worker of {a['task_id']} attempt {a['attempt_no']} ({a['end_reason']})")

    def _checkpoint(self, res: TickResult) -> None:
        if self.store.wal_size() > WAL_CHECKPOINT_BYTES:
            busy, log, done = self.store.checkpoint("RESTART")
            self._act(res, f"checkpointed the WAL ({done}/{log} frames{', busy' if busy else ''})")

    # -- the loop ----------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Tick on every change of the database or its WAL, and on the timer, until stop is set."""
        stop = stop or threading.Event()
        self.tick(force_liveness=True)
        db = Path(self.db_path).resolve()
        names = {db.name, db.name + "-wal"}
        try:
            import watchfiles
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
            due = time.time() >= self._next_liveness
            if not due and self.store.data_version() == self._dv:
                return
            self.tick()

    def close(self) -> None:
        for repo in self._repos.values():
            if repo is not None:
                repo.close()
        self._repos.clear()
        self.store.close()


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
