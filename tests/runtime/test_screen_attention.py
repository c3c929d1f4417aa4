"""The watcher reads a worker's screen with the agent's own recogniser (issue 12, items 4, 7, 8).

A tmux worker shows a screen captured from a real agent (tests/agents/corpus/), as the agent
would leave it: the watcher marks a permission menu as needing the leader on its first look and
never nudges, stalls or kills it; a usage limit holds the profile, so the autopilot starts no new
work with it until the leader releases it; the report counts it. Real tmux on a private socket,
real git, the real CLIs. (tests/agents/test_real_agents_e2e.py does the same with the real agent
binaries; these run in every environment, in seconds.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from orch_console.console.runtime import launcher
from orch_console.console.runtime.watcher import Watcher
from orch_console.store import holds
from orch_console.store import runtime as rt

from tests.conftest import git_env
from tests.runtime.conftest import Rig, until

ORCH = str(Path(sys.executable).parent / "orch")
CORPUS = Path(__file__).resolve().parents[1] / "agents" / "corpus"


def shows(rig: Rig, **screens: str) -> None:
    """Profiles that put a captured screen on the pane and stay there, as the agent would."""
    lines = []
    for name, capture in screens.items():
        lines += [f"[agents.{name}]", 'command = "cat \\"$SCREEN\\"; exec sleep 600"', 'runtime = "tmux"',
                  f"env = {{ SCREEN = {json.dumps(str(CORPUS / capture))} }}", ""]
    (Path(rig.store.path).parent / "orch.toml").write_text("\n".join(lines))


def orch(rig: Rig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ORCH, "--db", rig.store.path, "--json", *args], capture_output=True, text=True,
                          env=git_env(), timeout=60)


def test_a_claude_permission_menu_needs_the_leader_at_first_look_and_is_never_nudged_or_killed(rig: Rig) -> None:
    shows(rig, menu="claude/permission-bash.txt")
    rig.run(nudge_seconds=0.5, stall_seconds=1.5, attempt_timeout_seconds=2.0)
    rig.task("t", "")
    a = rig.start("t", profile="menu")["attempt"]
    w = Watcher(rig.store.path, rig.run_id)
    try:
        # the pane shows the menu once cat has run; from then on, one pass flags it
        until(lambda: "Do you want to proceed" in launcher.capture(rig.store.path, a), timeout=30)
        w.tick(force_liveness=True)
        flags = rt.attention(rig.store, rig.run_id)
        assert [f["kind"] for f in flags] == ["waiting_input"], flags
        assert flags[0]["reason"].startswith("waiting for input: permission: Do you want to proceed? [1. Yes | "
                                             "2. Yes, and always allow"), flags[0]["reason"]
        # past the nudge, stall and time limits, it still waits, and the leader can attach to it
        for _ in range(15):
            w.tick(force_liveness=True)
            time.sleep(0.2)
    finally:
        w.close()
    (att,) = rig.attempts("t")
    assert att["liveness"] == "waiting_input" and att["end_reason"] == "", att
    assert not rig.events("attempt_nudged", "t") and not rig.events("attempt_stalled", "t")
    panes = launcher.tmux_panes(rig.store.path)
    assert att["runtime_ref"] in panes and not panes[att["runtime_ref"]]["dead"]


def test_the_quick_look_between_passes_finds_a_menu_before_the_next_liveness_pass(rig: Rig) -> None:
    """With a long liveness interval, a menu that appears later is still flagged within the
    quick look's period (SCREEN_POLL_SECONDS), not at the next liveness pass."""
    from orch_console.console.runtime import watcher as watcher_mod

    cmd = 'sleep 2; cat "$SCREEN"; exec sleep 600'
    (Path(rig.store.path).parent / "orch.toml").write_text(
        f'[agents.late]\ncommand = {json.dumps(cmd)}\nruntime = "tmux"\n'
        f'env = {{ SCREEN = {json.dumps(str(CORPUS / "codex" / "approval-command.txt"))} }}\n')
    rig.run(liveness_interval_seconds=600.0)
    rig.task("t", "")
    a = rig.start("t", profile="late")["attempt"]
    w = Watcher(rig.store.path, rig.run_id)
    try:
        w.tick(force_liveness=True)  # the first pass: nothing on the screen yet
        assert not rt.attention(rig.store, rig.run_id)
        until(lambda: "Would you like to run" in launcher.capture(rig.store.path, a), timeout=30)
        until(lambda: rt.attention(rig.store, rig.run_id), timeout=10 * watcher_mod.SCREEN_POLL_SECONDS + 10,
              step=w.tick, interval=0.1)
    finally:
        w.close()
    assert "permission: Would you like to run the following command?" in rt.attention(rig.store, rig.run_id)[0]["reason"]


def test_a_worker_launched_between_liveness_passes_is_quick_looked_from_its_start(rig: Rig) -> None:
    """A real agent may show its first permission menu a second after its launch: the launch
    makes the watcher read the new worker's screen at once, so the quick look flags the menu
    within its period, not at the next liveness pass."""
    from orch_console.console.runtime import watcher as watcher_mod

    cmd = 'sleep 1; cat "$SCREEN"; exec sleep 600'
    (Path(rig.store.path).parent / "orch.toml").write_text(
        f'[agents.quick]\ncommand = {json.dumps(cmd)}\nruntime = "tmux"\n'
        f'env = {{ SCREEN = {json.dumps(str(CORPUS / "claude" / "permission-bash.txt"))} }}\n')
    rig.run(liveness_interval_seconds=600.0)
    rig.task("t", "")
    w = Watcher(rig.store.path, rig.run_id)
    try:
        w.tick(force_liveness=True)  # the liveness pass before the launch: the next one is 600 s away
        rig.start("t", profile="quick")
        until(lambda: rt.attention(rig.store, rig.run_id), timeout=10 * watcher_mod.SCREEN_POLL_SECONDS + 10,
              step=w.tick, interval=0.1)
    finally:
        w.close()
    assert "permission: Do you want to proceed?" in rt.attention(rig.store, rig.run_id)[0]["reason"]


def test_the_quick_look_finds_the_next_menu_after_the_leader_answered_one_that_reads_the_same(rig: Rig) -> None:
    """Claude Code's next permission menu reads as the last one did ("Do you want to proceed?
    [1. Yes | ..."); only the command above it differs. Once the leader has answered the first,
    the quick look flags the second within its period, not at the next liveness pass."""
    from orch_console.console.runtime import watcher as watcher_mod

    # the menu; the leader's key and Enter; a moment's work; the next menu, for another command
    cmd = ('cat "$SCREEN"; read -r _; printf "\\033[2J\\033[H"; sleep 0.3; '
           'sed "s/echo hello > proof.txt/touch second.txt/" "$SCREEN"; exec sleep 600')
    (Path(rig.store.path).parent / "orch.toml").write_text(
        f'[agents.asks]\ncommand = {json.dumps(cmd)}\nruntime = "tmux"\n'
        f'env = {{ SCREEN = {json.dumps(str(CORPUS / "claude" / "permission-bash.txt"))} }}\n')
    rig.run(liveness_interval_seconds=600.0)
    rig.task("t", "")
    a = rig.start("t", profile="asks")["attempt"]
    w = Watcher(rig.store.path, rig.run_id)
    try:
        until(lambda: "echo hello > proof.txt" in launcher.capture(rig.store.path, a), timeout=30)
        w.tick(force_liveness=True)
        assert len(rig.events("attempt_waiting_input", "t")) == 1
        launcher.send_keys(rig.store, run_id=rig.run_id, task_id="t", text="1")
        until(lambda: "touch second.txt" in launcher.capture(rig.store.path, a), timeout=30)
        until(lambda: len(rig.events("attempt_waiting_input", "t")) == 2,
              timeout=10 * watcher_mod.SCREEN_POLL_SECONDS + 10, step=w.tick, interval=0.1)
    finally:
        w.close()
    (flag,) = rt.attention(rig.store, rig.run_id)
    assert flag["reason"].startswith("waiting for input: permission: Do you want to proceed? [1. Yes"), flag
    assert not rig.events("attempt_nudged", "t")


def test_a_usage_limit_holds_the_profile_until_the_leader_releases_it(rig: Rig) -> None:
    shows(rig, limited="codex/rate-limit-429.txt")
    rig.run(autopilot=True, profile="limited", concurrency=2)
    rig.task("t1", "")
    rig.task("t2", "")
    a = rig.start("t1", profile="limited")["attempt"]
    until(lambda: "429" in launcher.capture(rig.store.path, a), timeout=30)
    w = Watcher(rig.store.path, rig.run_id)
    try:
        w.tick(force_liveness=True)
        held = holds.active(rig.store)
        assert list(held) == ["limited"] and held["limited"]["kind"] == "usage_limit", held
        assert held["limited"]["until_at"], "a usage limit without a reset time still lifts by itself"
        # the autopilot starts nothing with a held profile, and says why
        w.tick(force_liveness=True)
        assert rig.attempts("t2") == []
        (kept,) = rig.events("task_held_by_profile", "t2")
        assert "profile limited is held (usage_limit)" in kept["summary"]
        listed = json.loads(orch(rig, "holds").stdout)["data"]["holds"]
        assert [h["profile"] for h in listed] == ["limited"]
        (att,) = rig.attempts("t1")
        assert att["liveness"] == "error" and att["end_reason"] == "", att
        # the leader releases it: the next pass dispatches and launches t2
        released = orch(rig, "release", "--profile", "limited")
        assert released.returncode == 0, released.stderr
        until(lambda: rig.attempts("t2") and rig.attempts("t2")[0]["runtime"] == "tmux", timeout=30, step=w.tick)
    finally:
        w.close()
    assert orch(rig, "release", "--profile", "limited").returncode in (0, 40)
    report = orch(rig, "report", "--run", rig.run_id, "--format", "json")
    walls = json.loads(json.loads(report.stdout)["data"]["report"])["walls"]
    assert walls["by_kind"].get("usage_limit", 0) >= 1 and walls["released"] == 1 and walls["starts_held_back"] >= 1
    md = json.loads(orch(rig, "report", "--run", rig.run_id).stdout)["data"]["report"]
    assert "## Agent limits and outages" in md and "usage_limit" in md


def test_releasing_a_profile_that_is_not_held_is_not_found_and_changes_nothing(rig: Rig) -> None:
    rig.run()
    before = rig.store.scalar("SELECT count(*) FROM events")
    p = orch(rig, "release", "--profile", "claude")
    assert p.returncode == 40 and json.loads(p.stdout)["error"]["code"] == "not_found"
    assert rig.store.scalar("SELECT count(*) FROM events") == before
