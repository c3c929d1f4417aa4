"""`?`: every key of the console, from the live bindings (so remapped keys show as remapped)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close help", id="help.close")]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=True, header_style="bold", expand=True)
        table.add_column("key", no_wrap=True)
        table.add_column("action")
        for key, desc in self.rows:
            table.add_row(Text(key), Text(desc))
        with VerticalScroll(classes="dialog help"):
            yield Static(Text("Orch Console keys (remap them in ~/.config/orch-console/config.toml [keymap])",
                              style="bold"))
            yield Static(table)
            yield Static(Text("Panes: run board · task DAG · blocked questions · attempt log. "
                              "Worker text is shown as plain text; escape sequences are stripped."))
