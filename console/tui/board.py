"""The board screen: the open run's header, task table, DAG, blocked questions and attempt log.

It routes: widgets render view models and post messages; every database read runs in a thread
worker over `ConsoleData` (one reader connection), the live refresh in `LiveRefresh`'s thread,
and every leader key in `LeaderKeys` (a thread worker calling the same store function as the CLI).
Results come back as messages, handled here.
"""

from __future__ import annotations

import functools
import gc
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane

from orch_console.console.runtime.notify import Alert, Notifier
from orch_console.console.tui.config import ConsoleConfig
from orch_console.console.tui.keys import LeaderKeys
from orch_console.console.tui.messages import (
    ActionFinished,
    BoardChanged,
    BoardOpened,
    DagLoaded,
    LogLoaded,
    OutputLoaded,
    PageLoaded,
    PreviewLoaded,
    StoreFailed,
    WavesReady,
)
from orch_console.console.tui.reader import ConsoleData, error_text
from orch_console.console.tui.refresh import LiveRefresh, Refreshed, View
from orch_console.store.board import run_summaries
from orch_console.store.board_dag import dag_layout, unblocks
from orch_console.store.board_log import ANSWER_KEYS, attempt_log, output_tail, preview
from orch_console.store.models import AttemptInfo, DagLayout, OutputView, Page, Preview, RunSummary, TaskFilter
from orch_console.store.sanitize import clean, one_line
from orch_console.store.states import ALERT_KIND, LIVE_ATTEMPT
from orch_console.store.worktrees import diff_stat
from orch_console.widgets.attempt_log import AttemptLogPane
from orch_console.widgets.blocked_list import BlockedPane
from orch_console.widgets.dag_view import DagView
from orch_console.widgets.key_bar import KeyBar
from orch_console.widgets.run_header import RunHeader
from orch_console.widgets.task_preview import TaskPreview
from orch_console.widgets.task_table import TaskTable

PANES = ("board", "dag", "blocked", "log")
PANE_FOCUS = {"board": "#tasks", "dag": "#dag-view", "blocked": "#blocked-table", "log": "#log-lines"}
WINDOW = 200      # rows held by the task table at once
OVERLAP = 40      # rows kept when the window turns, so the cursor keeps its context
# Ages ("42s") are redone every second: only the rows whose "Active" text changed are redrawn, each
# its own line of the task table.
AGE_SECONDS, AGE_PARTS = 1.0, 1
OUTPUT_SECONDS = 0.75   # a live worker's screen is re-captured this often while the log pane shows it
# The first read of the board starts when the screen is constructed (with the App), in a thread,
# while Textual starts up; on_mount waits for it up to this long so that the first frame already
# shows the board (a slower database, locked or huge, arrives by message as any later read does).
FIRST_OPEN_WAIT = 0.4

# Panes whose widget is mounted when the pane is first shown.
ON_DEMAND_PANES: dict[str, Callable[[], Any]] = {
    "dag": lambda: DagView(id="dag-view"),
    "log": lambda: AttemptLogPane(id="log-pane"),
}

VIEW_LABEL = {"all": "all tasks", "attention": "needs attention", "failed": "failed only"}


_FROZEN: set[str] = set()


def freeze_once(stage: str) -> None:
    """gc.freeze() at each start-up stage of the first console in this process only (a process
    that runs several apps, a test session, would otherwise pin the earlier apps' garbage)."""
    if stage not in _FROZEN:
        _FROZEN.add(stage)
        gc.freeze()


def _while_shown(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A worker's result that arrives while the app tears down (its widgets gone) is dropped."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except NoMatches:
            return None

    return wrapper


class BoardScreen(Screen[None]):
    """The console's one screen: the first on the stack, under every modal."""

    def __init__(self, db_path: str, run_id: str | None, *, config: ConsoleConfig,
                 clock: Callable[[], float] = time.time, live: bool = True,
                 wake_engine: Callable[[], None] = lambda: None) -> None:
        super().__init__()
        self.db_path = db_path
        self.requested_run = run_id
        self.run_id: str | None = None
        self.config = config
        self.clock = clock
        self.live = live
        self._wake_engine = wake_engine
        self.data = ConsoleData(db_path)
        self.filter = TaskFilter()
        self.last_event_id = 0
        self.selected: str | None = None
        self.blocked: list[dict[str, Any]] = []
        # Bumped by the UI thread whenever the board's run, window or filter is replaced; a refresh
        # read for an older one is dropped and read again, and the refresh thread's own event
        # cursor restarts from the one the board applied (a re-opened database may count lower).
        self._view_gen = 0
        self._closed = False
        self.refresher = LiveRefresh(version=self.data.data_version, read=self._read_changes, view=self._view,
                                     post=self.post_message, on_failure=self._refresh_failed,
                                     on_recover=self._refresh_recovered, reset=self.data.reset, live=live,
                                     watch=db_path)
        self.keys = LeaderKeys(self)
        self.table = TaskTable(id="tasks", clock=clock)
        self._dag_stale = True
        self._log_stale = True
        self._age_part = -1
        self.first_paint_at: float | None = None
        self._mounted_panes: set[str] = set()   # on-demand panes mounted (or being mounted)
        self._ready_panes: set[str] = set()     # ... and finished mounting
        self._focus_after: str | None = None
        self.on_applied: Callable[[set[str]], None] | None = None  # bench hook: a change is on screen
        self.notifier: Notifier | None = None
        if config.notify.enabled:
            self.notifier = Notifier(config.notify, on_problem=lambda msg: self.app.call_from_thread(
                self.notify, msg, title="notifications", severity="warning", markup=False))
        self.first_open: Future[BoardOpened | StoreFailed] = Future()
        threading.Thread(target=self._read_first_open, name="console-open", daemon=True).start()

    # -- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # Modules, classes and the stylesheet made so far live as long as the process: kept out of
        # the collector's full passes, one of which otherwise lands in the first layout (~60 ms).
        freeze_once("compose")
        yield RunHeader(id="run-header")
        yield Static(id="banner", markup=False)
        with TabbedContent(id="panes", initial="board"):
            with TabPane("Run board", id="board"):
                yield self.table
                yield Static(id="board-status", markup=False)
                yield TaskPreview(id="preview")
            # The DAG and the attempt log are mounted when first shown (_ensure_pane): their widgets
            # (selects, logs, the canvas) cost ~150 ms of the UI thread, before the first paint or,
            # mounted right after it, as a stall of the live board.
            yield TabPane("Task DAG", id="dag")
            with TabPane("Needs you", id="blocked"):
                yield BlockedPane(id="blocked-pane", clock=self.clock)
            yield TabPane("Attempt log", id="log")
        yield KeyBar(id="keys")   # Textual's Footer recomposes on every focus change (~250 ms)

    def on_mount(self) -> None:
        try:
            first = self.first_open.result(timeout=FIRST_OPEN_WAIT)
        except TimeoutError:
            self.first_open.add_done_callback(lambda f: self._first_opened_late(f.result()))
        else:
            if isinstance(first, BoardOpened):
                self.board_opened(first)   # before the first frame: the first paint is the board itself
            else:
                self.store_failed(first)
        if self.live:
            # The refresh thread polls data_version (and shows the banner and recovers while the
            # database fails) even before a run is open; watchfiles wakes it on every commit.
            self.refresher.start()
            self.set_interval(AGE_SECONDS / AGE_PARTS, self._tick_ages)
            # Liveness verdicts are written without an event; this refresh picks them up.
            self.set_interval(1.0, self.request_refresh)
            self.set_interval(OUTPUT_SECONDS, self.poll_output)

    def on_unmount(self) -> None:
        self.close()

    def close(self) -> None:
        """Stop the refresh thread and close the reader for good (idempotent)."""
        if not self._closed:
            self._closed = True
            self.refresher.stop()
            self.data.close()

    @property
    def view_gen(self) -> int:
        """Which run, window and filter the board shows (a BoardChanged read for another is dropped)."""
        return self._view_gen

    @property
    def pane(self) -> str:
        return str(self.query_one("#panes", TabbedContent).active)

    # -- opening a run ---------------------------------------------------------------------
    def _read_first_open(self) -> None:
        """Thread body, started by __init__: the first board read, concurrent with Textual's start-up."""
        try:
            self.first_open.set_result(self._read_open(self.requested_run, None))
        except BaseException as exc:  # pragma: no cover - _read_open returns its errors
            self.first_open.set_exception(exc)

    def _read_open(self, run_id: str | None, select: str | None) -> BoardOpened | StoreFailed:
        try:
            rid = self.data.pick_run(run_id)
            header, page, blocked, cursor = self.data.open(rid, self.filter, limit=WINDOW, select=select)
        except Exception as exc:
            return StoreFailed(error_text(exc))
        return BoardOpened(rid, header, page, blocked, cursor, select)

    def _first_opened_late(self, m: BoardOpened | StoreFailed) -> None:
        """The first read came after on_mount stopped waiting: applied as a message, as later reads
        are, unless the leader has opened a run in the meantime (then it is stale)."""
        m.late_first = True
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
        self.query_one("#run-header", RunHeader).show(m.header)
        self._dag_stale = True
        self._load_visible()

    @on(BoardOpened)
    @_while_shown
    def board_opened(self, m: BoardOpened) -> None:
        if m.late_first and self._view_gen:
            return  # a run opened by the leader came first
        self._view_gen += 1
        self.hide_banner()
        changed_run = m.run_id != self.run_id
        self.run_id = m.run_id
        self.last_event_id = m.last_event_id
        self.app.sub_title = f"{m.run_id} · {self.db_path}"
        self.query_one("#run-header", RunHeader).show(m.header)
        self.table.show_page(m.page, m.select or (0 if changed_run else (self.selected or 0)))
        self._board_status(m.page)
        self.blocked = m.blocked
        self.query_one("#blocked-pane", BlockedPane).show(m.blocked)
        self.selected = self.table.selected_task
        self._dag_stale = self._log_stale = True
        self._load_visible()
        if self.selected:
            self._load_preview(self.selected)
        if self.first_paint_at is None:
            self.call_after_refresh(self._first_painted)
        if changed_run and self.live:
            self.request_refresh()  # events between the cursor read and now

    def _first_painted(self) -> None:
        self.first_paint_at = time.perf_counter()
        # What start-up made (widgets, styles) lives as long as the app: kept out of the
        # collector's full passes, which otherwise stall the UI thread ~60 ms now and then.
        freeze_once("painted")
        self._finish_waves()   # the DAG's wave map, read after the first frame so it does not delay it

    def recover(self) -> None:
        self.open_run(self.run_id or self.requested_run, self.selected)

    def _board_status(self, page: Page) -> None:
        first = page.offset + 1 if page.rows else 0
        text = (f"{VIEW_LABEL.get(self.filter.view, self.filter.view)}"
                f"{' matching ' + repr(self.filter.text) if self.filter.text else ''} · "
                f"rows {first}–{page.offset + len(page.rows)} of {page.total}"
                f"{'  (↓ past the last row loads more)' if page.has_next else ''}")
        self.query_one("#board-status", Static).update(text)

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

    # -- live refresh (LiveRefresh's callbacks run in its thread) ---------------------------
    def request_refresh(self) -> None:
        """Ask for a refresh (any thread). Requests while one runs cause exactly one more."""
        if self.run_id is not None and not self._closed:
            self.refresher.request()

    def _view(self) -> View | None:
        if self.run_id is None:
            return None
        return View(self._view_gen, self.last_event_id, list(self.table.window), self.filter)

    def _read_changes(self, after: int, view: View) -> Refreshed:
        return self.data.refresh(after, window=view.window, f=view.filter, limit=WINDOW)

    def _refresh_failed(self, reason: str) -> None:
        self.post_message(StoreFailed(reason))

    def _refresh_recovered(self) -> None:
        try:
            self.app.call_from_thread(self.recover)
        except RuntimeError:   # the app stopped meanwhile (NoActiveAppError is one too)
            pass

    @on(BoardChanged)
    @_while_shown
    def board_changed(self, m: BoardChanged) -> None:
        if m.view_gen != self._view_gen:
            self.request_refresh()   # read for a run, window or filter no longer shown: read again
            return
        self.last_event_id = max(self.last_event_id, m.last_event_id)
        if m.header is not None:
            self.query_one("#run-header", RunHeader).show(m.header)
        if m.page is not None:
            keep = self.table.selected_task
            row = self.table.cursor_row
            self.table.show_page(m.page, keep if keep and any(r.task_id == keep for r in m.page.rows) else row)
            self._board_status(m.page)
        elif m.rows:
            self.table.update_rows(m.rows)
        if m.blocked is not None:
            self.blocked = m.blocked
            self.query_one("#blocked-pane", BlockedPane).show(m.blocked)
        if m.alerts:
            self.alert(m.alerts)
        if self.on_applied is not None and m.task_ids:
            ids, hook = set(m.task_ids), self.on_applied
            self.call_after_refresh(lambda: hook(ids))
        if m.task_ids:
            self._dag_stale = True
            if self.selected in m.task_ids:
                self._log_stale = True
                if self.pane == "board":
                    self._load_preview(self.selected)
            self._load_visible()

    # -- banner ----------------------------------------------------------------------------
    @on(StoreFailed)
    @_while_shown
    def store_failed(self, m: StoreFailed) -> None:
        if m.late_first and self._view_gen:
            return
        self.show_banner(m.message)

    def show_banner(self, text: str) -> None:
        b = self.query_one("#banner", Static)
        b.update(f"Database problem: {text}  (retrying every second)")
        b.add_class("shown")

    def hide_banner(self) -> None:
        self.query_one("#banner", Static).remove_class("shown")

    # -- selection and the DAG / log panes -------------------------------------------------
    @on(TaskTable.RowHighlighted, "#tasks")
    @_while_shown
    def task_highlighted(self, event: TaskTable.RowHighlighted) -> None:
        if event.task_id != self.selected:
            self.selected = event.task_id
            self._dag_stale = True
            self._log_stale = True
            if event.task_id:
                self._load_preview(event.task_id)

    @on(TaskTable.RowSelected, "#tasks")
    @_while_shown
    def task_entered(self, event: TaskTable.RowSelected) -> None:
        self.show_pane("log")

    @on(DagView.Selected)
    @_while_shown
    def dag_selected(self, m: DagView.Selected) -> None:
        self.selected = m.task_id
        self.table.select_task(m.task_id)
        self._log_stale = True
        self._load_dag(m.task_id, self.query_one("#dag-view", DagView).layout_data)

    @on(BlockedPane.Highlighted)
    @_while_shown
    def blocked_highlighted(self, m: BlockedPane.Highlighted) -> None:
        if self.pane == "blocked":
            self.selected = m.task_id
            self.table.select_task(m.task_id)
            self._log_stale = True

    @on(BlockedPane.AnswerSubmitted)
    @_while_shown
    def answer_submitted(self, m: BlockedPane.AnswerSubmitted) -> None:
        self.keys.answer_submitted(m.task_id, m.text, m.kind)

    @on(TabbedContent.TabActivated)
    async def tab_activated(self, event: TabbedContent.TabActivated) -> None:
        try:
            await self._ensure_pane(self.pane)
            self._load_visible()
            self._focus_pending()
        except NoMatches:
            return  # tearing down

    async def _ensure_pane(self, pane: str) -> None:
        """Mount a pane's widget the first time the pane is shown."""
        if pane == "blocked":
            self.query_one("#blocked-pane", BlockedPane).build()   # its widgets, on first use
            return
        make = ON_DEMAND_PANES.get(pane)
        if make is None or pane in self._mounted_panes:
            return
        self._mounted_panes.add(pane)
        await self.query_one(f"#{pane}", TabPane).mount(make())
        self._ready_panes.add(pane)

    def _load_visible(self) -> None:
        if self.run_id is None:
            return
        pane = self.pane
        if pane in ON_DEMAND_PANES and pane not in self._ready_panes:
            return  # tab_activated loads it once mounted
        if pane == "dag" and self._dag_stale:
            self._dag_stale = False
            self._load_dag(self.selected)
        elif pane == "log" and self._log_stale and self.selected:
            self._log_stale = False
            self._load_log(self.selected, None, None)

    @work(thread=True, exclusive=True, group="dag", exit_on_error=False)
    def _load_dag(self, focus: str | None, layout: DagLayout | None = None) -> None:
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
        self.query_one("#dag-view", DagView).show(m.layout, m.focus, m.unblocks)

    @on(AttemptLogPane.AttemptChosen)
    @_while_shown
    def attempt_chosen(self, m: AttemptLogPane.AttemptChosen) -> None:
        self._load_log(m.task_id, m.attempt_no, m.kinds)

    @work(thread=True, exclusive=True, group="log", exit_on_error=False)
    def _load_log(self, task_id: str, attempt_no: int | None, kinds: tuple[str, ...] | None) -> None:
        try:
            with self.data.lock:
                b = self.data._need_board()
                data = attempt_log(b.store, b.run_id, task_id, attempt_no, kinds=kinds, with_files=False)
            # Git and file reads happen outside the reader lock: they can be slow, the board must not wait.
            if data.attempt is not None:
                a = data.attempt
                live_tree = a.worktree_path and a.workspace_status == "created" and Path(a.worktree_path).is_dir()
                diff = diff_stat(a.worktree_path, a.base_commit) if live_tree else ""
                data = replace(data, diff_stat=diff)
        except Exception as exc:
            self.post_message(StoreFailed(error_text(exc)))
            return
        self.post_message(LogLoaded(data))

    @on(LogLoaded)
    @_while_shown
    def log_loaded(self, m: LogLoaded) -> None:
        self.query_one("#log-pane", AttemptLogPane).show(m.log)
        if m.log.attempt is not None and m.log.attempt.runtime:
            self._load_output(m.log.task_id, m.log.attempt)

    # -- the preview under the task table ------------------------------------------------------
    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _load_preview(self, task_id: str) -> None:
        try:
            with self.data.lock:
                b = self.data._need_board()
                p = preview(b.store, b.run_id, task_id)
        except Exception as exc:   # a task removed meanwhile, a failing store: no preview, no crash
            self.post_message(PreviewLoaded(Preview(task_id, "", "", "", None, None, asks=error_text(exc))))
            return
        a = p.attempt
        if a is not None and a.runtime == "tmux" and a.runtime_ref:
            # Deferred: the launcher (~9 ms of imports) is needed only once a launched worker is shown.
            from orch_console.console.runtime import launcher

            text = launcher.capture(self.db_path, {"runtime": a.runtime, "runtime_ref": a.runtime_ref,
                                                   "log_path": a.log_path}, lines=40)
            live = a.status in LIVE_ATTEMPT
            p = replace(p, tail=text.rstrip("\n").splitlines()[-8:],
                        tail_source=f"screen of {a.runtime_ref}" + ("" if live else " (ended)"))
        self.post_message(PreviewLoaded(p))

    @on(PreviewLoaded)
    @_while_shown
    def preview_loaded(self, m: PreviewLoaded) -> None:
        if m.preview.task_id == self.selected:
            self.query_one("#preview", TaskPreview).show(m.preview, self.clock())

    # -- the leader is called ------------------------------------------------------------------
    def alert(self, alerts: list[tuple[str, str, str, str]]) -> None:
        """A worker needs the leader: say so wherever the leader is (a notification naming the task,
        the agent, the first line of what it asks and the key that answers it, and the bell), and,
        when configured, on the desktop and through the webhook."""
        self.app.bell()
        for event_type, task, agent, summary in alerts:
            kind = ALERT_KIND.get(event_type, "escalation")
            key = ANSWER_KEYS.get(kind, "")
            first = next((ln.strip() for ln in clean(summary).splitlines() if ln.strip()), "")
            who = f"{task} ({agent})" if agent else task
            verb = {"question": "asks", "waiting_input": "waits for input", "escalation": "is escalated to you",
                    "approval": "asks permission", "hold": "hit a wall: its profile is held"}.get(kind, "needs you")
            self.notify(f"{one_line(first, 160)}\npress {key} on it to answer" if key else one_line(first, 160),
                        title=f"{one_line(who, 60)} {verb}", severity="warning", timeout=20, markup=False)
            if self.notifier is not None and self.run_id:
                self.notifier.send(Alert(run_id=self.run_id, task_id=task, agent=agent, kind=kind,
                                         first_line=first, key=key))

    # -- the worker's screen ---------------------------------------------------------------
    @_while_shown
    def poll_output(self) -> None:
        """While the attempt log shows a live launched worker, keep its screen current; on the
        board, the selected task's preview (its screen's tail)."""
        if self.pane == "board":
            shown = self.query_one("#preview", TaskPreview).preview
            if shown is not None and shown.task_id == self.selected and shown.attempt is not None \
                    and shown.attempt.runtime and shown.attempt.status in LIVE_ATTEMPT:
                self._load_preview(shown.task_id)
            return
        if self.pane != "log":
            return
        data = self.query_one("#log-pane", AttemptLogPane).log_data
        if data is None:
            return
        a = data.attempt
        if a is not None and a.runtime and a.status in LIVE_ATTEMPT:
            self._load_output(data.task_id, a)

    @work(thread=True, exclusive=True, group="output", exit_on_error=False)
    def _load_output(self, task_id: str, a: AttemptInfo) -> None:
        # Deferred: the launcher (~9 ms of imports) is needed only once a launched worker is shown.
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
        pane = self.query_one("#log-pane", AttemptLogPane)
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
        self._age_part = (self._age_part + 1) % AGE_PARTS
        self.table.tick_ages(self._age_part, AGE_PARTS)

    def restyle(self) -> None:
        """Cells and the header carry colours resolved at render time; redo them for a new theme."""
        try:
            self.table.restyle()
            self.query_one("#run-header", RunHeader).restyle()
            self.query_one("#dag-view", DagView).redraw()
        except Exception:
            pass

    # -- views and panes -------------------------------------------------------------------
    def set_filter(self, f: TaskFilter) -> None:
        self._view_gen += 1
        self.filter = f
        self._load_page(cursor=0)

    def show_pane(self, pane: str) -> None:
        self.query_one("#panes", TabbedContent).active = pane
        self._focus_after = PANE_FOCUS[pane]
        self.call_after_refresh(self._focus_pending)

    @_while_shown
    def _focus_pending(self) -> None:
        """Focus what show_pane asked for, once it exists (a pane shown the first time is mounted
        first; tab_activated calls this again then)."""
        if self._focus_after is None:
            return
        try:
            target = self.query_one(self._focus_after)
        except NoMatches:
            return
        self._focus_after = None
        target.focus()

    # -- what LeaderKeys needs (LeaderHost) ------------------------------------------------
    def push_screen(self, screen: Screen[Any], callback: Callable[[Any], None]) -> object:
        return self.app.push_screen(screen, callback)

    def suspend(self) -> AbstractContextManager[None]:
        return self.app.suspend()

    def call_from_thread(self, callback: Callable[..., object], *args: Any) -> object:
        return self.app.call_from_thread(callback, *args)

    def wake_engine(self) -> None:
        self._wake_engine()

    def focus_answer(self, task_id: str) -> None:
        """Show the blocked questions with `task_id`'s selected and its answer box focused."""
        self.query_one("#panes", TabbedContent).active = "blocked"
        pane = self.query_one("#blocked-pane", BlockedPane)
        pane.select(task_id)
        self.call_after_refresh(pane.focus_answer)

    def clear_answer(self) -> None:
        self.query_one("#blocked-pane", BlockedPane).clear_answer()

    def read_runs(self) -> list[RunSummary]:
        """From a thread worker: the runs in the database, for the run picker."""
        with self.data.lock:
            return run_summaries(self.data.store())

    # -- actions: the keys bound in OrchConsole.BINDINGS as "screen.<action>" -----------------
    def action_dispatch(self) -> None:
        self.keys.dispatch()

    def action_answer(self) -> None:
        self.keys.answer()

    def action_retry(self) -> None:
        self.keys.retry()

    def action_reassign(self) -> None:
        self.keys.reassign()

    def action_cleanup(self) -> None:
        self.keys.cleanup()

    def action_cancel_task(self) -> None:
        self.keys.cancel_task()

    def action_review(self) -> None:  # issue 14
        self.keys.review()

    def action_export(self) -> None:
        self.keys.export()

    def action_autopilot(self) -> None:
        self.keys.autopilot()

    def action_release_holds(self) -> None:
        self.keys.release_holds()

    def action_send_keys(self) -> None:
        self.keys.send_keys()

    def action_attach(self) -> None:
        self.keys.attach()

    def action_filter(self) -> None:
        self.keys.filter()

    def action_pick_run(self) -> None:
        self.keys.pick_run()

    def action_view(self, view: str) -> None:
        self.set_filter(TaskFilter(view=view if self.filter.view != view else "all", text=self.filter.text))
        self.show_pane("board")

    def action_cycle_view(self) -> None:
        views = ("all", "attention", "failed")
        self.set_filter(TaskFilter(view=views[(views.index(self.filter.view) + 1) % 3], text=self.filter.text))

    def action_pane(self, pane: str) -> None:
        self.show_pane(pane)

    def action_next_pane(self) -> None:
        self.show_pane(PANES[(PANES.index(self.pane) + 1) % len(PANES)])

    def action_prev_pane(self) -> None:
        self.show_pane(PANES[(PANES.index(self.pane) - 1) % len(PANES)])

