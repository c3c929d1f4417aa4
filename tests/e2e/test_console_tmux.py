"""`orch console` in a real terminal (tmux), driven by send-keys and read by capture-pane, while a
worker process posts a blocked question through the inbox CLI; the leader answers it in the
console and the worker's wait-reply gets the answer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from tests.conftest import INBOX, ORCH, git_env, terminal_env

pytestmark = [pytest.mark.tmux, pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")]


SOCKET = f"orch-e2e-{os.getpid()}"   # a private tmux server: the developer's own is never touched


def capture(session: str) -> str:
    return subprocess.run(["tmux", "-L", SOCKET, "capture-pane", "-p", "-t", session], capture_output=True,
                          text=True).stdout


def wait_screen(session: str, needle: str, timeout: float = 45) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = capture(session)
        if needle in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} never appeared on screen:\n{capture(session)}")


def test_console_under_tmux_answers_a_blocked_worker(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "tmux e2e")
    cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "pick a port", "--default-to", "w1")
    thread = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "analysis")["attempt"]["thread_id"]
    cli.ok("inbox", "claim", "--agent", "w1", "--thread", thread)
    session = f"orch-e2e-{uuid.uuid4().hex[:8]}"
    env = terminal_env(ORCH_CONSOLE_CONFIG=str(tmp_path / "none.toml"))
    env.pop("ORCH_THEME", None)
    cmd = f"{ORCH} --db {cli.db} console --run r1; sleep 2"
    subprocess.run(["tmux", "-L", SOCKET, "new-session", "-d", "-s", session, "-x", "140", "-y", "40", cmd], check=True, env=env)
    waiter = None
    try:
        wait_screen(session, "Run board")
        wait_screen(session, "t1")
        cli.ok("inbox", "update", "--agent", "w1", "--thread", thread, "--status", "blocked",
               "--summary", "Which port, 8080 or 9090?")
        waiter = subprocess.Popen([INBOX, "--db", cli.db, "--json", "wait-reply", "--thread", thread, "--agent", "w1",
                                   "--timeout-seconds", "60"], stdout=subprocess.PIPE, text=True, env=git_env())
        wait_screen(session, "blocked 1")          # the live refresh reached the header
        # The question is readable on the board itself (the preview under the table), no key pressed.
        board = wait_screen(session, "asks: Which port, 8080 or 9090?")
        assert "Run board" in board and "[a: answer]" in board
        subprocess.run(["tmux", "-L", SOCKET, "send-keys", "-t", session, "a"], check=True)
        screen = wait_screen(session, "Answer t1")
        assert "Which port, 8080 or 9090?" in screen
        subprocess.run(["tmux", "-L", SOCKET, "send-keys", "-t", session, "-l", "use 9090"], check=True)
        wait_screen(session, "use 9090")
        subprocess.run(["tmux", "-L", SOCKET, "send-keys", "-t", session, "Enter"], check=True)
        out, _ = waiter.communicate(timeout=30)
        doc = json.loads(out)
        assert doc["ok"] and doc["data"]["message"]["body"] == "use 9090"
        # the answer leaves the thread blocked; the worker resumes it (orch-contract.md 3.3)
        cli.ok("inbox", "update", "--agent", "w1", "--thread", thread, "--status", "in_progress", "--summary", "9090")
        status = cli.ok("orch", "status", "--run", "r1")
        assert status["tasks"][0]["status"] == "running"
        wait_screen(session, "blocked 0")
        subprocess.run(["tmux", "-L", SOCKET, "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 30
        while "Run board" in capture(session) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "Traceback" not in capture(session)
    finally:
        if waiter is not None and waiter.poll() is None:
            waiter.kill()
        subprocess.run(["tmux", "-L", SOCKET, "kill-server"], capture_output=True)


def test_attach_key_hands_the_terminal_to_the_tmux_worker_and_back(cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`A` suspends the console and runs `tmux attach` on the worker's session (the database's
    private tmux server): the leader sees the worker's `Continue? [y/n]`, answers it there, detaches
    with the tmux prefix + d, and is back on the board, which shows the task finishing."""
    from orch_console.console.runtime import launcher
    from orch_console.store import Store, dispatch, runs

    s = Store(cli.db)
    try:
        runs.run_init(s, run_id="r1", goal="attach e2e", config={
            "liveness_interval_seconds": 0.2, "stall_seconds": 120, "nudge_seconds": 120,
            "worker_env": {"ORCH_SIM_STEP_SECONDS": "0.05"}})
        runs.task_add(s, run_id="r1", task_id="t1", title="ask then go on", default_to="sim",
                      spec="sim-script: progress,prompt,progress,done")
        dispatch.dispatch(s, run_id="r1", task_id="t1", execution_mode="analysis")
        out = launcher.launch(s, run_id="r1", task_id="t1", profile="sim-tmux")
    finally:
        s.close()
    session = f"orch-e2e-{uuid.uuid4().hex[:8]}"
    sock = f"orch-e2e-{uuid.uuid4().hex[:8]}"   # the console's own terminal, on a private server
    env = terminal_env(ORCH_CONSOLE_CONFIG=str(tmp_path / "none.toml"))
    env.pop("ORCH_THEME", None)
    env.pop("TMUX", None)

    def cap() -> str:
        return subprocess.run(["tmux", "-L", sock, "capture-pane", "-p", "-t", session], capture_output=True,
                              text=True).stdout

    def wait(needle: str, timeout: float = 45) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = cap()
            if needle in text:
                return text
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} never appeared on screen:\n{cap()}")

    def keys(*k: str) -> None:
        subprocess.run(["tmux", "-L", sock, "send-keys", "-t", session, *k], check=True)

    cmd = f"{ORCH} --db {cli.db} console --run r1; sleep 2"
    subprocess.run(["tmux", "-L", sock, "new-session", "-d", "-s", session, "-x", "140", "-y", "40", cmd],
                   check=True, env=env)
    try:
        wait("Run board")
        wait("t1")
        deadline = time.monotonic() + 30
        while "Continue? [y/n]" not in launcher.capture(cli.db, out["attempt"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        keys("A")
        # The worker's own screen, through tmux attach (the board's preview shows its tail too).
        deadline = time.monotonic() + 30
        while ("Run board" in cap() or "Continue? [y/n]" not in cap()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "Run board" not in cap() and "Continue? [y/n]" in cap()
        keys("-l", "y")
        keys("Enter")
        wait("continuing")
        keys("C-b", "d")                         # detach: the console takes the terminal back
        wait("Run board")
        wait("done")
        assert "Traceback" not in cap()
        keys("q")
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        s = Store(cli.db)
        try:
            for a in s.all("SELECT * FROM attempts WHERE runtime<>''"):
                launcher.stop(cli.db, dict(a), grace=0.5)
        finally:
            s.close()
        launcher.kill_server(cli.db)
