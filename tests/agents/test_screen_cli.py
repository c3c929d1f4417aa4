"""`orch screen classify`: the recogniser as a command, with the JSON envelope and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ORCH

CORPUS = Path(__file__).resolve().parent / "corpus"


def run(*args: str, input: str | None = None, db: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ORCH, *args], capture_output=True, text=True, timeout=60, input=input)


def test_classify_a_file_prints_the_verdict_with_its_options():
    p = run("screen", "classify", "--agent", "claude", "--file", str(CORPUS / "claude/permission-bash.txt"), "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["ok"] and doc["command"] == "classify"
    d = doc["data"]
    assert (d["state"], d["kind"], d["rule"], d["agent"], d["version"]) == (
        "waiting_input", "permission", "menu", "claude", "2.1.197")
    assert d["question"] == "Do you want to proceed?"
    assert [o["key"] for o in d["options"]] == ["1", "2", "3"] and d["options"][0]["selected"]


def test_classify_reads_stdin_and_detects_the_agent():
    text = (CORPUS / "codex/network-reconnecting.txt").read_text()
    p = run("--json", "screen", "classify", input=text)
    d = json.loads(p.stdout)["data"]
    assert (d["state"], d["kind"], d["agent"], d["source"]) == ("error", "network", "codex", "stdin")


def test_classify_in_human_form_names_state_rule_and_line():
    p = run("screen", "classify", "--agent", "aider", "--file", str(CORPUS / "aider/run-shell-command.txt"))
    assert p.returncode == 0
    assert p.stdout.startswith("waiting_input/permission  (aider 0.86.2; rule yes_no_default)")
    assert "Run shell command?" in p.stdout and "> y. Yes" in p.stdout


def test_an_unknown_screen_is_unknown_and_still_exit_0():
    d = json.loads(run("--json", "screen", "classify", "--agent", "mytool", input="hello\nworld\n").stdout)["data"]
    assert (d["state"], d["known_agent"]) == ("unknown", False)


def test_bad_input_is_exit_30_with_a_clear_message(tmp_path: Path):
    for args in (["--file", str(tmp_path / "missing.txt")], ["--agent", "no such/agent", "--file", "x"],
                 ["--bogus"]):
        p = run("--json", "screen", "classify", *args)
        assert p.returncode == 30, (args, p.stdout, p.stderr)
        doc = json.loads(p.stdout)
        assert doc["ok"] is False and doc["error"]["code"] == "invalid_input" and doc["error"]["message"]
        assert "Traceback" not in p.stderr
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * ((1 << 20) + 10))
    p = run("--json", "screen", "classify", "--file", str(big))
    assert p.returncode == 30 and "larger than" in json.loads(p.stdout)["error"]["message"]


def test_the_cli_does_not_import_textual_or_the_recogniser_for_other_commands():
    code = ("import sys; from orch_console.console.cli import orch; "
            "orch.main(['--json', 'screen', 'classify', '--file', sys.argv[1]]); "
            "print('textual' in sys.modules, file=sys.stderr)")
    p = subprocess.run([sys.executable, "-c", code, str(CORPUS / "claude/idle-fresh.txt")], capture_output=True,
                       text=True, timeout=60, env={**os.environ})
    assert p.stderr.strip().endswith("False"), p.stderr
    code = ("import sys; from orch_console.console.cli import orch; orch.build(); "
            "print('orch_console.console.runtime.screens' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "False", p.stdout + p.stderr


def test_classify_an_attempt_that_was_never_launched_is_a_clear_error(cli):
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "t", "--title", "t")
    cli.err("orch", "screen", "classify", "--run", "r", "--task", "t", code="not_found", exit_code=40)
    cli.ok("orch", "dispatch", "--run", "r", "--task", "t", "--execution-mode", "analysis", "--to", "w1")
    cli.err("orch", "screen", "classify", "--run", "r", "--task", "t", code="invalid_state", exit_code=30)
    cli.err("orch", "screen", "classify", "--run", "r", code="invalid_input", exit_code=30)
