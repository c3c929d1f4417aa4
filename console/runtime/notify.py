"""Telling a leader who is looking elsewhere that a worker needs them: a desktop notification
(`notify-send`, where it is installed) and a webhook POST in the style of ntfy.sh, both optional and
configured per user in the console's config file:

    [notify]
    desktop = true                           # notify-send, when present
    webhook = "https://ntfy.sh/my-orch-topic" # a POST per attention item; empty: none
    webhook_token = ""                       # sent as `Authorization: Bearer ...` when set

The console calls `Notifier.send` once per new attention item. Nothing here may slow the console
or fail it: each delivery runs in its own daemon thread with a short timeout, and a failure is
kept as text for the console to show, never raised. Worker text is made terminal- and header-safe
before it leaves (one line, no controls), since a worker can write anything.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from orch_console.store.sanitize import one_line

DELIVERY_TIMEOUT = 5.0


@dataclass(frozen=True)
class NotifySettings:
    desktop: bool = False
    webhook: str = ""
    webhook_token: str = ""

    @property
    def enabled(self) -> bool:
        return self.desktop or bool(self.webhook)


@dataclass(frozen=True)
class Alert:
    """One thing that needs the leader, already phrased: `title` names the task and the agent,
    `body` is the first line of what was asked, `key` the console key that answers it."""

    run_id: str
    task_id: str
    agent: str
    kind: str  # question, permission, waiting_input, escalation
    first_line: str
    key: str

    @property
    def title(self) -> str:
        who = f" ({one_line(self.agent, 40)})" if self.agent else ""
        return f"orch: {one_line(self.task_id, 64)}{who} needs you: {self.kind}"

    @property
    def body(self) -> str:
        return f"{one_line(self.first_line, 200)}  [press {self.key} in the console]"


def parse_settings(data: object) -> tuple[NotifySettings, list[str]]:
    """The [notify] table of the config file; problems are returned, never raised."""
    if data is None:
        return NotifySettings(), []
    if not isinstance(data, dict):
        return NotifySettings(), ["[notify] must be a table; notifications are off"]
    problems = []
    desktop = data.get("desktop", False)
    if not isinstance(desktop, bool):
        problems.append("notify.desktop must be true or false; desktop notifications are off")
        desktop = False
    webhook = data.get("webhook", "")
    if not isinstance(webhook, str) or (webhook and not webhook.startswith(("http://", "https://"))):
        problems.append(f"notify.webhook must be an http(s) address, not {webhook!r}; the webhook is off")
        webhook = ""
    token = data.get("webhook_token", "")
    if not isinstance(token, str):
        problems.append("notify.webhook_token must be a string; it is not sent")
        token = ""
    return NotifySettings(desktop=desktop, webhook=webhook, webhook_token=token), problems


class Notifier:
    def __init__(self, settings: NotifySettings, *, on_problem: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.on_problem = on_problem or (lambda _msg: None)
        self.desktop_exe = shutil.which("notify-send") if settings.desktop else None
        self.problems: list[str] = []
        self._threads: list[threading.Thread] = []
        if settings.desktop and not self.desktop_exe:
            self._problem("desktop notifications are on but notify-send is not installed")

    def send(self, alert: Alert) -> None:
        """Deliver in the background; returns at once."""
        if self.desktop_exe:
            self._spawn(self._desktop, alert)
        if self.settings.webhook:
            self._spawn(self._webhook, alert)

    def wait(self, timeout: float = DELIVERY_TIMEOUT + 1) -> None:
        """For tests and for a closing console: let deliveries in flight finish."""
        for t in list(self._threads):
            t.join(timeout)
        self._threads = [t for t in self._threads if t.is_alive()]

    def _spawn(self, fn: Callable[[Alert], None], alert: Alert) -> None:
        t = threading.Thread(target=fn, args=(alert,), daemon=True, name="orch-notify")
        self._threads = [x for x in self._threads if x.is_alive()] + [t]
        t.start()

    def _problem(self, msg: str) -> None:
        self.problems.append(msg)
        self.on_problem(msg)

    def _desktop(self, alert: Alert) -> None:
        assert self.desktop_exe
        try:
            # "--" ends the options: a title that starts with "-" is text, not a flag.
            subprocess.run([self.desktop_exe, "--app-name=orch", "--", alert.title, alert.body],
                           capture_output=True, timeout=DELIVERY_TIMEOUT, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            self._problem(f"notify-send failed: {exc}")

    def _webhook(self, alert: Alert) -> None:
        headers = {"Title": _header_safe(alert.title), "Tags": "orch," + _header_safe(alert.kind),
                   "Priority": "high" if alert.kind in ("permission", "question") else "default",
                   "Content-Type": "text/plain; charset=utf-8"}
        if self.settings.webhook_token:
            headers["Authorization"] = f"Bearer {self.settings.webhook_token}"
        req = urllib.request.Request(self.settings.webhook, data=alert.body.encode("utf-8"), headers=headers,
                                     method="POST")
        try:
            with urllib.request.urlopen(req, timeout=DELIVERY_TIMEOUT) as resp:  # noqa: S310 (the user's own URL)
                resp.read(1024)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            self._problem(f"webhook {self.settings.webhook} failed: {exc}")


def _header_safe(text: str) -> str:
    """HTTP header values are Latin-1 and one line: keep what fits, drop the rest."""
    return one_line(text, 200).encode("latin-1", "replace").decode("latin-1")
