"""Permission requests of the REAL Claude Code and the REAL Codex, in real tmux, answered by the
leader through `orch approve` and handed back through the agents' own PermissionRequest hooks
(orch installs them at launch). The scripted model server is the only stand-in (no network).

One session per agent asks three times: the leader answers the first with "always" (allow, and
always allow `touch` in this run), the second is answered by that rule alone, the third is denied
with a reason; then the worker reports done. The outcomes: the allowed commands ran, the denied one
did not, the agent was told why, and every decision is an event. Skipped with the reason when the
binary is absent (scripts/agents installs them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orch_console.console.runtime import launcher
from tests.agents.model_server import ModelServer, codex_provider_config
from tests.agents.test_real_agents_e2e import need, thread_status, wait_for
from tests.conftest import Cli, make_repo

ROOT = Path(__file__).resolve().parents[2]
REASON = "keep the README: the leader says no"


def script(escalated: bool) -> list[dict]:
    esc = {"escalated": True, "justification": "orch e2e asks"} if escalated else {}
    return [{"match": "Required workflow", "steps": [
        {"bash": "{inbox} --db {db} --json claim --agent {agent} --thread {thread}"},
        {"bash": "{inbox} --db {db} --json update --agent {agent} --thread {thread} --status in_progress "
                 "--summary 'asking for permissions'"},
        {"bash": "touch {worktree}/allowed-1.txt", **esc},
        {"bash": "touch {worktree}/allowed-2.txt", **esc},
        {"bash": "rm -f {worktree}/README.md", **esc},
        {"bash": "{inbox} --db {db} --json done --agent {agent} --thread {thread} --summary 'asked three times'"},
        {"text": "Done: two touches allowed, the rm denied."}]}]


@pytest.fixture(autouse=True)
def agents_dir(monkeypatch):
    monkeypatch.setenv("ORCH_AGENTS_DIR", os.environ.get("ORCH_AGENTS_DIR") or str(ROOT / ".agents-bin"))


@pytest.fixture
def orch_env(tmp_path: Path):
    db = str(tmp_path / ".agents" / "coord.db")
    Path(db).parent.mkdir()
    cli = Cli(db, tmp_path)
    yield cli, tmp_path
    launcher.kill_server(db)


def pending(cli: Cli) -> list[dict]:
    return cli.ok("orch", "approvals", "--run", "r1")["approvals"]


def drive(cli: Cli, att: dict, srv: ModelServer) -> None:
    """The leader's side: always, (the rule answers the second), deny with a reason."""
    def screen() -> str:
        return launcher.capture(cli.db, att)

    first = wait_for(lambda: pending(cli), 150, "the first permission request", screen)[0]
    assert first["tool"] == "Bash" and first["subject"].startswith("touch ") and first["subject"].endswith(
        "allowed-1.txt"), first
    assert [o["decision"] for o in first["options"]] == ["allow", "always", "deny"]
    # the worker's own inbox commands before it never asked
    assert thread_status(cli, att["thread_id"]) == "in_progress"
    # the watcher reports it at once from the hook (no screen stillness needed), and never nudges it
    from orch_console.console.runtime.watcher import Watcher

    w = Watcher(cli.db, "r1")
    try:
        res = w.tick(force_liveness=True)
    finally:
        w.close()
    assert any("needs attention" in x and "permission request" in x for x in res.actions), res.actions
    assert cli.ok("orch", "status", "--run", "r1")["tasks"][0]["latest_attempt"]["liveness"] == "waiting_input"
    out = cli.ok("orch", "approve", "--run", "r1", "--task", "t1", "--decision", "always")
    assert out["delivered"] == "hook" and out["rule"]["pattern"] == "touch"

    third = wait_for(lambda: [a for a in pending(cli) if "README" in a["subject"]], 150,
                     "the rm request (the second touch is answered by the rule)", screen)[0]
    assert (Path(att["worktree_path"]) / "allowed-2.txt").exists()
    out = cli.ok("orch", "approve", "--run", "r1", "--task", "t1", "--decision", "deny", "--reason", REASON)
    assert out["approval"]["approval_id"] == third["approval_id"] and out["delivered"] == "hook"

    wait_for(lambda: thread_status(cli, att["thread_id"]) == "done", 150, "the worker's inbox done", screen)
    wt = Path(att["worktree_path"])
    assert (wt / "allowed-1.txt").exists() and (wt / "allowed-2.txt").exists()
    assert (wt / "README.md").read_text() == "scratch repo\n"  # the denied rm did not run
    # the agent was told why (the reason is in what it sent the model next)
    assert any(REASON in json.dumps(r["body"]) for r in srv.requests if r["body"])
    decided = cli.ok("orch", "approvals", "--run", "r1", "--status", "decided")["approvals"]
    assert [(a["decision"], a["decided_by"]) for a in decided] == [("always", "leader"), ("allow", "rule"),
                                                                   ("deny", "leader")]
    assert all(a["delivered_at"] for a in decided)


def events(cli: Cli) -> list[str]:
    from orch_console.store import Store

    with Store(cli.db) as store:
        return [r[0] for r in store.all("SELECT event_type FROM events WHERE event_type LIKE 'approval_%' OR "
                                        "event_type='attempt_hook' ORDER BY event_id")]


@pytest.mark.slow
@pytest.mark.tmux
def test_real_claude_code_permission_requests_answered_through_its_hook(orch_env):
    need("claude")
    cli, tmp = orch_env
    repo = make_repo(tmp / "repo")
    home = tmp / "claude-home"
    home.mkdir()
    key = "sk-ant-fake-key-for-orch-tests"
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True,
                                                   "customApiKeyResponses": {"approved": [key[-20:]], "rejected": []}}))
    with ModelServer(script(escalated=False)) as srv:
        (tmp / ".agents" / "orch.toml").write_text(
            "[agents.claude-approvals]\n"
            f'env = {{ HOME = "{home}", ANTHROPIC_BASE_URL = "{srv.url}", ANTHROPIC_API_KEY = "{key}", '
            'DISABLE_AUTOUPDATER = "1" }\n')
        cli.ok("orch", "run", "init", "--run", "r1", "--goal", "approvals through hooks")
        cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "ask three times")
        out = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "claude",
                     "--repo-path", str(repo), "--launch", "--profile", "claude-approvals")
        att = out["attempt"]
        wt = Path(att["worktree_path"])
        settings = json.loads((wt / ".claude" / "settings.local.json").read_text())
        assert "PermissionRequest" in settings["hooks"] and any("claude hooks" in n for n in out["launch"]["hooks"])
        drive(cli, att, srv)
        # the hooks file never shows up as a change to commit
        import subprocess

        assert ".claude" not in subprocess.run(["git", "-C", str(wt), "status", "--porcelain"], capture_output=True,
                                               text=True).stdout
    kinds = events(cli)
    assert kinds.count("approval_requested") == 2 and kinds.count("approval_decided") == 3
    assert "approval_rule_added" in kinds and "attempt_hook" in kinds


@pytest.mark.slow
@pytest.mark.tmux
def test_real_codex_permission_requests_answered_through_its_hook(orch_env):
    need("codex")
    cli, tmp = orch_env
    repo = make_repo(tmp / "repo")
    codex_home = tmp / "codex-home"
    codex_home.mkdir()
    with ModelServer(script(escalated=True)) as srv:
        (codex_home / "config.toml").write_text(codex_provider_config(srv.url))
        before = (codex_home / "config.toml").read_text()
        (tmp / ".agents" / "orch.toml").write_text(
            "[agents.codex-approvals]\n"
            f'env = {{ HOME = "{tmp / "home"}", CODEX_HOME = "{codex_home}", FAKE_API_KEY = "sk-fake" }}\n')
        cli.ok("orch", "run", "init", "--run", "r1", "--goal", "approvals through hooks")
        cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "ask three times")
        out = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "codex",
                     "--repo-path", str(repo), "--launch", "--profile", "codex-approvals")
        att = out["attempt"]
        assert "hooks.PermissionRequest=" in out["launch"]["command"]
        drive(cli, att, srv)
        # the hooks were trusted on the command line: no review dialog, and no hook trust written to
        # the user's config (only the trust of the repository, by the launch step)
        assert "hooks" not in (codex_home / "config.toml").read_text().replace(before, "")
    kinds = events(cli)
    assert kinds.count("approval_requested") == 2 and kinds.count("approval_decided") == 3


SHORT = [{"match": "Required workflow", "steps": [
    {"bash": "{inbox} --db {db} --json claim --agent {agent} --thread {thread}"},
    {"bash": "{inbox} --db {db} --json update --agent {agent} --thread {thread} --status in_progress "
             "--summary 'asking once'"},
    {"bash": "touch {worktree}/allowed-1.txt"},
    {"bash": "{inbox} --db {db} --json done --agent {agent} --thread {thread} --summary 'asked once'"},
    {"text": "Done."}]}]


def answer_on_screen(cli: Cli, att: dict, agent: str) -> None:
    """No hook waits: `orch approve` types the menu's key into the pane and checks it went away."""
    from orch_console.console.runtime import hooks, screens

    def screen() -> str:
        return launcher.capture(cli.db, att)

    wait_for(lambda: screens.classify(screen(), agent).state == "waiting_input", 150, "the permission menu", screen)
    out = cli.ok("orch", "approve", "--run", "r1", "--task", "t1", "--decision", "allow")
    assert out["delivered"] == "keys", out
    assert out["approval"]["decision"] == "allow"
    wait_for(lambda: thread_status(cli, att["thread_id"]) == "done", 150, "done after the typed approval", screen)
    assert (Path(att["worktree_path"]) / "allowed-1.txt").exists()
    assert not hooks.menu_shown(screen())


@pytest.mark.slow
@pytest.mark.tmux
def test_real_claude_code_hook_gives_up_and_orch_approve_types_the_key(orch_env):
    """The hook waits 2 s only (ORCH_APPROVAL_WAIT_SECONDS): the request expires, Claude Code asks on
    its own screen, and `orch approve` answers there."""
    need("claude")
    cli, tmp = orch_env
    repo = make_repo(tmp / "repo")
    home = tmp / "claude-home"
    home.mkdir()
    key = "sk-ant-fake-key-for-orch-tests"
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True,
                                                   "customApiKeyResponses": {"approved": [key[-20:]], "rejected": []}}))
    with ModelServer(SHORT) as srv:
        (tmp / ".agents" / "orch.toml").write_text(
            "[agents.claude-approvals]\n"
            f'env = {{ HOME = "{home}", ANTHROPIC_BASE_URL = "{srv.url}", ANTHROPIC_API_KEY = "{key}", '
            'DISABLE_AUTOUPDATER = "1", ORCH_APPROVAL_WAIT_SECONDS = "2" }\n')
        cli.ok("orch", "run", "init", "--run", "r1", "--goal", "approvals on screen")
        cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "ask once")
        att = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "claude",
                     "--repo-path", str(repo), "--launch", "--profile", "claude-approvals")["attempt"]
        wait_for(lambda: cli.ok("orch", "approvals", "--run", "r1", "--status", "expired")["approvals"], 150,
                 "the hook to give up", lambda: launcher.capture(cli.db, att))
        answer_on_screen(cli, att, "claude")
    kinds = events(cli)
    assert "approval_expired" in kinds and "approval_keys_typed" in kinds


@pytest.mark.slow
@pytest.mark.tmux
def test_real_codex_without_hooks_orch_approve_types_the_key(orch_env):
    need("codex")
    cli, tmp = orch_env
    repo = make_repo(tmp / "repo")
    codex_home = tmp / "codex-home"
    codex_home.mkdir()
    steps = [dict(s) for s in SHORT[0]["steps"]]
    steps[2].update({"escalated": True, "justification": "orch e2e asks"})
    with ModelServer([{"match": "Required workflow", "steps": steps}]) as srv:
        (codex_home / "config.toml").write_text(codex_provider_config(srv.url))
        (tmp / ".agents" / "orch.toml").write_text(
            "[agents.codex-approvals]\n"
            f'env = {{ HOME = "{tmp / "home"}", CODEX_HOME = "{codex_home}", FAKE_API_KEY = "sk-fake", '
            'ORCH_HOOKS = "0" }\n')
        cli.ok("orch", "run", "init", "--run", "r1", "--goal", "approvals on screen")
        cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "ask once")
        out = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "codex",
                     "--repo-path", str(repo), "--launch", "--profile", "codex-approvals")
        assert "hooks." not in out["launch"]["command"]
        answer_on_screen(cli, out["attempt"], "codex")
    assert "approval_keys_typed" in events(cli)


@pytest.mark.slow
@pytest.mark.tmux
def test_real_claude_code_without_hooks_denied_by_keys_hears_the_reason(orch_env):
    """No hook (ORCH_HOOKS=0): `orch approve --decision deny --reason R` picks the menu's "No", the
    command does not run, and R reaches the agent as its next message (it then reports done)."""
    need("claude")
    cli, tmp = orch_env
    repo = make_repo(tmp / "repo")
    home = tmp / "claude-home"
    home.mkdir()
    key = "sk-ant-fake-key-for-orch-tests"
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True,
                                                   "customApiKeyResponses": {"approved": [key[-20:]], "rejected": []}}))
    steps = [dict(s) for s in SHORT[0]["steps"]]
    steps[2] = {"bash": "rm -f {worktree}/README.md"}
    reason = "Leave the README alone and report done"
    with ModelServer([{"match": "Required workflow", "steps": steps}]) as srv:
        (tmp / ".agents" / "orch.toml").write_text(
            "[agents.claude-approvals]\n"
            f'env = {{ HOME = "{home}", ANTHROPIC_BASE_URL = "{srv.url}", ANTHROPIC_API_KEY = "{key}", '
            'DISABLE_AUTOUPDATER = "1", ORCH_HOOKS = "0" }\n')
        cli.ok("orch", "run", "init", "--run", "r1", "--goal", "deny by keys")
        cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "ask once")
        att = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "claude",
                     "--repo-path", str(repo), "--launch", "--profile", "claude-approvals")["attempt"]
        inbox = str(Path(os.environ.get("VIRTUAL_ENV", "") or ROOT / ".venv") / "bin" / "inbox")
        srv.set_script([{"match": reason, "steps": [
            {"bash": f"{inbox} --db {cli.db} --json done --agent claude --thread {att['thread_id']} "
                     "--summary 'told to leave the README'"}, {"text": "Reported done."}]},
                        {"match": "Required workflow", "steps": steps}])
        from orch_console.console.runtime import screens

        def screen() -> str:
            return launcher.capture(cli.db, att)

        wait_for(lambda: screens.classify(screen(), "claude").state == "waiting_input", 150, "the menu", screen)
        out = cli.ok("orch", "approve", "--run", "r1", "--task", "t1", "--decision", "deny", "--reason", reason)
        assert out["delivered"] == "keys", out
        wait_for(lambda: thread_status(cli, att["thread_id"]) == "done", 150, "done after the reason", screen)
        assert (Path(att["worktree_path"]) / "README.md").exists()
