"""Snapshots of each pane in both themes at a fixed size, over the pinned sample run
(console/sample.py) with a fixed clock. Update with `pytest tests/ui/test_snapshots.py --snapshot-update`
after looking at snapshot_report.html."""

from __future__ import annotations

import pytest

from orch_console.console.tui.app import OrchConsole
from tests.ui.conftest import FIXED_NOW, settle

SIZE = (140, 40)
THEMES = ["orch-dark", "orch-light"]


def _app(db: str, theme: str) -> OrchConsole:
    return OrchConsole(db, theme=theme, live=False, engine=False, clock=lambda: FIXED_NOW)


async def _open(pilot, pane: str, select: str | None = None) -> None:  # type: ignore[no-untyped-def]
    await settle(pilot)
    app = pilot.app
    if select:
        app.board.table.select_task(select)
        await settle(pilot)
    if pane != "board":
        app.board.action_pane(pane)
        await settle(pilot)
    await pilot.pause(0.1)


@pytest.mark.parametrize("theme", THEMES)
def test_board_pane(snap_compare, sample_db: str, theme: str) -> None:  # type: ignore[no-untyped-def]
    """You should see the run header (web-auth, blocked, an "autopilot off" badge before the goal, counts with
    "⚠ attention 3", wave bars W0..W4 numbered as `orch plan` does)
    and 17 tasks in wave order with coloured statuses: done, failed, dispatched, ready, blocked,
    running and planned; the first row selected."""
    assert snap_compare(_app(sample_db, theme), terminal_size=SIZE, run_before=lambda p: _open(p, "board"))


@pytest.mark.parametrize("theme", THEMES)
def test_dag_pane(snap_compare, sample_db: str, theme: str) -> None:  # type: ignore[no-untyped-def]
    """You should see five wave columns joined by box-drawn edges with arrows, the critical path
    starred, and `sessions` selected: its dependencies and dependants in the highlight colour,
    with "waits on: config, schema · unblocks 7" in the legend."""
    assert snap_compare(_app(sample_db, theme), terminal_size=SIZE,
                        run_before=lambda p: _open(p, "dag", "sessions"))


@pytest.mark.parametrize("theme", THEMES)
def test_blocked_pane(snap_compare, sample_db: str, theme: str) -> None:  # type: ignore[no-untyped-def]
    """You should see two blocked questions (tokens by codex, sessions by claude) and the
    sessions question in full below, its hostile text literal: `[/bold] [link=x]click[/link]`
    and no blinking or hyperlink, then the answer box."""
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _open(pilot, "blocked")
        pilot.app.query_one("#blocked-pane").select("sessions")
        await settle(pilot)

    assert snap_compare(_app(sample_db, theme), terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("theme", THEMES)
def test_log_pane(snap_compare, sample_db: str, theme: str) -> None:  # type: ignore[no-untyped-def]
    """You should see the attempt log of `passwords`: attempt 1 of 1 by gemini, the attempt and
    kind selectors, and its messages (task, claimed, two progress reports, one of them the
    hostile text shown literally)."""
    assert snap_compare(_app(sample_db, theme), terminal_size=SIZE,
                        run_before=lambda p: _open(p, "log", "passwords"))
