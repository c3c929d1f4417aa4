"""Orch Console: the leader's live board over the run's SQLite store.

The app only routes: widgets render view models and post messages; every database read runs in a
thread worker over `ConsoleData` (one reader connection), every leader action in a thread worker
calling the same store function as the CLI (console/actions.py); results come back as messages.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Static, TabbedContent, TabPane

from orch_console import themes
from orch_console.store.board import Page, TaskFilter
from orch_console.widgets.attempt_log import AttemptLogPane
from orch_console.widgets.blocked_list import BlockedPane
from orch_console.widgets.dag_view import DagView
from orch_console.widgets.key_bar import KeyBar
from orch_console.widgets.run_header import RunHeader
from orch_console.widgets.task_table import TaskTable

from orch_console.console.tui.palette import ConsoleCommands
from orch_console.console.tui.config import ConsoleConfig, load_config
from orch_console.console.tui.reader import ConsoleData, error_text
from orch_console.console.tui.refresh import LiveMixin
from orch_console.console.tui.messages import (ActionFinished, BoardChanged, BoardOpened, DagLoaded, LogLoaded, OutputLoaded, PageLoaded,
                       StoreFailed, WavesReady)
from orch_console.console.tui.keys import ActionsMixin

HERE = Path(__file__).resolve().parent
PANES = ("board", "dag", "blocked", "log")
WINDOW = 200      # rows held by the task table at once
# Ages ("42s") are redone every second: only the rows whose "Active" text changed are redrawn, each
# its own line of the task table.
AGE_SECONDS, AGE_PARTS = 1.0, 1
OUTPUT_SECONDS = 0.75   # a live worker's screen is re-captured this often while the log pane shows it
LIVE_ATTEMPT = ("pending", "claimed", "in_progress", "blocked")
# The refresh thread is woken by watchfiles (live.py) when the database or its WAL changes; it
# also looks at PRAGMA data_version itself: as a fallback when idle (more often when no file
# watch is running: no inotify, say), and often while commits keep coming, since watchfiles batches
# a steady stream up to its debounce.
IDLE_POLL_SECONDS = 0.1
IDLE_POLL_UNWATCHED_SECONDS = 0.02
ACTIVE_POLL_SECONDS = 0.008
OVERLAP = 40      # rows kept when the window turns, so the cursor keeps its context
# The first read of the board starts when the App is constructed, in a thread, while Textual starts
# up; on_mount waits for it up to this long so that the first frame already shows the board
# (a slower database, locked or huge, arrives by message as any later read does).
FIRST_OPEN_WAIT = 0.4

# Panes whose widget is mounted when the pane is first shown.
ON_DEMAND_PANES: dict[str, Callable[[], Any]] = {
    "dag": lambda: DagView(id="dag-view"),
    "log": lambda: AttemptLogPane(id="log-pane"),
}

VIEW_LABEL = {"all": "all tasks", "attention": "needs attention", "failed": "failed only"}


_FROZEN: set[str] = set()


def _freeze_once(stage: str) -> None:
    """gc.freeze() at each start-up stage of the first console in this process only (a process
    that runs several apps, a test session, would otherwise pin the earlier apps' garbage)."""
    if stage not in _FROZEN:
        _FROZEN.add(stage)
        gc.freeze()


def _while_shown(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A worker's result that arrives while the app tears down (its widgets gone) is dropped."""
    import functools

    from textual.css.query import NoMatches

    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except NoMatches:
            return None

    return wrapper


def B(key: str, action: str, desc: str, bid: str, show: bool = True, priority: bool = False) -> Binding:
    return Binding(key, action, desc, show=show, id=bid, tooltip=desc, priority=priority)


class OrchConsole(LiveMixin, ActionsMixin, App):
    TITLE = "Orch Console"
    CSS_PATH = [*themes.STYLESHEETS, HERE / "app.tcss"]
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    BINDINGS = [
        B("d", "dispatch", "Dispatch", "orch.dispatch"),
        B("a", "answer", "Answer", "orch.answer"),
        B("r", "retry", "Retry", "orch.retry"),
        B("R", "reassign", "Reassign", "orch.reassign"),
        B("c", "cleanup", "Cleanup", "orch.cleanup", show=False),
        B("x", "cancel_task", "Cancel task", "orch.cancel"),
        B("V", "review", "Review / land", "orch.review", show=False),
        B("e", "export", "Export report", "orch.export", show=False),
        B("p", "autopilot", "Autopilot", "orch.autopilot"),
        B("s", "send_keys", "Send keys", "worker.send_keys"),
        B("A", "attach", "Attach", "worker.attach", show=False),
        B("slash", "filter", "Filter", "view.filter"),
        B("v", "cycle_view", "View", "view.cycle"),
        B("f", "view('failed')", "Failed only", "view.failed", show=False),
        B("n", "view('attention')", "Needs attention", "view.attention", show=False),
        B("tab", "next_pane", "Next pane", "view.next_pane", show=False),
        B("shift+tab", "prev_pane", "Previous pane", "view.prev_pane", show=False),
        B("1", "pane('board')", "Run board", "pane.board", show=False),
        B("2", "pane('dag')", "Task DAG", "pane.dag", show=False),
        B("3", "pane('blocked')", "Blocked questions", "pane.blocked", show=False),
        B("4", "pane('log')", "Attempt log", "pane.log", show=False),
        B("o", "pick_run", "Runs", "run.pick"),
        B("t", "next_theme", "Theme", "view.theme", show=False),
        B("question_mark", "help", "Help", "app.help"),
        B("q", "quit", "Quit", "app.quit"),
    ]

    def __init__(self, db_path: str, run_id: str | None = None, *, theme: str | None = None,
                 config: ConsoleConfig | None = None, clock: Callable[[], float] = time.time,
                 live: bool = True, engine: bool = True) -> None:
        super().__init__()
        self.db_path = db_path
        self.requested_run = run_id
        self.run_id: str | None = None
        self.config = config or load_config(theme=theme)
        if theme:
            self.config.theme = theme
        self.clock = clock
        self.live, self.engine = live, engine
        self.data = ConsoleData(db_path)
        self.filter = TaskFilter()
        self.last_event_id = 0
        self.selected: str | None = None
        self.blocked_items: list[dict[str, Any]] = []
        self._refresh_wake = threading.Event()
        # Bumped by the UI thread whenever the board's run, window or filter is replaced; a refresh
        # read for an older one is dropped and read again, and the refresh thread's own event
        # cursor restarts from the one the board applied (a re-opened database may count lower).
        self._view_gen = 0
        self._refresh_stop = threading.Event()
        self._refresher: threading.Thread | None = None
        self._table_ref: TaskTable | None = None   # for the refresh thread: the window it reads
        self._watch_stop = threading.Event()
        self.files_watched = False   # set by live.py's watchfiles thread once it delivers
        self.engine_wake = threading.Event()   # wakes the watcher engine before its next second
        self._dag_stale = True
        self._log_stale = True
        self.first_paint_at: float | None = None
        self._mounted_panes: set[str] = set()   # on-demand panes mounted (or being mounted)
        self._ready_panes: set[str] = set()     # ... and finished mounting
        self._focus_after: str | None = None
        self._first_open: Future[Any] = Future()
        threading.Thread(target=self._read_first_open, name="console-open", daemon=True).start()
        self.on_applied: Callable[[set[str]], None] | None = None  # bench hook: a change is on screen
        for t in themes.load_themes().values():
            self.register_theme(t)
        wanted = self.config.theme or themes.DEFAULT_THEME
        self._theme_problem = "" if wanted in self.available_themes else f"unknown theme {wanted!r}; using {themes.DEFAULT_THEME}"
        self.theme = wanted if wanted in self.available_themes else themes.DEFAULT_THEME
        if self.config.keymap:
            self.set_keymap(self.config.keymap)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return themes.variable_defaults()

    # -- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # Modules, classes and the stylesheet made so far live as long as the process: kept out of
        # the collector's full passes, one of which otherwise lands in the first layout (~60 ms).
        _freeze_once("compose")
        yield RunHeader(id="run-header")
        yield Static(id="banner", markup=False)
        with TabbedContent(id="panes", initial="board"):
            with TabPane("Run board", id="board"):
                yield TaskTable(id="tasks", clock=self.clock)
                yield Static(id="board-status", markup=False)
            # The DAG and the attempt log are mounted when first shown (_ensure_pane): their widgets
            # (selects, logs, the canvas) cost ~150 ms of the UI thread, before the first paint or,
            # mounted right after it, as a stall of the live board.
            yield TabPane("Task DAG", id="dag")
            with TabPane("Blocked questions", id="blocked"):
                yield BlockedPane(id="blocked-pane", clock=self.clock)
            yield TabPane("Attempt log", id="log")
        yield KeyBar(id="keys")   # Textual's Footer recomposes on every focus change (~250 ms)

    def _read_first_open(self) -> None:
        """Thread body, started by __init__: the first board read, concurrent with Textual's start-up."""
        try:
            self._first_open.set_result(self._read_open(self.requested_run, None))
        except BaseException as exc:  # pragma: no cover - _read_open returns its errors
            self._first_open.set_exception(exc)

    def _read_open(self, run_id: str | None, select: str | None) -> BoardOpened | StoreFailed:
        try:
            rid = self.data.pick_run(run_id)
            header, page, blocked, cursor = self.data.open(rid, self.filter, limit=WINDOW, select=select)
        except Exception as exc:
            return StoreFailed(error_text(exc))
        return BoardOpened(rid, header, page, blocked, cursor, select)

    def on_mount(self) -> None:
        self._table_ref = self.table
        for problem in self.config.problems + ([self._theme_problem] if self._theme_problem else []):
            self.notify(problem, severity="warning")
        try:
            first = self._first_open.result(timeout=FIRST_OPEN_WAIT)
        except TimeoutError:
            self._first_open.add_done_callback(lambda f: self._first_opened_late(f.result()))
        else:
            if isinstance(first, BoardOpened):
                self.board_opened(first)   # before the first frame: the first paint is the board itself
            else:
                self.store_failed(first)
        if self.live:
            # Commits wake the refresh thread through watchfiles, and its own data_version poll
            # (_refresh_loop) backs that up; this slower poll (live.py) owns the error banner and
            # the recovery.
            self.start_file_watch()
            self.poll_data_version()
            self.set_interval(AGE_SECONDS / AGE_PARTS, self._tick_ages)
            # Liveness verdicts are written without an event; this refresh picks them up.
            self.set_interval(1.0, self.request_refresh)
            self.set_interval(OUTPUT_SECONDS, self._poll_output)
        if self.engine:
            self.run_engine()

    def on_unmount(self) -> None:
        self._refresh_stop.set()
        self._refresh_wake.set()
        self._watch_stop.set()
        self.engine_wake.set()
        self.workers.cancel_all()
        self.data.close()

    def base(self, selector: str, expect: type[Any] | None = None) -> Any:
        """A widget of the board screen, also while a modal is on top (App.query_one searches only
        the active screen). NoMatches once the app is tearing down."""
        from textual.css.query import NoMatches

        if not self.screen_stack:
            raise NoMatches(selector)
        return self.screen_stack[0].query_one(selector, expect)  # type: ignore[arg-type]

    @property
    def table(self) -> TaskTable:
        if self._table_ref is not None and self.screen_stack:
            return self._table_ref   # asked for on every refresh: no query
        return self.base("#tasks", TaskTable)

    @property
    def pane(self) -> str:
        return str(self.base("#panes", TabbedContent).active)

    # -- opening a run ---------------------------------------------------------------------
    def _first_opened_late(self, m: BoardOpened | StoreFailed) -> None:
        """The first read came after on_mount stopped waiting: applied as a message, as later reads
        are, unless the leader has opened a run in the meantime (then it is stale)."""
        m.late_first = True  # type: ignore[union-attr]
        self.post_message(m)

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def open_run(self, run_id: str | None, select: str | None = None) -> None:
        m = self._read_open(run_id, select)
        self.post_message(m)
        if isinstance(m, BoardOpened):
            self._finish_waves_now()

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def _finish_waves(self) -> None:
        self._finish_waves_now()

    def _finish_waves_now(self) -> None:
        try:
            later = self.data.finish_waves()
        except Exception as exc:
            self.post_message(StoreFailed(error_text(exc)))
            return
        if later is not None:
            self.post_message(WavesReady(later))

    @on(WavesReady)
    @_while_shown
    def waves_ready(self, m: WavesReady) -> None:
        self.base("#run-header", RunHeader).show(m.header)
        self._dag_stale = True
        self._load_visible()

    @on(BoardOpened)
    @_while_shown
    def board_opened(self, m: BoardOpened) -> None:
        if getattr(m, "late_first", False) and self._view_gen:
            return  # a run opened by the leader came first
        self._view_gen += 1
        self.hide_banner()
        changed_run = m.run_id != self.run_id
        self.run_id = m.run_id
        self.last_event_id = m.last_event_id
        self.sub_title = f"{m.run_id} · {self.db_path}"
        self.base("#run-header", RunHeader).show(m.header)
        self.table.show_page(m.page, m.select or (0 if changed_run else (self.selected or 0)))
        self._board_status(m.page)
        self.blocked_items = m.blocked
        self.base("#blocked-pane", BlockedPane).show(m.blocked)
        self.selected = self.table.selected_task
        self._dag_stale = self._log_stale = True
        self._load_visible()
        if self.first_paint_at is None:
            self.call_after_refresh(self._first_painted)
        if changed_run and self.live:
            self.request_refresh()  # events between the cursor read and now

    def _first_painted(self) -> None:
        self.first_paint_at = time.perf_counter()
        # What start-up made (widgets, styles) lives as long as the app: kept out of the
        # collector's full passes, which otherwise stall the UI thread ~60 ms now and then.
        _freeze_once("painted")
        self._finish_waves()   # the DAG's wave map, read after the first frame so it does not delay it

    def _board_status(self, page: Page) -> None:
        first = page.offset + 1 if page.rows else 0
        text = (f"{VIEW_LABEL.get(self.filter.view, self.filter.view)}"
                f"{' matching ' + repr(self.filter.text) if self.filter.text else ''} · "
                f"rows {first}–{page.offset + len(page.rows)} of {page.total}"
                f"{'  (↓ past the last row loads more)' if page.has_next else ''}")
        self.base("#board-status", Static).update(text)

    # -- paging ----------------------------------------------------------------------------
    @on(TaskTable.PageRequested)
    @_while_shown
    def turn_page(self, m: TaskTable.PageRequested) -> None:
        rows = self.table.window
        if m.direction == "next" and rows:
            anchor = rows[-OVERLAP - 1].key if len(rows) > OVERLAP else rows[-1].key
            self._load_page(after=anchor, cursor=min(OVERLAP, len(rows) - 1) + 1 if len(rows) > OVERLAP else 0)
        elif m.direction == "prev" and rows:
            anchor = rows[min(OVERLAP, len(rows) - 1)].key
            self._load_page(before=anchor, cursor=-OVERLAP - 1)
        elif m.direction == "first":
            self._load_page()
        elif m.direction == "last":
            self._load_page(last=True, cursor=-1)   # the last row (negative: counted from the end)

    @work(thread=True, exclusive=True, group="page", exit_on_error=False)
    def _load_page(self, after: Any = None, before: Any = None, last: bool = False, cursor: str | int = 0) -> None:
        try:
            page = self.data.page(self.filter, after=after, before=before, last=last, limit=WINDOW)
        except Exception as exc:
            self.post_message(StoreFailed(error_text(exc)))
            return
        if isinstance(cursor, int) and cursor < 0:
            cursor = max(0, len(page.rows) + cursor)
        self.post_message(PageLoaded(page, cursor))

    @on(PageLoaded)
    @_while_shown
    def page_loaded(self, m: PageLoaded) -> None:
        self._view_gen += 1
        self.table.show_page(m.page, m.cursor)
        self._board_status(m.page)

    # -- live refresh ----------------------------------------------------------------------
    # One long-lived reader thread does every live refresh. watchfiles (live.py, its own thread)
    # wakes it when the database or its WAL changes; request_refresh (timers, actions) wakes it
    # too. It also checks PRAGMA data_version itself (a few µs, no I/O): as the fallback when idle,
    # and every ACTIVE_POLL_SECONDS while commits keep coming (watchfiles batches a steady stream
    # up to its debounce, which would then be the latency). For each change it reads the events
    # after its cursor and what they touched and posts one BoardChanged. No UI-thread hop, thread
    # or Worker per refresh.
    def wake_refresh(self) -> None:
        """From another thread (the file watch): wake the refresh thread if it runs."""
        if self._refresher is not None:
            self._refresh_wake.set()
        else:
            self.call_from_thread(self.request_refresh)

    def request_refresh(self) -> None:
        """Ask for a refresh (any thread). Requests while one runs cause exactly one more."""
        if self.run_id is None or self._refresh_stop.is_set():
            return
        self._refresh_wake.set()
        if self._refresher is None:
            self._refresher = threading.Thread(target=self._refresh_loop, name="console-refresh", daemon=True)
            self._refresher.start()

    def _refresh_loop(self) -> None:
        cursor = 0
        seen_gen = -1
        seen_version: int | None = None
        active = False
        table: TaskTable | None = None
        while not self._refresh_stop.is_set():
            # Without `live` (tests, screenshots) only explicit requests refresh.
            idle = IDLE_POLL_SECONDS if self.files_watched else IDLE_POLL_UNWATCHED_SECONDS
            woken = self._refresh_wake.wait((ACTIVE_POLL_SECONDS if active else idle) if self.live else None)
            if self._refresh_stop.is_set():
                return
            try:
                version: int | None = self.data.data_version()
            except Exception:
                version = None        # live.py's poll shows the banner and recovers
            if not woken and (version is None or version == seen_version):
                active = False
                continue
            self._refresh_wake.clear()
            if table is None:
                table = self._table_ref
            gen = self._view_gen
            if gen != seen_gen:
                cursor, seen_gen = 0, gen   # start from what the board has applied
            after = max(cursor, self.last_event_id)
            window = list(table.window) if table is not None else []
            f = self.filter
            try:
                ch, header, rows, page, blocked = self.data.refresh(after, window=window, f=f, limit=WINDOW)
            except Exception as exc:
                self.post_message(StoreFailed(error_text(exc)))
                active = False
                continue
            seen_version = version
            cursor = max(cursor, ch.last_event_id)
            active = not ch.empty
            if not ch.empty or ch.task_ids:
                self.post_message(BoardChanged(ch.last_event_id, header, rows, page, blocked, ch.task_ids, ch.alerts,
                                               view_gen=gen))

    @on(BoardChanged)
    @_while_shown
    def board_changed(self, m: BoardChanged) -> None:
        if m.view_gen != self._view_gen:
            self.request_refresh()   # read for a run, window or filter no longer shown: read again
            return
        self.last_event_id = max(self.last_event_id, m.last_event_id)
        if m.header is not None:
            self.base("#run-header", RunHeader).show(m.header)
        if m.page is not None:
            keep = self.table.selected_task
            row = self.table.cursor_row
            self.table.show_page(m.page, keep if keep and any(r.task_id == keep for r in m.page.rows) else row)
            self._board_status(m.page)
        elif m.rows:
            self.table.update_rows(m.rows)
        if m.blocked is not None:
            self.blocked_items = m.blocked
            self.base("#blocked-pane", BlockedPane).show(m.blocked)
        if m.alerts:
            self.bell()
            for kind, task, summary in m.alerts:
                self.notify(f"{task}: {summary}", title="escalated to you" if kind == "task_escalated"
                            else "worker waits for input", severity="warning", timeout=20, markup=False)
        if self.on_applied is not None and m.task_ids:
            ids, hook = set(m.task_ids), self.on_applied
            self.call_after_refresh(lambda: hook(ids))
        if m.task_ids:
            self._dag_stale = True
            if self.selected in m.task_ids:
                self._log_stale = True
            self._load_visible()

    def recover(self) -> None:
        self.open_run(self.run_id or self.requested_run, self.selected)

    # -- banner ----------------------------------------------------------------------------
    @on(StoreFailed)
    @_while_shown
    def store_failed(self, m: StoreFailed) -> None:
        if getattr(m, "late_first", False) and self._view_gen:
            return
        self.show_banner(m.message)

    def show_banner(self, text: str) -> None:
        b = self.base("#banner", Static)
        b.update(f"Database problem: {text}  (retrying every second)")
        b.add_class("shown")

    def hide_banner(self) -> None:
        self.base("#banner", Static).remove_class("shown")

    # -- selection and the DAG / log panes -------------------------------------------------
    @on(TaskTable.RowHighlighted, "#tasks")
    @_while_shown
    def task_highlighted(self, event: TaskTable.RowHighlighted) -> None:
        if event.task_id != self.selected:
            self.selected = event.task_id
            self._dag_stale = True
            self._log_stale = True

    @on(TaskTable.RowSelected, "#tasks")
    @_while_shown
    def task_entered(self, event: TaskTable.RowSelected) -> None:
        self.action_pane("log")

    @on(DagView.Selected)
    @_while_shown
    def dag_selected(self, m: DagView.Selected) -> None:
        self.selected = m.task_id
        self.table.select_task(m.task_id)
        self._log_stale = True
        self._load_dag(m.task_id, self.base("#dag-view", DagView).layout_data)

    @on(BlockedPane.Highlighted)
    @_while_shown
    def blocked_highlighted(self, m: BlockedPane.Highlighted) -> None:
        if self.pane == "blocked":
            self.selected = m.task_id
            self.table.select_task(m.task_id)
            self._log_stale = True

    @on(TabbedContent.TabActivated)
    async def tab_activated(self, event: TabbedContent.TabActivated) -> None:
        from textual.css.query import NoMatches

        try:
            await self._ensure_pane(self.pane)
            self._load_visible()
            self._focus_pending()
        except NoMatches:
            return  # tearing down

    async def _ensure_pane(self, pane: str) -> None:
        """Mount a pane's widget the first time the pane is shown."""
        if pane == "blocked":
            self.base("#blocked-pane", BlockedPane).build()   # its widgets, on first use
            return
        make = ON_DEMAND_PANES.get(pane)
        if make is None or pane in self._mounted_panes:
            return
        self._mounted_panes.add(pane)
        await self.base(f"#{pane}", TabPane).mount(make())
        self._ready_panes.add(pane)

    def _load_visible(self) -> None:
        if self.run_id is None:
            return
        pane = self.pane
        if pane in ON_DEMAND_PANES and pane not in self._ready_panes:
            return  # tab_activated loads it once mounted
        if self.pane == "dag" and self._dag_stale:
            self._dag_stale = False
            self._load_dag(self.selected)
        elif self.pane == "log" and self._log_stale and self.selected:
            self._log_stale = False
            self._load_log(self.selected, None, None)

    @work(thread=True, exclusive=True, group="dag", exit_on_error=False)
    def _load_dag(self, focus: str | None, layout: Any = None) -> None:
        from orch_console.store.board_dag import dag_layout, unblocks

        try:
            with self.data.lock:
                b = self.data._need_board()
                if layout is None or layout.partial:
                    layout = dag_layout(b.store, b.run_id, b.waves, focus=focus)
                n = unblocks(b.store, b.run_id, focus) if focus else 0
        except Exception as exc:
            self.post_message(StoreFailed(error_text(exc)))
            return
        self.post_message(DagLoaded(layout, focus, n))

    @on(DagLoaded)
    @_while_shown
    def dag_loaded(self, m: DagLoaded) -> None:
        self.base("#dag-view", DagView).show(m.layout, m.focus, m.unblocks)

    @on(AttemptLogPane.AttemptChosen)
    @_while_shown
    def attempt_chosen(self, m: AttemptLogPane.AttemptChosen) -> None:
        self._load_log(m.task_id, m.attempt_no, m.kinds)

    @work(thread=True, exclusive=True, group="log", exit_on_error=False)
    def _load_log(self, task_id: str, attempt_no: int | None, kinds: tuple[str, ...] | None) -> None:
        from orch_console.store.board_log import attempt_log

        try:
            with self.data.lock:
                b = self.data._need_board()
                data = attempt_log(b.store, b.run_id, task_id, attempt_no, kinds=kinds, with_files=False)
            # Git and file reads happen outside the reader lock: they can be slow, the board must not wait.
            if data.attempt is not None:
                from dataclasses import replace

                from orch_console.store.worktrees import diff_stat

                a = data.attempt
                diff = diff_stat(a.worktree_path, a.base_commit) if a.worktree_path and a.workspace_status == "created" \
                    and Path(a.worktree_path).is_dir() else ""
                data = replace(data, diff_stat=diff)
        except Exception as exc:
            self.post_message(StoreFailed(error_text(exc)))
            return
        self.post_message(LogLoaded(data))

    @on(LogLoaded)
    @_while_shown
    def log_loaded(self, m: LogLoaded) -> None:
        self.base("#log-pane", AttemptLogPane).show(m.log)
        if m.log.attempt is not None and m.log.attempt.runtime:
            self._load_output(m.log.task_id, m.log.attempt)

    # -- the worker's screen ---------------------------------------------------------------
    @_while_shown
    def _poll_output(self) -> None:
        """While the attempt log shows a live launched worker, keep its screen current."""
        if self.pane != "log":
            return
        data = self.base("#log-pane", AttemptLogPane).log_data
        a = data.attempt if data is not None else None
        if a is not None and a.runtime and a.status in LIVE_ATTEMPT:
            self._load_output(data.task_id, a)  # type: ignore[union-attr]

    @work(thread=True, exclusive=True, group="output", exit_on_error=False)
    def _load_output(self, task_id: str, a: Any) -> None:
        from orch_console.store.board_log import OutputView, output_tail

        from orch_console.console.runtime import launcher

        live = a.status in LIVE_ATTEMPT
        if a.runtime == "tmux":
            # launcher.capture reads the pane on the database's private tmux server (the log the
            # pane was piped to once the session is gone); sanitised by the widget, never parsed.
            text = launcher.capture(self.db_path, {"runtime": a.runtime, "runtime_ref": a.runtime_ref,
                                                   "log_path": a.log_path}, lines=200)
            lines = text.rstrip("\n").splitlines()
            source = f"screen of tmux session {a.runtime_ref}" + ("" if live else " (ended)")
        else:
            lines, path = output_tail(a)
            source = f"log {path or a.log_path}" + ("" if live else " (ended)")
        self.post_message(OutputLoaded(OutputView(task_id, a.attempt_no, lines[-500:], source, live)))

    @on(OutputLoaded)
    @_while_shown
    def output_loaded(self, m: OutputLoaded) -> None:
        pane = self.base("#log-pane", AttemptLogPane)
        cur = pane.log_data
        v = m.view
        if v is None or cur is None or cur.attempt is None or cur.task_id != v.task_id \
                or cur.attempt.attempt_no != v.attempt_no:
            return  # the pane moved on to another attempt meanwhile
        pane.show_output(v)

    @on(ActionFinished)
    @_while_shown
    def action_finished(self, m: ActionFinished) -> None:
        self.notify(m.message, title=m.title, severity="information" if m.ok else "error",
                    timeout=6 if m.ok else 10, markup=False)

    @_while_shown
    def _tick_ages(self) -> None:
        self._age_part = (getattr(self, "_age_part", -1) + 1) % AGE_PARTS
        self.table.tick_ages(self._age_part, AGE_PARTS)

    # -- views and panes -------------------------------------------------------------------
    def set_filter(self, f: TaskFilter) -> None:
        self._view_gen += 1
        self.filter = f
        self._load_page(cursor=0)

    def action_view(self, view: str) -> None:
        self.set_filter(TaskFilter(view=view if self.filter.view != view else "all", text=self.filter.text))
        self.action_pane("board")

    def action_cycle_view(self) -> None:
        views = ("all", "attention", "failed")
        self.set_filter(TaskFilter(view=views[(views.index(self.filter.view) + 1) % 3], text=self.filter.text))

    def action_pane(self, pane: str) -> None:
        self.base("#panes", TabbedContent).active = pane
        self._focus_after = {"board": "#tasks", "dag": "#dag-view", "blocked": "#blocked-table", "log": "#log-lines"}[pane]
        self.call_after_refresh(self._focus_pending)

    @_while_shown
    def _focus_pending(self) -> None:
        """Focus what action_pane asked for, once it exists (a pane shown the first time is mounted
        first; tab_activated calls this again then)."""
        from textual.css.query import NoMatches

        if self._focus_after is None:
            return
        try:
            target = self.base(self._focus_after)
        except NoMatches:
            return
        self._focus_after = None
        target.focus()

    def action_next_pane(self) -> None:
        self.action_pane(PANES[(PANES.index(self.pane) + 1) % len(PANES)])

    def action_prev_pane(self) -> None:
        self.action_pane(PANES[(PANES.index(self.pane) - 1) % len(PANES)])

    def action_next_theme(self) -> None:
        names = themes.theme_names()
        self.theme = names[(names.index(self.theme) + 1) % len(names)] if self.theme in names else names[0]

    def watch_theme(self, _theme: str) -> None:
        # Cells and the header carry colours resolved at render time; redo them for the new theme.
        if self.is_mounted:
            self.call_after_refresh(self._restyle)

    def _restyle(self) -> None:
        try:
            self.table.restyle()
            self.base("#run-header", RunHeader).restyle()
            self.base("#dag-view", DagView).redraw()
        except Exception:
            pass

    def action_help(self) -> None:
        from orch_console.console.tui.screens.help import HelpScreen

        rows = []
        for b in self.BINDINGS:
            assert isinstance(b, Binding)
            keys = self._keymap_for(b)
            rows.append((keys, b.description))
        self.push_screen(HelpScreen(rows))

    def _keymap_for(self, b: Binding) -> str:
        return self.config.keymap.get(b.id or "", b.key).replace("question_mark", "?").replace("slash", "/")


def run(db_path: str, run_id: str | None = None, theme: str | None = None) -> int:
    app = OrchConsole(db_path, run_id, theme=theme)
    app.run()
    return 0
