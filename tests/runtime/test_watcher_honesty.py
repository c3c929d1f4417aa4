"""The watcher with agents that behave like real ones: a screen waiting for input is never
nudged, stalled, timed out or killed; a screen whose only change is a ticking timer is not
progress; `orch watch --once` remembers what earlier passes saw; and an attempt that ended leaves
nothing running (its session, and a daemon it started that left the terminal's process group).
Real tmux on a private socket, real processes, real git."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from orch_console.console.runtime import launcher, procs
from orch_console.console.runtime.watcher import Watcher
from orch_console.store.liveness import screen_signature

from tests.conftest import git_env
from tests.runtime.conftest import Rig, until

ORCH = str(Path(sys.executable).parent / "orch")

# An agent stuck retrying an API it cannot reach: it claimed its thread, then shows nothing but a
# ticking timer and a spinner (what Codex showed for ten minutes with its API unreachable).
TICKING = ("{inbox} --db {db} claim --agent {agent} --thread {thread_id} --lease-seconds 600 >/dev/null; i=0; "
           "while :; do i=$((i+1)); printf '\\r%s Working (%ds \\342\\200\\242 esc to interrupt)' "
           "$(echo '|/-\\' | cut -c$((i % 4 + 1))) $i; sleep 0.2; done")
# An interactive agent that reports done and stays at its prompt, with a daemon of its own.
LINGERS = ("setsid sleep 600 </dev/null >/dev/null 2>&1 & "
           "{inbox} --db {db} claim --agent {agent} --thread {thread_id} >/dev/null && "
           "{inbox} --db {db} done --agent {agent} --thread {thread_id} --summary finished >/dev/null; "
           "echo '> '; sleep 600")


def profiles(rig: Rig, **commands: str) -> None:
    lines = []
    for name, command in commands.items():
        lines += [f"[agents.{name}]", f"command = {json.dumps(command)}", 'runtime = "tmux"', ""]
    (Path(rig.store.path).parent / "orch.toml").write_text("\n".join(lines))


def test_a_ticking_timer_is_not_progress(rig: Rig) -> None:
    profiles(rig, ticking=TICKING)
    rig.run(nudge_seconds=1.0, stall_seconds=3.0)
    rig.task("t", "")
    rig.start("t", profile="ticking")
    w = Watcher(rig.store.path, rig.run_id)
    try:
        until(lambda: rig.attempts("t")[0]["end_reason"] == "stalled", timeout=60,
              step=lambda: w.tick(force_liveness=True))
    finally:
        w.close()
    assert rig.events("attempt_nudged", "t"), "the quiet worker was nudged before it was called stalled"
    assert rig.events("attempt_stalled", "t")


def test_screen_signature_ignores_timers_and_spinners_but_not_new_output() -> None:
    a = "✻ Newspapering… (14s · ↓ 27 tokens)\n  esc to interrupt\n> "
    b = "✶ Pondering… (75s · ↓ 310 tokens)\n  esc to interrupt\n> "
    assert screen_signature(a) == screen_signature(b)
    assert screen_signature("• Working (48s • esc to interrupt)") == screen_signature("• Working (9m 2s • esc to interrupt)")
    assert screen_signature("wrote src/api.py") != screen_signature("wrote src/ui.py")


def test_a_worker_waiting_at_a_prompt_is_never_stalled_timed_out_or_killed(rig: Rig) -> None:
    rig.run(nudge_seconds=0.5, stall_seconds=1.5, attempt_timeout_seconds=2.0)
    rig.task("t", "progress,prompt,done")
    rig.start("t", profile="sim-tmux")
    w = Watcher(rig.store.path, rig.run_id)
    try:
        until(lambda: rig.events("attempt_waiting_input", "t"), timeout=60, step=lambda: w.tick(force_liveness=True))
        flagged = rig.attempts("t")[0]
        # Well past the stall threshold and the attempt's time limit, it still waits for the leader.
        for _ in range(25):
            w.tick(force_liveness=True)
            time.sleep(0.2)
        (a,) = rig.attempts("t")
        assert a["status"] in ("claimed", "in_progress") and a["end_reason"] == "", a
        assert a["liveness"] == "waiting_input" and flagged["liveness"] == "waiting_input"
        assert not rig.events("attempt_stalled", "t") and not rig.events("attempt_timed_out", "t")
        panes = launcher.tmux_panes(rig.store.path)
        assert a["runtime_ref"] in panes and not panes[a["runtime_ref"]]["dead"]  # the leader can attach
        nudges = [e for e in rig.events("attempt_nudged", "t") if e["created_at"] >= flagged["liveness_at"]]
        assert nudges == []
    finally:
        w.close()


def test_watch_once_remembers_earlier_passes_and_calls_a_hung_worker_stalled(rig: Rig) -> None:
    rig.run(nudge_seconds=0.5, stall_seconds=2.0)
    rig.task("t", "progress,hang")
    rig.start("t")
    env = git_env()
    passes = 0

    def once() -> None:
        nonlocal passes
        passes += 1
        p = subprocess.run([ORCH, "--db", rig.store.path, "--json", "watch", "--run", rig.run_id, "--once"],
                           capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode == 0, p.stderr

    until(lambda: rig.attempts("t")[0]["end_reason"] == "stalled", timeout=90, step=once, interval=0.3)
    assert passes >= 2  # no single pass could have seen the silence: the memory came from the store
    assert rig.store.scalar("SELECT count(*) FROM watch_memory") == 0  # forgotten once the attempt ended


def test_an_ended_attempt_leaves_nothing_running(rig: Rig) -> None:
    profiles(rig, lingers=LINGERS)
    rig.run(retry=False)
    rig.task("t", "")
    started = rig.start("t", profile="lingers")
    thread = started["attempt"]["thread_id"]
    w = Watcher(rig.store.path, rig.run_id)
    try:
        until(lambda: rig.task_status("t") == "done", timeout=60, step=w.tick)
        assert procs.carrying(thread), "the daemon and the agent are still up right after done"
        until(lambda: not procs.carrying(thread), timeout=60, step=lambda: w.tick(force_liveness=True))
        session = rig.attempts("t")[0]["runtime_ref"]
        until(lambda: session not in launcher.tmux_panes(rig.store.path), timeout=30,
              step=lambda: w.tick(force_liveness=True))
    finally:
        w.close()
        procs.terminate(procs.carrying(thread))


def test_carrying_finds_a_setsid_daemon_by_its_environment(tmp_path: Path) -> None:
    env = os.environ | {"ORCH_THREAD": "thr_probe_123"}
    # not a process-group leader, so setsid(1) detaches in place (no fork racing the scan below)
    p = subprocess.Popen(["setsid", "sleep", "300"], env=env)
    try:
        until(lambda: procs.carrying("thr_probe_123"), timeout=10)
        assert procs.carrying("thr_probe_12") == []  # a prefix is not a match
        # as the watcher's sweep does on every pass: stop what carries the thread, look again
        until(lambda: not procs.carrying("thr_probe_123"), timeout=10,
              step=lambda: procs.terminate(procs.carrying("thr_probe_123")))
    finally:
        p.kill()
        p.wait()


ASK = ("{inbox} --db {db} claim --agent {agent} --thread {thread_id} >/dev/null && "
       "{inbox} --db {db} update --agent {agent} --thread {thread_id} --status blocked "
       "--summary 'Which port?' >/dev/null && ")
# Asks, then ends its turn at a prompt instead of waiting (what real agents sometimes do).
QUITS = ASK + ("printf '> '; read line; printf '%s' \"$line\" > answer.txt; "
               "{inbox} --db {db} update --agent {agent} --thread {thread_id} --status in_progress --summary resumed "
               ">/dev/null; {inbox} --db {db} done --agent {agent} --thread {thread_id} --summary ok >/dev/null; sleep 600")
# Asks, then waits for the answer as the brief says.
WAITS = ASK + ("{inbox} --db {db} wait-reply --agent {agent} --thread {thread_id} --timeout-seconds 60 > reply.json; "
               "{inbox} --db {db} update --agent {agent} --thread {thread_id} --status in_progress --summary resumed "
               ">/dev/null; {inbox} --db {db} done --agent {agent} --thread {thread_id} --summary ok >/dev/null; "
               "sleep 600")


def test_an_answer_the_agent_stopped_waiting_for_is_typed_into_its_session(rig: Rig) -> None:
    from orch_console.store import dispatch

    profiles(rig, quits=QUITS, waits=WAITS)
    rig.run(answer_grace_seconds=1.0, retry=False, nudge_seconds=60.0, stall_seconds=120.0)
    rig.task("q", "")
    rig.task("w", "")
    rig.start("q", profile="quits")
    rig.start("w", profile="waits")
    w = Watcher(rig.store.path, rig.run_id)
    try:
        until(lambda: rig.task_status("q") == rig.task_status("w") == "blocked", timeout=60, step=w.tick)
        dispatch.answer(rig.store, run_id=rig.run_id, task_id="q", summary="Use port 8080")
        dispatch.answer(rig.store, run_id=rig.run_id, task_id="w", summary="Use port 9090")
        until(lambda: rig.task_status("q") == rig.task_status("w") == "done", timeout=60,
              step=lambda: w.tick(force_liveness=True))
    finally:
        w.close()
    q, = rig.attempts("q")
    typed = Path(q["worktree_path"], "answer.txt").read_text()
    assert "Use port 8080" in typed and q["thread_id"] in typed
    assert len(rig.events("attempt_answer_typed", "q")) == 1
    # The worker waiting in wait-reply got its answer there; nothing was typed at it.
    wa, = rig.attempts("w")
    assert "Use port 9090" in Path(wa["worktree_path"], "reply.json").read_text()
    assert rig.events("attempt_answer_typed", "w") == [] and rig.events("attempt_input_sent", "w") == []
