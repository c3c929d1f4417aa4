"""The whole brief with the REAL Claude Code and the REAL Codex in real tmux (issue 12, Tests): the
agent claims its thread through `inbox`, reports progress, asks the leader a blocked question and
waits for the answer in bounded slices (`wait-reply --timeout-seconds 90`, again while it times
out, as the brief says); the leader answers in the console's blocked pane; the agent resumes,
writes the answer into its worktree, commits, and reports done. The scripted model server is the
only stand-in (it plays the model's tool calls); skipped when the binary is absent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orch_console.console.runtime import launcher
from orch_console.console.tui.app import OrchConsole
from tests.agents.model_server import ModelServer, codex_provider_config
from tests.agents.test_real_agents_e2e import need
from tests.conftest import Cli, make_repo
from tests.ui.conftest import wait_until
from tests.ui.test_console_real_agent_approvals import agents_dir, status  # noqa: F401 (agents_dir: a fixture)

QUESTION = "Which greeting should proof.txt hold?"
ANSWER = "hello from the leader"
WAIT = ("until {inbox} --db {db} --json wait-reply --agent {agent} --thread {thread} --timeout-seconds 90 "
        "> {worktree}/../answer-{thread}.json; do :; done")
STEPS = [
    {"bash": "{inbox} --db {db} --json claim --agent {agent} --thread {thread}"},
    {"bash": "{inbox} --db {db} --json update --agent {agent} --thread {thread} --status in_progress "
             "--summary 'reading the task'"},
    {"bash": "{inbox} --db {db} --json update --agent {agent} --thread {thread} --status blocked "
             f"--summary '{QUESTION}'"},
    {"bash": WAIT},
    {"bash": "{inbox} --db {db} --json update --agent {agent} --thread {thread} --status in_progress "
             "--summary 'answered; writing proof.txt'"},
    {"bash": "cd {worktree} && python3 -c \"import json,sys; print(json.load(open(sys.argv[1]))['data']['message']"
             "['body'])\" ../answer-{thread}.json > proof.txt && git add proof.txt && "
             "git -c user.name=worker -c user.email=worker@example.com commit -qm 'proof.txt: the answer'"},
    {"bash": "{inbox} --db {db} --json done --agent {agent} --thread {thread} --summary 'proof.txt committed'"},
    {"text": "Done: the leader's answer is in proof.txt."}]


async def answer_in_console(cli: Cli, att: dict) -> None:
    app = OrchConsole(cli.db, "r1", engine=False)
    async with app.run_test(size=(160, 44)) as pilot:
        await wait_until(pilot, lambda: any(b.get("kind") == "question" for b in app.board.blocked), timeout=150,
                         what="the agent's question in the blocked pane")
        item = next(b for b in app.board.blocked if b.get("kind") == "question")
        assert QUESTION in item["text"]
        await pilot.press("a")
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "answer-input"
        await pilot.press(*ANSWER)
        await pilot.press("enter")
        await wait_until(pilot, lambda: status(cli, att["thread_id"]) == "done", timeout=150,
                         what="the worker's inbox done after the answer")
    wt = Path(att["worktree_path"])
    assert (wt / "proof.txt").read_text() == ANSWER + "\n"
    log = subprocess.run(["git", "-C", str(wt), "log", "--format=%s", "-1"], capture_output=True, text=True)
    assert log.stdout.strip() == "proof.txt: the answer"
    msgs = cli.ok("inbox", "show", "--thread", att["thread_id"])["messages"]
    kinds = [m["kind"] for m in msgs]
    assert kinds.index("question") < kinds.index("answer") < kinds.index("result"), kinds


def dispatch(cli: Cli, repo: Path, agent: str) -> dict:
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "a question answered from the console")
    cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "write the greeting the leader picks")
    return cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", agent,
                  "--repo-path", str(repo), "--launch")["attempt"]


@pytest.mark.slow
@pytest.mark.tmux
async def test_real_claude_code_asks_the_leader_and_commits_the_answer_given_in_the_console(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    need("claude")
    repo = make_repo(tmp_path / "repo")
    home = tmp_path / "claude-home"
    home.mkdir()
    Path(cli.db).parent.mkdir(parents=True, exist_ok=True)
    try:
        with ModelServer([{"match": "Required workflow", "steps": STEPS}]) as srv:
            (Path(cli.db).parent / "orch.toml").write_text(
                "[agents.claude]\n"
                f'env = {{ HOME = "{home}", ANTHROPIC_BASE_URL = "{srv.url}", '
                'ANTHROPIC_API_KEY = "sk-ant-fake-key-for-orch-tests", DISABLE_AUTOUPDATER = "1" }\n')
            att = dispatch(cli, repo, "claude")
            await answer_in_console(cli, att)
    finally:
        launcher.kill_server(cli.db)


@pytest.mark.slow
@pytest.mark.tmux
async def test_real_codex_asks_the_leader_and_commits_the_answer_given_in_the_console(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    need("codex")
    repo = make_repo(tmp_path / "repo")
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    Path(cli.db).parent.mkdir(parents=True, exist_ok=True)
    try:
        with ModelServer([{"match": "Required workflow", "steps": STEPS}]) as srv:
            (codex_home / "config.toml").write_text(codex_provider_config(srv.url))
            (Path(cli.db).parent / "orch.toml").write_text(
                "[agents.codex]\n"
                f'env = {{ HOME = "{tmp_path / "home"}", CODEX_HOME = "{codex_home}", FAKE_API_KEY = "sk-fake" }}\n')
            att = dispatch(cli, repo, "codex")
            await answer_in_console(cli, att)
    finally:
        launcher.kill_server(cli.db)
