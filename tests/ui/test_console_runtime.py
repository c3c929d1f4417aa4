"""The console's runtime keys over real workers: dispatch-and-launch from the `d` form, the
worker's live screen in the attempt log, typing into a tmux worker's prompt, the needs-attention
view, and `p` autopilot driving the console's own watcher. Real SQLite, real sim processes, tmux on
the database's private socket; every worker and tmux server is stopped afterwards."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orch_console.console.runtime import launcher
from orch_console.console.tui.app import OrchConsole
from orch_console.store import Store, runs
from tests.ui.conftest import settle, wait_until

FAST: dict[str, Any] = {
    "liveness_interval_seconds": 0.2, "nudge_seconds": 60, "stall_seconds": 120, "idle_seconds": 60,
    "crash_grace_seconds": 0.0, "retry_backoff_seconds": 0.3, "retry_backoff_max_seconds": 1.0,
    "worker_env": {"ORCH_SIM_STEP_SECONDS": "0.05", "ORCH_SIM_LEASE_SECONDS": "5"},
}
needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def q(db: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    c = sqlite3.connect(db)
    c.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in c.execute(sql, args)]
    finally:
        c.close()


@pytest.fixture
def rundb(tmp_path: Path) -> Iterator[str]:
    db = str(tmp_path / ".agents" / "coord.db")
    Path(db).parent.mkdir()
    yield db
    for a in q(db, "SELECT * FROM attempts WHERE runtime<>''") if Path(db).exists() else []:
        launcher.stop(db, a, grace=0.5)
    launcher.kill_server(db)


def make_run(db: str, tasks: list[tuple[str, str, list[str]]], **config: Any) -> None:
    s = Store(db)
    try:
        runs.run_init(s, run_id="r1", goal="runtime in the console", config=FAST | config)
        for task_id, script, deps in tasks:
            runs.task_add(s, run_id="r1", task_id=task_id, title=f"task {task_id}", default_to="sim",
                          spec=f"sim-script: {script}")
            for d in deps:
                runs.dep_add(s, run_id="r1", task_id=task_id, depends_on=d)
    finally:
        s.close()


def latest(db: str, task: str) -> dict[str, Any] | None:
    got = q(db, "SELECT * FROM attempts WHERE task_id=? ORDER BY attempt_no DESC LIMIT 1", task)
    return got[0] if got else None


def status(db: str, task: str) -> str:
    return q(db, "SELECT status FROM tasks WHERE task_id=?", task)[0]["status"]


async def test_dispatch_form_launches_the_profile_and_reports_pid_and_log(rundb: str) -> None:
    """With the run's profile `sim`, the form starts with "launch worker" ticked; ctrl+s dispatches
    and launches through launcher.launch, the notification names the pid and log, and the real
    sim worker runs the task to done."""
    make_run(rundb, [("t1", "progress,done", [])], profile="sim")
    app = OrchConsole(rundb, "r1", live=True, engine=False)
    async with app.run_test(size=(140, 40), notifications=True) as pilot:
        await wait_until(pilot, lambda: app.board.selected == "t1", what="run opened")
        await pilot.press("d")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "DispatchScreen", what="dispatch form")
        from textual.widgets import Checkbox, Select

        assert app.screen.query_one("#launch", Checkbox).value is True
        assert app.screen.query_one("#profile", Select).value == "sim"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any("launched sim" in n.message for n in app._notifications),
                         what="launch notification")
        a = latest(rundb, "t1")
        assert a is not None and a["runtime"] == "process" and a["pid"]
        note = next(n.message for n in app._notifications if "launched sim" in n.message)
        assert f"pid {a['pid']}" in note and a["log_path"] in note
        await wait_until(pilot, lambda: status(rundb, "t1") == "done", timeout=30, what="sim worker finished")


async def test_dispatch_form_with_launch_unticked_only_dispatches(rundb: str) -> None:
    make_run(rundb, [("t1", "progress,done", [])])
    app = OrchConsole(rundb, "r1", live=False, engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("d")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "DispatchScreen", what="dispatch form")
        from textual.widgets import Checkbox, Select

        assert app.screen.query_one("#profile", Select).value == "sim"  # the task's worker is a profile
        app.screen.query_one("#launch", Checkbox).value = False
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: latest(rundb, "t1") is not None, what="attempt")
        await settle(pilot)
    assert latest(rundb, "t1")["runtime"] == ""  # type: ignore[index]


def launch(db: str, task: str, profile: str) -> dict[str, Any]:
    from orch_console.store import dispatch

    s = Store(db)
    try:
        dispatch.dispatch(s, run_id="r1", task_id=task, execution_mode="analysis")
        return launcher.launch(s, run_id="r1", task_id=task, profile=profile)
    finally:
        s.close()


def log_output(app: OrchConsole) -> str:
    from textual.widgets import Log

    w = app.query_one("#log-output", Log)
    return "\n".join(w.lines) if w.display else ""


@needs_tmux
async def test_tmux_worker_screen_prompt_attention_and_send_keys(rundb: str) -> None:
    """A sim worker in tmux stops at `Continue? [y/n]`: the attempt log shows its live screen, the
    console's watcher flags it (⚠ in the liveness column, the header count, the attention view, a
    bell), and `s` types `y` into the terminal, which the worker reads and finishes."""
    make_run(rundb, [("t1", "progress,prompt,progress,done", []), ("t2", "progress,done", [])])
    out = launch(rundb, "t1", "sim-tmux")
    assert out["runtime"] == "tmux"
    app = OrchConsole(rundb, "r1", live=True, engine=True)
    rang: list[int] = []
    async with app.run_test(size=(140, 40), notifications=True) as pilot:
        app.bell = lambda: rang.append(1)  # type: ignore[method-assign]
        await wait_until(pilot, lambda: app.board.selected == "t1", what="run opened")
        await pilot.press("4")
        await wait_until(pilot, lambda: "Continue? [y/n]" in log_output(app), timeout=30, what="prompt on the screen")
        assert "screen of tmux session orch-r1-t1-a1-" in str(app.query_one("#log-output-title").render())
        await wait_until(pilot, lambda: app.board.table.rows_by_id["t1"].attention == "waiting_input", timeout=30,
                         what="needs attention")
        assert str(app.board.table.get_cell("t1", "liveness")) == "⚠ input?"
        assert app.query_one("#run-header").header.attention == 1  # type: ignore[attr-defined]
        await wait_until(pilot, lambda: bool(rang), what="bell")
        # The board rings and notifies together; the App files the notification on its own turn.
        # It names the task and the worker, and the key that answers: k types into the terminal.
        await wait_until(pilot, lambda: any(n.title.startswith("t1 (") and n.title.endswith("waits for input")
                                            and "press k" in n.message for n in app._notifications),
                         what="notification")
        await pilot.press("1", "n")
        await wait_until(pilot, lambda: [r.task_id for r in app.board.table.window] == ["t1"], what="attention view")
        await pilot.press("s")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "SendKeysScreen", what="send keys form")
        assert "Continue? [y/n]" in str(app.screen.query_one(".dialog-body").render())
        await pilot.press("y", "enter")
        await wait_until(pilot, lambda: status(rundb, "t1") == "done", timeout=30, what="worker went on")
        header = app.query_one("#run-header")
        await wait_until(pilot, lambda: app.board.table.window == [] or header.header.attention == 0,  # type: ignore[attr-defined]
                         what="attention cleared")
    sent = q(rundb, "SELECT payload_json FROM events WHERE event_type='attempt_input_sent'")
    assert sent == [{"payload_json": '{"text":"y"}'}]
    assert "continuing" in Path(latest(rundb, "t1")["log_path"]).read_text()  # type: ignore[index]


async def test_crashed_worker_escalates_with_a_bell_and_a_marker(rundb: str) -> None:
    """max_attempts 1: the crash is not retried but escalated; the console rings, notifies, marks
    the row ⚠ escalated and shows it in the attention view; the process log tail is in the log pane."""
    make_run(rundb, [("t1", "progress,crash", [])], max_attempts=1)
    launch(rundb, "t1", "sim")
    app = OrchConsole(rundb, "r1", live=True, engine=True)
    rang: list[int] = []
    async with app.run_test(size=(140, 40), notifications=True) as pilot:
        app.bell = lambda: rang.append(1)  # type: ignore[method-assign]
        await wait_until(pilot, lambda: app.board.selected == "t1", what="run opened")
        await wait_until(pilot, lambda: app.board.table.rows_by_id["t1"].attention == "escalate", timeout=30,
                         what="escalation on the board")
        assert str(app.board.table.get_cell("t1", "liveness")) == "⚠ escalated"
        await wait_until(pilot, lambda: bool(rang), what="bell")
        # The board rings and notifies together; the App files the notification on its own turn.
        await wait_until(pilot, lambda: any(n.title.endswith("is escalated to you") and "press r" in n.message
                                            for n in app._notifications),
                         what="notification")
        await pilot.press("4")
        await wait_until(pilot, lambda: "worker.log" in str(app.query_one("#log-output-title").render()),
                         what="process log tail")


async def test_autopilot_key_makes_the_consoles_watcher_dispatch_and_launch(rundb: str) -> None:
    """`p` sets the run config's autopilot; the console's own watcher engine then dispatches and
    launches ready tasks with the run's profile (real sim processes), t2 as soon as t1 is done,
    and the header says so. `p` again turns it off."""
    make_run(rundb, [("t1", "progress,done", []), ("t2", "progress,done", ["t1"]), ("t3", "done", [])],
             profile="sim")
    app = OrchConsole(rundb, "r1", live=True, engine=True)
    async with app.run_test(size=(140, 40), notifications=True) as pilot:
        await wait_until(pilot, lambda: app.board.selected is not None, what="run opened")
        await pilot.pause(1.5)  # the engine has run passes: autopilot is off, nothing is dispatched
        assert latest(rundb, "t1") is None and latest(rundb, "t3") is None
        header = app.board.query_one("#run-header")
        assert "autopilot off" in str(header.render())
        await pilot.press("p")
        await wait_until(pilot, lambda: header.header.autopilot, what="header shows autopilot on")
        assert "AUTOPILOT ON" in str(header.render())
        await wait_until(pilot, lambda: (latest(rundb, "t1") or {}).get("pid") and (latest(rundb, "t3") or {}).get("pid"),
                         timeout=60, what="ready tasks dispatched and launched")
        assert latest(rundb, "t2") is None or status(rundb, "t1") == "done"
        await wait_until(pilot, lambda: all(status(rundb, t) == "done" for t in ("t1", "t2", "t3")), timeout=60,
                         what="every task done")
        await wait_until(pilot, lambda: header.header.counts.get("done") == 3, what="header counts")
        await pilot.press("p")
        await wait_until(pilot, lambda: not header.header.autopilot, what="autopilot off again")
    auto = q(rundb, "SELECT task_id FROM events WHERE event_type='task_auto_dispatched' ORDER BY event_id")
    assert sorted(e["task_id"] for e in auto) == ["t1", "t2", "t3"]
    assert {a["profile"] for a in q(rundb, "SELECT profile FROM attempts")} == {"sim"}
