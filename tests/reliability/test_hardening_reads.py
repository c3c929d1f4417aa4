"""Issue 15, M12, L5, L6, L7: every file orch reads from a path is capped (devices and pipes
included), a FIFO with no writer never hangs, errors name the flag given, and hostile JSON is
invalid_input, not internal_error. Each child runs under a memory limit, so a regression fails
with MemoryError instead of taking the machine down."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

import pytest

from tests.conftest import INBOX, ORCH, Cli, db_snapshot, git_env


def _limited() -> None:
    lim = 700 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))


def run_capped(cli: Cli, exe: str, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([exe, "--db", cli.db, "--json", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cli.cwd, env=git_env() | {"ORCH_PIPE_WAIT_SECONDS": "1"},
                          preexec_fn=_limited)


def expect_invalid(p: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert p.returncode == 30, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    doc = json.loads(p.stdout)
    assert doc["ok"] is False and doc["error"]["code"] == "invalid_input", doc
    for n in needles:
        assert n in doc["error"]["message"], doc["error"]["message"]
    return doc["error"]["message"]


@pytest.fixture
def run_r(cli: Cli) -> Cli:
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "T1", "--title", "t", "--default-to", "w")
    return cli


@pytest.mark.parametrize("args", [
    ("brief", "--dispatch-json", "/dev/zero"),
    ("import", "manifest", "/dev/zero", "--run", "r"),
    ("import", "gh-issues", "/dev/zero", "--run", "r"),
])
def test_m12_device_reads_are_capped(run_r: Cli, args: tuple[str, ...]) -> None:
    before = db_snapshot(run_r.db)
    expect_invalid(run_capped(run_r, ORCH, *args), "/dev/zero")
    assert db_snapshot(run_r.db) == before


@pytest.mark.parametrize("args", [
    ("brief", "--dispatch-json", "FIFO"),
    ("import", "manifest", "FIFO", "--run", "r"),
    ("task", "add", "--run", "r", "--task", "T9", "--title", "t", "--spec-file", "FIFO"),
])
def test_l6_a_fifo_with_no_writer_never_hangs(run_r: Cli, tmp_path: Path, args: tuple[str, ...]) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    before = db_snapshot(run_r.db)
    p = run_capped(run_r, ORCH, *(str(fifo) if a == "FIFO" else a for a in args), timeout=15)
    expect_invalid(p)
    assert db_snapshot(run_r.db) == before


def test_l6_body_file_fifo_with_no_writer_never_hangs(run_r: Cli, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    run_r.ok("orch", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "analysis")
    st = run_r.ok("orch", "status", "--run", "r")
    th = st["tasks"][0]["latest_attempt"]["thread_id"]
    run_r.ok("inbox", "--agent", "w", "claim", "--thread", th)
    before = db_snapshot(run_r.db)
    p = run_capped(run_r, INBOX, "--agent", "w", "update", "--thread", th, "--status", "in_progress",
                   "--summary", "s", "--body-file", str(fifo), timeout=15)
    expect_invalid(p, "--body-file")
    assert db_snapshot(run_r.db) == before


def test_body_file_from_a_pipe_with_a_writer_still_works(run_r: Cli) -> None:
    run_r.ok("orch", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "analysis")
    th = run_r.ok("orch", "status", "--run", "r")["tasks"][0]["latest_attempt"]["thread_id"]
    run_r.ok("inbox", "--agent", "w", "claim", "--thread", th)
    p = run_r.inbox("--agent", "w", "update", "--thread", th, "--status", "in_progress", "--summary", "s",
                    "--body-file", "/dev/stdin", input="piped body\n")
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["data"]["message"]["body"] == "piped body\n"


@pytest.mark.parametrize("target", ["/dev/zero", "DIR", "BIG"])
def test_l5_spec_file_errors_name_spec_file(run_r: Cli, tmp_path: Path, target: str) -> None:
    if target == "DIR":
        target = str(tmp_path)
    elif target == "BIG":
        big = tmp_path / "big.md"
        big.write_bytes(b"x" * (1024 * 1024 + 10))
        target = str(big)
    msg = expect_invalid(run_capped(run_r, ORCH, "task", "add", "--run", "r", "--task", "T9", "--title", "t",
                                    "--spec-file", target), "--spec-file")
    assert "--body-file" not in msg


def test_l7_deep_json_is_invalid_input(run_r: Cli, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    for args in (("brief", "--dispatch-json", str(deep)), ("import", "manifest", str(deep), "--run", "r"),
                 ("import", "gh-issues", str(deep), "--run", "r")):
        expect_invalid(run_capped(run_r, ORCH, *args))


@pytest.mark.parametrize("ref", ["HEAD:README.md", "HEAD@{1000}", "HEAD~1000"])
def test_l7_odd_base_refs_are_invalid_input(run_r: Cli, repo: Path, ref: str) -> None:
    before = db_snapshot(run_r.db)
    expect_invalid(run_capped(run_r, ORCH, "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "code",
                              "--repo-path", str(repo), "--base-ref", ref), ref)
    assert db_snapshot(run_r.db) == before
