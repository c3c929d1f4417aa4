"""Notifications for a leader who is away: a real HTTP server on 127.0.0.1 receives the webhook,
and a real notify-send stand-in on PATH (notify-send needs a desktop session these machines do
not have) records its arguments."""

from __future__ import annotations

import http.server
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orch_console.console.runtime.notify import Alert, Notifier, NotifySettings, parse_settings

HOSTILE = "\x1b]0;pwned\x07\x1b[31mDrop the DB?\r\nInjected: yes [b]bold[/b]"


@pytest.fixture
def hook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    got: list[dict[str, object]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length", 0))
            got.append({"path": self.path, "headers": dict(self.headers), "body": self.rfile.read(n).decode()})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/orch-topic", got
    finally:
        srv.shutdown()
        srv.server_close()


def alert(first_line: str = "Which database should the API use?") -> Alert:
    return Alert(run_id="r1", task_id="api", agent="claude-1", kind="question", first_line=first_line, key="a")


def test_webhook_gets_task_agent_question_and_key(hook: tuple[str, list[dict[str, object]]]) -> None:
    url, got = hook
    n = Notifier(NotifySettings(webhook=url, webhook_token="s3cret"))
    n.send(alert())
    n.wait()
    assert n.problems == []
    (req,) = got
    headers = req["headers"]
    assert isinstance(headers, dict)
    assert req["path"] == "/orch-topic"
    assert headers["Title"] == "orch: api (claude-1) needs you: question"
    assert headers["Authorization"] == "Bearer s3cret" and headers["Priority"] == "high"
    assert req["body"] == "Which database should the API use?  [press a in the console]"


def test_worker_text_reaches_the_webhook_as_one_harmless_line(hook: tuple[str, list[dict[str, object]]]) -> None:
    url, got = hook
    n = Notifier(NotifySettings(webhook=url))
    n.send(alert(HOSTILE))
    n.wait()
    body = str(got[0]["body"])
    assert "\x1b" not in body and "\r" not in body and "\n" not in body and "\x07" not in body
    assert "Drop the DB? Injected: yes [b]bold[/b]" in body  # markup stays literal text


def test_unreachable_webhook_is_a_problem_not_a_crash() -> None:
    seen: list[str] = []
    n = Notifier(NotifySettings(webhook="http://127.0.0.1:9/nothing-listens"), on_problem=seen.append)
    n.send(alert())
    n.wait()
    assert len(seen) == 1 and "webhook" in seen[0] and "failed" in seen[0]


def test_desktop_notification_through_notify_send(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "args"
    exe = tmp_path / "notify-send"
    exe.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {log}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    n = Notifier(NotifySettings(desktop=True))
    n.send(Alert(run_id="r", task_id="-rf", agent="", kind="permission", first_line="Bash: rm -rf build", key="a"))
    n.wait()
    args = log.read_text().splitlines()
    assert args == ["--app-name=orch", "--", "orch: -rf needs you: permission",
                    "Bash: rm -rf build  [press a in the console]"]


def test_desktop_on_without_notify_send_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    n = Notifier(NotifySettings(desktop=True))
    assert n.problems == ["desktop notifications are on but notify-send is not installed"]
    n.send(alert())  # nothing to deliver, nothing raised
    n.wait()


@pytest.mark.parametrize(("data", "problem"), [
    ({"desktop": "yes"}, "notify.desktop must be true or false"),
    ({"webhook": "ftp://x"}, "notify.webhook must be an http(s) address"),
    ("loud", "[notify] must be a table"),
])
def test_bad_notify_settings_are_reported_and_turned_off(data: object, problem: str) -> None:
    settings, problems = parse_settings(data)
    assert not settings.enabled and len(problems) == 1 and problems[0].startswith(problem)
