"""Finding and stopping what an agent started, wherever it went.

A launched worker runs with ORCH_THREAD=<its thread id> in its environment, and so does every
process it starts: tool commands, language servers, an agent's background daemon that called
setsid() and left the terminal's process group. Killing the tmux session or the process group
misses those; scanning /proc for the variable does not.
"""

from __future__ import annotations

import os
import signal
import time

MARK = "ORCH_THREAD"


def carrying(thread_id: str) -> list[int]:
    """Pids of live processes whose environment has ORCH_THREAD=thread_id (never this process
    or its ancestors: a leader's command may itself run inside a worker's shell)."""
    if not thread_id:
        return []
    needle = f"{MARK}={thread_id}".encode()
    mine = _ancestors(os.getpid())
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for name in entries:
        if not name.isdigit() or int(name) in mine:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue  # gone, or not ours to read
        if needle in env.split(b"\0") and not _zombie(int(name)):
            found.append(int(name))
    return found


def running(thread_id: str, word: str) -> bool:
    """Whether a process of this thread has `word` among its command-line arguments (for example
    the worker's own `inbox wait-reply`)."""
    target = word.encode()
    for pid in carrying(thread_id):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if target in f.read().split(b"\0"):
                    return True
        except OSError:
            continue
    return False


def terminate(pids: list[int], grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL whatever is still there after grace seconds."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def _ancestors(pid: int) -> set[int]:
    out = {pid}
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                pid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        out.add(pid)
    return out
