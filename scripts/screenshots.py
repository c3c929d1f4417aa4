"""Regenerate screenshots/: the real app on the realistic sample run (console/sample.py, built
through store functions), one SVG per pane per theme.

    .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PANES = [("board", None), ("dag", "sessions"), ("blocked", None), ("log", "passwords")]
SIZE = (140, 40)
FIXED_NOW = 1_767_226_500.0


async def shoot(db: str, theme: str, out: Path) -> list[Path]:
    from orch_console.console.tui.app import OrchConsole

    written = []
    for pane, select in PANES:
        app = OrchConsole(db, theme=theme, live=False, engine=False, clock=lambda: FIXED_NOW)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()
            if select:
                app.board.table.select_task(select)
                await pilot.pause()
            if pane != "board":
                app.board.action_pane(pane)
                await pilot.pause(0.2)
                await app.workers.wait_for_complete()
            if pane == "blocked":
                app.query_one("#blocked-pane").select("sessions")  # the one with hostile text
            await pilot.pause(0.2)
            # As snap_compare does: a tab's underline still sliding (a loaded machine) is not the screen.
            await pilot.wait_for_scheduled_animations()
            name = f"{pane}-{theme}.svg"
            app.save_screenshot(filename=name, path=str(out))
            written.append(out / name)
    return written


def main() -> None:
    from orch_console.console.tui.sample import build_sample_run

    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        db = str(Path(d) / "coord.db")
        build_sample_run(db)
        for theme in ("orch-dark", "orch-light"):
            for p in asyncio.run(shoot(db, theme, out)):
                print(p.relative_to(ROOT))


if __name__ == "__main__":
    main()
