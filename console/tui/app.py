"""Orch Console: the leader's live board over the run's SQLite store.

The App is the shell: themes, the keymap, the key bindings, the command palette and the watcher
engine's thread. The board itself, its reads, live refresh and key flows, is `BoardScreen`
(board.py), the first screen on the stack.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import get_current_worker

from orch_console import themes
from orch_console.console.tui.board import BoardScreen
from orch_console.console.tui.config import ConsoleConfig, load_config
from orch_console.console.tui.palette import ConsoleCommands
from orch_console.console.tui.screens.help import HelpScreen
from orch_console.store import inbox, views
from orch_console.store.db import Store

HERE = Path(__file__).resolve().parent
ENGINE_SECONDS = 1.0     # the watcher engine's pass: reconcile, lease expiry, liveness, autopilot


def B(key: str, action: str, desc: str, bid: str, show: bool = True, priority: bool = False) -> Binding:
    return Binding(key, action, desc, show=show, id=bid, tooltip=desc, priority=priority)


class OrchConsole(App[None]):
    TITLE = "Orch Console"
    CSS_PATH = [*themes.STYLESHEETS, HERE / "app.tcss"]
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    # Every key in one list, for the key bar, `?` and the keymap; the board's keys act on the
    # screen that shows the board ("screen.…"), which is the active one whenever they can fire
    # (a modal screen stops the App's bindings).
    BINDINGS = [
        B("d", "screen.dispatch", "Dispatch", "orch.dispatch"),
        B("a", "screen.answer", "Answer", "orch.answer"),
        B("r", "screen.retry", "Retry", "orch.retry"),
        B("R", "screen.reassign", "Reassign", "orch.reassign"),
        B("c", "screen.cleanup", "Cleanup", "orch.cleanup", show=False),
        B("x", "screen.cancel_task", "Cancel task", "orch.cancel"),
        B("V", "screen.review", "Review / land", "orch.review", show=False),
        B("e", "screen.export", "Export report", "orch.export", show=False),
        B("p", "screen.autopilot", "Autopilot", "orch.autopilot"),
        B("s", "screen.send_keys", "Send keys", "worker.send_keys"),
        B("A", "screen.attach", "Attach", "worker.attach", show=False),
        B("slash", "screen.filter", "Filter", "view.filter"),
        B("v", "screen.cycle_view", "View", "view.cycle"),
        B("f", "screen.view('failed')", "Failed only", "view.failed", show=False),
        B("n", "screen.view('attention')", "Needs attention", "view.attention", show=False),
        B("tab", "screen.next_pane", "Next pane", "view.next_pane", show=False),
        B("shift+tab", "screen.prev_pane", "Previous pane", "view.prev_pane", show=False),
        B("1", "screen.pane('board')", "Run board", "pane.board", show=False),
        B("2", "screen.pane('dag')", "Task DAG", "pane.dag", show=False),
        B("3", "screen.pane('blocked')", "Needs you (the attention queue)", "pane.blocked", show=False),
        B("4", "screen.pane('log')", "Attempt log", "pane.log", show=False),
        B("o", "screen.pick_run", "Runs", "run.pick"),
        B("t", "next_theme", "Theme", "view.theme", show=False),
        B("question_mark", "help", "Help", "app.help"),
        B("q", "quit", "Quit", "app.quit"),
    ]

    def __init__(self, db_path: str, run_id: str | None = None, *, theme: str | None = None,
                 config: ConsoleConfig | None = None, clock: Callable[[], float] = time.time,
                 live: bool = True, engine: bool = True) -> None:
        super().__init__()
        self.db_path = db_path
        self.config = config or load_config(theme=theme)
        if theme:
            self.config.theme = theme
        self.engine = engine
        self.engine_wake = threading.Event()   # wakes the watcher engine before its next second
        # Constructed here, so that its first read of the database starts now, in a thread, while
        # Textual starts up.
        self.board = BoardScreen(db_path, run_id, config=self.config, clock=clock, live=live,
                                 wake_engine=self.engine_wake.set)
        for t in themes.load_themes().values():
            self.register_theme(t)
        wanted = self.config.theme or themes.DEFAULT_THEME
        known = wanted in self.available_themes
        self._theme_problem = "" if known else f"unknown theme {wanted!r}; using {themes.DEFAULT_THEME}"
        self.theme = wanted if known else themes.DEFAULT_THEME
        if self.config.keymap:
            self.set_keymap(self.config.keymap)

    def get_default_screen(self) -> Screen[Any]:
        # The board is the first screen of the stack rather than pushed over the default one: no
        # empty frame first, and no screen switch (Textual 8 delays those by 50 ms).
        return self.board

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return themes.variable_defaults()

    def on_mount(self) -> None:
        for problem in self.config.problems + ([self._theme_problem] if self._theme_problem else []):
            self.notify(problem, severity="warning")
        if self.engine:
            self.run_engine()

    def on_unmount(self) -> None:
        self.engine_wake.set()
        self.workers.cancel_all()
        self.board.close()

    # -- the watcher engine ------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="engine", exit_on_error=False, description="watcher engine")
    def run_engine(self) -> None:
        """The watcher engine (console/runtime/watcher.py) on the open run: a pass per second, or
        at once when woken (autopilot switched on, say). It reads the run's config each pass, so
        `p` (run config `autopilot`) makes it dispatch and launch ready tasks. Re-made when another
        run is opened. Without the engine, the part the console cannot do without: reconcile and
        lease expiry."""
        worker = get_current_worker()
        engine: Any = None
        try:
            while not worker.is_cancelled:
                # sooner while tmux workers run: the watcher's quick look at their screens
                due = engine.next_due() - time.time() if engine is not None else ENGINE_SECONDS
                self.engine_wake.wait(min(ENGINE_SECONDS, max(0.05, due)))
                self.engine_wake.clear()
                run_id = self.board.run_id
                if worker.is_cancelled or not run_id or not os.path.exists(self.db_path):
                    continue
                try:
                    if engine is None or engine.run_id != run_id:
                        if engine is not None:
                            engine.close()
                        engine = None
                        # Deferred: the watcher and its policy modules (~30 ms) load in this thread,
                        # after the first paint, not on the console's start-up path.
                        from orch_console.console.runtime.watcher import Watcher

                        engine = Watcher(self.db_path, run_id=run_id)
                    engine.tick()
                except ImportError:
                    self._reconcile_only(run_id)
                except Exception:  # a failed pass is retried next second; the board's refresh shows the banner
                    if engine is not None:
                        try:
                            engine.close()
                        except Exception:
                            pass
                    engine = None
        finally:
            if engine is not None:
                engine.close()

    def _reconcile_only(self, run_id: str) -> None:
        s = Store(self.db_path)
        try:
            views.reconcile(s, run_id=run_id, report=False)
            inbox.expire_leases(s)
        finally:
            s.close()

    # -- themes and help ---------------------------------------------------------------------
    def action_next_theme(self) -> None:
        names = themes.theme_names()
        self.theme = names[(names.index(self.theme) + 1) % len(names)] if self.theme in names else names[0]

    def watch_theme(self, _theme: str) -> None:
        if self.is_running:
            self.call_after_refresh(self.board.restyle)

    def action_help(self) -> None:
        rows = []
        for b in self.BINDINGS:
            assert isinstance(b, Binding)
            rows.append((self._keymap_for(b), b.description))
        self.push_screen(HelpScreen(rows))

    def _keymap_for(self, b: Binding) -> str:
        return self.config.keymap.get(b.id or "", b.key).replace("question_mark", "?").replace("slash", "/")


def run(db_path: str, run_id: str | None = None, theme: str | None = None) -> int:
    app = OrchConsole(db_path, run_id, theme=theme)
    app.run()
    return 0
