"""Forms the leader fills in before an action. Each dismisses with plain data (or None when
cancelled); the app runs the store call in a worker."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from orch_console.store.models import RunSummary
from orch_console.widgets.text import cell

CANCEL = Binding("escape", "dismiss_none", "Cancel", id="modal.cancel")


class _Modal(ModalScreen):
    BINDINGS = [CANCEL]

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ConfirmScreen(_Modal):
    """Yes/no before an action that loses work."""

    BINDINGS = [CANCEL, Binding("y", "yes", "Yes", id="confirm.yes"),
                Binding("n", "dismiss_none", "No", id="confirm.no")]

    def __init__(self, title: str, detail: str) -> None:
        super().__init__()
        self.title_text = title
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield Static(Text(self.detail), classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(True if event.button.id == "yes" else None)

    def action_yes(self) -> None:
        self.dismiss(True)


@dataclass
class DispatchForm:
    mode: str
    to: str
    body: str | None
    repo_path: str | None
    launch_profile: str | None = None   # None: dispatch only


class DispatchScreen(_Modal):
    BINDINGS = [CANCEL, Binding("ctrl+s", "submit", "Dispatch", id="dispatch.submit")]

    def __init__(self, task_id: str, title: str, mode: str, to: str, repo_path: str, *,
                 profiles: list[str] | None = None, profile: str = "sim", launch: bool = False,
                 problem: str = "") -> None:
        super().__init__()
        self.task_id, self.task_title, self.mode, self.to, self.repo_path = task_id, title, mode, to, repo_path
        self.profiles = profiles or ["sim", "sim-tmux"]
        self.profile = profile if profile in self.profiles else self.profiles[0]
        self.launch, self.problem = launch, problem

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(f"Dispatch {self.task_id}", style="bold"), classes="dialog-title")
            yield Static(cell(self.task_title, 70), classes="dialog-body")
            yield Label("Execution mode")
            yield Select([("analysis (thread only)", "analysis"), ("code (own branch and worktree)", "code")],
                         value=self.mode, allow_blank=False, id="mode")
            yield Label("Worker")
            yield Input(value=self.to, id="to", placeholder="agent name")
            yield Label("Repository (code mode)")
            yield Input(value=self.repo_path, id="repo", placeholder="path to the git repository")
            with Horizontal(id="launch-row"):
                yield Checkbox("Launch worker with profile", value=self.launch, id="launch")
                yield Select([(p, p) for p in self.profiles], value=self.profile, allow_blank=False,
                             id="profile")
            if self.problem:
                yield Static(Text(self.problem), classes="dialog-body")
            yield Label("Instruction (empty: the task's title, summary and spec)")
            yield TextArea(id="body", soft_wrap=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Dispatch (ctrl+s)", id="ok", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#to", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.action_submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def action_submit(self) -> None:
        body = self.query_one("#body", TextArea).text
        mode = self.query_one("#mode", Select).value
        launch = self.query_one("#launch", Checkbox).value
        profile = self.query_one("#profile", Select).value
        self.dismiss(DispatchForm(mode=str(mode), to=self.query_one("#to", Input).value.strip(),
                                  body=body if body.strip() else None,
                                  repo_path=self.query_one("#repo", Input).value.strip() or None,
                                  launch_profile=str(profile) if launch and isinstance(profile, str) else None))


@dataclass
class InstructionForm:
    to: str | None
    body: str | None


class InstructionScreen(_Modal):
    """Retry and reassign: the new instruction (prefilled with the previous one, to be edited) and,
    for reassign, the new worker."""

    BINDINGS = [CANCEL, Binding("ctrl+s", "submit", "Send", id="instruction.submit")]

    def __init__(self, title: str, detail: str, previous: str, *, to: str = "", need_to: bool = False) -> None:
        super().__init__()
        self.title_text, self.detail, self.previous, self.to, self.need_to = title, detail, previous, to, need_to

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(self.title_text, style="bold"), classes="dialog-title")
            yield Static(Text(self.detail), classes="dialog-body")
            yield Label("Worker" + (" (required)" if self.need_to else " (empty: the same worker)"))
            yield Input(value=self.to, id="to", placeholder="agent name")
            yield Label("New instruction (it must differ from the failed attempt's)")
            yield TextArea(self.previous, id="body", soft_wrap=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Send (ctrl+s)", id="ok", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        (self.query_one("#to", Input) if self.need_to else self.query_one("#body", TextArea)).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.action_submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#body", TextArea).focus()

    def action_submit(self) -> None:
        body = self.query_one("#body", TextArea).text
        to = self.query_one("#to", Input).value.strip() or None
        self.dismiss(InstructionForm(to=to, body=body))


class RunPickerScreen(_Modal):
    def __init__(self, runs: list[RunSummary], current: str | None) -> None:
        super().__init__()
        self.runs, self.current = runs, current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text("Open a run", style="bold"), classes="dialog-title")
            yield OptionList(*[Option(Text.assemble(("● " if r.run_id == self.current else "  "),
                                                    (r.run_id, "bold"), f"  {r.status:9} {r.total:6} tasks  ",
                                                    cell(r.goal, 50)), id=r.run_id) for r in self.runs],
                             id="runs")

    def on_mount(self) -> None:
        ol = self.query_one("#runs", OptionList)
        ol.focus()
        ids = [r.run_id for r in self.runs]
        if self.current in ids:
            ol.highlighted = ids.index(self.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class FilterScreen(_Modal):
    """`/`: text to match against task id, title, owner or status."""

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-small"):
            yield Static(Text("Filter tasks (id, title, owner or status; empty clears)", style="bold"))
            yield Input(value=self.current, id="filter", placeholder="text…")

    def on_mount(self) -> None:
        self.query_one("#filter", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)


class SendKeysScreen(_Modal):
    """`s`: a line to type into a tmux worker's terminal (a `Continue? [y/n]` prompt, say)."""

    def __init__(self, task_id: str, session: str, prompt: str) -> None:
        super().__init__()
        self.task_id, self.session, self.prompt = task_id, session, prompt

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-small"):
            yield Static(Text(f"Type into {self.task_id}'s terminal ({self.session})", style="bold"),
                         classes="dialog-title")
            if self.prompt:
                yield Static(Text.assemble("The screen ends with: ", (self.prompt, "bold")), classes="dialog-body")
            yield Label("Text (Enter sends it, then Enter; esc cancels)")
            yield Input(id="keys", placeholder="y")

    def on_mount(self) -> None:
        self.query_one("#keys", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)
