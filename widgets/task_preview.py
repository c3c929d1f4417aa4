"""The selected task at a glance, under the task table: what it asks the leader (and the key that
answers it), what its worker said last, and the live tail of its screen or log. The leader reads a
question on the board itself, without switching panes.

Worker text is sanitised and set as plain Text: markup is never parsed, escape sequences never
reach the terminal."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from orch_console.store.models import Preview
from orch_console.store.sanitize import clean, one_line

from .text import STATUS_GLYPH, age, component_style

ASKS_TITLE = {"question": "asks", "waiting_input": "waits for input", "escalation": "escalated"}
KEY_VERB = {"a": "answer", "k": "type into its terminal", "r": "retry"}
ASK_LINES = 3


class TaskPreview(Static):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"preview--asks", "preview--dim", "preview--tail"}
    DEFAULT_CSS = """
    TaskPreview {
        height: auto;
        max-height: 12;
        padding: 0 1;
        border-top: solid $panel;
        color: $foreground;
    }
    """

    def __init__(self, *, id: str | None = None, tail_lines: int = 6) -> None:  # noqa: A002 (Textual's name)
        super().__init__("", id=id, markup=False)
        self.tail_lines = tail_lines
        self.preview: Preview | None = None

    def clear_preview(self) -> None:
        self.preview = None
        self.update("")

    def show(self, p: Preview, now: float | None = None) -> None:
        self.preview = p
        self.update(self.render_preview(p, now))

    def render_preview(self, p: Preview, now: float | None = None) -> Group:
        dim = component_style(self, "preview--dim")
        parts: list[Text] = []
        head = Text(no_wrap=True, overflow="ellipsis", justify="left")
        head.append(f"{STATUS_GLYPH.get(p.status, '?')} ", style=dim)
        head.append(one_line(p.task_id, 40), style="bold")
        head.append(f"  {one_line(p.title, 60)}")
        if p.owner:
            head.append(f"  · {one_line(p.owner, 30)}", style=dim)
        if p.attempt is not None:
            head.append(f"  · attempt {p.attempt.attempt_no}", style=dim)
        parts.append(head)
        if p.asks_kind:
            asks = component_style(self, "preview--asks")
            key = f"  [{p.asks_key}: {KEY_VERB.get(p.asks_key, '')}]" if p.asks_key else ""
            lines = [ln for ln in clean(p.asks).splitlines() if ln.strip()][:ASK_LINES]
            first = Text(no_wrap=True, overflow="ellipsis", justify="left")
            first.append(f"{ASKS_TITLE.get(p.asks_kind, p.asks_kind)}: ", style=asks)
            first.append(one_line(lines[0] if lines else "", 200))
            first.append(key, style=dim)
            parts.append(first)
            parts += [Text("  " + one_line(ln, 200), no_wrap=True, overflow="ellipsis", justify="left")
                      for ln in lines[1:]]
        if p.latest is not None and not (p.asks_kind == "question" and p.latest.kind == "question"):
            said = Text(no_wrap=True, overflow="ellipsis", justify="left")
            said.append(f"latest {p.latest.kind} ({age(p.latest.created_at, now)} ago): ", style=dim)
            said.append(one_line(p.latest.summary, 200))
            parts.append(said)
        elif p.latest is None and not p.asks_kind:
            parts.append(Text("no word from a worker yet", style=dim))
        tail = [ln for ln in p.tail if ln.strip()][-self.tail_lines:]
        if tail:
            tstyle = component_style(self, "preview--tail")
            parts.append(Text(f"─ {one_line(p.tail_source, 80)}", style=dim, no_wrap=True, overflow="ellipsis",
                              justify="left"))
            parts += [Text(clean(ln, keep_newlines=False), style=tstyle, no_wrap=True, overflow="ellipsis",
                           justify="left")
                      for ln in tail]
        return Group(*parts)
