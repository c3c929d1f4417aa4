"""The watcher (`orch watch --autopilot`) and the console (`orch console` in tmux, whose engine runs
the same watcher) SIGKILLed again and again at random moments while simulated workers run, fail,
crash, hang and ask a question, each time restarted (alternating the two): nothing is lost (every
task ends done, every worker's result is recorded) and no action is repeated (at most one dispatch,
retry, launch, nudge, stall or crash verdict per cause, and exactly the attempts the scripts need).

Knobs: RUNTIME_KILL_SECONDS (upper bound, default 120).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ORCH, git_env, terminal_env
from tests.reliability import invariants as inv
from tests.runtime.conftest import Rig, rig  # noqa: F401  (the runtime tests' fixture)

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
LIMIT = float(os.environ.get("RUNTIME_KILL_SECONDS", "120"))
ACTIONS = ("task_auto_dispatched", "task_auto_retried", "attempt_launched", "attempt_nudged", "attempt_stalled",
           "attempt_crashed", "task_escalated", "task_retry_scheduled", "attempt_timed_out")


class Supervisor:
    """Either `orch watch` as a process or `orch console` in a private tmux server."""

    def __init__(self, rig: Rig, tmp: Path) -> None:
        self.rig = rig
        self.socket = f"orch-rel-{uuid.uuid4().hex[:8]}"
        self.tmp = tmp
        self.proc: subprocess.Popen[str] | None = None
        self.kind = ""

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20)

    def start(self, kind: str) -> None:
        self.kind = kind
        if kind == "watch":
            self.proc = subprocess.Popen([ORCH, "--db", self.rig.store.path, "watch", "--run", self.rig.run_id,
                                          "--autopilot"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         env=git_env(), start_new_session=True)
        else:
            env = terminal_env(ORCH_CONSOLE_CONFIG=str(self.tmp / "none.toml"))
            self.tmux("kill-session", "-t", "console")
            p = subprocess.run(["tmux", "-L", self.socket, "new-session", "-d", "-s", "console", "-x", "140", "-y",
                                "40", f"exec {ORCH} --db {self.rig.store.path} console --run {self.rig.run_id}"],
                               env=env, capture_output=True, text=True)
            assert p.returncode == 0, p.stderr

    def pid(self) -> int | None:
        if self.kind == "watch":
            return self.proc.pid if self.proc and self.proc.poll() is None else None
        out = self.tmux("display-message", "-p", "-t", "console", "#{pane_pid}").stdout.strip()
        return int(out) if out.isdigit() else None

    def kill(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGKILL)
        if self.kind == "watch" and self.proc is not None:
            self.proc.wait(timeout=10)
        return True

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.tmux("kill-server")


def test_watcher_and_console_killed_repeatedly_lose_nothing_and_repeat_nothing(rig: Rig, tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("SOAK_SEED", "0")) or None)
    rig.run(autopilot=True, execution_mode="code", concurrency=6)
    scripts = {"ok": "progress,done", "fails": "progress,fail | progress,done", "crashes": "crash | progress,done",
               "hangs": "progress,hang | progress,done", "asks": "progress,block,progress,done",
               "after": "progress*2,done"}
    for t, sc in scripts.items():
        rig.task(t, sc)
    from orch_console.store import runs
    runs.dep_add(rig.store, run_id=rig.run_id, task_id="after", depends_on="ok")
    sup = Supervisor(rig, tmp_path)
    kills = {"watch": 0, "console": 0}
    answered = 0
    t0 = time.monotonic()
    try:
        kind = "watch"
        while time.monotonic() - t0 < LIMIT:
            sup.start(kind)
            life = rng.uniform(1.5, 4.0) if kind == "watch" else rng.uniform(3.0, 6.0)
            end = time.monotonic() + life
            while time.monotonic() < end:
                if rig.task_status("asks") == "blocked":
                    p = subprocess.run([ORCH, "--db", rig.store.path, "--json", "answer", "--run", rig.run_id,
                                        "--task", "asks", "--body", "use the blue one"], capture_output=True,
                                       text=True, env=git_env())
                    answered += p.returncode == 0
                time.sleep(0.1)
            if sup.kill():
                kills[kind] += 1
            statuses = {t: rig.task_status(t) for t in scripts}
            # A watcher restarted after SIGKILL resumes its clocks from the store, so the run can
            # finish within a few lives: keep killing until both kinds were killed enough (a
            # restart after the work is done must still repeat nothing).
            if all(s == "done" for s in statuses.values()) and kills["watch"] >= 2 and kills["console"] >= 1:
                break
            time.sleep(rng.uniform(0.0, 0.5))  # a moment with no watcher at all
            kind = "console" if kind == "watch" else "watch"
        statuses = {t: rig.task_status(t) for t in scripts}
        stuck = {t: (s, [(a["attempt_no"], a["status"], a["end_reason"], a["liveness"]) for a in rig.attempts(t)])
                 for t, s in statuses.items() if s != "done"}
        assert not stuck, (stuck, kills)
    finally:
        sup.close()
    counts = Counter((e["event_type"], e["task_id"], e["attempt_no"]) for t in ACTIONS for e in rig.events(t))
    repeated = {k: n for k, n in counts.items() if n > 1}
    assert not repeated, (repeated, kills)
    attempts = {t: len(rig.attempts(t)) for t in scripts}
    assert attempts == {"ok": 1, "fails": 2, "crashes": 2, "hangs": 2, "asks": 1, "after": 1}, (attempts, counts)
    launched = Counter((a["task_id"], a["attempt_no"]) for t in scripts for a in rig.attempts(t) if a["runtime"])
    assert all(n == 1 for n in launched.values()) and len(launched) == sum(attempts.values())
    assert answered == 1
    # nothing lost: every attempt that ended has the result its worker sent
    for t in scripts:
        for a in rig.attempts(t):
            if a["status"] in ("done", "failed"):
                n = rig.store.scalar("SELECT count(*) FROM messages WHERE thread_id=? AND kind='result'",
                                     (a["thread_id"],))
                assert n == 1, (t, a["attempt_no"], a["status"], n)
    assert inv.integrity(rig.store.path) == [] and inv.consistency(rig.store.path) == []
    print(f"\nwatcher/console SIGKILL: {kills} kills in {time.monotonic() - t0:.0f}s, all tasks done, "
          f"{sum(counts.values())} actions each taken once, attempts {attempts}")
    assert kills["watch"] >= 2 and kills["console"] >= 1, kills
