"""The task table: a DataTable holding one keyset window (a few hundred rows) of a run that may
have 50,000 tasks. Moving past either edge asks for the neighbouring window; changed tasks are
updated cell by cell in place, never by reloading the table."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from store.board import ATTENTION_LIVENESS, STATUS_ORDER, Page, TaskRow

from .text import STATUS_GLYPH, age, cell

COLUMNS: list[tuple[str, str, int]] = [
    ("wave", "Wave", 4), ("task", "Task", 16), ("title", "Title", 40), ("owner", "Owner", 10),
    ("status", "Status", 12), ("attempt", "Att", 3), ("activity", "Active", 6), ("liveness", "Liveness", 12),
]


# What each column shows, by the row fields it is made of (update_rows compares these).
CELL_FIELDS: list[tuple[str, Callable[[TaskRow], object]]] = [
    ("wave", lambda r: r.wave), ("task", lambda r: r.task_id), ("title", lambda r: r.title),
    ("owner", lambda r: r.owner), ("status", lambda r: r.status), ("attempt", lambda r: r.attempt_no),
    ("activity", lambda r: r.last_activity), ("liveness", lambda r: (r.liveness, r.attention, r.status)),
]


class TaskTable(DataTable):
    """Rows keyed by task id; the window's place in the whole list is in `page`."""

    COMPONENT_CLASSES = {f"status--{s}" for s in STATUS_ORDER} | {"tasktable--dim", "tasktable--attention"}
    BINDINGS = [
        Binding("home", "first_page", "First task", show=False, id="table.first"),
        Binding("end", "last_page", "Last task", show=False, id="table.last"),
    ]

    @dataclass
    class PageRequested(Message):
        """The cursor ran past the window's edge: load the window beyond it."""

        table: TaskTable
        direction: str  # next | prev | first | last

    def __init__(self, *, clock: Callable[[], float] = time.time, **kw: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)  # type: ignore[arg-type]
        self.clock = clock
        self.page: Page | None = None
        self.rows_by_id: dict[str, TaskRow] = {}
        self.window: list[TaskRow] = []
        self._index: dict[str, int] = {}      # task id -> position in window
        self._ages: dict[str, str] = {}       # task id -> the "Active" text on screen

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    # -- rendering -------------------------------------------------------------------------
    def _style(self, status: str) -> object:
        try:
            return self.get_component_rich_style(f"status--{status}", partial=True)
        except KeyError:
            return ""

    def _cells(self, r: TaskRow) -> list[Text]:
        st = self._style(r.status)
        return [
            Text(str(r.wave), justify="right"),  # numbered from 0, as `orch plan` and `orch status`
            cell(r.task_id, 16),
            cell(r.title, 60),
            cell(r.owner, 10),
            Text(f"{STATUS_GLYPH.get(r.status, '?')} {r.status}", style=st),  # type: ignore[arg-type]
            Text(str(r.attempt_no or ""), justify="right"),
            Text(age(r.last_activity, self.clock()), justify="right"),
            self._liveness_cell(r),
        ]

    def _liveness_cell(self, r: TaskRow) -> Text:
        """The watcher's verdict; a ⚠ marker when it calls for the leader (the needs-attention view)."""
        if r.attention == "escalate":
            mark = "escalated"
        elif r.attention == "waiting_input" or r.liveness == "waiting_input":
            mark = "input?"
        elif r.liveness in ATTENTION_LIVENESS and r.status not in ("done", "cancelled"):
            mark = r.liveness.replace("_", " ")
        else:
            return cell(r.liveness, 12)
        return Text(f"⚠ {mark}", style=self._style_of("tasktable--attention"), no_wrap=True)  # type: ignore[arg-type]

    def _style_of(self, component: str) -> object:
        try:
            return self.get_component_rich_style(component, partial=True)
        except KeyError:
            return ""

    def show_page(self, page: Page, cursor: str | int = 0) -> None:
        """Replace the window (a page turn or a new filter)."""
        self.page = page
        self.window = list(page.rows)
        self.rows_by_id = {r.task_id: r for r in page.rows}
        self._index = {r.task_id: i for i, r in enumerate(page.rows)}
        self._ages = {}
        self.clear()
        for r in page.rows:
            cells = self._cells(r)
            self._ages[r.task_id] = cells[6].plain
            self.add_row(*cells, key=r.task_id)
        if not page.rows:
            return
        if cursor == "end":
            idx = len(page.rows) - 1
        elif isinstance(cursor, str):
            idx = next((i for i, r in enumerate(page.rows) if r.task_id == cursor), 0)
        else:
            idx = max(0, min(int(cursor), len(page.rows) - 1))
        self.move_cursor(row=idx, animate=False)

    def update_rows(self, rows: list[TaskRow]) -> int:
        """Apply fresh rows to the window in place; returns how many cells changed. Only the
        columns whose source fields differ are rebuilt (this runs on the UI thread for every batch
        of worker updates)."""
        changed = 0
        for r in rows:
            old = self.rows_by_id.get(r.task_id)
            if old is None or old == r:
                continue
            new_cells: list[Text] | None = None
            for i, (key, field) in enumerate(CELL_FIELDS):
                if key == "activity":
                    # A heartbeat moves the timestamp every second; the cell shows "3s" either way.
                    text = age(r.last_activity, self.clock())
                    if text != self._ages.get(r.task_id):
                        self._ages[r.task_id] = text
                        self.update_cell(r.task_id, key, Text(text, justify="right"))
                        changed += 1
                elif field(old) != field(r):
                    new_cells = new_cells or self._cells(r)
                    self.update_cell(r.task_id, key, new_cells[i])
                    changed += 1
            self.rows_by_id[r.task_id] = r
            i = self._index.get(r.task_id)
            if i is not None:
                self.window[i] = r
        return changed

    def restyle(self) -> None:
        """After a theme switch: the status colours are baked into the cells."""
        for r in self.window:
            cells = self._cells(r)
            self.update_cell(r.task_id, "status", cells[4])
            self.update_cell(r.task_id, "liveness", cells[7])

    def tick_ages(self, part: int = 0, parts: int = 1) -> None:
        """Redo the "Active" cells whose text changed (rows part, part+parts, ... of the window)."""
        now = self.clock()
        for r in self.window[part::parts]:
            text = age(r.last_activity, now)
            if self._ages.get(r.task_id) != text:
                self._ages[r.task_id] = text
                self.update_cell(r.task_id, "activity", Text(text, justify="right"))

    @property
    def selected_task(self) -> str | None:
        if not self.window or self.cursor_row < 0 or self.cursor_row >= len(self.window):
            return None
        return self.window[self.cursor_row].task_id

    def select_task(self, task_id: str) -> bool:
        for i, r in enumerate(self.window):
            if r.task_id == task_id:
                self.move_cursor(row=i, animate=False)
                return True
        return False

    # -- paging at the edges ---------------------------------------------------------------
    def action_cursor_down(self) -> None:
        if self.page and self.page.has_next and self.cursor_row >= self.row_count - 1:
            self.post_message(self.PageRequested(self, "next"))
            return
        super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.page and self.page.has_prev and self.cursor_row <= 0:
            self.post_message(self.PageRequested(self, "prev"))
            return
        super().action_cursor_up()

    def action_page_down(self) -> None:
        if self.page and self.page.has_next and self.cursor_row >= self.row_count - 1:
            self.post_message(self.PageRequested(self, "next"))
            return
        super().action_page_down()

    def action_page_up(self) -> None:
        if self.page and self.page.has_prev and self.cursor_row <= 0:
            self.post_message(self.PageRequested(self, "prev"))
            return
        super().action_page_up()

    def action_first_page(self) -> None:
        if self.page and self.page.has_prev:
            self.post_message(self.PageRequested(self, "first"))
        elif self.row_count:
            self.move_cursor(row=0)

    def action_last_page(self) -> None:
        if self.page and self.page.has_next:
            self.post_message(self.PageRequested(self, "last"))
        elif self.row_count:
            self.move_cursor(row=self.row_count - 1)
