"""The console's review view (issue 14) on a real repository and database: changed files, the
coloured diff drawn only where visible, land and request changes from it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from orch_console.console.tui.app import OrchConsole
from tests.land.conftest import LandRig, head


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ORCH_CONSOLE_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.delenv("ORCH_THEME", raising=False)


async def _until(pilot, cond, what: str, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


def _prepare(lrig: LandRig) -> None:
    lrig.run(land_target="main")
    lrig.task("big")
    lrig.task("other")
    lrig.dispatch("big")
    lrig.dispatch("other")
    big = "".join(f"line {i}\n" for i in range(20000))
    lrig.work("big", {"big.txt": big, "docs/notes.md": "# notes\n\x1b[31mred?\x1b[0m\n"})
    lrig.work("other", {"big.txt": "conflicting\n"})


def test_review_view_lists_files_scrolls_a_large_diff_and_lands(lrig: LandRig) -> None:
    _prepare(lrig)

    async def go() -> None:
        app = OrchConsole(lrig.store.path, "r1", live=False, engine=False)
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()
            await _until(pilot, lambda: app.board.run_id == "r1", "run opened")
            app.board.selected = "big"
            await pilot.press("V")
            await _until(pilot, lambda: app.screen.__class__.__name__ == "ReviewScreen", "review screen")
            from textual.widgets import OptionList

            from orch_console.console.tui.screens.review import DiffView

            screen = app.screen
            files = screen.query_one(OptionList)
            assert [str(files.get_option_at_index(i).prompt) for i in range(files.option_count)] == \
                ["big.txt", "docs/notes.md"]
            view = screen.query_one(DiffView)
            assert len(view.lines) > 20000 and view.kinds.count("add") == 20002
            assert not any("\x1b" in ln for ln in view.lines)  # worker text: escapes stripped
            # scrolling to the end of a 20,000-line diff renders only what is on screen
            t0 = time.perf_counter()
            for _ in range(20):
                await pilot.press("pagedown")
            await pilot.press("n")  # next file: docs/notes.md
            await pilot.pause()
            assert time.perf_counter() - t0 < 10
            row = view.file_rows[1]  # near the end: shown, as far up as the scroll allows
            y = view.scroll_offset.y
            assert y > 19000 and y <= row < y + view.size.height
            assert "diff --git a/docs/notes.md" in view.render_line(row - y).text
            assert "red?" in "".join(view.render_line(i).text for i in range(view.size.height))
            main_before = head(lrig.repo, "main")
            await pilot.press("l")
            await _until(pilot, lambda: lrig.store.scalar(
                "SELECT count(*) FROM lands WHERE task_id='big' AND status='landed'") == 1, "landed")
            assert app.screen.__class__.__name__ != "ReviewScreen"
        assert head(lrig.repo, "main") != main_before
        assert (lrig.repo / "big.txt").read_text().count("\n") == 20000

    asyncio.run(go())


def test_review_view_shows_conflicts_and_requests_changes(lrig: LandRig) -> None:
    _prepare(lrig)
    from orch_console.store import land

    land.land(lrig.store, run_id="r1", task_id="big")

    async def go() -> None:
        app = OrchConsole(lrig.store.path, "r1", live=False, engine=False)
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()
            await _until(pilot, lambda: app.board.run_id == "r1", "run opened")
            app.board.selected = "other"
            await pilot.press("V")
            await _until(pilot, lambda: app.screen.__class__.__name__ == "ReviewScreen", "review screen")
            from textual.widgets import Static

            head_text = str(app.screen.query_one("#review-head", Static).render())
            assert "conflicts with main" in head_text and "big.txt" in head_text
            await pilot.press("c")
            await _until(pilot, lambda: app.screen.__class__.__name__ == "InstructionScreen", "review form")
            await pilot.press(*"append, do not replace")
            await pilot.press("ctrl+s")
            await _until(pilot, lambda: len(lrig.store.all(
                "SELECT 1 FROM attempts WHERE task_id='other'")) == 2, "rework attempt")
        a2 = lrig.attempt("other")
        assert a2["attempt_no"] == 2 and a2["base_commit"] == head(lrig.repo, "main")
        assert "append, do not replace" in a2["instruction"] and "big.txt" in a2["instruction"]

    asyncio.run(go())


def test_diff_lines_are_coloured_by_kind_and_by_language() -> None:
    from orch_console.console.tui.screens.review import _lexer_for, code_segments, line_kind

    assert [line_kind(x) for x in ("diff --git a/x b/x", "@@ -1 +1 @@", "+a", "-b", " c", "+++ b/x")] == \
        ["file", "hunk", "add", "del", "text", "meta"]
    segs = code_segments("+def main():  # go", "add", _lexer_for("app.py"))
    by_text = {s.text.strip(): s.style for s in segs if s.text.strip()}
    assert by_text["+"].color.name == "green"
    assert by_text["def"].color.name == "magenta" and by_text["def"].bold
    assert by_text["# go"].italic
    assert all(s.style.bgcolor is not None for s in segs)  # the added line's tint
    plain = code_segments("+some text", "add", _lexer_for("notes.unknownext"))
    assert "".join(s.text for s in plain) == "+some text"
