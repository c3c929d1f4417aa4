"""The layers hold at run time, module by module (the import-linter contracts in pyproject.toml
hold them statically): every headless module imports in a fresh interpreter without Textual or
Rich, and no top-level name of the project but `orch_console` is importable from a user's
directory."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import orch_console.console.cli as cli_pkg
import orch_console.console.runtime as runtime_pkg
import orch_console.store as store_pkg

# Importing these never needs a terminal library: the store, the runtime, the CLIs (Textual only
# for `orch console` and `orch demo`, imported inside their handlers), and the console's reader
# and operations, which run in worker threads.
HEADLESS = sorted(
    [m.name for m in pkgutil.walk_packages(store_pkg.__path__, "orch_console.store.")]
    + [m.name for m in pkgutil.walk_packages(runtime_pkg.__path__, "orch_console.console.runtime.")]
    + [m.name for m in pkgutil.walk_packages(cli_pkg.__path__, "orch_console.console.cli.")]
    + ["orch_console.store", "orch_console.console.runtime", "orch_console.console.cli",
       "orch_console.console.tui.reader", "orch_console.console.tui.ops"])

PROBE = """
import importlib, json, sys
loaded = {}
for name in sys.argv[1:]:
    before = set(sys.modules)
    importlib.import_module(name)
bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))
print(json.dumps(bad))
"""


def test_every_headless_module_imports_without_textual_or_rich(tmp_path: Path) -> None:
    assert len(HEADLESS) > 40, HEADLESS  # the walk found the packages, not an empty path
    for name in HEADLESS:  # one interpreter per module: a module cannot hide behind another's imports
        p = subprocess.run([sys.executable, "-c", PROBE, name], capture_output=True, text=True, cwd=tmp_path)
        assert p.returncode == 0, (name, p.stderr[-1500:])
        assert json.loads(p.stdout) == [], f"{name} pulls in {json.loads(p.stdout)[:5]}"


def test_only_orch_console_is_importable_from_a_users_directory(tmp_path: Path) -> None:
    code = ("import importlib.util, json; print(json.dumps({n: importlib.util.find_spec(n) is not None "
            "for n in ('orch_console', 'store', 'console', 'widgets', 'themes')}))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True)
    found = json.loads(p.stdout)
    assert found.pop("orch_console") is True
    # Another installed distribution could own one of these names; none of them may be ours.
    for name, present in found.items():
        if present:
            origin = subprocess.run([sys.executable, "-c", f"import {name}; print({name}.__file__)"],
                                    capture_output=True, text=True, cwd=tmp_path).stdout
            assert "orch_console" not in origin and str(Path(__file__).parents[2]) not in origin, (name, origin)
