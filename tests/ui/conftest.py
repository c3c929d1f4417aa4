"""Console test helpers: a pinned sample run (built once, copied per test), waiting on the app."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

FIXED_NOW = 1_767_226_500.0  # a fixed "now" for ages, relative to the pinned sample timestamps


@pytest.fixture(scope="session")
def sample_db_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from orch_console.console.tui.sample import build_sample_run

    path = tmp_path_factory.mktemp("sample") / "coord.db"
    build_sample_run(str(path))
    # One file, no -wal beside it, so copies are complete.
    import sqlite3

    c = sqlite3.connect(path)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    return path


@pytest.fixture
def sample_db(sample_db_master: Path, tmp_path: Path) -> str:
    dst = tmp_path / "coord.db"
    shutil.copy(sample_db_master, dst)
    return str(dst)


@pytest.fixture(autouse=True)
def _no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read the developer's own config or theme."""
    monkeypatch.setenv("ORCH_CONSOLE_CONFIG", str(tmp_path / "no-config.toml"))
    monkeypatch.delenv("ORCH_THEME", raising=False)


async def wait_until(pilot, cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
    """Let messages drain and short-lived workers finish (only for apps without live workers)."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await asyncio.sleep(0)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests in this folder on a fresh asyncio loop (no pytest-asyncio needed)."""
    import inspect

    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {a: pyfuncitem.funcargs[a] for a in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True
