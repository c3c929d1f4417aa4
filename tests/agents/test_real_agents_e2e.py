"""End to end with the REAL agents in tmux, launched by `orch dispatch --launch`, driven by the
scripted model server (the only stand-in: the real APIs cannot be reached). Slow; skipped with
the reason when the binary is absent (scripts/agents installs them)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from orch_console.console.runtime import agents, launcher, screens
from tests.agents.model_server import ModelServer, codex_provider_config
from tests.conftest import Cli, make_repo

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def agents_dir(monkeypatch):
    """Where scripts/agents installs the agents (the CLIs run by these tests inherit it)."""
    monkeypatch.setenv("ORCH_AGENTS_DIR", os.environ.get("ORCH_AGENTS_DIR") or str(ROOT / ".agents-bin"))

# A scripted orch worker: the commands a model would run after reading the brief.
WORKER = [{"match": "Required workflow", "steps": [
    {"bash": "{inbox} --db {db} --json claim --agent {agent} --thread {thread}"},
    {"bash": "{inbox} --db {db} --json update --agent {agent} --thread {thread} --status in_progress "
             "--summary 'writing proof.txt'"},
    {"bash": "cd {worktree} && echo hello > proof.txt && git add proof.txt && "
             "git -c user.name=worker -c user.email=worker@example.com commit -qm 'proof.txt'"},
    {"bash": "{inbox} --db {db} --json done --agent {agent} --thread {thread} --summary 'proof.txt committed'"},
    {"text": "Thread handled: proof.txt committed and reported done."}]}]


def need(binary: str) -> str:
    path = agents.find_binary(binary)
    if not path:
        pytest.skip(f"{binary} is not installed (scripts/agents installs it into .agents-bin/)")
    return path


def wait_for(pred, timeout: float, what: str, screen=lambda: ""):
    """Poll pred; fail at once when the agent's pane died (its last screen says why)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        s = screen()
        if screens.PANE_DEAD.search(s.strip().split("\n")[-1] if s.strip() else ""):
            pytest.fail(f"the agent exited while waiting for {what}; screen:\n{s.strip()}")
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; screen:\n{screen().strip()}")


def watcher_attention(db: str, run_id: str) -> dict:
    """One watcher pass over the run (as `orch watch` and the console make): the attempt it marked
    as needing the leader, with the liveness it wrote. Nothing is nudged or ended for it."""
    from orch_console.console.runtime.watcher import Watcher
    from orch_console.store import Store
    from orch_console.store import runtime as rt

    w = Watcher(db, run_id)
    try:
        w.tick(force_liveness=True)
    finally:
        w.close()
    with Store(db) as store:
        flags = rt.attention(store, run_id)
        att = store.one("SELECT liveness, status FROM attempts WHERE run_id=? ORDER BY attempt_no DESC LIMIT 1",
                        (run_id,))
        nudges = store.scalar("SELECT count(*) FROM events WHERE run_id=? AND event_type LIKE '%nudge%'", (run_id,))
    assert nudges == 0 and att["status"] not in ("stalled", "crashed", "timed_out"), (nudges, dict(att))
    assert flags, "the watcher marked nothing as needing the leader"
    return {**flags[-1], "liveness": att["liveness"]}


@pytest.fixture
def orch_env(tmp_path: Path):
    db = str(tmp_path / ".agents" / "coord.db")
    Path(db).parent.mkdir()
    cli = Cli(db, tmp_path)
    yield cli, tmp_path
    launcher.kill_server(db)


def thread_status(cli: Cli, thread: str) -> str:
    return cli.ok("inbox", "show", "--thread", thread)["thread"]["status"]


@pytest.mark.slow
@pytest.mark.tmux
def test_real_claude_code_in_tmux_follows_the_brief_through_inbox(orch_env):
    need("claude")
    cli, tmp = orch_env
    repo = make_repo(tmp / "repo")
    home = tmp / "claude-home"
    home.mkdir()
    key = "sk-ant-fake-key-for-orch-tests"
    # A fresh agent home: no onboarding, the key never approved, nothing trusted. orch's launch
    # steps answer the first-run screens for the profile's key and trust the worktree; without
    # them Claude Code offline exits 1 at its onboarding preflight.
    with ModelServer(WORKER) as srv:
        (tmp / ".agents" / "orch.toml").write_text(
            "[agents.claude]\n"
            f'env = {{ HOME = "{home}", ANTHROPIC_BASE_URL = "{srv.url}", ANTHROPIC_API_KEY = "{key}", '
            'DISABLE_AUTOUPDATER = "1" }\n')
        cli.ok("orch", "run", "init", "--run", "r1", "--goal", "prove real agents work")
        cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "write proof.txt")
        out = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "claude",
                     "--repo-path", str(repo), "--launch")
        att = out["attempt"]
        assert out["launch"]["profile"] == "claude" and att["runtime"] == "tmux"
        worktree = Path(att["worktree_path"])
        seeded = json.loads((home / ".claude.json").read_text())
        assert seeded["projects"][str(worktree.resolve())]["hasTrustDialogAccepted"] is True
        assert seeded["hasCompletedOnboarding"] is True and key[-20:] in seeded["customApiKeyResponses"]["approved"]
        assert any("onboarding" in n for n in out["launch"]["prepared"]), out["launch"]["prepared"]

        def screen() -> str:
            return launcher.capture(cli.db, att | {"runtime": "tmux", "runtime_ref": att["runtime_ref"]})

        wait_for(lambda: thread_status(cli, att["thread_id"]) == "done", 180, "the worker's inbox done", screen)
        status = cli.ok("orch", "status", "--run", "r1")
        task = next(t for t in status["tasks"] if t["task_id"] == "t1")
        assert task["status"] == "done"
        log = subprocess.run(["git", "-C", str(worktree), "log", "--format=%s", "-1"], capture_output=True, text=True)
        assert log.stdout.strip() == "proof.txt" and (worktree / "proof.txt").read_text() == "hello\n"
        # the REAL agent made the calls: the tool turns reached the stand-in model
        assert sum(1 for r in srv.requests if r["path"].endswith("/messages")) >= 5
        # and its screen, once the turn is over, reads as idle at its prompt
        v = wait_for(lambda: (lambda s: s if s.state == "idle" else None)(screens.classify(screen(), "claude")),
                     60, "claude idle at its prompt", screen)
        assert v.agent == "claude" and v.version
        # the same verdict from the command scripts use, on the attempt's live pane
        live = cli.ok("orch", "screen", "classify", "--run", "r1", "--task", "t1")
        assert (live["state"], live["agent"], live["attempt_no"]) == ("idle", "claude", 1)


@pytest.mark.slow
@pytest.mark.tmux
def test_real_codex_in_tmux_follows_the_brief_through_inbox(orch_env):
    need("codex")
    cli, tmp = orch_env
    repo = make_repo(tmp / "repo")
    codex_home = tmp / "codex-home"
    codex_home.mkdir()
    with ModelServer(WORKER) as srv:
        # the agent home a user sets up once: a model provider (here the stand-in). Trust is NOT
        # given: orch's launch step must pre-accept it for the repository of the worktree.
        (codex_home / "config.toml").write_text(codex_provider_config(srv.url))
        (tmp / ".agents" / "orch.toml").write_text(
            "[agents.codex]\n"
            f'env = {{ HOME = "{tmp / "home"}", CODEX_HOME = "{codex_home}", FAKE_API_KEY = "sk-fake" }}\n')
        cli.ok("orch", "run", "init", "--run", "r1", "--goal", "prove real agents work")
        cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "write proof.txt")
        out = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "codex",
                     "--repo-path", str(repo), "--launch")
        att = out["attempt"]
        assert out["launch"]["profile"] == "codex" and "--no-daemon" in out["launch"]["command"]
        import tomllib

        projects = tomllib.loads((codex_home / "config.toml").read_text())["projects"]
        assert projects[str(repo.resolve())]["trust_level"] == "trusted"

        def screen() -> str:
            return launcher.capture(cli.db, att)

        wait_for(lambda: thread_status(cli, att["thread_id"]) == "done", 180, "the worker's inbox done", screen)
        worktree = Path(att["worktree_path"])
        log = subprocess.run(["git", "-C", str(worktree), "log", "--format=%s", "-1"], capture_output=True, text=True)
        assert log.stdout.strip() == "proof.txt" and (worktree / "proof.txt").read_text() == "hello\n"
        assert sum(1 for r in srv.requests if r["path"].endswith("/responses")) >= 5
        v = wait_for(lambda: (lambda s: s if s.state == "idle" else None)(screens.classify(screen(), "codex")),
                     60, "codex idle at its prompt", screen)
        assert v.agent == "codex"  # (its banner has scrolled away under the long brief: no version to read)
    # --no-daemon: nothing of Codex outlives its session
    launcher.kill_server(cli.db)
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", str(codex_home)], capture_output=True, text=True).stdout.split()
    assert not left, f"codex processes left running: {left}"


@pytest.mark.slow
@pytest.mark.tmux
def test_real_claude_permission_menu_is_recognised_and_answered_and_inbox_never_asks(orch_env):
    """claude-approvals: the worker's inbox commands run without a prompt; its commit asks. The
    live screen is classified waiting_input/permission with the options; the key typed through
    launcher.send_keys (the console's path) answers it and the agent goes on to done."""
    need("claude")
    cli, tmp = orch_env
    repo = make_repo(tmp / "repo")
    home = tmp / "claude-home"
    home.mkdir()
    key = "sk-ant-fake-key-for-orch-tests"
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True,
                                                   "customApiKeyResponses": {"approved": [key[-20:]], "rejected": []}}))
    with ModelServer(WORKER) as srv:
        (tmp / ".agents" / "orch.toml").write_text(
            "[agents.claude-approvals]\n"
            f'env = {{ HOME = "{home}", ANTHROPIC_BASE_URL = "{srv.url}", ANTHROPIC_API_KEY = "{key}", '
            'DISABLE_AUTOUPDATER = "1", ORCH_HOOKS = "0" }\n')  # no hooks: the menu is answered by keys
        cli.ok("orch", "run", "init", "--run", "r1", "--goal", "approvals")
        cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "write proof.txt")
        out = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "claude",
                     "--repo-path", str(repo), "--launch", "--profile", "claude-approvals")
        att = out["attempt"]

        def screen() -> str:
            return launcher.capture(cli.db, att)

        def waiting():
            v = screens.classify(screen(), "claude")
            return v if v.state == "waiting_input" else None

        v = wait_for(waiting, 120, "the permission menu", screen)
        assert v.kind == "permission" and v.question == "Do you want to proceed?", v
        assert v.options[0].label == "Yes" and v.options[0].selected and len(v.options) >= 3
        # the watcher reads the same menu from the screen alone (no hooks): needs the leader, at once
        flagged = watcher_attention(cli.db, "r1")
        assert flagged["liveness"] == "waiting_input", flagged
        assert "permission: Do you want to proceed? [1. Yes" in flagged["reason"], flagged
        # the inbox commands before it ran without asking
        assert thread_status(cli, att["thread_id"]) == "in_progress"
        from orch_console.store import Store

        with Store(cli.db) as store:
            launcher.send_keys(store, run_id="r1", task_id="t1", text="1", enter=False)
        wait_for(lambda: thread_status(cli, att["thread_id"]) == "done", 120, "done after the approval", screen)
        assert (Path(att["worktree_path"]) / "proof.txt").read_text() == "hello\n"


@pytest.mark.slow
@pytest.mark.tmux
def test_real_codex_approval_is_recognised_and_answered_and_inbox_never_asks(orch_env):
    """codex-approvals (on-request, workspace-write sandbox, the database's directory added): the
    inbox commands run in the sandbox without asking; a command the model asks to run outside it
    shows Codex's approval overlay, classified from the live pane and answered with its key."""
    need("codex")
    cli, tmp = orch_env
    repo = make_repo(tmp / "repo")
    codex_home = tmp / "codex-home"
    codex_home.mkdir()
    script = [{"match": "Required workflow", "steps": [
        WORKER[0]["steps"][0], WORKER[0]["steps"][1],
        {**WORKER[0]["steps"][2], "escalated": True, "justification": "git writes the repository's .git"},
        WORKER[0]["steps"][3], WORKER[0]["steps"][4]]}]
    with ModelServer(script) as srv:
        (codex_home / "config.toml").write_text(codex_provider_config(srv.url))
        (tmp / ".agents" / "orch.toml").write_text(
            "[agents.codex-approvals]\n"
            f'env = {{ HOME = "{tmp / "home"}", CODEX_HOME = "{codex_home}", FAKE_API_KEY = "sk-fake", '
            'ORCH_HOOKS = "0" }\n')  # no hooks: the overlay is answered by keys
        cli.ok("orch", "run", "init", "--run", "r1", "--goal", "approvals")
        cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "write proof.txt")
        out = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "codex",
                     "--repo-path", str(repo), "--launch", "--profile", "codex-approvals")
        att = out["attempt"]

        def screen() -> str:
            return launcher.capture(cli.db, att)

        def waiting():
            v = screens.classify(screen(), "codex")
            return v if v.state == "waiting_input" else None

        v = wait_for(waiting, 120, "the approval overlay", screen)
        assert v.kind == "permission" and "Would you like to run the following command?" in v.question, v
        flagged = watcher_attention(cli.db, "r1")
        assert flagged["liveness"] == "waiting_input", flagged
        assert "permission: Would you like to run the following command?" in flagged["reason"], flagged
        assert v.options[0].label.startswith("Yes, proceed") and v.options[0].selected
        assert thread_status(cli, att["thread_id"]) == "in_progress"  # claim and update ran without asking
        from orch_console.store import Store

        with Store(cli.db) as store:
            launcher.send_keys(store, run_id="r1", task_id="t1", text="y", enter=False)
        wait_for(lambda: thread_status(cli, att["thread_id"]) == "done", 120, "done after the approval", screen)
        assert (Path(att["worktree_path"]) / "proof.txt").read_text() == "hello\n"


@pytest.mark.slow
@pytest.mark.tmux
def test_real_gemini_cli_in_tmux_follows_the_brief_through_inbox(orch_env):
    need("gemini")
    cli, tmp = orch_env
    repo = make_repo(tmp / "repo")
    home = tmp / "gemini-home"
    (home / ".gemini").mkdir(parents=True)
    # the agent home a user sets up once: the auth type. Folder trust is orch's launch step.
    (home / ".gemini" / "settings.json").write_text(json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}},
                                                                "general": {"disableAutoUpdate": True}}))
    with ModelServer(WORKER) as srv:
        (tmp / ".agents" / "orch.toml").write_text(
            "[agents.gemini]\n"
            f'env = {{ HOME = "{home}", GOOGLE_GEMINI_BASE_URL = "{srv.url}", GEMINI_API_KEY = "fake-key" }}\n')
        cli.ok("orch", "run", "init", "--run", "r1", "--goal", "prove real agents work")
        cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "write proof.txt")
        out = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "gemini",
                     "--repo-path", str(repo), "--launch")
        att = out["attempt"]
        trusted = json.loads((home / ".gemini" / "trustedFolders.json").read_text())
        assert trusted[str(Path(att["worktree_path"]).resolve())] == "TRUST_FOLDER"

        def screen() -> str:
            return launcher.capture(cli.db, att)

        wait_for(lambda: thread_status(cli, att["thread_id"]) == "done", 180, "the worker's inbox done", screen)
        worktree = Path(att["worktree_path"])
        assert (worktree / "proof.txt").read_text() == "hello\n"
        v = wait_for(lambda: (lambda s: s if s.state == "idle" else None)(screens.classify(screen(), "gemini")),
                     60, "gemini idle at its prompt", screen)
        assert v.agent == "gemini"


@pytest.mark.slow
@pytest.mark.tmux
def test_real_opencode_in_tmux_follows_the_brief_through_inbox(orch_env):
    need("opencode")
    cli, tmp = orch_env
    repo = make_repo(tmp / "repo")
    home = tmp / "opencode-home"
    with ModelServer(WORKER) as srv:
        # the agent home a user sets up once: a provider (here the stand-in, over Chat Completions)
        cfg = home / ".config" / "opencode" / "opencode.json"
        cfg.parent.mkdir(parents=True)
        cfg.write_text(json.dumps({"$schema": "https://opencode.ai/config.json", "autoupdate": False,
                                   "model": "fake/fake-model",
                                   "provider": {"fake": {"npm": "@ai-sdk/openai-compatible", "name": "Fake",
                                                         "options": {"baseURL": f"{srv.url}/v1", "apiKey": "sk-fake"},
                                                         "models": {"fake-model": {"name": "Fake model"}}}}}))
        (tmp / ".agents" / "orch.toml").write_text(
            f'[agents.opencode]\nenv = {{ HOME = "{home}", OPENCODE_DISABLE_AUTOUPDATE = "1" }}\n')
        cli.ok("orch", "run", "init", "--run", "r1", "--goal", "prove real agents work")
        cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "write proof.txt")
        out = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "opencode",
                     "--repo-path", str(repo), "--launch")
        att = out["attempt"]

        def screen() -> str:
            return launcher.capture(cli.db, att)

        wait_for(lambda: thread_status(cli, att["thread_id"]) == "done", 180, "the worker's inbox done", screen)
        assert (Path(att["worktree_path"]) / "proof.txt").read_text() == "hello\n"


@pytest.mark.slow
@pytest.mark.tmux
def test_real_codex_at_its_first_run_login_is_reported_as_why_the_launch_cannot_proceed(orch_env):
    """A fresh Codex home with no login and no provider: Codex stops at its sign-in menu. The
    watcher reports that as the reason the launch cannot proceed (never nudged or killed: the
    leader can attach and log in), and holds the profile so the autopilot starts no more."""
    need("codex")
    cli, tmp = orch_env
    repo = make_repo(tmp / "repo")
    codex_home = tmp / "codex-home"
    codex_home.mkdir()
    (tmp / ".agents" / "orch.toml").write_text(
        "[agents.codex]\n"
        f'env = {{ HOME = "{tmp / "home"}", CODEX_HOME = "{codex_home}", OPENAI_API_KEY = "", ORCH_HOOKS = "0" }}\n')
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "first run")
    cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "anything")
    out = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "codex",
                 "--repo-path", str(repo), "--launch")
    att = out["attempt"]

    def screen() -> str:
        return launcher.capture(cli.db, att)

    wait_for(lambda: (lambda v: v.state == "waiting_input" and v.kind == "login")(screens.classify(screen(), "codex")),
             90, "the sign-in menu", screen)
    flagged = watcher_attention(cli.db, "r1")
    assert flagged["liveness"] == "waiting_input", flagged
    assert "the launch cannot proceed: codex stopped at a first-run login screen" in flagged["reason"], flagged
    held = cli.ok("orch", "holds")["holds"]
    assert [(h["profile"], h["kind"], h["until_at"]) for h in held] == [("codex", "auth", "")], held
    assert thread_status(cli, att["thread_id"]) == "pending"
    launcher.kill_server(cli.db)


@pytest.mark.slow
def test_real_claude_headless_at_its_usage_limit_ends_with_that_reason_and_holds_its_profile(orch_env):
    """`claude -p` (claude-headless, a process) meets a 429 from the model server and exits 1 at
    once. The watcher ends the attempt with the agent's own words as the reason and holds the
    profile, so the autopilot starts no more claude-headless work until the leader releases it."""
    need("claude")
    from orch_console.console.runtime.watcher import Watcher

    cli, tmp = orch_env
    repo = make_repo(tmp / "repo")
    home = tmp / "claude-home"
    home.mkdir()
    limit = [{"match": "*", "steps": [{"error": 429, "reset_in": 7200,
                                       "message": "Number of request tokens has exceeded your rate limit"}]}]
    with ModelServer(limit) as srv:
        (tmp / ".agents" / "orch.toml").write_text(
            "[agents.claude-headless]\n"
            f'env = {{ HOME = "{home}", ANTHROPIC_BASE_URL = "{srv.url}", '
            'ANTHROPIC_API_KEY = "sk-ant-fake-key-for-orch-tests", DISABLE_AUTOUPDATER = "1" }\n')
        cli.ok("orch", "run", "init", "--run", "r1", "--goal", "limits")
        cli.ok("orch", "run", "config", "--run", "r1", "--set", "crash_grace_seconds=0", "--set", "retry=false")
        cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "anything")
        att = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "claude",
                     "--repo-path", str(repo), "--launch", "--profile", "claude-headless")["attempt"]
        w = Watcher(cli.db, "r1")

        def ended() -> str:
            w.tick(force_liveness=True)
            a = cli.ok("orch", "status", "--run", "r1")
            t = next(x for x in a["tasks"] if x["task_id"] == "t1")
            return t["status"] if t["status"] in ("failed",) else ""

        try:
            wait_for(ended, 120, "the attempt to end", lambda: launcher.tail_file(att["log_path"]))
        finally:
            w.close()
    from orch_console.store import Store

    with Store(cli.db) as store:
        (row,) = store.all("SELECT end_reason FROM attempts WHERE run_id='r1'")
        ev = store.one("SELECT summary FROM events WHERE event_type='attempt_crashed' ORDER BY event_id DESC")
    assert row["end_reason"] == "crashed"
    assert "its last output: exited after usage_limit: API Error: Request rejected (429)" in ev["summary"], ev["summary"]
    held = cli.ok("orch", "holds")["holds"]
    assert [(h["profile"], h["kind"]) for h in held] == [("claude-headless", "usage_limit")], held
