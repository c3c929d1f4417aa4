"""The task table: a Line-API widget over one keyset window (a few hundred rows) of a run that may
have 50,000 tasks. Only the lines on screen are rendered; each row's Strip is cached until that
row's data (or its "Active" text, or the theme) changes, and a change refreshes just that row's
line. Moving past either edge of the window asks for the neighbouring window (PageRequested).

Worker text is sanitised (store.sanitize.one_line) and put into segments as plain text: markup is
never interpreted, escape sequences never reach the terminal."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from orch_console.store.models import Page, TaskRow
from orch_console.store.states import ATTENTION_LIVENESS, STATUS_ORDER
from orch_console.store.sanitize import one_line

from .text import STATUS_GLYPH, age, component_style

COLUMNS: list[tuple[str, str, int]] = [
    ("wave", "Wave", 4), ("task", "Task", 16), ("title", "Title", 40), ("owner", "Owner", 10),
    ("status", "Status", 12), ("attempt", "Att", 3), ("activity", "Active", 6), ("liveness", "Liveness", 12),
]
COLUMN_INDEX = {key: i for i, (key, _, _) in enumerate(COLUMNS)}
ACTIVITY = COLUMN_INDEX["activity"]
RIGHT = frozenset({"wave", "attempt", "activity"})   # right-aligned columns
PAD = 1                                              # blank cells each side of a column
TABLE_WIDTH = sum(w + 2 * PAD for _, _, w in COLUMNS)
COLUMN_META = [Style.from_meta({"column": i}) for i in range(len(COLUMNS) + 1)]   # the last: the fill

# One cell: its text and the component class that colours it ("" = the row's own style).
Cell = tuple[str, str]


def _shown(r: TaskRow) -> tuple[object, ...]:
    """The fields a row's cells are made of, but the activity stamp (shown as an age)."""
    return (r.wave, r.task_id, r.title, r.owner, r.status, r.attempt_no, r.liveness, r.attention)


def fit(text: str, width: int, right: bool = False) -> str:
    """Exactly `width` cells: padded, or clipped with an ellipsis."""
    n = cell_len(text)
    if n <= width:
        pad = " " * (width - n)
        return pad + text if right else text + pad
    return set_cell_size(text, max(0, width - 1)) + "…" if width else ""


class TaskTable(ScrollView, can_focus=True):
    """Rows keyed by task id; the window's place in the whole list is in `page`. Line 0 is the
    column header (it does not scroll vertically); row i of the window is virtual line i + 1."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"status--{s}" for s in STATUS_ORDER} | {
        "tasktable--dim", "tasktable--attention", "tasktable--header", "tasktable--cursor"}
    DEFAULT_CSS = """
    TaskTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .tasktable--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .tasktable--header { background-tint: $foreground 5%; }
        }
        & > .tasktable--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .tasktable--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .tasktable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,ctrl+home", "first_page", "First task", show=False, id="table.first"),
        Binding("end,ctrl+end", "last_page", "Last task", show=False, id="table.last"),
    ]

    @dataclass
    class PageRequested(Message):
        """The cursor ran past the window's edge: load the window beyond it."""

        table: TaskTable
        direction: str  # next | prev | first | last

    @dataclass
    class _RowMessage(Message):
        table: TaskTable
        cursor_row: int
        task_id: str

        @property
        def control(self) -> TaskTable:
            return self.table

    class RowHighlighted(_RowMessage):
        """The cursor is on another task."""

    class RowSelected(_RowMessage):
        """Enter (or a click on the cursor row): the leader wants this task."""

    def __init__(self, *, clock: Callable[[], float] = time.time, name: str | None = None, id: str | None = None,
                 classes: str | None = None, disabled: bool = False) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.clock = clock
        self.page: Page | None = None
        self.rows_by_id: dict[str, TaskRow] = {}
        self.window: list[TaskRow] = []
        self._index: dict[str, int] = {}          # task id -> position in window
        self._ages: dict[str, str] = {}           # task id -> the "Active" text its cached strip shows
        self._cells: dict[str, list[Cell]] = {}   # task id -> sanitised, unpadded cell texts
        self._strips: dict[tuple[str, bool], Strip] = {}   # (task id, is cursor row) -> full-width strip
        self._header: Strip | None = None
        self._header_style = Style()
        self._styles: dict[tuple[str, bool, int], Style] = {}
        self._cursor = 0
        self._highlighted: str | None = None
        self.virtual_size = Size(TABLE_WIDTH, 1)

    # -- the DataTable-like surface the app and tests use ---------------------------------
    @property
    def row_count(self) -> int:
        return len(self.window)

    @property
    def cursor_row(self) -> int:
        return self._cursor if self.window else -1

    @property
    def selected_task(self) -> str | None:
        if not self.window or not 0 <= self._cursor < len(self.window):
            return None
        return self.window[self._cursor].task_id

    def get_cell(self, task_id: str, column: str) -> Text:
        """What a cell shows (plain text, its status colour) for tests and callers that ask."""
        r = self.rows_by_id[task_id]
        text, comp = self._cells_of(r)[COLUMN_INDEX[column]]
        return Text(text, style=self._component(comp) if comp else "")

    def select_task(self, task_id: str) -> bool:
        i = self._index.get(task_id)
        if i is None:
            return False
        self.move_cursor(row=i)
        return True

    def move_cursor(self, *, row: int, animate: bool = False, scroll: bool = True) -> None:
        if not self.window:
            self._cursor = 0
            return
        row = max(0, min(row, len(self.window) - 1))
        old = self._cursor
        self._cursor = row
        if old != row:
            self._refresh_row(old)
            self._refresh_row(row)
        if scroll:
            self._scroll_cursor_into_view()
        self._announce()

    # -- window ----------------------------------------------------------------------------
    def show_page(self, page: Page, cursor: str | int = 0) -> None:
        """Replace the window (a page turn, a new filter, or the same window re-read). Rows whose
        task and data are unchanged keep their rendered strips and their lines are not redrawn."""
        old_window, old_cursor = self.window, self._cursor
        self.page = page
        self.window = list(page.rows)
        self.rows_by_id = {r.task_id: r for r in page.rows}
        self._index = {r.task_id: i for i, r in enumerate(page.rows)}
        if not page.rows:
            idx = 0
        elif isinstance(cursor, str):  # a task id
            idx = self._index.get(cursor, 0)
        else:
            idx = max(0, min(int(cursor), len(page.rows) - 1))
        self._cursor = idx
        old_by_id = {r.task_id: r for r in old_window}
        for tid in list(self._cells):
            r = self.rows_by_id.get(tid)
            if r is None or old_by_id.get(tid) != r:
                self._forget(tid)
        height = len(self.window) + 1
        if self.virtual_size.height != height:
            self.virtual_size = Size(TABLE_WIDTH, height)
            self.refresh()
        else:
            stale = [i for i, r in enumerate(self.window)
                     if i >= len(old_window) or old_window[i].task_id != r.task_id or r.task_id not in self._cells]
            if old_cursor != idx:
                stale += [old_cursor, idx]
            if len(stale) > len(self.window) // 2:
                self.refresh()
            else:
                for i in stale:
                    self._refresh_row(i)
        self._scroll_cursor_into_view()
        self._announce()

    def update_rows(self, rows: list[TaskRow]) -> int:
        """Apply fresh rows to the window in place; returns how many rows look different. Only
        those rows' lines are redrawn (this runs on the UI thread for every batch of updates)."""
        changed = 0
        now = self.clock()
        for r in rows:
            old = self.rows_by_id.get(r.task_id)
            if old is None or old == r:
                continue
            i = self._index[r.task_id]
            self.rows_by_id[r.task_id] = r
            self.window[i] = r
            before = self._cells.get(r.task_id)
            if before is None:        # never drawn: it is rendered from the new row when shown
                changed += 1
                continue
            if _shown(old) == _shown(r):
                # Only the activity stamp moved (a heartbeat): the cell shows "3s" either way.
                activity = age(r.last_activity, now)
                if activity == self._ages.get(r.task_id):
                    continue
                cells = list(before)
                cells[ACTIVITY] = (activity, "")
            else:
                cells = self._compute_cells(r, now)
                if cells == before:
                    continue
            self._forget(r.task_id)
            self._cells[r.task_id] = cells
            self._ages[r.task_id] = cells[ACTIVITY][0]
            changed += 1
            self._refresh_row(i)
        return changed

    def restyle(self) -> None:
        """After a theme switch: every strip carries resolved colours."""
        self._strips.clear()
        self._styles.clear()
        self._header = None
        self.refresh()

    def tick_ages(self, part: int = 0, parts: int = 1) -> None:
        """Redraw the rows (part, part+parts, ... of the window) whose "Active" text changed."""
        now = self.clock()
        for i in range(part, len(self.window), parts):
            r = self.window[i]
            shown = self._ages.get(r.task_id)
            if shown is not None and shown != age(r.last_activity, now):
                self._forget(r.task_id)
                self._refresh_row(i)

    # -- rendering -------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._styles.clear()
        self._header = None

    def _component(self, name: str) -> Style:
        return component_style(self, name)

    def _forget(self, task_id: str) -> None:
        self._cells.pop(task_id, None)
        self._ages.pop(task_id, None)
        self._strips.pop((task_id, False), None)
        self._strips.pop((task_id, True), None)

    def _cells_of(self, r: TaskRow) -> list[Cell]:
        got = self._cells.get(r.task_id)
        if got is None:
            got = self._cells[r.task_id] = self._compute_cells(r, self.clock())
            self._ages[r.task_id] = got[ACTIVITY][0]
        return got

    def _compute_cells(self, r: TaskRow, now: float) -> list[Cell]:
        return [
            (str(r.wave), ""),    # numbered from 0, as `orch plan` and `orch status`
            (one_line(r.task_id, 16), ""),
            (one_line(r.title, 60), ""),
            (one_line(r.owner, 10), ""),
            (f"{STATUS_GLYPH.get(r.status, '?')} {r.status}", f"status--{r.status}"),
            (str(r.attempt_no or ""), ""),
            (age(r.last_activity, now), ""),
            self._liveness_cell(r),
        ]

    @staticmethod
    def _liveness_cell(r: TaskRow) -> Cell:
        """The watcher's verdict; a ⚠ marker when it calls for the leader (the needs-attention view)."""
        if r.attention == "escalate":
            mark = "escalated"
        elif r.attention == "waiting_input" or r.liveness == "waiting_input":
            mark = "input?"
        elif r.liveness in ATTENTION_LIVENESS and r.status not in ("done", "cancelled"):
            mark = r.liveness.replace("_", " ")
        else:
            return one_line(r.liveness, 12), ""
        return f"⚠ {mark}", "tasktable--attention"

    def _header_strip(self) -> Strip:
        if self._header is None:
            style = self.rich_style + self.get_component_styles("tasktable--header").rich_style
            self._header = Strip([Segment(" " * PAD + fit(label, w) + " " * PAD, style + COLUMN_META[i])
                                  for i, (_, label, w) in enumerate(COLUMNS)], TABLE_WIDTH)
            self._header_style = style
        return self._header

    def _row_strip(self, r: TaskRow, cursor: bool) -> Strip:
        key = (r.task_id, cursor)
        strip = self._strips.get(key)
        if strip is not None:
            return strip
        style_of = self._cell_style
        strip = Strip([Segment(" " * PAD + fit(text, width, key_ in RIGHT) + " " * PAD, style_of(comp, cursor, i))
                       for i, ((key_, _, width), (text, comp)) in enumerate(zip(COLUMNS, self._cells_of(r)))],
                      TABLE_WIDTH)
        self._strips[key] = strip
        return strip

    def _cell_style(self, comp: str, cursor: bool, column: int) -> Style:
        """The row's style, the cell's colour (a status), the cursor over both, and the column as
        meta (each cell its own segment, as DataTable's are)."""
        key = (comp, cursor, column)
        got = self._styles.get(key)
        if got is None:
            got = self.rich_style
            if comp:
                got += self._component(comp)
            if cursor:
                got += self.get_component_rich_style("tasktable--cursor")
            got = self._styles[key] = got + COLUMN_META[column]
        return got

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            header = self._header_strip()
            return header.crop_extend(scroll_x, scroll_x + width, self._header_style)
        i = scroll_y + y - 1
        if i >= len(self.window):
            return Strip.blank(width, self.rich_style)
        cursor = i == self._cursor
        strip = self._row_strip(self.window[i], cursor)
        return strip.crop_extend(scroll_x, scroll_x + width, self._cell_style("", cursor, len(COLUMNS)))

    def _refresh_row(self, i: int) -> None:
        if 0 <= i < len(self.window):
            self.refresh_line(i + 1)

    # -- cursor ----------------------------------------------------------------------------
    def _rows_on_screen(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_cursor_into_view(self) -> None:
        if not self.window or not self.size.height:
            return
        shown = self._rows_on_screen()
        top = round(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False)
        elif self._cursor >= top + shown:
            self.scroll_to(y=self._cursor - shown + 1, animate=False)

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self._scroll_cursor_into_view)

    def _announce(self) -> None:
        tid = self.selected_task
        if tid is not None and tid != self._highlighted:
            self._highlighted = tid
            self.post_message(self.RowHighlighted(self, self._cursor, tid))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        i = round(self.scroll_y) + offset.y - 1
        if not 0 <= i < len(self.window):
            return
        event.stop()
        if i == self._cursor:
            self.action_select_cursor()
        else:
            self.move_cursor(row=i)

    def action_select_cursor(self) -> None:
        tid = self.selected_task
        if tid is not None:
            self.post_message(self.RowSelected(self, self._cursor, tid))

    # -- paging at the edges ---------------------------------------------------------------
    def action_cursor_down(self) -> None:
        if self.page and self.page.has_next and self._cursor >= self.row_count - 1:
            self.post_message(self.PageRequested(self, "next"))
            return
        self.move_cursor(row=self._cursor + 1)

    def action_cursor_up(self) -> None:
        if self.page and self.page.has_prev and self._cursor <= 0:
            self.post_message(self.PageRequested(self, "prev"))
            return
        self.move_cursor(row=self._cursor - 1)

    def action_page_down(self) -> None:
        if self.page and self.page.has_next and self._cursor >= self.row_count - 1:
            self.post_message(self.PageRequested(self, "next"))
            return
        n = self._rows_on_screen()
        self.scroll_to(y=round(self.scroll_y) + n, animate=False)
        self.move_cursor(row=self._cursor + n)

    def action_page_up(self) -> None:
        if self.page and self.page.has_prev and self._cursor <= 0:
            self.post_message(self.PageRequested(self, "prev"))
            return
        n = self._rows_on_screen()
        self.scroll_to(y=max(0, round(self.scroll_y) - n), animate=False)
        self.move_cursor(row=self._cursor - n)

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
