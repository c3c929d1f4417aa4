"""The attention queue: everything that waits on the leader (a blocked task's question, a worker's
screen waiting for input, an escalation), ranked by what answering it unblocks (critical path
first, then the most work downstream, then the longest wait), each with how long it has waited,
and an answer box in the pane. Enter posts `BlockedPane.AnswerSubmitted`; the board sends a
question's answer through store.answer and a screen's keys into its terminal.

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

KIND_LABEL = {"question": "question", "waiting_input": "input?", "escalation": "escalated",
              "permission": "permission", "approval": "permission"}
ANSWER_LABEL = {
    "question": "Answer {task} (plain text, or a JSON object as a structured payload). Enter sends.",
    "waiting_input": "Type into {task}'s terminal: Enter sends the line (the worker waits at a prompt).",
    "permission": "Answer {task}'s permission request. Enter sends.",
    "approval": "Answer {task}'s permission request: allow, always (for this run) or deny: reason. Enter sends.",
    "escalation": "{task} was escalated: retry it (r) or reassign it (R); nothing to type here.",
}


class BlockedPane(Vertical):
    # Escape leaves the answer box, so the console's one-letter keys act again.
    BINDINGS = [Binding("escape", "leave_answer", "Back to the queue", show=False, id="blocked.leave_answer")]

    @dataclass
    class AnswerSubmitted(Message):
        task_id: str
        text: str
        kind: str = "question"

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
        """Mount the queue, the selected item and the answer box, filled with what `show` kept."""
        if self.built:
            return
        self.built = True
        self._table: DataTable[Text] = DataTable(id="blocked-table", cursor_type="row")
        t = self._table
        for key, label, width in (("rank", "#", 3), ("task", "Task", 16), ("kind", "Needs", 10),
                                  ("by", "Agent", 10), ("age", "Waiting", 8), ("unblocks", "Unblocks", 8),
                                  ("what", "What", 60)):
            t.add_column(label, key=key, width=width)
        # Held by reference: a child passed to a container is only mounted with the container.
        self._question = Static(id="blocked-question")
        self._label = Static(ANSWER_LABEL["question"].format(task="a task"), id="answer-label", markup=False)
        self._input = Input(placeholder="type the answer…", id="answer-input")
        self.mount(t, VerticalScroll(self._question, id="blocked-detail"), self._label, self._input)
        self.show(self.items)

    def on_show(self) -> None:
        self.build()

    def show(self, items: list[dict[str, Any]]) -> None:
        """The queue is short; rebuilding it is cheaper than diffing. Ranked by the store."""
        self.items = items
        if not self.built:
            ids = [b["task_id"] for b in items]
            self.current = self.current if self.current in ids else (ids[0] if ids else None)
            return
        t = self._table
        keep = self.current
        t.clear()
        now = self.clock()
        for b in items:
            unblocks = f"{b.get('unblocks', 0)}{' ★' if b.get('critical') else ''}"
            t.add_row(Text(str(b.get("rank", ""))), cell(b["task_id"], 16), Text(KIND_LABEL.get(b["kind"], b["kind"])),
                      cell(b.get("agent", ""), 10), Text(age(b["since"], now)), Text(unblocks),
                      cell(b.get("text", ""), 200), key=b["task_id"])
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

    def current_item(self) -> dict[str, Any] | None:
        return next((x for x in self.items if x["task_id"] == self.current), None)

    def _show_question(self) -> None:
        q = self._question
        b = self.current_item()
        label = self._label
        if b is None:
            q.update(Text("Nothing waits on the leader." if not self.items else ""))
            label.update(Text("Nothing to answer."))
            return
        body = Text()
        body.append(f"{b['task_id']}", style="bold")
        crit = " · on the critical path" if b.get("critical") else ""
        body.append(f"  attempt {b.get('attempt_no') or '-'} · {KIND_LABEL.get(b['kind'], b['kind'])} from "
                    f"{b.get('agent') or '?'} · waiting {age(b['since'], self.clock())} · unblocks "
                    f"{b.get('unblocks', 0)}{crit}\n")
        m = b.get("question")
        if m:
            body.append(plain(m["summary"]))
            if m.get("body"):
                body.append("\n\n")
                body.append(plain(m["body"]))
            if m.get("payload") not in (None, "", {}):
                body.append("\n\npayload: ")
                body.append(plain(str(m.get("payload"))))
        elif b["kind"] == "approval":
            body.append(plain(f"{b.get('tool', '')} wants to run:\n{b.get('subject', '')}\n\noptions: "
                              + ", ".join(str(o.get("label", o)) if isinstance(o, dict) else str(o)
                                          for o in b.get("options") or [])))
        else:
            body.append(plain(b.get("reason") or b.get("text") or ""))
        q.update(body)
        label.update(Text(ANSWER_LABEL.get(b["kind"], ANSWER_LABEL["question"]).format(task=b["task_id"])))

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
        item = self.current_item()
        if item is None or not text.strip():
            return
        self.post_message(self.AnswerSubmitted(item["task_id"], text, item["kind"]))

    def clear_answer(self) -> None:
        """After an answer went out: an empty box, and focus back on the queue."""
        if not self.built:
            return
        self._input.value = ""
        self.action_leave_answer()

    def action_leave_answer(self) -> None:
        self.build()
        self._table.focus()
