"""Issue 15, the lows: L2 (profile placeholders inside quotes), L4 (C1 controls in the JSON
report), L8 (a missing database is not created by reads), L9 (--workspace-root validated, .agents/
kept out of git)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from orch_console.console.runtime import launcher
from orch_console.store.errors import InvalidInput
from tests.conftest import Cli, db_snapshot, git_env


# -- L4 ------------------------------------------------------------------------------------------
def test_l4_json_report_has_no_raw_c1_controls(cli: Cli) -> None:
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "T1", "--title", "t", "--default-to", "w")
    cli.ok("orch", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "analysis")
    th = cli.ok("orch", "status", "--run", "r")["tasks"][0]["latest_attempt"]["thread_id"]
    cli.ok("inbox", "--agent", "w", "claim", "--thread", th)
    cli.ok("inbox", "--agent", "w", "fail", "--thread", th, "--summary", "x\u009b2J\u009d0;TITLE\u009c y\x1b[31m")
    p = cli.orch("report", "--run", "r", "--format", "json", json_out=False)
    assert p.returncode == 0
    assert not any(0x80 <= ord(ch) <= 0x9f or ch == "\x1b" for ch in p.stdout)
    assert json.loads(p.stdout)["run"]["run_id"] == "r"


# -- L2 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ['echo "{cwd}"', "echo '{brief_file}'", 'sh -c "cat {brief_file}"',
                                     'x="a {db}"'])
def test_l2_placeholders_inside_quotes_are_refused(tmp_path: Path, command: str) -> None:
    (tmp_path / "orch.toml").write_text(f"[agents.quoted]\ncommand = {json.dumps(command)}\n")
    with pytest.raises(InvalidInput, match="quote"):
        launcher.load_profiles(str(tmp_path / "coord.db"))


@pytest.mark.parametrize("command", ['codex exec --yolo "$(cat {brief_file})"', "cd {cwd} && run {brief_file}",
                                     'claude -p "$(cat {brief_file})" --cwd {cwd}', "echo `cat {brief_file}`",
                                     'echo "literal {notaplaceholder}"', launcher.SIM_COMMAND])
def test_l2_placeholders_in_safe_places_are_accepted(tmp_path: Path, command: str) -> None:
    (tmp_path / "orch.toml").write_text(f"[agents.ok]\ncommand = {json.dumps(command)}\n")
    assert launcher.load_profiles(str(tmp_path / "coord.db"))["ok"].command == command


# -- L8 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [("orch", "status", "--run", "r"), ("orch", "run", "list"),
                                  ("inbox", "--agent", "w", "fetch"), ("inbox", "list"),
                                  ("orch", "report", "--run", "r", "--format", "md")])
def test_l8_reads_do_not_create_a_missing_database(tmp_path: Path, args: tuple[str, ...]) -> None:
    db = tmp_path / "typo.db"
    c = Cli(str(db), tmp_path)
    c.err(args[0], *args[1:], code="not_found", exit_code=40)
    assert not db.exists() and not list(tmp_path.glob("typo.db*"))


def test_l8_init_commands_still_create_the_database(tmp_path: Path) -> None:
    c = Cli(str(tmp_path / "new.db"), tmp_path)
    c.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    c2 = Cli(str(tmp_path / "new2.db"), tmp_path)
    c2.ok("inbox", "init")
    assert (tmp_path / "new.db").exists() and (tmp_path / "new2.db").exists()


# -- L9 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("root", ["src", ".git", "..", "."])
def test_l9_workspace_root_inside_the_tracked_tree_or_git_dir_is_refused(cli: Cli, repo: Path, root: str) -> None:
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("print('tracked')\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True, env=git_env())
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "src"], check=True, env=git_env())
    cli.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    cli.ok("orch", "task", "add", "--run", "r", "--task", "T1", "--title", "t", "--default-to", "w")
    before = db_snapshot(cli.db)
    c = Cli(cli.db, repo)   # relative roots resolve against the repository's checkout
    if root == "..":
        # outside the repository: allowed, but stored normalised (no ..)
        d = c.ok("orch", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "code", "--repo-path",
                 str(repo), "--workspace-root", root)
        assert ".." not in d["attempt"]["worktree_path"]
        assert Path(d["attempt"]["worktree_path"]).resolve() == (repo.parent / "r" / "T1" / "a1").resolve()
        return
    c.err("orch", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "code", "--repo-path", str(repo),
          "--workspace-root", root, code="invalid_input", exit_code=30)
    assert db_snapshot(cli.db) == before
    assert "orch/r/T1/a1" not in subprocess.run(["git", "-C", str(repo), "branch"], capture_output=True, text=True,
                                                env=git_env()).stdout


def test_l9_agents_dir_inside_the_repo_is_excluded_from_git(repo: Path) -> None:
    agents = repo / ".agents"
    agents.mkdir()
    c = Cli(str(agents / "coord.db"), repo)
    c.ok("orch", "run", "init", "--run", "r", "--goal", "g")
    c.ok("orch", "task", "add", "--run", "r", "--task", "T1", "--title", "t", "--default-to", "w")
    c.ok("orch", "dispatch", "--run", "r", "--task", "T1", "--execution-mode", "code", "--repo-path", str(repo))
    st = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=all"],
                        capture_output=True, text=True, env=git_env()).stdout
    assert ".agents" not in st and "coord.db" not in st
