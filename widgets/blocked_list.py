"""Blocked questions: each blocked task's question, who asks and for how long, and an answer box
in the pane. Enter posts `BlockedPane.AnswerSubmitted`; the app sends it through store.answer.

The pane starts hidden, so its widgets (a DataTable, an Input: ~50 ms of start-up with their
stylesheets) are mounted the first time it is shown or used (`build`); until then `show` only
keeps the list."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from .text import age, cell, plain


class BlockedPane(Vertical):
    # Escape leaves the answer box, so the console's one-letter keys act again.
    BINDINGS = [Binding("escape", "leave_answer", "Back to the questions", show=False, id="blocked.leave_answer")]

    @dataclass
    class AnswerSubmitted(Message):
        task_id: str
        text: str

    @dataclass
    class Highlighted(Message):
        task_id: str

    def __init__(self, *, clock: Callable[[], float] = time.time, **kw: Any) -> None:
        super().__init__(**kw)
        self.clock = clock
        self.items: list[dict[str, Any]] = []
        self.current: str | None = None
        self.built = False

    def compose(self) -> ComposeResult:
        return iter(())  # see build()

    def build(self) -> None:
        """Mount the list, the question and the answer box, filled with what `show` kept."""
        if self.built:
            return
        self.built = True
        t = self._table = DataTable(id="blocked-table", cursor_type="row")
        for key, label, width in (("task", "Task", 16), ("by", "Asked by", 10), ("age", "Waiting", 8),
                                  ("question", "Question", 70)):
            t.add_column(label, key=key, width=width)
        # Held by reference: a child passed to a container is only mounted with the container.
        self._question = Static(id="blocked-question")
        self._label = Static("Answer (plain text, or a JSON object as a structured payload). Enter sends.",
                             id="answer-label", markup=False)
        self._input = Input(placeholder="type the answer…", id="answer-input")
        self.mount(t, VerticalScroll(self._question, id="blocked-detail"), self._label, self._input)
        self.show(self.items)

    def on_show(self) -> None:
        self.build()

    def show(self, items: list[dict[str, Any]]) -> None:
        """Blocked lists are short; rebuilding them is cheaper than diffing."""
        self.items = items
        if not self.built:
            ids = [b["task_id"] for b in items]
            self.current = self.current if self.current in ids else (ids[0] if ids else None)
            return
        t = self._table
        keep = self.current
        t.clear()
        for b in items:
            t.add_row(cell(b["task_id"], 16), cell(b["asked_by"], 10), Text(age(b["asked_at"], self.clock())),
                      cell(b["question"]["summary"], 200), key=b["task_id"])
        ids = [b["task_id"] for b in items]
        if keep in ids:
            t.move_cursor(row=ids.index(keep), animate=False)
        self.current = keep if keep in ids else (ids[0] if ids else None)
        self._show_question()

    def select(self, task_id: str | None) -> bool:
        ids = [b["task_id"] for b in self.items]
        if task_id not in ids:
            return False
        self.build()
        self.current = task_id
        self._table.move_cursor(row=ids.index(task_id), animate=False)
        self._show_question()
        return True

    def _show_question(self) -> None:
        q = self._question
        b = next((x for x in self.items if x["task_id"] == self.current), None)
        label = self._label
        if b is None:
            q.update(Text("No blocked questions." if not self.items else ""))
            label.update(Text("Nothing to answer."))
            return
        m = b["question"]
        body = Text()
        body.append(f"{b['task_id']}", style="bold")
        body.append(f"  attempt {b['attempt_no']} · asked by {b['asked_by']} · waiting "
                    f"{age(b['asked_at'], self.clock())}\n")
        body.append(plain(m["summary"]))
        if m.get("body"):
            body.append("\n\n")
            body.append(plain(m["body"]))
        if m.get("payload") not in (None, "", {}):
            body.append("\n\npayload: ")
            body.append(plain(str(m.get("payload"))))
        q.update(body)
        label.update(Text(f"Answer {b['task_id']} (plain text, or a JSON object as a structured payload). "
                          f"Enter sends."))

    def focus_answer(self) -> None:
        self.build()
        self._input.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key is not None and event.row_key.value:
            self.current = str(event.row_key.value)
            self._show_question()
            self.post_message(self.Highlighted(self.current))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.focus_answer()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value
        if not self.current or not text.strip():
            return
        self.post_message(self.AnswerSubmitted(self.current, text))

    def clear_answer(self) -> None:
        """After an answer went out: an empty box, and focus back on the list of questions."""
        if not self.built:
            return
        self._input.value = ""
        self.action_leave_answer()

    def action_leave_answer(self) -> None:
        self.build()
        self._table.focus()
