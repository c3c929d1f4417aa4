"""Terminal safety in a real terminal (tmux, private server per test): worker text (messages), a
worker's process log (with invalid UTF-8) and a worker's tmux pane, all full of escape sequences
(blink, OSC 8 hyperlink, OSC 0 window title, clear screen, cursor home, C1 CSI), markup and very
long lines, shown by `orch console` and by `orch status`/`orch blocked`/`inbox show` without
--json. Read back with `capture-pane -e` (styles kept): no injected style (blink) or hyperlink
reached the terminal, the pane title is not the worker's, and the layout is intact (header at the
top, footer at the bottom, nothing cleared)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orch_console.console.runtime import launcher
from tests.conftest import INBOX, ORCH, terminal_env

pytestmark = [pytest.mark.tmux, pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")]

ESC_TEXT = ("\x1b[5mBLINK\x1b[0m \x1b]8;;http://x\x07LINK\x1b]8;;\x07 \x1b]0;PWNED-TITLE\x07 \x1b[2J\x1b[H"
            " [/bold] [link=x]click[/link] \x9b5mCSI1")
LONG = "W" * 5000
EVIL_WORKER = r"""
import sys, time
out = sys.stdout.buffer
out.write(b"out-start \x1b[5mBLINK\x1b[0m \x1b]8;;http://x\x07LINK\x1b]8;;\x07 \x1b]0;PWNED-TITLE\x07 \x1b[2J\x1b[H [/bold] [link=x]y\n")
out.write(b"bad utf8: \xff\xfe\xc3\x28 end\n")
out.write(b"L" * 5000 + b"\n")
out.write(b"\x9b5mC1-CSI \x1b[10;10H moved\n")
out.write(b"out-end\n")
out.flush()
time.sleep(300)
"""


class Term:
    def __init__(self) -> None:
        self.socket = f"orch-term-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20,
                              check=check)

    def new(self, name: str, cmd: str, env: dict[str, str], width: int = 140, height: int = 40) -> None:
        p = subprocess.run(["tmux", "-L", self.socket, "new-session", "-d", "-s", name, "-x", str(width), "-y",
                            str(height), cmd], env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        self("set-option", "-t", name, "remain-on-exit", "on")

    def capture(self, name: str) -> str:
        """The screen with its styles as escape sequences (tmux re-encodes what it rendered)."""
        p = subprocess.run(["tmux", "-L", self.socket, "capture-pane", "-e", "-p", "-t", name], capture_output=True,
                           timeout=20)
        return p.stdout.decode("utf-8", "replace")

    def plain(self, name: str) -> str:
        return self("capture-pane", "-p", "-t", name).stdout

    def title(self, name: str) -> str:
        return self("display-message", "-p", "-t", name, "#{pane_title}").stdout.strip()

    def wait(self, name: str, needle: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.plain(name)
            if needle in text:
                return text
            time.sleep(0.15)
        raise AssertionError(f"{needle!r} never appeared:\n{self.plain(name)}")


@pytest.fixture
def term() -> Iterator[Term]:
    t = Term()
    try:
        yield t
    finally:
        t("kill-server")


def blink_or_foreign_sgr(screen: str) -> list[str]:
    """SGR sequences in a capture that turn on blink (5/6) or conceal (8): the console never does."""
    bad = []
    for m in re.finditer(r"\x1b\[([0-9;:]*)m", screen):
        params = [p for p in re.split("[;:]", m.group(1))]
        i = 0
        while i < len(params):
            p = params[i]
            if p in ("38", "48", "58") and i + 1 < len(params):
                i += 3 if params[i + 1] == "5" else 5
                continue
            if p in ("5", "6", "8"):
                bad.append(m.group(0))
            i += 1
    return bad


def check_screen(term: Term, name: str, what: str) -> str:
    screen = term.capture(name)
    assert "\x1b]" not in screen, f"{what}: an OSC sequence (hyperlink/title) reached the screen"
    assert not blink_or_foreign_sgr(screen), f"{what}: {blink_or_foreign_sgr(screen)}"
    assert "PWNED" not in term.title(name), f"{what}: the worker set the window title"
    assert "Traceback" not in screen, f"{what}:\n{term.plain(name)}"
    return screen


@pytest.fixture
def hostile_run(cli, tmp_path: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    evil = tmp_path / "evil.py"
    evil.write_text(EVIL_WORKER)
    (Path(cli.db).parent / "orch.toml").write_text(
        f'[agents.evilp]\ncommand = "{{python}} {evil}"\nruntime = "process"\n\n'
        f'[agents.evilt]\ncommand = "{{python}} {evil}"\nruntime = "tmux"\n')
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "terminal safety")
    # the test writes the launched workers' reports itself, without their ORCH_TOKEN (issue 15)
    cli.ok("orch", "run", "config", "--run", "r1", "--set", "require_worker_tokens=false")
    cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "process worker", "--default-to", "w1")
    cli.ok("orch", "task", "add", "--run", "r1", "--task", "t2", "--title", "tmux worker", "--default-to", "w2")
    ths = {}
    for t, prof in (("t1", "evilp"), ("t2", "evilt")):
        d = cli.ok("orch", "dispatch", "--run", "r1", "--task", t, "--execution-mode", "analysis", "--launch",
                   "--profile", prof)
        ths[t] = d["attempt"]["thread_id"]
    cli.ok("inbox", "claim", "--agent", "w1", "--thread", ths["t1"])
    cli.ok("inbox", "update", "--agent", "w1", "--thread", ths["t1"], "--status", "in_progress",
           "--summary", "progress " + ESC_TEXT, "--body", ESC_TEXT + "\n" + LONG)
    cli.ok("inbox", "update", "--agent", "w1", "--thread", ths["t1"], "--status", "blocked",
           "--summary", "question " + ESC_TEXT + " " + LONG, "--body", ESC_TEXT)
    cli.ok("inbox", "claim", "--agent", "w2", "--thread", ths["t2"])
    cli.ok("inbox", "update", "--agent", "w2", "--thread", ths["t2"], "--status", "in_progress",
           "--summary", "tmux " + ESC_TEXT)
    # the process worker's log holds the raw bytes, invalid UTF-8 included
    import sqlite3

    c = sqlite3.connect(cli.db)
    log = Path(c.execute("SELECT log_path FROM attempts WHERE thread_id=?", (ths["t1"],)).fetchone()[0])
    c.close()
    deadline = time.monotonic() + 20
    while b"out-end" not in (log.read_bytes() if log.exists() else b"") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert b"\xff\xfe" in log.read_bytes()
    yield {"db": cli.db, **ths}
    from orch_console.store import Store

    s = Store(cli.db)
    for a in s.all("SELECT * FROM attempts WHERE runtime<>''"):
        launcher.stop(s.path, dict(a), grace=0.2)
    launcher.kill_server(s.path)
    s.close()


def test_console_in_tmux_shows_hostile_worker_text_safely(term: Term, hostile_run: dict[str, str],
                                                          tmp_path: Path) -> None:
    env = terminal_env(ORCH_CONSOLE_CONFIG=str(tmp_path / "none.toml"))
    env.pop("ORCH_THEME", None)
    term.new("c", f"{ORCH} --db {hostile_run['db']} console --run r1", env)
    term.wait("c", "Run board")
    term.wait("c", "t2")
    term.wait("c", "q Quit")
    base_title = term.title("c")
    shown = {}
    for step, keys, needle in [("board", [], "t1"), ("log t1", ["4"], "out-end"), ("blocked", ["3"], "question"),
                               ("log t2", ["1", "down", "4"], "tmux"), ("dag", ["2"], "t1")]:
        for k in keys:
            term("send-keys", "-t", "c", k)
            time.sleep(0.3)
        text = term.wait("c", needle)
        check_screen(term, "c", step)
        lines = text.splitlines()
        # layout: the header is still the first line, the key footer the last, nothing was cleared or moved
        assert lines[0].startswith(" r1 ") and "autopilot" in lines[0], (step, lines[:2])
        assert "Quit" in lines[-1], (step, text)
        assert len(lines) <= 40 and all(len(ln) <= 140 for ln in lines)
        shown[step] = text
    assert term.title("c") == base_title
    assert "BLINK" in shown["log t1"] and "bad utf8" in shown["log t1"]
    assert "[/bold]" in shown["blocked"] and "[link=x]click[/link]" in shown["blocked"]
    alive = term("display-message", "-p", "-t", "c", "#{pane_dead}").stdout.strip()
    assert alive == "0", term.plain("c")


def test_clis_without_json_in_tmux_print_hostile_text_safely(term: Term, hostile_run: dict[str, str]) -> None:
    db = hostile_run["db"]
    env = terminal_env()
    for name, cmd in [("status", f"{ORCH} --db {db} status --run r1"),
                      ("blocked", f"{ORCH} --db {db} blocked --run r1"),
                      ("show", f"{INBOX} --db {db} show --thread {hostile_run['t1']}"),
                      ("show2", f"{INBOX} --db {db} show --thread {hostile_run['t2']}")]:
        marker = f"END-OF-{name}"
        term.new(name, f"echo TOP-OF-{name}; {cmd}; echo {marker} $?; sleep 60", env, width=140, height=200)
        term.wait(name, marker)
        screen = check_screen(term, name, name)
        plain = term.plain(name)
        assert plain.lstrip().startswith(f"TOP-OF-{name}"), f"{name}: the screen was cleared or the cursor moved:\n" \
            + plain[:500]
        assert f"{marker} 0" in plain, plain[-500:]
        assert "BLINK" in plain, f"{name} did not show the worker's text:\n{plain[:1500]}"
        assert "\x1b[5m" not in screen and "\x9b" not in screen
    print(f"\n{sys.version.split()[0]} tmux captures checked")
