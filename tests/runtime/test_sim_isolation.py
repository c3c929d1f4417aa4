"""The simulated worker runs in the attempt's worktree, which is the user's code. A repository
with its own `console/` (a Django app of that name, say) or even its own `orch_console/` package
must not be imported in place of Orch's simulator."""

from __future__ import annotations

import subprocess
from pathlib import Path

from orch_console.console.runtime.watcher import Watcher

from tests.conftest import git_env
from tests.runtime.conftest import Rig, until

HIJACK = "import pathlib; pathlib.Path('HIJACKED').write_text('the user code ran'); raise SystemExit(0)\n"


def test_sim_in_a_repository_with_its_own_console_package_runs_orchs_simulator(rig: Rig) -> None:
    for pkg in ("console", "console/runtime", "orch_console", "orch_console/console",
                "orch_console/console/runtime"):
        (rig.repo / pkg).mkdir(parents=True, exist_ok=True)
        (rig.repo / pkg / "__init__.py").write_text(HIJACK)
    for mod in ("console/sim.py", "console/runtime/sim.py", "orch_console/console/runtime/sim.py"):
        (rig.repo / mod).write_text(HIJACK)
    env = git_env()
    subprocess.run(["git", "-C", str(rig.repo), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(rig.repo), "commit", "-qm", "a project with its own console package"],
                   check=True, env=env)
    rig.run()
    rig.task("t", "progress,done")
    rig.start("t")
    w = Watcher(rig.store.path, rig.run_id)
    try:
        until(lambda: rig.task_status("t") in ("done", "failed"), timeout=60, step=w.tick)
    finally:
        w.close()
    (attempt,) = rig.attempts("t")
    worktree = Path(attempt["worktree_path"])
    assert (worktree / "console" / "sim.py").exists()  # the user's package is there ...
    assert not (worktree / "HIJACKED").exists()  # ... and was never imported
    assert rig.task_status("t") == "done" and attempt["end_reason"] == "succeeded"
