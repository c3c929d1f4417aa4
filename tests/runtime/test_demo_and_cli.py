"""The runtime through the CLI: `orch dispatch --launch`, agent profiles, `orch demo --headless`."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from console import launcher
from tests.conftest import ORCH, Cli, git_env
from tests.runtime.conftest import until


@pytest.fixture
def cleanup(db_path: str):
    yield
    from store import Store

    with Store(db_path) as s:
        for a in s.all("SELECT * FROM attempts WHERE runtime<>''"):
            launcher.stop(db_path, dict(a), grace=0.5)
    launcher.kill_server(db_path)


def test_dispatch_launch_starts_the_profile_and_records_the_attempt(cli: Cli, repo: Path, cleanup: None) -> None:
    agents = Path(cli.db).parent / "orch.toml"
    agents.write_text('[agents.echoer]\ncommand = "cat {brief_file} > seen-brief.txt; echo started $ORCH_TASK"\n'
                      'runtime = "process"\nenv = { EXTRA = "1" }\nmax_parallel = 1\n')
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "t1", "--title", "Task one", "--default-to", "echoer")
    data = cli.ok("orch", "dispatch", "--run", "r", "--task", "t1", "--execution-mode", "code",
                  "--repo-path", str(repo), "--launch")
    att = data["attempt"]
    assert att["runtime"] == "process" and att["pid"] and data["launch"]["profile"] == "echoer"
    assert Path(att["brief_path"]).read_text().startswith("Use the inbox CLI")
    seen = Path(att["worktree_path"]) / "seen-brief.txt"
    until(lambda: seen.exists() and "started t1" in Path(att["log_path"]).read_text(), timeout=15)
    assert att["thread_id"] in seen.read_text()


def test_launch_flags_are_validated(cli: Cli, cleanup: None) -> None:
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "t1", "--title", "T", "--default-to", "nobody")
    cli.err("orch", "dispatch", "--run", "r", "--task", "t1", "--execution-mode", "analysis", "--profile", "sim",
            code="invalid_input", exit_code=30)
    err = cli.err("orch", "dispatch", "--run", "r", "--task", "t1", "--execution-mode", "analysis", "--launch",
                  code="invalid_input", exit_code=30)
    assert "no agent profile" in err["message"]


def test_bad_profiles_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "orch.toml").write_text('[agents.x]\nruntime = "docker"\ncommand = "x"\n')
    from store.errors import InvalidInput

    with pytest.raises(InvalidInput, match="runtime must be tmux or process"):
        launcher.load_profiles(str(tmp_path / "coord.db"))


def test_render_command_quotes_every_value() -> None:
    cmd = launcher.render_command('codex exec --yolo "$(cat {brief_file})" {unknown}',
                                  {"brief_file": "/tmp/a b/brief.md"})
    assert cmd == "codex exec --yolo \"$(cat '/tmp/a b/brief.md')\" {unknown}"


def test_tmux_socket_is_private_per_database(tmp_path: Path) -> None:
    a, b = launcher.tmux_socket(str(tmp_path / "a.db")), launcher.tmux_socket(str(tmp_path / "b.db"))
    assert a != b and a.startswith("orch-") and launcher.session_name("r.1", "t:2", 3) == "orch-r_1-t_2-a3"


@pytest.mark.slow
def test_demo_headless_finishes_with_every_task_done_in_under_two_minutes(tmp_path: Path) -> None:
    t0 = time.monotonic()
    p = subprocess.run([ORCH, "demo", "--headless", "--dir", str(tmp_path / "demo")], capture_output=True,
                       text=True, timeout=150, env=git_env())
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert elapsed < 120
    assert "12/12 tasks done" in p.stdout
    rows = re.findall(r"^\| (\S+) \| sim \| (\w+) \| (.+) \|$", p.stdout, re.MULTILINE)
    assert len(rows) == 12 and all(status == "done" for _, status, _ in rows)
    how = {task: attempts for task, _, attempts in rows}
    assert how["cli"] == "a1 failed; a2 succeeded"
    assert how["search"] == "a1 stalled; a2 succeeded"
    assert how["migrations"] == "a1 crashed; a2 succeeded"
    assert "blocked" in p.stdout and "answered" in p.stdout
    # Overlapping paths were serialized: release (docs) never ran beside guide (docs/guide.md).
    from store import Store

    with Store(str(tmp_path / "demo" / ".agents" / "coord.db")) as s:
        spans = {r["task_id"]: (r["started_at"], r["ended_at"]) for r in
                 s.all("SELECT task_id, started_at, ended_at FROM attempts WHERE task_id IN ('guide','release')")}
    assert spans["release"][0] >= spans["guide"][1] or spans["guide"][0] >= spans["release"][1]
    leftover = subprocess.run(["pgrep", "-f", f"console.sim --db {tmp_path}"], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    p = subprocess.run([ORCH, "--json", "demo", "--headless", "--dir", str(tmp_path)], capture_output=True, text=True,
                       timeout=30, env=git_env())
    assert p.returncode == 30 and json.loads(p.stdout)["error"]["code"] == "invalid_input"
    assert (tmp_path / "x").read_text() == "keep me"
