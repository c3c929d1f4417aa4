"""Worker text is data: markup is never interpreted and no escape sequence reaches the screen."""

from __future__ import annotations

import re

from orch_console.console.tui.app import OrchConsole
from tests.ui.conftest import settle, wait_until

HOSTILE = "[/bold] [link=x]click[/link] \x1b]8;;http://x\x07osc\x1b]8;;\x07 \x1b[5mblink\x1b[0m [b]bold?[/b]"
LONG = "L" * 100_000


def _screen_text(app: OrchConsole) -> str:
    """Every character the compositor would send, without styles (those are the driver's)."""
    update = app.screen._compositor.render_update(full=True)
    return "".join(seg.text for strip in update.strips for seg in strip)  # type: ignore[attr-defined]


async def test_markup_and_escapes_render_literally(cli) -> None:  # type: ignore[no-untyped-def]
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "goal [/bold] \x1b[31mred")
    cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "title [link=x]x", "--default-to", "w1")
    d = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "analysis")
    thread = d["attempt"]["thread_id"]
    cli.ok("inbox", "claim", "--agent", "w1", "--thread", thread)
    cli.ok("inbox", "update", "--agent", "w1", "--thread", thread, "--status", "in_progress", "--summary", HOSTILE,
           "--body", LONG)
    cli.ok("inbox", "update", "--agent", "w1", "--thread", thread, "--status", "blocked", "--summary", HOSTILE,
           "--body", HOSTILE + "\n" + LONG)
    app = OrchConsole(cli.db, "r1", live=False, engine=False)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        seen = []
        for pane in ("board", "dag", "blocked", "log"):
            app.board.action_pane(pane)
            await settle(pilot)
            await wait_until(pilot, lambda pane=pane: app.board.pane == pane, what=pane)
            if pane == "board":  # the preview under the table shows the question, literally
                await wait_until(pilot, lambda: "asks: [/bold] [link=x]click[/link]" in _screen_text(app),
                                 what="the question in the board's preview")
            if pane in ("blocked", "log"):  # their content arrives from a worker after the switch
                await wait_until(pilot, lambda: "[link=x]click[/link]" in _screen_text(app), what=f"{pane} text")
            text = _screen_text(app)
            assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text), f"control character on the {pane} pane"
            seen.append(text)
        blocked, log = seen[2], seen[3]
        assert "[/bold] [link=x]click[/link]" in blocked
        assert "[b]bold?[/b]" in blocked
        assert "osc" in blocked and "blink" in blocked
        assert "[/bold] [link=x]click[/link]" in log
        from textual.widgets import Log

        lines = app.query_one("#log-lines", Log).lines
        assert any(line.startswith("    LLLL") for line in lines)
        assert not any("\x1b" in line or "\x07" in line for line in lines)
        svg = app.export_screenshot()
        assert "\x1b" not in svg and "\x07" not in svg
