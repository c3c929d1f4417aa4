"""The REAL Claude Code and the REAL Codex, in real tmux, ask for a permission; the leader answers
it in the console's blocked pane (the answer box, `allow`), the answer goes back through the
agent's PermissionRequest hook, and the agent goes on: the command ran and the worker reports
done. The scripted model server is the only stand-in. Skipped when the binary is absent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orch_console.console.runtime import launcher
from orch_console.console.tui.app import OrchConsole
from tests.agents.model_server import ModelServer, codex_provider_config
from tests.agents.test_real_agents_e2e import need
from tests.conftest import Cli, make_repo
from tests.ui.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
STEPS = [
    {"bash": "{inbox} --db {db} --json claim --agent {agent} --thread {thread}"},
    {"bash": "{inbox} --db {db} --json update --agent {agent} --thread {thread} --status in_progress "
             "--summary 'asking once'"},
    {"bash": "touch {worktree}/allowed-from-the-console.txt"},
    {"bash": "{inbox} --db {db} --json done --agent {agent} --thread {thread} --summary 'asked once'"},
    {"text": "Done."}]


@pytest.fixture(autouse=True)
def agents_dir(monkeypatch):
    monkeypatch.setenv("ORCH_AGENTS_DIR", os.environ.get("ORCH_AGENTS_DIR") or str(ROOT / ".agents-bin"))


def status(cli: Cli, thread: str) -> str:
    return cli.ok("inbox", "show", "--thread", thread)["thread"]["status"]


async def answer_in_console(cli: Cli, att: dict) -> None:
    app = OrchConsole(cli.db, "r1", engine=False)
    async with app.run_test(size=(160, 44)) as pilot:
        await wait_until(pilot, lambda: any(b.get("kind") == "approval" for b in app.board.blocked), timeout=150,
                         what="the agent's permission request in the blocked pane")
        item = next(b for b in app.board.blocked if b.get("kind") == "approval")
        assert "allowed-from-the-console.txt" in item["text"]
        await pilot.press("a")
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "answer-input"
        await pilot.press(*"allow")
        await pilot.press("enter")
        await wait_until(pilot, lambda: status(cli, att["thread_id"]) == "done", timeout=150,
                         what="the worker's inbox done after the answer")
    assert (Path(att["worktree_path"]) / "allowed-from-the-console.txt").exists()
    decided = cli.ok("orch", "approvals", "--run", "r1", "--status", "decided")["approvals"]
    assert [(a["decision"], a["decided_by"]) for a in decided][-1][0] == "allow"


def dispatch(cli: Cli, repo: Path, agent: str, profile: str) -> dict:
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "answered from the console")
    cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "ask once")
    return cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", agent,
                  "--repo-path", str(repo), "--launch", "--profile", profile)["attempt"]


@pytest.mark.slow
@pytest.mark.tmux
async def test_real_claude_code_permission_answered_in_the_console(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    need("claude")
    repo = make_repo(tmp_path / "repo")
    home = tmp_path / "claude-home"
    home.mkdir()
    key = "sk-ant-fake-key-for-orch-tests"
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True,
                                                   "customApiKeyResponses": {"approved": [key[-20:]], "rejected": []}}))
    Path(cli.db).parent.mkdir(parents=True, exist_ok=True)
    try:
        with ModelServer([{"match": "Required workflow", "steps": STEPS}]) as srv:
            (Path(cli.db).parent / "orch.toml").write_text(
                "[agents.claude-approvals]\n"
                f'env = {{ HOME = "{home}", ANTHROPIC_BASE_URL = "{srv.url}", ANTHROPIC_API_KEY = "{key}", '
                'DISABLE_AUTOUPDATER = "1" }\n')
            att = dispatch(cli, repo, "claude", "claude-approvals")
            await answer_in_console(cli, att)
    finally:
        launcher.kill_server(cli.db)


@pytest.mark.slow
@pytest.mark.tmux
async def test_real_codex_permission_answered_in_the_console(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    need("codex")
    repo = make_repo(tmp_path / "repo")
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    steps = [dict(s) for s in STEPS]
    steps[2].update({"escalated": True, "justification": "orch e2e asks"})
    Path(cli.db).parent.mkdir(parents=True, exist_ok=True)
    try:
        with ModelServer([{"match": "Required workflow", "steps": steps}]) as srv:
            (codex_home / "config.toml").write_text(codex_provider_config(srv.url))
            (Path(cli.db).parent / "orch.toml").write_text(
                "[agents.codex-approvals]\n"
                f'env = {{ HOME = "{tmp_path / "home"}", CODEX_HOME = "{codex_home}", FAKE_API_KEY = "sk-fake" }}\n')
            att = dispatch(cli, repo, "codex", "codex-approvals")
            await answer_in_console(cli, att)
    finally:
        launcher.kill_server(cli.db)
