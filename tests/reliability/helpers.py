"""Small helpers shared by the reliability tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ORCH, git_env


def fifo_race(tmp_path: Path, argv: list[str], argv2: list[str] | None = None,
              exe: str = ORCH, exe2: str | None = None) -> list[subprocess.CompletedProcess[str]]:
    """Start two real CLI processes that block opening one FIFO, then open it: both exec at once."""
    fifo = tmp_path / f"go-{time.monotonic_ns()}"
    os.mkfifo(fifo)
    gate = "import os, sys; open(sys.argv[1], 'rb').close(); os.execv(sys.argv[2], sys.argv[2:])"
    cmds = [[exe, *argv], [exe2 or exe, *(argv2 if argv2 is not None else argv)]]
    ps = [subprocess.Popen([sys.executable, "-c", gate, str(fifo), *cmd], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=git_env(), cwd=tmp_path) for cmd in cmds]
    time.sleep(0.3)  # by now both are usually blocked in open(): released together below
    # The write end stays open until both have passed their open(): on a loaded machine one may
    # reach it late, and would then wait forever for a writer that had already come and gone.
    with open(fifo, "wb"):
        deadline = time.monotonic() + 60
        while any(p.poll() is None and _in_gate(p.pid) for p in ps) and time.monotonic() < deadline:
            time.sleep(0.005)
    out = []
    for p in ps:
        stdout, stderr = p.communicate(timeout=60)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    fifo.unlink()
    return out


def _in_gate(pid: int) -> bool:
    """Whether the process is still the gate (not yet exec'd into the CLI)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"open(sys.argv[1]" in f.read()
    except OSError:
        return False


# Issue 15 ("Measured"): the soaks CI runs SIGKILL at least 500 processes between them, across
# workers and leaders (test_kill9_soak.py) and dispatch and launch (test_dispatch_kill_soak.py).
# Each soak runs on until it has its share (an outcome, not a rate) and asserts it, with its
# counts per role, so the sum holds whenever both pass.
STORE_SOAK_KILLS = 440  # worker and leader processes killed while writing
STORE_SOAK_PER_ROLE = 40  # of which at least this many of each role
DISPATCH_SOAK_PER_PHASE = 30  # `orch dispatch --launch` killed inside its dispatch, and inside its launch
SOAK_KILLS_TOTAL = 500
assert STORE_SOAK_KILLS + 2 * DISPATCH_SOAK_PER_PHASE >= SOAK_KILLS_TOTAL
