"""Each leader key does its real effect on a real SQLite file (and a real git repository)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from orch_console.console.tui.app import OrchConsole
from orch_console.console.tui.config import ConsoleConfig
from tests.conftest import INBOX, git_env, make_repo
from tests.ui.conftest import settle, wait_until



def attempts(db: str, task: str) -> list[dict]:
    import sqlite3

    c = sqlite3.connect(db)
    c.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in c.execute("SELECT * FROM attempts WHERE task_id=? ORDER BY attempt_no", (task,))]
    finally:
        c.close()


def answers(db: str, thread: str) -> int:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM messages WHERE thread_id=? AND kind='answer'",
                            (thread,)).fetchone()[0]
    finally:
        conn.close()


def task_status(db: str, task: str) -> str:
    import sqlite3

    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT status FROM tasks WHERE task_id=?", (task,)).fetchone()[0]
    finally:
        c.close()


def plan(cli, *tasks: tuple[str, list[str]]) -> None:  # type: ignore[no-untyped-def]
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "ship it")
    for task, extra in tasks:
        cli.ok("orch", "task", "add", "--run", "r1", "--task", task, "--title", f"do {task}", "--default-to", "w1", *extra)


def dispatched_and_claimed(cli, task: str) -> str:  # type: ignore[no-untyped-def]
    d = cli.ok("orch", "dispatch", "--run", "r1", "--task", task, "--execution-mode", "analysis")
    thread = d["attempt"]["thread_id"]
    cli.ok("inbox", "claim", "--agent", "w1", "--thread", thread)
    return thread


async def test_answer_key_reaches_the_workers_wait_reply(cli) -> None:  # type: ignore[no-untyped-def]
    """A worker blocks through the inbox CLI while the console is open; `a`, typing and Enter
    answer it, and the worker's own `inbox wait-reply` returns that answer."""
    plan(cli, ("t1", []))
    thread = dispatched_and_claimed(cli, "t1")
    app = OrchConsole(cli.db, "r1", engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: app.board.run_id == "r1", what="run opened")
        cli.ok("inbox", "update", "--agent", "w1", "--thread", thread, "--status", "blocked",
               "--summary", "Which port?", "--body", "8080 or 9090?")
        waiter = subprocess.Popen([INBOX, "--db", cli.db, "--json", "wait-reply", "--thread", thread, "--agent", "w1",
                                   "--timeout-seconds", "60"], stdout=subprocess.PIPE, text=True, env=git_env())
        try:
            await wait_until(pilot, lambda: bool(app.board.blocked), what="live refresh shows the question")
            await pilot.press("a")
            await pilot.pause()
            assert app.board.pane == "blocked"
            assert app.focused is not None and app.focused.id == "answer-input"
            await pilot.press(*"use 9090")
            await pilot.press("enter")
            out, _ = waiter.communicate(timeout=30)
        finally:
            if waiter.poll() is None:
                waiter.kill()
        doc = json.loads(out)
        assert doc["ok"] is True
        assert doc["data"]["message"]["body"] == "use 9090"
        assert doc["data"]["message"]["kind"] == "answer"
        await wait_until(pilot, lambda: not app.board.blocked, what="blocked list to empty")
        # the answer box let go of the keyboard: `1` switches pane instead of typing a digit
        assert app.focused is None or app.focused.id != "answer-input"
        await pilot.press("1")
        await pilot.pause()
        assert app.board.pane == "board"
    # the answer leaves the thread blocked; the worker resumes it (orch-contract.md 3.3)
    assert task_status(cli.db, "t1") == "blocked"
    cli.ok("inbox", "update", "--agent", "w1", "--thread", thread, "--status", "in_progress", "--summary", "on 9090")
    assert task_status(cli.db, "t1") == "running"


async def test_escape_leaves_the_answer_box(cli) -> None:  # type: ignore[no-untyped-def]
    """Opening the answer box and pressing Escape gives the keys back to the console."""
    plan(cli, ("t1", []))
    thread = dispatched_and_claimed(cli, "t1")
    cli.ok("inbox", "update", "--agent", "w1", "--thread", thread, "--status", "blocked", "--summary", "Which port?")
    app = OrchConsole(cli.db, "r1", engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_until(pilot, lambda: bool(app.board.blocked), what="the question")
        await pilot.press("a")
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "answer-input"
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is None or app.focused.id != "answer-input"
        await pilot.press("1")
        await pilot.pause()
        assert app.board.pane == "board"


async def test_answer_with_json_sends_a_structured_payload(cli) -> None:  # type: ignore[no-untyped-def]
    plan(cli, ("t1", []))
    thread = dispatched_and_claimed(cli, "t1")
    cli.ok("inbox", "update", "--agent", "w1", "--thread", thread, "--status", "blocked", "--summary", "port?")
    app = OrchConsole(cli.db, "r1", live=False, engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await pilot.pause()
        await pilot.press(*'{"port": 9090}')
        await pilot.press("enter")
        await wait_until(pilot, lambda: answers(cli.db, thread) == 1, what="answer stored")
    show = cli.ok("inbox", "show", "--thread", thread)
    last = show["messages"][-1]
    assert last["kind"] == "answer" and last["payload"] == {"port": 9090}


async def test_dispatch_key_creates_attempt_and_worktree_in_code_mode(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`d` opens the form with mode (code: the task declares paths) and worker prefilled;
    ctrl+s dispatches through store.dispatch, which makes the worktree."""
    repo = make_repo(tmp_path / "repo")
    plan(cli, ("t1", ["--path", "src/"]))
    app = OrchConsole(cli.db, "r1", live=False, engine=False, config=ConsoleConfig(repo_path=str(repo)))
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert app.board.selected == "t1"
        await pilot.press("d")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "DispatchScreen", what="dispatch form")
        from textual.widgets import Input, Select

        assert app.screen.query_one("#mode", Select).value == "code"
        assert app.screen.query_one("#to", Input).value == "w1"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: bool(attempts(cli.db, "t1")), what="attempt created")
    a = attempts(cli.db, "t1")[0]
    assert a["execution_mode"] == "code" and a["assigned_to"] == "w1"
    assert Path(a["worktree_path"]).is_dir()
    assert a["branch_name"] == "orch/r1/t1/a1"
    assert task_status(cli.db, "t1") == "dispatched"


async def test_retry_refuses_the_same_prompt_then_makes_attempt_2(cli) -> None:  # type: ignore[no-untyped-def]
    plan(cli, ("t1", []))
    thread = dispatched_and_claimed(cli, "t1")
    cli.ok("inbox", "fail", "--agent", "w1", "--thread", thread, "--summary", "tests broke")
    app = OrchConsole(cli.db, "r1", live=False, engine=False)
    async with app.run_test(size=(140, 40), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "InstructionScreen", what="retry form")
        await pilot.press("ctrl+s")  # the instruction is unchanged: the store refuses it
        await wait_until(pilot, lambda: any("same as the failed attempt" in n.message
                                            for n in app._notifications), what="refusal notification")
        assert len(attempts(cli.db, "t1")) == 1
        await pilot.press("r")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "InstructionScreen", what="retry form")
        await pilot.press(*"Pin the test runner. ")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(attempts(cli.db, "t1")) == 2, what="attempt 2")
    a2 = attempts(cli.db, "t1")[1]
    assert a2["instruction"].startswith("Pin the test runner. ")
    assert task_status(cli.db, "t1") == "dispatched"


async def test_cancel_asks_first_and_cancels_only_on_yes(cli) -> None:  # type: ignore[no-untyped-def]
    plan(cli, ("t1", []))
    dispatched_and_claimed(cli, "t1")
    app = OrchConsole(cli.db, "r1", live=False, engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("x")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen", what="confirm")
        await pilot.press("n")
        await settle(pilot)
        assert task_status(cli.db, "t1") == "running"
        await pilot.press("x")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen", what="confirm")
        await pilot.press("y")
        await wait_until(pilot, lambda: task_status(cli.db, "t1") == "cancelled", what="cancelled")


async def test_reassign_cancels_current_attempt_and_dispatches_to_new_worker(cli) -> None:  # type: ignore[no-untyped-def]
    plan(cli, ("t1", []))
    dispatched_and_claimed(cli, "t1")
    app = OrchConsole(cli.db, "r1", live=False, engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("R")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "InstructionScreen", what="reassign form")
        await pilot.press(*"w2")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(attempts(cli.db, "t1")) == 2, what="attempt 2")
    a1, a2 = attempts(cli.db, "t1")
    assert a1["end_reason"] == "reassigned" and a2["assigned_to"] == "w2"


async def test_cleanup_of_dirty_worktree_asks_then_removes(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo(tmp_path / "repo")
    plan(cli, ("t1", []))
    d = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--repo-path", str(repo))
    thread, wt = d["attempt"]["thread_id"], Path(d["attempt"]["worktree_path"])
    cli.ok("inbox", "claim", "--agent", "w1", "--thread", thread)
    cli.ok("inbox", "done", "--agent", "w1", "--thread", thread, "--summary", "done")
    (wt / "scratch.txt").write_text("uncommitted\n")
    app = OrchConsole(cli.db, "r1", live=False, engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen", what="confirm")
        assert wt.exists()
        await pilot.press("y")
        await wait_until(pilot, lambda: not wt.exists(), what="worktree removed")
    assert attempts(cli.db, "t1")[0]["workspace_status"] == "cleaned"


async def test_export_and_autopilot_keys(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plan(cli, ("t1", []), ("t2", []))
    cli.ok("orch", "dep", "add", "--run", "r1", "--task", "t2", "--depends-on", "t1")
    out = tmp_path / "reports"
    app = OrchConsole(cli.db, "r1", live=False, engine=False, config=ConsoleConfig(report_dir=str(out)))
    async with app.run_test(size=(140, 40), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await wait_until(pilot, lambda: out.exists() and any(out.iterdir()), what="report file")
        await wait_until(pilot, lambda: any("wave report written to" in n.message for n in app._notifications),
                         what="notification with the path")
        await pilot.press("p")
        await wait_until(pilot, lambda: cli.ok("orch", "run", "show", "--run", "r1")["run"]["config"].get("autopilot")
                         is True, what="autopilot on")
    report = next(out.iterdir())
    assert report.name.startswith("r1-") and report.suffix == ".md"
    text = report.read_text()
    # The real wave report (store.report, as `orch report --format md`), waves from 0.
    assert text.startswith("# Wave report: r1")
    assert "## Wave 0" in text and "## Wave 1" in text and "t2" in text
    cli_text = cli.orch("report", "--run", "r1", "--format", "md", json_out=False).stdout

    def same(t: str) -> list[str]:  # the durations tick between the two renders
        return [ln for ln in t.strip().splitlines() if not ln.startswith("**Duration:**")]

    assert same(text) == same(cli_text)


async def test_export_writes_beside_the_database_by_default(cli) -> None:  # type: ignore[no-untyped-def]
    plan(cli, ("t1", []))
    app = OrchConsole(cli.db, "r1", live=False, engine=False)
    folder = Path(cli.db).parent / "reports"
    async with app.run_test(size=(140, 40), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await wait_until(pilot, lambda: folder.is_dir() and any(folder.glob("r1-*.md")), what="report file")
        path = next(folder.glob("r1-*.md"))
        await wait_until(pilot, lambda: any(str(path) in n.message for n in app._notifications),
                         what="notification with the path")


async def test_filter_and_views_window_the_table(sample_db: str) -> None:
    app = OrchConsole(sample_db, live=False, engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert len(app.board.table.window) == 17
        await pilot.press("f")
        await settle(pilot)
        assert [r.task_id for r in app.board.table.window] == ["ci"]
        await pilot.press("n")
        await settle(pilot)
        assert {r.task_id for r in app.board.table.window} == {"ci", "tokens", "sessions", "lint"}  # lint: gemini at its sign-in screen
        await pilot.press("n")  # toggles back to all
        await pilot.press("slash")
        await pilot.pause()
        await pilot.press(*"api", "enter")
        await settle(pilot)
        assert {r.task_id for r in app.board.table.window} == {"login-api", "refresh-api"}


async def test_missing_database_shows_a_banner_not_a_traceback(tmp_path: Path) -> None:
    app = OrchConsole(str(tmp_path / "nope.db"), live=False, engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        banner = app.query_one("#banner")
        assert banner.has_class("shown")
        assert "no database" in str(banner.render())
    assert not (tmp_path / "nope.db").exists()


async def test_a_database_that_appears_later_is_opened_and_the_banner_goes(tmp_path: Path) -> None:
    """Live, the refresh thread keeps trying a missing database every second and opens the run
    once it is there."""
    import os
    import sqlite3

    from orch_console.console.tui.sample import RUN, build_sample_run

    db = tmp_path / "later.db"
    app = OrchConsole(str(db), live=True, engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        banner = app.query_one("#banner")
        await wait_until(pilot, lambda: banner.has_class("shown"), what="the banner")
        # The database appears whole (one file, no WAL): a half-built one, no run yet, would be
        # opened as "no runs yet", and that banner stays until the next failure.
        (tmp_path / "build").mkdir()
        built = tmp_path / "build" / "later.db"
        build_sample_run(str(built))
        c = sqlite3.connect(built)
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.close()
        os.replace(built, db)
        await wait_until(pilot, lambda: app.board.run_id == RUN, what="the run opened")
        await wait_until(pilot, lambda: not banner.has_class("shown"), what="the banner gone")
        assert app.board.table.window


async def test_corrupt_database_shows_a_banner(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    app = OrchConsole(str(bad), live=False, engine=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.query_one("#banner").has_class("shown")


async def test_console_numbers_waves_as_orch_plan_does(cli) -> None:  # type: ignore[no-untyped-def]
    """Wave 0 is the tasks with no dependencies, in the table, the header and the DAG legend, as
    in `orch plan` and `orch status`."""
    plan(cli, ("t1", []), ("t2", []))
    cli.ok("orch", "dep", "add", "--run", "r1", "--task", "t2", "--depends-on", "t1")
    cli_waves = {t["task_id"]: w["wave"] for w in cli.ok("orch", "plan", "--run", "r1")["waves"] for t in w["tasks"]}
    assert cli_waves == {"t1": 0, "t2": 1}
    app = OrchConsole(cli.db, "r1", live=False, engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        assert {t: int(str(app.board.table.get_cell(t, "wave"))) for t in ("t1", "t2")} == cli_waves
        header = str(app.board.query_one("#run-header").render())
        assert "W0 " in header and "W1 " in header and "W2" not in header
        app.board.table.select_task("t2")
        await settle(pilot)
        app.board.action_pane("dag")
        await settle(pilot)
        assert "wave 1  waits on: t1" in str(app.board.query_one("#dag-legend").render())


async def test_a_refresh_read_for_a_replaced_view_is_dropped_and_read_again(sample_db: str) -> None:
    """The refresh thread reads for the run/window/filter of the moment; if the board replaced it
    before the result arrived (page turn, filter, run switch), the result is not applied."""
    import dataclasses

    from orch_console.console.tui.messages import BoardChanged

    app = OrchConsole(sample_db, live=False, engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        row = next(r for r in app.board.table.window if r.task_id == "lint")
        assert row.status == "dispatched"
        fake = dataclasses.replace(row, status="done")
        before = app.board.last_event_id
        stale = app.board.view_gen - 1
        app.board.post_message(BoardChanged(before + 1, None, [fake], None, None, {"lint"}, view_gen=stale))
        await settle(pilot)
        await wait_until(pilot, lambda: app.board.refresher.started and not app.board.refresher.pending,
                         what="the re-read")
        assert next(r for r in app.board.table.window if r.task_id == "lint").status == "dispatched"
        assert app.board.last_event_id == before
        shown = app.board.view_gen
        app.board.post_message(BoardChanged(before + 1, None, [fake], None, None, {"lint"}, view_gen=shown))
        await settle(pilot)
        assert next(r for r in app.board.table.window if r.task_id == "lint").status == "done"


async def test_live_refresh_goes_on_after_the_database_is_replaced_by_one_with_fewer_events(tmp_path: Path) -> None:
    """A database restored or re-created in place counts its events from lower numbers; once the
    board re-opens it, new events must show (the refresh thread's cursor restarts)."""
    import os

    from orch_console.console.tui.sample import RUN, build_sample_run
    from orch_console.store import Store, runs

    db = str(tmp_path / "coord.db")
    build_sample_run(db, pin_time=False)
    app = OrchConsole(db, live=False, engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        app.board.request_refresh()
        await wait_until(pilot, lambda: app.board.refresher.started and not app.board.refresher.pending,
                         what="a refresh")
        high = app.board.last_event_id
        app.board.data.reset()   # as the live poll does when the file goes away
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        with Store(db) as s:
            runs.run_init(s, run_id=RUN, goal="restored")
            runs.task_add(s, run_id=RUN, task_id="first", title="only task")
        app.board.recover()
        await wait_until(pilot, lambda: [r.task_id for r in app.board.table.window] == ["first"], what="the re-open")
        assert app.board.last_event_id < high
        with Store(db) as s:
            runs.task_add(s, run_id=RUN, task_id="second", title="added after the re-open")
        app.board.request_refresh()
        await wait_until(pilot, lambda: [r.task_id for r in app.board.table.window] == ["first", "second"],
                         what="the task added after the re-open")


async def test_a_slow_first_read_does_not_replace_a_run_the_leader_opened_meanwhile(sample_db: str,
                                                                                     monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import threading

    import orch_console.console.tui.board as board_module
    from orch_console.console.tui.board import BoardScreen
    from orch_console.store import Store, runs

    with Store(sample_db) as s:
        runs.run_init(s, run_id="other", goal="another run")
        runs.task_add(s, run_id="other", task_id="solo", title="the other run's task")
    release = threading.Event()
    original = BoardScreen._read_first_open

    def slow_first_read(self) -> None:  # type: ignore[no-untyped-def]
        release.wait(10)
        original(self)

    monkeypatch.setattr(BoardScreen, "_read_first_open", slow_first_read)
    monkeypatch.setattr(board_module, "FIRST_OPEN_WAIT", 0.05)
    app = OrchConsole(sample_db, "web-auth", live=False, engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        app.board.open_run("other")
        await wait_until(pilot, lambda: app.board.run_id == "other", what="the run the leader opened")
        release.set()
        await wait_until(pilot, lambda: app.board.first_open.done(), what="the slow first read")
        await settle(pilot)
        assert app.board.run_id == "other" and [r.task_id for r in app.board.table.window] == ["solo"]


async def test_palette_commands_act_on_the_board_also_over_a_modal(sample_db: str) -> None:
    """Each palette entry runs the same action as its key: the board's ones on the board (also when
    the palette was opened over the help screen), the app's ones on the app."""
    app = OrchConsole(sample_db, live=False, engine=False)

    async def palette(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette", what="the palette")
        await pilot.press(*text)
        await pilot.pause(0.3)
        await pilot.press("enter")

    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await palette(pilot, "failed only")
        await wait_until(pilot, lambda: app.board.filter.view == "failed", what="the failed view")
        theme = app.theme
        await palette(pilot, "next theme")
        await wait_until(pilot, lambda: app.theme != theme, what="the next theme")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen", what="help")
        await palette(pilot, "task DAG")
        await wait_until(pilot, lambda: app.board.pane == "dag", what="the DAG pane")


async def test_a_held_profile_shows_in_the_header_and_the_palette_releases_it(cli) -> None:  # type: ignore[no-untyped-def]
    """Issue 12, item 8: a profile held for a usage limit is on the run header; the palette's
    "agents: release held profiles" asks, then lifts it (as `orch release`), an event recorded."""
    from orch_console.store import Store, holds

    plan(cli, ("t1", []))
    with Store(cli.db) as s:
        holds.hold(s, profile="codex", kind="usage_limit", reason="t1 attempt 1: usage_limit: 429 Too Many Requests",
                   run_id="r1", task_id="t1", attempt_no=1, line="resets in 2h")
    app = OrchConsole(cli.db, "r1", live=False, engine=False)
    async with app.run_test(size=(140, 40), notifications=True) as pilot:
        await settle(pilot)
        header = app.screen.query_one("#run-header")
        assert "‖ codex held: usage_limit" in str(header.render())
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette", what="the palette")
        await pilot.press(*"release held")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen", what="the confirmation")
        await pilot.press("y")
        await wait_until(pilot, lambda: cli.ok("orch", "holds")["holds"] == [], what="hold released")
        await wait_until(pilot, lambda: any("released codex" in n.message for n in app._notifications),
                         what="notification")
    with Store(cli.db) as s:
        (ev,) = s.all("SELECT summary FROM events WHERE event_type='profile_released'")
    assert ev["summary"].startswith("codex released by ")
