"""Model and reasoning effort per profile (.agents/orch.toml) and per dispatch (`orch dispatch
--launch --model M --effort E`): rendered into each agent's command, kept by the watcher's retries,
refused with exit 30 (nothing dispatched) when the agent cannot take them, and received by the
REAL Claude Code and Codex through the scripted model server."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from orch_console.console.runtime import agents, launcher, model_effort
from orch_console.console.runtime.watcher import Watcher
from orch_console.store import Store, runs
from tests.agents.model_server import ModelServer, codex_provider_config
from tests.conftest import ORCH, Cli, db_snapshot, git_env, make_repo
from tests.runtime.conftest import FAST, until

ROOT = Path(__file__).resolve().parents[2]


def argv_of(prof: launcher.Profile, model: str = "", effort: str = "") -> list[str]:
    """What the shell hands to the agent: the profile's command with the flags, rendered."""
    template, values = model_effort.apply(prof, model, effort)
    return shlex.split(launcher.render_command(template, {"brief_file": "/b.md", **values}))


def test_profile_model_and_effort_render_into_each_agents_command(tmp_path: Path):
    (tmp_path / "orch.toml").write_text(
        '[agents.claude]\nmodel = "opus"\neffort = "xhigh"\n'
        '[agents.claude-headless]\nmodel = "claude-fable-5"\neffort = "max"\n'
        '[agents.codex]\nmodel = "gpt-5.5"\neffort = "high"\n'
        '[agents.codex-headless]\nmodel = "gpt-5.5"\neffort = "minimal"\n'
        '[agents.gemini-headless]\nmodel = "gemini-2.5-pro"\n'
        '[agents.aider]\nmodel = "openai/o3-mini"\neffort = "low"\n'
        '[agents.opencode]\nmodel = "anthropic/claude-sonnet-4-5"\n'
        '[agents.opencode-headless]\nmodel = "anthropic/claude-sonnet-4-5"\neffort = "medium"\n')
    p = launcher.load_profiles(str(tmp_path / "coord.db"))
    brief = "$(cat /b.md)"
    assert argv_of(p["claude"]) == ["claude", "--model", "opus", "--effort", "xhigh", brief, "--permission-mode",
                                    "acceptEdits", "--allowedTools", "Bash"]
    assert argv_of(p["claude-headless"])[:6] == ["claude", "--model", "claude-fable-5", "--effort", "max", "-p"]
    assert argv_of(p["codex"]) == ["codex", "-m", "gpt-5.5", "-c", "model_reasoning_effort=high", "--no-daemon",
                                   "--yolo", brief]
    # after the subcommand: `codex exec` has its own -m
    assert argv_of(p["codex-headless"])[:6] == ["codex", "exec", "-m", "gpt-5.5", "-c",
                                                "model_reasoning_effort=minimal"]
    assert argv_of(p["gemini-headless"]) == ["gemini", "-m", "gemini-2.5-pro", "--yolo", "-p", brief]
    assert argv_of(p["aider"])[:5] == ["aider", "--model", "openai/o3-mini", "--reasoning-effort", "low"]
    assert argv_of(p["opencode"]) == ["opencode", "--model", "anthropic/claude-sonnet-4-5", "--prompt", brief]
    assert argv_of(p["opencode-headless"]) == ["opencode", "run", "--model", "anthropic/claude-sonnet-4-5",
                                               "--variant", "medium", brief]
    # a profile without either runs the command as it always did
    assert argv_of(p["gemini"]) == ["gemini", "--yolo", "-i", brief]
    # the attempt's choice wins over the profile's, one setting at a time
    assert argv_of(p["claude"], model="sonnet")[:5] == ["claude", "--model", "sonnet", "--effort", "xhigh"]
    assert argv_of(p["codex"], effort="low")[:5] == ["codex", "-m", "gpt-5.5", "-c", "model_reasoning_effort=low"]


def test_a_custom_command_takes_model_and_effort_through_shell_quoted_placeholders(tmp_path: Path):
    (tmp_path / "orch.toml").write_text(
        '[agents.mine]\ncommand = "my-agent --llm {model} --think={effort} \\"$(cat {brief_file})\\""\n'
        'model = "big[1m]"\neffort = "high"\n'
        '[agents.bare]\ncommand = "my-agent \\"$(cat {brief_file})\\""\n')
    p = launcher.load_profiles(str(tmp_path / "coord.db"))
    template, values = model_effort.apply(p["mine"])
    rendered = launcher.render_command(template, {"brief_file": "/b.md", **values})
    assert "--llm 'big[1m]' --think=high" in rendered  # quoted: [ ] would be a glob to the shell
    assert shlex.split(rendered)[:4] == ["my-agent", "--llm", "big[1m]", "--think=high"]
    # a placeholder names where the agent takes the value; a command without one cannot be guessed
    with pytest.raises(Exception, match=r"not an agent orch knows .* write \{model\}"):
        model_effort.apply(p["bare"], model="x")
    # and a placeholder with nothing to put there is said at launch, not rendered as ''
    (tmp_path / "orch.toml").write_text('[agents.mine]\ncommand = "my-agent --llm {model} \\"$(cat {brief_file})\\""\n')
    with pytest.raises(Exception, match=r"has \{model\} but no model is set"):
        model_effort.apply(launcher.load_profiles(str(tmp_path / "coord.db"))["mine"])


@pytest.mark.parametrize("toml, words", [
    ('[agents.claude]\neffort = "extreme"\n', ["agents.claude.effort", "minimal, low, medium, high, xhigh, max"]),
    ('[agents.claude]\neffort = "minimal"\n', ["agents.claude", "claude takes the effort low, medium, high, xhigh"]),
    ('[agents.gemini]\neffort = "high"\n', ["agents.gemini", "gemini has no reasoning-effort setting"]),
    ('[agents.opencode]\neffort = "high"\n', ["agents.opencode", "only in `opencode run`"]),
    ('[agents.opencode-headless]\nmodel = "sonnet"\n', ["provider/model"]),
    ('[agents.claude]\nmodel = ""\n', ["agents.claude.model must not be empty"]),
    ('[agents.claude]\nmodel = "opus\\nrm -rf ~"\n', ["agents.claude.model has control character"]),
    ('[agents.claude]\nmodel = "opus $(id)"\n', ["invalid", "agents.claude.model"]),
    ('[agents.claude]\nmodel = 3\n', ["agents.claude.model must be a string"]),
    ('[agents.codex]\ncommand = "codex -m o3 --yolo x"\nmodel = "gpt-5.5"\n', ["sets the model itself (-m)"]),
])
def test_a_bad_model_or_effort_in_orch_toml_is_exit_30_naming_the_setting(tmp_path: Path, toml: str,
                                                                           words: list[str]):
    (tmp_path / ".agents").mkdir()
    (tmp_path / ".agents" / "orch.toml").write_text(toml)
    env = {**os.environ, "ORCH_DB": str(tmp_path / ".agents" / "coord.db"), "HOME": str(tmp_path)}
    p = subprocess.run([ORCH, "--json", "agents", "--no-versions"], capture_output=True, text=True, timeout=60,
                       env=env)
    assert p.returncode == 30, p.stdout + p.stderr
    err = json.loads(p.stdout)["error"]
    assert err["code"] == "invalid_input" and all(w in err["message"] for w in words), err["message"]


def test_orch_agents_shows_each_profiles_model_and_effort(tmp_path: Path):
    (tmp_path / ".agents").mkdir()
    (tmp_path / ".agents" / "orch.toml").write_text('[agents.codex]\nmodel = "gpt-5.5"\neffort = "xhigh"\n')
    env = {**os.environ, "ORCH_DB": str(tmp_path / ".agents" / "coord.db"), "HOME": str(tmp_path)}
    p = subprocess.run([ORCH, "--json", "agents", "--no-versions"], capture_output=True, text=True, timeout=60,
                       env=env)
    rows = {r["profile"]: r for r in json.loads(p.stdout)["data"]["profiles"]}
    assert (rows["codex"]["model"], rows["codex"]["effort"]) == ("gpt-5.5", "xhigh")
    assert (rows["claude"]["model"], rows["claude"]["effort"]) == ("", "")
    assert rows["claude"]["efforts"] == ["low", "medium", "high", "xhigh", "max"]
    assert rows["gemini"]["efforts"] == [] and rows["opencode"]["efforts"] == []
    assert "max" in rows["opencode-headless"]["efforts"]
    p = subprocess.run([ORCH, "agents", "--no-versions"], capture_output=True, text=True, timeout=60, env=env)
    lines = {line.split()[0]: line.split() for line in p.stdout.splitlines()[2:] if line.startswith("  ") and
             not line.startswith("      ")}
    assert lines["codex"][3:5] == ["gpt-5.5", "xhigh"]
    assert lines["claude"][3:5] == ["-", "-"]      # the agent's own defaults
    assert lines["gemini"][3:5] == ["-", "n/a"]    # no effort can be given to Gemini CLI


# -- per dispatch ------------------------------------------------------------------------------------
def fake_agents(tmp_path: Path) -> str:
    """Stand-in agent executables that are only looked up (every launch here is refused first)."""
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for name in agents.SPECS:
        (d / name).write_text("#!/bin/sh\nexit 0\n")
        (d / name).chmod(0o755)
    return str(d)


@pytest.mark.parametrize("to, flags, words", [
    ("claude", ["--effort", "minimal"], ["claude takes the effort low, medium, high, xhigh, max"]),
    ("claude", ["--effort", "HIGH"], ["--effort must be one of"]),
    ("gemini", ["--effort", "high"], ["gemini has no reasoning-effort setting"]),
    ("opencode", ["--model", "anthropic/x", "--effort", "high"], ["only in `opencode run`"]),
    ("claude", ["--model", ""], ["--model must not be empty"]),
    ("claude", ["--model", "opus; touch /tmp/pwned"], ["invalid --model"]),
    ("claude", ["--model", "opus\nrm -rf ~"], ["--model has control character"]),
    ("claude", ["--model", "o" * 129], ["the limit is 128"]),
    ("claude", ["--model=--dangerously-skip-permissions"], ["invalid --model"]),
    ("sim", ["--model", "opus"], ["not an agent orch knows"]),
])
def test_a_bad_dispatch_model_or_effort_is_exit_30_and_nothing_is_dispatched(tmp_path: Path, to: str,
                                                                              flags: list[str], words: list[str]):
    repo = make_repo(tmp_path / "repo")
    db = str(tmp_path / ".agents" / "coord.db")
    (tmp_path / ".agents").mkdir()
    env = {k: v for k, v in git_env().items() if k != "ORCH_AGENTS_DIR"}
    env.update({"PATH": f"{fake_agents(tmp_path)}:{Path(ORCH).parent}:/usr/bin:/bin", "HOME": str(tmp_path / "home")})

    def orch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([ORCH, "--db", db, "--json", *args], capture_output=True, text=True, timeout=60,
                              env=env, cwd=tmp_path)

    assert orch("run", "init", "--run", "r", "--goal", "g").returncode == 0
    assert orch("task", "add", "--run", "r", "--task", "t", "--title", "t").returncode == 0
    before = db_snapshot(db)
    p = orch("dispatch", "--run", "r", "--task", "t", "--execution-mode", "code", "--to", to,
             "--repo-path", str(repo), "--launch", *flags)
    assert p.returncode == 30, p.stdout + p.stderr
    err = json.loads(p.stdout)["error"]
    assert err["code"] == "invalid_input" and all(w in err["message"] for w in words), err["message"]
    assert db_snapshot(db) == before  # nothing dispatched, no event, no attempt
    assert not (repo / ".orch").exists() and not (tmp_path / "home").exists()  # no worktree, no agent home
    # without --launch there is nothing to run the model: said too
    p = orch("dispatch", "--run", "r", "--task", "t", "--execution-mode", "code", "--to", to,
             "--repo-path", str(repo), "--model", "opus", "--effort", "high")
    assert p.returncode == 30 and "--model, --effort: need --launch" in json.loads(p.stdout)["error"]["message"]
    assert db_snapshot(db) == before


# A custom profile running the simulated worker, saying first what it was given.
SIM_SAYS = ("echo model={model} effort={effort}; "
            "{python} -P -m orch_console.console.runtime.sim --db {db} --thread {thread_id} --agent {agent}")


def test_the_dispatch_model_and_effort_override_the_profile_and_survive_a_watcher_retry(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    db = str(tmp_path / "coord.db")
    (tmp_path / "orch.toml").write_text(
        f'[agents.says]\ncommand = "{SIM_SAYS}"\nruntime = "process"\nmodel = "profile-model"\neffort = "low"\n')
    with Store(db) as store:
        runs.run_init(store, run_id="r1", goal="model and effort", config=FAST | {"repo_path": str(repo)})
        runs.task_add(store, run_id="r1", task_id="t", title="crashes once", default_to="says",
                      spec="sim-script: progress,crash | progress,done")
        runs.task_add(store, run_id="r1", task_id="u", title="profile's choice", default_to="says",
                      spec="sim-script: progress,done")
    cli = Cli(db, tmp_path)
    out = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t", "--execution-mode", "code",
                 "--repo-path", str(repo), "--launch", "--model", "chosen/model-7", "--effort", "high")
    assert (out["launch"]["model"], out["launch"]["effort"]) == ("chosen/model-7", "high")
    assert (out["attempt"]["model"], out["attempt"]["effort"]) == ("chosen/model-7", "high")
    assert out["launch"]["command"].startswith("echo model=chosen/model-7 effort=high;")
    out_u = cli.ok("orch", "dispatch", "--run", "r1", "--task", "u", "--execution-mode", "code",
                   "--repo-path", str(repo), "--launch")
    assert out_u["launch"]["command"].startswith("echo model=profile-model effort=low;")
    with Store(db) as store:
        w = Watcher(db, "r1")
        try:
            until(lambda: runs.get_task(store.conn, "r1", "t")["status"] == "done", timeout=90, step=w.tick)
        finally:
            w.close()
            for a in store.all("SELECT * FROM attempts WHERE runtime<>''"):
                launcher.stop(db, dict(a), grace=0.5)
        a1, a2 = [dict(r) for r in store.all("SELECT * FROM attempts WHERE task_id='t' ORDER BY attempt_no")]
        launched = [json.loads(r[0]) for r in store.all("SELECT payload_json FROM events WHERE task_id='t' AND "
                                                         "event_type='attempt_launched' ORDER BY event_id")]
    assert a1["end_reason"] == "crashed" and a2["end_reason"] == "succeeded" and a2["profile"] == "says"
    assert (a2["model"], a2["effort"]) == ("chosen/model-7", "high")  # the retry kept the attempt's choice
    assert [e["command"].split(";")[0] for e in launched] == ["echo model=chosen/model-7 effort=high"] * 2
    assert Path(a2["log_path"]).read_text().startswith("model=chosen/model-7 effort=high\n")


# -- the real agents ---------------------------------------------------------------------------------
WORKER = [{"match": "Required workflow", "steps": [
    {"bash": "{inbox} --db {db} --json claim --agent {agent} --thread {thread}"},
    {"bash": "{inbox} --db {db} --json done --agent {agent} --thread {thread} --summary 'ran with the model'"},
    {"text": "Done."}]}]


def need(binary: str) -> None:
    if not agents.find_binary(binary):
        pytest.skip(f"{binary} is not installed (scripts/agents installs it into .agents-bin/)")


@pytest.fixture
def real(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ORCH_AGENTS_DIR", os.environ.get("ORCH_AGENTS_DIR") or str(ROOT / ".agents-bin"))
    db = str(tmp_path / ".agents" / "coord.db")
    Path(db).parent.mkdir()
    cli = Cli(db, tmp_path)
    cli.ok("orch", "run", "init", "--run", "r1", "--goal", "the model the leader chose")
    cli.ok("orch", "task", "add", "--run", "r1", "--task", "t1", "--title", "report done")
    yield cli, tmp_path
    with Store(db) as store:
        for a in store.all("SELECT * FROM attempts WHERE runtime<>''"):
            launcher.stop(db, dict(a), grace=0.5)


def wait_done(cli: Cli, att: dict[str, Any], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cli.ok("inbox", "show", "--thread", att["thread_id"])["thread"]["status"] == "done":
            return
        time.sleep(0.5)
    pytest.fail("the agent did not report done; its log:\n" + launcher.tail_file(att["log_path"] or "", 40))


def model_calls(srv: ModelServer, path: str) -> list[dict[str, Any]]:
    """The turns that carry the agent's tools (not a title or routing call, which may use another model)."""
    return [r["body"] for r in srv.requests if r["path"].endswith(path) and isinstance(r["body"], dict)
            and r["body"].get("tools")]


def test_real_claude_code_runs_with_the_dispatched_model_and_effort(real):
    need("claude")
    cli, tmp = real
    repo = make_repo(tmp / "repo")
    home = tmp / "claude-home"
    home.mkdir()
    key = "sk-ant-fake-key-for-orch-tests"
    (home / ".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True,
                                                   "customApiKeyResponses": {"approved": [key[-20:]], "rejected": []}}))
    with ModelServer(WORKER) as srv:
        (tmp / ".agents" / "orch.toml").write_text(
            '[agents.claude-headless]\nmodel = "sonnet"\neffort = "low"\n'
            f'env = {{ HOME = "{home}", ANTHROPIC_BASE_URL = "{srv.url}", ANTHROPIC_API_KEY = "{key}", '
            'DISABLE_AUTOUPDATER = "1" }\n')
        out = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "claude",
                     "--repo-path", str(repo), "--launch", "--profile", "claude-headless",
                     "--model", "claude-orch-test-9", "--effort", "xhigh")
        assert "--model claude-orch-test-9 --effort xhigh -p" in out["launch"]["command"]
        wait_done(cli, out["attempt"])
        calls = model_calls(srv, "/messages")
    assert calls and {c["model"] for c in calls} == {"claude-orch-test-9"}  # not the profile's sonnet
    assert {c.get("output_config", {}).get("effort") for c in calls} == {"xhigh"}


def test_real_codex_runs_with_the_dispatched_model_and_effort(real):
    need("codex")
    cli, tmp = real
    repo = make_repo(tmp / "repo")
    codex_home = tmp / "codex-home"
    codex_home.mkdir()
    with ModelServer(WORKER) as srv:
        (codex_home / "config.toml").write_text(codex_provider_config(srv.url))
        (tmp / ".agents" / "orch.toml").write_text(
            '[agents.codex-headless]\nmodel = "profile-model"\neffort = "low"\n'
            f'env = {{ HOME = "{tmp / "home"}", CODEX_HOME = "{codex_home}", FAKE_API_KEY = "sk-fake" }}\n')
        out = cli.ok("orch", "dispatch", "--run", "r1", "--task", "t1", "--execution-mode", "code", "--to", "codex",
                     "--repo-path", str(repo), "--launch", "--profile", "codex-headless",
                     "--model", "gpt-orch-test-7", "--effort", "high")
        assert "exec -m gpt-orch-test-7 -c model_reasoning_effort=high" in out["launch"]["command"]
        wait_done(cli, out["attempt"])
        calls = model_calls(srv, "/responses")
    assert calls and {c["model"] for c in calls} == {"gpt-orch-test-7"}  # over config.toml's and the profile's
    assert {(c.get("reasoning") or {}).get("effort") for c in calls} == {"high"}


def test_a_retry_keeps_the_choice_for_the_same_agent_and_drops_it_for_another(tmp_path: Path):
    from orch_console.store import dispatch, inbox

    with Store(str(tmp_path / "coord.db")) as store:
        runs.run_init(store, run_id="r1", goal="g")
        runs.task_add(store, run_id="r1", task_id="t", title="t", default_to="codex")

        def fail_latest() -> None:
            a = dict(store.one("SELECT * FROM attempts WHERE task_id='t' ORDER BY attempt_no DESC LIMIT 1"))
            inbox.claim(store, agent=a["assigned_to"], thread_id=a["thread_id"])
            inbox.finish(store, agent=a["assigned_to"], thread_id=a["thread_id"], outcome="failed", summary="no")

        first = dispatch.dispatch(store, run_id="r1", task_id="t", execution_mode="analysis", model="gpt-5.5",
                                  effort="xhigh")["attempt"]
        fail_latest()
        again = dispatch.retry(store, run_id="r1", task_id="t")["attempt"]
        fail_latest()
        other = dispatch.retry(store, run_id="r1", task_id="t", to="claude")["attempt"]
    assert (first["model"], first["effort"]) == (again["model"], again["effort"]) == ("gpt-5.5", "xhigh")
    assert (other["assigned_to"], other["model"], other["effort"]) == ("claude", "", "")  # its profile's
