"""The verification checks the watcher runs: each in a daemon thread on its own connection, its
run claimed under an action key (store/runtime.py claim_check), so no check runs twice at once.

The registry of running checks is process-wide, not per Watcher: the console's engine and another
Watcher in the same process see each other's runs, and a claim whose runner died without a result
(its watcher was killed) can be told from one still running and taken over.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from orch_console.store import checks, verify
from orch_console.store import runtime as rt
from orch_console.store.db import Store
from orch_console.store.errors import OrchError
from orch_console.store.states import CheckStatus
from orch_console.store.validate import parse_ts

from orch_console.console.runtime import launcher

STALE_CHECK_GRACE = 60.0   # a claim held this long past its timeout by a live pid is taken over

# claim key -> the thread running that check in this process
_RUNNING: dict[str, threading.Thread] = {}
_LOCK = threading.Lock()


def start(store: Store, db_path: str, *, run_id: str, task_id: str, attempt_no: int, name: str, command: str,
          timeout: float) -> int | None:
    """Claim one check and run it in the background, unless a live runner holds it (here or in
    another watcher: one check per task at a time). Returns the run's generation (2 and up: an
    earlier run died without a result), or None when nothing was started."""
    claims = rt.check_claims(store, run_id, task_id, attempt_no, name)
    if claims and not claim_dead(claims[-1], timeout):
        return None
    generation = len(claims) + 1
    key = rt.check_key(run_id, task_id, attempt_no, name, generation)
    t = threading.Thread(target=_run, args=(db_path, run_id, task_id, attempt_no, name, timeout, key),
                         name=f"orch-check-{task_id}-{name}", daemon=True)
    with _LOCK:  # registered before the claim commits: no other pass here sees it ownerless
        _RUNNING[key] = t
    claimed = None
    try:
        claimed = rt.claim_check(store, run_id=run_id, task_id=task_id, attempt_no=attempt_no, name=name,
                                 command=command, timeout=timeout, generation=generation)
    finally:
        if claimed is None:
            with _LOCK:
                _RUNNING.pop(key, None)
    if claimed is None:
        return None
    t.start()
    return generation


def claim_dead(claim: dict[str, Any], timeout: float) -> bool:
    """Did the run holding this claim die without recording a result?"""
    with _LOCK:
        t = _RUNNING.get(claim["action_key"])
    if t is not None and (t.ident is None or t.is_alive()):
        return False  # starting or running in this process
    pid = claim["owner_pid"]
    if not pid or pid == os.getpid():
        return True  # ours, and no thread runs it any more
    if not launcher.pid_alive(pid):
        return True
    return time.time() - parse_ts(claim["created_at"]) > timeout + STALE_CHECK_GRACE


def _run(db_path: str, run_id: str, task_id: str, attempt_no: int, name: str, timeout: float, key: str) -> None:
    """One check, in its own thread and on its own connection; a check that cannot run is
    recorded as failed (with why), never left pending."""
    store = None
    try:
        store = Store(db_path)
        try:
            checks.verify_run(store, run_id=run_id, task_id=task_id, timeout=timeout, only_pending=True,
                              names=[name], attempt_no=attempt_no)
        except Exception as exc:  # noqa: BLE001 - anything that stops the check is its result
            why = exc.message if isinstance(exc, OrchError) else f"{type(exc).__name__}: {exc}"
            try:
                latest = rt.get_attempt(store, run_id, task_id)
                if latest is not None and latest["attempt_no"] == attempt_no:
                    verify.verify_record(store, run_id=run_id, task_id=task_id, name=name,
                                         status=CheckStatus.FAILED, summary=f"could not run: {why}"[:500],
                                         output=why)
            except Exception:  # noqa: BLE001 - the database itself is gone: the claim goes stale
                pass
    finally:
        if store is not None:
            store.close()
        with _LOCK:
            _RUNNING.pop(key, None)
