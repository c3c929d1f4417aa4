"""Built-in real-agent profiles, the launch steps that pre-accept trust, and `orch agents`."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

from orch_console.console.runtime import agents, launcher
from tests.conftest import ORCH, make_repo


def test_builtin_profiles_cover_every_agent_with_interactive_and_headless_variants(tmp_path: Path):
    profiles = launcher.load_profiles(str(tmp_path / "coord.db"))
    for name in ("claude", "codex", "gemini", "aider", "opencode"):
        assert profiles[name].runtime == "tmux" and profiles[name].builtin
        assert profiles[f"{name}-headless"].runtime == "process"
        assert agents.agent_of(profiles[name].command) == name
    assert "claude -p" in profiles["claude-headless"].command
    assert profiles["codex-headless"].command.startswith("codex exec")
    assert "--no-daemon" in profiles["codex"].command  # no app-server daemon left behind
    assert "sim" in profiles and "sim-tmux" in profiles


def test_orch_toml_still_overrides_a_builtin_agent_profile(tmp_path: Path):
    (tmp_path / "orch.toml").write_text('[agents.claude]\nenv = { HOME = "/x" }\n'
                                        '[agents.mine]\ncommand = "claude --model opus \\"$(cat {brief_file})\\""\n')
    profiles = launcher.load_profiles(str(tmp_path / "coord.db"))
    assert profiles["claude"].env == {"HOME": "/x"} and profiles["claude"].command == agents.SPECS["claude"].interactive
    assert agents.agent_of(profiles["mine"].command) == "claude"


def test_approval_profiles_let_inbox_through_without_asking(tmp_path: Path):
    import shlex

    for inbox in ("/v/bin/inbox", "/my venv/bin/inbox"):
        cmd = launcher.render_command(agents.SPECS["claude"].approvals, {"brief_file": "/b.md", "inbox": inbox})
        words = shlex.split(cmd)  # what the shell hands to claude
        assert "Bash(inbox:*)" in words and f"Bash({inbox}:*)" in words
    cmd = launcher.render_command(agents.SPECS["codex"].approvals, {"brief_file": "/b.md", "db": "/p/.agents/coord.db"})
    assert '--add-dir "$(dirname /p/.agents/coord.db)"' in cmd  # the database is writable from the sandbox


def fake_bin(tmp_path: Path) -> str:
    """A PATH holding stand-in claude and codex executables (the launch steps only need them found)."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for name in ("claude", "codex"):
        (d / name).write_text("#!/bin/sh\nexit 0\n")
        (d / name).chmod(0o755)
    return f"{d}:/usr/bin:/bin"


def test_claude_trust_is_written_for_the_folder_only_and_keeps_the_rest(tmp_path: Path):
    cfg = tmp_path / "home" / ".claude.json"
    cfg.parent.mkdir()
    original = {"hasCompletedOnboarding": True, "projects": {"/other": {"allowedTools": ["Bash(ls:*)"]}},
                "permissions": {"defaultMode": "default"}}
    cfg.write_text(json.dumps(original))
    folder = tmp_path / "wt"
    folder.mkdir()
    command, done = agents.prepare("claude \"$(cat /b)\"", folder, {"HOME": str(cfg.parent), "PATH": fake_bin(tmp_path)})
    assert command.startswith("export PATH=") and command.endswith('; claude "$(cat /b)"')
    doc = json.loads(cfg.read_text())
    assert doc["projects"][str(folder.resolve())] == {"hasTrustDialogAccepted": True}
    assert doc["projects"]["/other"] == original["projects"]["/other"]
    assert doc["permissions"] == original["permissions"] and doc["hasCompletedOnboarding"] is True
    assert "trusted" in done[-1]
    # idempotent
    agents.prepare("claude x", folder, {"HOME": str(cfg.parent), "PATH": fake_bin(tmp_path)})
    assert json.loads(cfg.read_text()) == doc


def test_claude_config_dir_is_the_agent_home_when_set(tmp_path: Path):
    folder = tmp_path / "wt"
    folder.mkdir()
    agents.prepare("claude x", folder, {"CLAUDE_CONFIG_DIR": str(tmp_path / "cc"), "HOME": str(tmp_path / "h"),
                                        "PATH": fake_bin(tmp_path)})
    assert json.loads((tmp_path / "cc" / ".claude.json").read_text())["projects"][str(folder.resolve())]
    assert not (tmp_path / "h" / ".claude.json").exists()


def test_codex_trust_goes_to_the_repository_root_of_a_worktree(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    wt = tmp_path / "repo" / ".orch" / "worktrees" / "t1"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", "-b", "b1", str(wt)], check=True)
    home = tmp_path / "codex"
    home.mkdir()
    (home / "config.toml").write_text('model = "o3"\napproval_policy = "on-request"\n')
    agents.prepare("codex --no-daemon --yolo x", wt, {"CODEX_HOME": str(home), "PATH": fake_bin(tmp_path)})
    doc = tomllib.loads((home / "config.toml").read_text())
    assert doc["projects"][str(repo.resolve())] == {"trust_level": "trusted"}
    assert doc["model"] == "o3" and doc["approval_policy"] == "on-request"  # nothing else changed
    before = (home / "config.toml").read_text()
    agents.prepare("codex x", wt, {"CODEX_HOME": str(home), "PATH": fake_bin(tmp_path)})
    assert (home / "config.toml").read_text() == before


def test_a_custom_command_is_not_touched():
    assert agents.prepare("my-agent --go", Path("/tmp"), {"PATH": "/usr/bin"}) == ("my-agent --go", [])


def run_orch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ORCH, *args], capture_output=True, text=True, timeout=120, env=env)


def test_orch_agents_names_what_is_missing(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("ORCH_AGENTS_DIR", "ANTHROPIC_API_KEY", "OPENAI_API_KEY")}
    env.update({"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ORCH_DB": str(tmp_path / ".agents" / "coord.db")})
    p = run_orch("--json", "agents", "--no-versions", env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = {r["profile"]: r for r in json.loads(p.stdout)["data"]["profiles"]}
    assert rows["claude"]["binary"] == "" and any("npm install -g @anthropic-ai/claude-code" in m
                                                  for m in rows["claude"]["missing"])
    assert rows["sim"]["missing"] == []
    p = run_orch("--json", "agents", "--profile", "nope", env=env)
    assert p.returncode == 30 and "no agent profile 'nope'" in json.loads(p.stdout)["error"]["message"]


def test_orch_agents_finds_installed_binaries_and_their_versions(tmp_path: Path):
    root = Path(__file__).resolve().parents[2] / ".agents-bin"
    if not (root / "node_modules" / ".bin" / "claude").exists():
        import pytest

        pytest.skip("claude is not installed (scripts/agents installs it into .agents-bin/)")
    env = {**os.environ, "ORCH_AGENTS_DIR": str(root), "HOME": str(tmp_path), "ANTHROPIC_API_KEY": "x",
           "ORCH_DB": str(tmp_path / ".agents" / "coord.db")}
    p = run_orch("--json", "agents", "--profile", "claude", env=env)
    row = json.loads(p.stdout)["data"]["profiles"][0]
    assert row["binary"].endswith("/claude") and row["version"].startswith("2.") and row["missing"] == []
    assert sorted(os.listdir(tmp_path)) == []  # --version ran with a scratch HOME


def test_a_missing_agent_binary_is_exit_30_and_nothing_is_dispatched(tmp_path: Path):
    from tests.conftest import git_env

    repo = make_repo(tmp_path / "repo")
    db = str(tmp_path / ".agents" / "coord.db")
    (tmp_path / ".agents").mkdir()
    env = {k: v for k, v in git_env().items() if k != "ORCH_AGENTS_DIR"}
    env.update({"PATH": str(Path(ORCH).parent) + ":/usr/bin:/bin", "HOME": str(tmp_path / "home")})

    def orch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([ORCH, "--db", db, "--json", *args], capture_output=True, text=True, timeout=60,
                              env=env, cwd=tmp_path)

    assert orch("run", "init", "--run", "r", "--goal", "g").returncode == 0
    assert orch("task", "add", "--run", "r", "--task", "t", "--title", "t").returncode == 0
    p = orch("dispatch", "--run", "r", "--task", "t", "--execution-mode", "code", "--to", "codex",
             "--repo-path", str(repo), "--launch")
    assert p.returncode == 30, p.stdout + p.stderr
    err = json.loads(p.stdout)["error"]
    assert err["code"] == "invalid_input" and "codex not found" in err["message"] and "npm install" in err["message"]
    status = json.loads(orch("status", "--run", "r").stdout)["data"]
    assert [t["status"] for t in status["tasks"]] == ["ready"]  # nothing dispatched
    assert not (tmp_path / "home").exists()  # and nothing written into an agent home
