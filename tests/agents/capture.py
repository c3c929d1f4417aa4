"""Re-capture the corpus of real agent screens: `python tests/agents/capture.py [--agent A] [--only NAME]`.

Agents: claude, codex, gemini, opencode (scripts/agents) and aider (scripts/agents --with-aider);
one that is not installed is skipped with a message. `--out DIR` writes a fresh corpus elsewhere
(with its own index.toml) to compare a new version's screens with the checked-in ones.

Runs the REAL agent binaries from .agents-bin/ (scripts/agents) in tmux (200x50, remain-on-exit,
like orch's launcher), each scenario on its own private tmux socket, with a scratch HOME, offline
or against tests/agents/model_server.py (the one stand-in: the real APIs cannot be reached). Each
capture is taken when the screen shows what the scenario expects (a regex), written to
tests/agents/corpus/<agent>/<name>.txt, and listed in tests/agents/corpus/index.toml with its true
state. When an agent's new version draws a screen differently, the wait times out, or the new
capture diffs from the old one in git, and tests/agents/test_corpus.py shows what the recogniser
makes of it.

Nothing is left running: each scenario's tmux server is killed, and any process that carries the
scenario's tag in its environment (Codex's app-server daemon, for one) is killed by pid.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPUS = HERE / "corpus"
BIN = Path(os.environ.get("ORCH_AGENTS_DIR", ROOT / ".agents-bin")) / "node_modules" / ".bin"
AIDER = Path(os.environ.get("ORCH_AGENTS_DIR", ROOT / ".agents-bin")) / "aider-venv" / "bin" / "aider"
sys.path.insert(0, str(HERE))
from model_server import ModelServer  # noqa: E402

CLOSED_PORT = 9  # discard: nothing listens on 127.0.0.1:9, so connections are refused


def binary(agent: str) -> Path | None:
    p = AIDER if agent == "aider" else BIN / agent
    return p if p.exists() else None


def version_of(agent: str, home: Path) -> str:
    b = binary(agent)
    if not b:
        return ""
    env = {**os.environ, "HOME": str(home), "CODEX_HOME": str(home / ".codex"),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
           "XDG_CACHE_HOME": str(home / ".cache"), "XDG_STATE_HOME": str(home / ".local/state")}
    try:
        out = subprocess.run([str(b), "--version"], capture_output=True, text=True, timeout=60, env=env,
                             cwd=str(home)).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
    m = re.search(r"\d+\.\d+\.\d+", out)
    return m.group() if m else out.strip()


# -- tmux on a private socket ------------------------------------------------------------------
class Tmux:
    def __init__(self, tag: str) -> None:
        self.socket = f"orch-capture-{tag}"

    def run(self, *args: str, check: bool = True) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              check=check).stdout

    def start(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        cmd = " ".join(_q(a) for a in argv)
        envs = [x for k, v in env.items() for x in ("-e", f"{k}={v}")]
        self.run("-f", "/dev/null", "new-session", "-d", "-s", "cap", "-x", "200", "-y", "50", "-c", str(cwd),
                 *envs, "sleep 0.3; exec " + cmd)
        self.run("set-option", "-t", "cap", "remain-on-exit", "on")

    def capture(self) -> str:
        return self.run("capture-pane", "-p", "-t", "cap", check=False)

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.run("send-keys", "-t", "cap", *(["-l"] if literal else []), *keys)

    def dead(self) -> bool:
        return self.run("display-message", "-p", "-t", "cap", "#{pane_dead}", check=False).strip() == "1"

    def kill(self) -> None:
        self.run("kill-server", check=False)


def _q(s: str) -> str:
    return s if re.fullmatch(r"[A-Za-z0-9_./:=@,+-]+", s) else "'" + s.replace("'", "'\\''") + "'"


def kill_tagged(tag: str) -> None:
    """Kill, by pid, every process whose environment carries this scenario's tag."""
    needle = f"ORCH_CAPTURE_TAG={tag}".encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if needle in (d / "environ").read_bytes().split(b"\0"):
                os.kill(int(d.name), signal.SIGKILL)
        except (OSError, ValueError):
            pass


# -- scenarios ---------------------------------------------------------------------------------
@dataclass
class Wait:
    pattern: str          # regex the screen must show
    timeout: float = 30.0
    dead: bool = False    # also wait for the pane to be dead
    now: bool = False     # capture a passing frame (start-up) without letting it settle


@dataclass
class Keys:
    keys: tuple[str, ...]
    literal: bool = False
    pause: float = 0.5


@dataclass
class Capture:
    name: str
    state: str
    kind: str = ""
    note: str = ""


@dataclass
class Scenario:
    agent: str
    name: str
    argv: Callable[[Path, Path, str], list[str]]           # (home, work, url) -> argv
    steps: list[Any]
    setup: Callable[[Path, Path, str], dict[str, str]] | None = None  # (home, work, url) -> extra env
    script: list[dict[str, Any]] | None = None             # model server rules; None: no server
    offline: bool = False                                  # point the API at a closed port


def _write(p: Path, text: str) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


# Claude Code ----------------------------------------------------------------------------------
def claude_argv(*extra: str) -> Callable[[Path, Path, str], list[str]]:
    return lambda home, work, url: [str(BIN / "claude"), *extra]


def claude_home(onboarded: bool = True, trusted: bool = False, key_approved: bool = False,
                key: bool = True) -> Callable[[Path, Path, str], dict[str, str]]:
    def setup(home: Path, work: Path, url: str) -> dict[str, str]:
        cfg: dict[str, Any] = {}
        if onboarded:
            cfg["hasCompletedOnboarding"] = True
        if trusted:
            cfg["projects"] = {str(work): {"hasTrustDialogAccepted": True, "allowedTools": []}}
        if key_approved:
            cfg["customApiKeyResponses"] = {"approved": ["sk-ant-fake-key-for-tests"[-20:]], "rejected": []}
        if cfg:
            _write(home / ".claude.json", json.dumps(cfg))
        env = {"DISABLE_AUTOUPDATER": "1"}
        if key:
            env["ANTHROPIC_API_KEY"] = "sk-ant-fake-key-for-tests"
        if url:
            env["ANTHROPIC_BASE_URL"] = url
        return env
    return setup


PROMPT = "Write hello into proof.txt"
BASH_SCRIPT = [{"match": "*", "steps": [{"bash": "echo hello > proof.txt"}, {"text": "Wrote hello into proof.txt."}]}]
CLAUDE_READY = r"\? for shortcuts"


def claude_scenarios() -> list[Scenario]:
    ready = claude_home(trusted=True, key_approved=True)
    return [
        Scenario("claude", "fresh-home-offline", claude_argv(), [
            Wait(r"Unable to connect|ENOTFOUND|Failed to connect", 30, dead=True),
            Capture("exited-offline-start", "error", "exited",
                    "fresh HOME: onboarding preflight to api.anthropic.com fails offline, exit 1"),
        ], setup=claude_home(onboarded=False, key=False)),
        Scenario("claude", "trust-then-login", claude_argv(), [
            Wait(r"trust this folder", 30), Capture("trust-dialog", "waiting_input", "dialog"),
            Keys(("Enter",)), Wait(r"Not logged in", 30),
            Capture("not-logged-in-prompt", "waiting_input", "login", "idle prompt with 'Not logged in · Run /login'"),
            Keys((PROMPT,), literal=True), Keys(("Enter",)), Wait(r"Please run /login", 30),
            Capture("not-logged-in-after-prompt", "error", "auth"),
        ], setup=claude_home(key=False)),
        Scenario("claude", "api-key-dialog", claude_argv(), [
            Wait(r"Do you want to use this API key", 30), Capture("api-key-dialog", "waiting_input", "dialog"),
        ], setup=claude_home(trusted=True)),
        Scenario("claude", "fake-model-permission", claude_argv(), [
            Wait(CLAUDE_READY, 40), Capture("idle-fresh", "idle"),
            Keys((PROMPT,), literal=True), Keys(("Enter",)),
            Wait(r"Do you want to proceed", 40), Capture("permission-bash", "waiting_input", "permission"),
            Keys(("Enter",)), Wait(r"Wrote hello into proof\.txt", 40), Wait(CLAUDE_READY, 20),
            Capture("idle-after-turn", "idle"),
        ], setup=ready, script=BASH_SCRIPT),
        Scenario("claude", "fake-model-slow", claude_argv("--allowedTools", "Bash"), [
            Wait(CLAUDE_READY, 40), Keys(("Run the slow command",), literal=True), Keys(("Enter",)),
            Wait(r"esc to interrupt", 30), Wait(r"…", 10), Capture("working-thinking", "working"),
            Wait(r"Running", 40), Wait(r"\(\d+s\)", 20), Capture("working-bash-running", "working"),
        ], setup=ready, script=[{"match": "*", "steps": [{"sleep": 15, "bash": "sleep 25"}, {"text": "Slept."}]}]),
        Scenario("claude", "fake-model-question", claude_argv(), [
            Wait(CLAUDE_READY, 40), Keys(("Ask me which database to use",), literal=True), Keys(("Enter",)),
            Wait(r"PostgreSQL", 40), Capture("question-ask-user", "waiting_input", "question"),
        ], setup=ready, script=[{"match": "*", "steps": [
            {"tool": "AskUserQuestion", "input": {"questions": [{
                "question": "Which database should the service use?", "header": "Database",
                "multiSelect": False, "options": [
                    {"label": "SQLite", "description": "One file, no server"},
                    {"label": "PostgreSQL", "description": "A server, more features"}]}]}},
            {"text": "Noted."}]}]),
        Scenario("claude", "fake-model-errors", claude_argv(), [
            Wait(CLAUDE_READY, 40), Keys(("Say something bad request",), literal=True), Keys(("Enter",)),
            Wait(r"API Error", 60), Capture("api-error-400", "error", "api"),
            Keys(("Now say something unauthorized",), literal=True), Keys(("Enter",)),
            Wait(r"Retrying in", 60), Capture("api-error-retrying", "error", "api",
                                               "HTTP 401 from the API: Claude retries 10 times over ~3 min"),
        ], setup=ready, script=[
            {"match": "bad request", "steps": [{"error": 400, "message": "invalid request: scripted bad request"}]},
            {"match": "unauthorized", "steps": [{"error": 401, "message": "invalid x-api-key"}]},
            {"match": "rate limit", "steps": [{"error": 429, "reset_in": 7200,
                                               "message": "Number of request tokens has exceeded your rate limit"}]},
            {"match": "*", "steps": [{"text": "ok"}]}]),
        Scenario("claude", "fake-model-usage-limit", claude_argv(), [
            Wait(CLAUDE_READY, 40), Keys(("Now hit the rate limit",), literal=True), Keys(("Enter",)),
            Wait(r"limit", 120), Capture("usage-limit", "error", "usage_limit"),
        ], setup=ready, script=[
            {"match": "*", "steps": [{"error": 429, "reset_in": 7200,
                                      "message": "Number of request tokens has exceeded your rate limit"}]}]),
        Scenario("claude", "offline-key", claude_argv(), [
            Wait(CLAUDE_READY, 40), Keys((PROMPT,), literal=True), Keys(("Enter",)),
            Wait(r"Unable to connect to API", 60), Capture("network-retrying", "error", "network"),
        ], setup=ready, offline=True),
    ]


# Codex ----------------------------------------------------------------------------------------
def codex_argv(*extra: str) -> Callable[[Path, Path, str], list[str]]:
    return lambda home, work, url: [str(BIN / "codex"), "--no-daemon", *extra]


def codex_home(provider: bool = True, trusted: bool = False, key_env: bool = False) -> Callable[[Path, Path, str], dict[str, str]]:
    def setup(home: Path, work: Path, url: str) -> dict[str, str]:
        lines = []
        if provider:
            lines += ['model = "fake-model"', 'model_provider = "fake"']
        if trusted:
            lines += [f'[projects."{work}"]', 'trust_level = "trusted"']
        if provider:
            lines += ["[model_providers.fake]", 'name = "fake"', f'base_url = "{url}/v1"', 'wire_api = "responses"',
                      'env_key = "FAKE_API_KEY"']
        if lines:
            _write(home / ".codex" / "config.toml", "\n".join(lines) + "\n")
        env = {"FAKE_API_KEY": "sk-fake"}
        if key_env:
            env["OPENAI_API_KEY"] = "sk-fake-openai-key"
        return env
    return setup


# the prompt, with the session's model line under it ("fake-model default · /path"): before that
# line shows, Codex is still starting (tests/agents/corpus/codex/starting-logo.txt)
CODEX_READY = r" · .*\n.*\? for shortcuts"


def codex_hooks(base: Callable[[Path, Path, str], dict[str, str]]) -> Callable[[Path, Path, str], dict[str, str]]:
    """A hooks.json Codex has not reviewed yet: it asks at start-up."""
    def setup(home: Path, work: Path, url: str) -> dict[str, str]:
        env = base(home, work, url)
        hook = [{"matcher": "", "hooks": [{"type": "command", "command": "true"}]}]
        _write(home / ".codex" / "hooks.json", json.dumps({"hooks": {"Stop": hook, "SessionStart": hook}}))
        return env
    return setup


def codex_scenarios() -> list[Scenario]:
    ready = codex_home(trusted=True)
    return [
        Scenario("codex", "fresh-login", codex_argv(), [
            Wait(r"Sign in with ChatGPT", 40), Capture("login-menu", "waiting_input", "login"),
            Keys(("Down",)), Keys(("Down",)), Keys(("Enter",)), Wait(r"API key", 20),
            Capture("login-other-way", "waiting_input", "login"),
            Keys(("Enter",)), Wait(r"OPENAI_API_KEY|API key", 20), Wait(r"[Ee]nter", 5),
            Capture("login-api-key-field", "waiting_input", "login"),
        ], setup=codex_home(provider=False, key_env=True)),
        Scenario("codex", "trust", codex_argv(), [
            Wait(r"Trust this folder|trust this folder|Do you trust", 40), Capture("trust-dialog", "waiting_input", "dialog"),
        ], setup=codex_home(), script=BASH_SCRIPT),
        Scenario("codex", "fake-model-approval", codex_argv("-a", "on-request", "-s", "workspace-write"), [
            Wait(CODEX_READY, 40), Capture("idle-fresh", "idle"),
            Keys(("Write hello into ../outside-proof.txt",), literal=True), Keys(("Enter",)),
            Wait(r"Would you like to run the following command", 40),
            Capture("approval-command", "waiting_input", "permission"),
            Keys(("y",)), Wait(r"Wrote hello", 40), Wait(CODEX_READY, 20), Capture("idle-after-turn", "idle"),
        ], setup=ready, script=[{"match": "*", "steps": [{"bash": "echo hello > ../outside-proof.txt", "escalated": True},
                                                          {"text": "Wrote hello into ../outside-proof.txt."}]}]),
        Scenario("codex", "fake-model-slow", codex_argv("--yolo"), [
            Wait(CODEX_READY, 40), Keys(("Run the slow command",), literal=True), Keys(("Enter",)),
            Wait(r"esc to interrupt", 30), Wait(r"Working \(\d+s", 10), Capture("working-thinking", "working"),
            Wait(r"Working \((1[89]|2[0-9])s", 40), Capture("working-command-running", "working"),
        ], setup=ready, script=[{"match": "*", "steps": [{"sleep": 15, "bash": "sleep 25"}, {"text": "Slept."}]}]),
        Scenario("codex", "fake-model-errors", codex_argv("--yolo"), [
            Wait(CODEX_READY, 40), Keys(("Now hit the rate limit",), literal=True), Keys(("Enter",)),
            Wait(r"429|rate limit|usage limit|Too Many", 150), Capture("rate-limit-429", "error", "usage_limit"),
        ], setup=ready, script=[
            {"match": "rate limit", "steps": [{"error": 429, "message": "Rate limit reached for requests"}]},
            {"match": "*", "steps": [{"text": "ok"}]}]),
        Scenario("codex", "offline", codex_argv("--yolo"), [
            Wait(CODEX_READY, 40), Keys((PROMPT,), literal=True), Keys(("Enter",)),
            Wait(r"Reconnecting|Connection failed|stream error|error sending request", 90),
            Capture("network-reconnecting", "error", "network"),
        ], setup=ready, offline=True),
        Scenario("codex", "starting", codex_argv("--yolo"), [
            Wait(r"⣿⣿", 40, now=True), Capture("starting-logo", "starting", note="the logo before the prompt"),
        ], setup=ready),
        Scenario("codex", "hooks-review", codex_argv(), [
            Wait(r"Hooks need review|hooks? (are|is) new", 40), Wait(r"[Ee]nter|esc", 5),
            Capture("hooks-review-dialog", "waiting_input", "dialog"),
        ], setup=codex_hooks(ready), script=BASH_SCRIPT),
        Scenario("codex", "bad-flag", codex_argv("-a", "untrusted"), [
            Wait(r"invalid value", 30, dead=True), Capture("exited-bad-flag", "error", "exited"),
        ], setup=ready),
    ]


# Gemini CLI -----------------------------------------------------------------------------------
def gemini_home(trusted: bool = False, auth: bool = False, key: bool = True) -> Callable[[Path, Path, str], dict[str, str]]:
    def setup(home: Path, work: Path, url: str) -> dict[str, str]:
        if auth:
            _write(home / ".gemini" / "settings.json", json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}},
                                                                   "general": {"disableAutoUpdate": True}}))
        if trusted:
            _write(home / ".gemini" / "trustedFolders.json", json.dumps({str(work): "TRUST_FOLDER"}))
        env = {"GOOGLE_GEMINI_BASE_URL": url or f"http://127.0.0.1:{CLOSED_PORT}"}
        if key:
            env["GEMINI_API_KEY"] = "fake-gemini-key-for-tests"
        return env
    return setup


GEMINI_READY = r"Type your message"


def gemini_scenarios() -> list[Scenario]:
    argv = lambda home, work, url: [str(BIN / "gemini")]  # noqa: E731
    return [
        Scenario("gemini", "fresh", argv, [
            Wait(r"Do you trust", 60), Wait(r"Trust folder", 5), Capture("trust-dialog", "waiting_input", "dialog"),
            Keys(("Enter",)), Wait(r"How would you like to authenticate", 60),
            Capture("auth-menu", "waiting_input", "login"),
        ], setup=gemini_home()),
        Scenario("gemini", "offline-key", argv, [
            Wait(GEMINI_READY, 60), Capture("idle-fresh", "idle"),
            Keys((PROMPT,), literal=True), Keys(("Enter",)),
            Wait(r"esc to cancel", 60), Wait(r"\d+s\)", 20), Capture("working-thinking", "working",
                                                                     note="offline: nothing says so for minutes"),
        ], setup=gemini_home(trusted=True, auth=True), offline=True),
        Scenario("gemini", "fake-model", argv, [
            Wait(GEMINI_READY, 60), Keys((PROMPT,), literal=True), Keys(("Enter",)),
            Wait(r"Allow execution", 60), Capture("permission-shell", "waiting_input", "permission"),
            Keys(("Enter",)), Wait(r"Wrote hello", 60), Wait(GEMINI_READY, 20), Capture("idle-after-turn", "idle"),
            Keys(("Now say something bad request",), literal=True), Keys(("Enter",)),
            Wait(r"API Error|\[API Error", 90), Wait(GEMINI_READY, 20), Capture("api-error-400", "error", "api"),
        ], setup=gemini_home(trusted=True, auth=True), script=[
            {"match": "bad request", "steps": [{"error": 400, "message": "scripted bad request"}]},
            {"match": "*", "steps": [{"bash": "echo hello > proof.txt"}, {"text": "Wrote hello into proof.txt."}]}]),
        Scenario("gemini", "fake-model-yolo", lambda home, work, url: [str(BIN / "gemini"), "--yolo"], [
            Wait(GEMINI_READY, 60), Capture("idle-yolo", "idle", note="YOLO mode: the prompt glyph is *"),
            Keys((PROMPT,), literal=True), Keys(("Enter",)),
            Wait(r"Wrote hello", 60), Wait(GEMINI_READY, 20), Capture("idle-yolo-after-turn", "idle"),
        ], setup=gemini_home(trusted=True, auth=True), script=BASH_SCRIPT),
    ]


# opencode -------------------------------------------------------------------------------------
def opencode_home(provider: bool = True) -> Callable[[Path, Path, str], dict[str, str]]:
    def setup(home: Path, work: Path, url: str) -> dict[str, str]:
        if provider:
            cfg = {"$schema": "https://opencode.ai/config.json", "autoupdate": False, "model": "fake/fake-model",
                   "provider": {"fake": {"npm": "@ai-sdk/openai-compatible", "name": "Fake",
                                         "options": {"baseURL": f"{url}/v1", "apiKey": "sk-fake"},
                                         "models": {"fake-model": {"name": "Fake model"}}}},
                   "permission": {"bash": "ask"}}
            _write(home / ".config" / "opencode" / "opencode.json", json.dumps(cfg))
        return {"OPENCODE_DISABLE_AUTOUPDATE": "1"}
    return setup


def opencode_scenarios() -> list[Scenario]:
    argv = lambda home, work, url: [str(BIN / "opencode")]  # noqa: E731
    return [
        Scenario("opencode", "fake-model", argv, [
            Wait(r"Fake model|fake-model", 90), Capture("idle-fresh", "idle"),
            Keys((PROMPT,), literal=True), Keys(("Enter",)),
            Wait(r"Permission required", 90), Capture("permission-bash", "waiting_input", "permission"),
        ], setup=opencode_home(), script=BASH_SCRIPT),
        Scenario("opencode", "offline-start", argv, [
            Keys((), pause=4), Capture("starting-blank", "starting", note="offline: blank for ~15 s (models.dev fetch)"),
        ], setup=opencode_home(provider=False)),
    ]


# aider ----------------------------------------------------------------------------------------
def aider_argv(*extra: str, model: bool = True) -> Callable[[Path, Path, str], list[str]]:
    def argv(home: Path, work: Path, url: str) -> list[str]:
        base = [str(AIDER), "--no-check-update", "--analytics-disable", "--no-show-release-notes"]
        if model:
            base += ["--model", "openai/fake-model", "--openai-api-base", f"{url}/v1", "--openai-api-key", "sk-fake",
                     "--no-show-model-warnings", "--edit-format", "whole"]
        return base + list(extra)
    return argv


AIDER_YN = r"\(Y\)es/\(N\)o.*\[Yes\]: *$"


def aider_scenarios() -> list[Scenario]:
    return [
        Scenario("aider", "no-key", aider_argv(model=False), [
            Wait(r"Add \.aider\* to \.gitignore", 60), Wait(AIDER_YN, 5),
            Capture("gitignore-question", "waiting_input", "dialog"),
            Keys(("y", "Enter")), Wait(r"Login to OpenRouter.*\[Yes\]: *$", 60),
            Capture("login-openrouter", "waiting_input", "login"),
        ]),
        Scenario("aider", "fake-model", aider_argv("--no-gitignore"), [
            Wait(r"^\w*> *$", 60), Capture("idle-prompt", "idle"),
            Keys(("Run the echo command",), literal=True), Keys(("Enter",)),
            Wait(r"Create new file\?.*\[Yes\]: *$", 60), Capture("create-new-file", "waiting_input", "permission"),
        ], script=[{"match": "*", "steps": [{"text": "proof.txt\n```\nhello\n```\n"}]}]),
        Scenario("aider", "fake-model-shell", aider_argv("--no-gitignore", "--edit-format", "diff"), [
            Wait(r"^\w*> *$", 60), Keys(("Run the echo command",), literal=True), Keys(("Enter",)),
            Wait(r"Run shell command\?.*\[Yes\]: *$", 60), Capture("run-shell-command", "waiting_input", "permission"),
        ], script=[{"match": "*", "steps": [{"text": "Run this:\n\n```bash\necho hello > proof.txt\n```\n"}]}]),
        Scenario("aider", "offline", aider_argv("--no-gitignore"), [
            Wait(r"^\w*> *$", 60), Keys(("Write hello into proof.txt",), literal=True), Keys(("Enter",)),
            Wait(r"Retrying in", 60), Capture("network-retrying", "error", "network"),
        ], offline=True),
    ]


SCENARIOS: dict[str, Callable[[], list[Scenario]]] = {"claude": claude_scenarios, "codex": codex_scenarios,
                                                      "aider": aider_scenarios, "gemini": gemini_scenarios,
                                                      "opencode": opencode_scenarios}


# -- running ------------------------------------------------------------------------------------
@dataclass
class Result:
    captures: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def run_scenario(sc: Scenario, version: str, out_dir: Path, verbose: bool = True) -> Result:
    res = Result()
    tag = uuid.uuid4().hex[:12]
    scratch = Path(tempfile.mkdtemp(prefix=f"orch-cap-{sc.agent}-"))
    home, work = scratch / "home", scratch / "work"
    home.mkdir()
    (work / "repo").mkdir(parents=True)
    work = work / "repo"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    _write(work / "README.md", "# scratch project\n")
    server = ModelServer(sc.script).start() if sc.script is not None else None
    url = server.url if server else (f"http://127.0.0.1:{CLOSED_PORT}" if sc.offline or sc.agent == "codex" else "")
    tmux = Tmux(tag)
    try:
        env = {"HOME": str(home), "CODEX_HOME": str(home / ".codex"), "XDG_CONFIG_HOME": str(home / ".config"),
               "XDG_DATA_HOME": str(home / ".local/share"), "XDG_CACHE_HOME": str(home / ".cache"),
               "XDG_STATE_HOME": str(home / ".local/state"), "TERM": "xterm-256color", "ORCH_CAPTURE_TAG": tag,
               "LANG": "C.UTF-8"}
        (home / ".codex").mkdir()
        if sc.setup:
            env.update(sc.setup(home, work, url))
        tmux.start(sc.argv(home, work, url), work, env)
        screen = ""
        for step in sc.steps:
            if isinstance(step, Wait):
                deadline = time.monotonic() + step.timeout
                while True:
                    screen = tmux.capture()
                    if re.search(step.pattern, screen, re.MULTILINE) and (not step.dead or tmux.dead()):
                        break
                    if time.monotonic() > deadline:
                        res.failures.append(f"{sc.agent}/{sc.name}: timed out waiting for /{step.pattern}/")
                        _write(out_dir / "_failed" / f"{sc.agent}-{sc.name}.txt", screen)
                        if verbose:
                            print(f"  FAIL {res.failures[-1]}\n{screen}", file=sys.stderr)
                        return res
                    time.sleep(0.3)
                time.sleep(0.6 if not step.now else 0.05)  # let the frame finish drawing
            elif isinstance(step, Keys):
                if step.keys:
                    tmux.keys(*step.keys, literal=step.literal)
                time.sleep(step.pause)
            elif isinstance(step, Capture):
                screen = tmux.capture()
                rel = f"{sc.agent}/{step.name}.txt"
                # scratch paths vary per run; replaced by a fixed path of the same width (boxes stay aligned)
                text = screen.replace(str(work), "/tmp/project".ljust(len(str(work)))).replace(
                    str(home), "/tmp/home".ljust(len(str(home))))
                _write(out_dir / rel, text)
                res.captures.append({"file": rel, "agent": sc.agent, "version": version, "state": step.state,
                                     "kind": step.kind, "scenario": sc.name, "note": step.note})
                if verbose:
                    print(f"  captured {rel} ({step.state}{'/' + step.kind if step.kind else ''}){_verdict(text, sc.agent, step)}")
    finally:
        tmux.kill()
        kill_tagged(tag)
        if server:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return res


def _verdict(text: str, agent: str, step: Capture) -> str:
    """What the recogniser makes of a fresh capture: a new version's screen shows up at once."""
    try:
        from orch_console.console.runtime import screens
    except ImportError:  # run outside the project's venv
        return ""
    v = screens.classify(text, agent)
    if (v.state, v.kind) == (step.state, step.kind):
        return "  recognised"
    return f"  RECOGNISED AS {v.state}{'/' + v.kind if v.kind else ''} (rule {v.rule or '-'})"


def toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def write_index(entries: list[dict[str, Any]], path: Path) -> None:
    lines = ["# The corpus of real agent screens: tmux capture-pane -p text, 200x50, captured by",
             "# tests/agents/capture.py from the real binaries. state/kind are the truth the recognisers",
             "# (console/runtime/screens.py) must return; tests/agents/test_corpus.py checks every entry.", ""]
    for e in sorted(entries, key=lambda e: e["file"]):
        lines.append("[[capture]]")
        for k in ("file", "agent", "version", "state", "kind", "scenario", "note"):
            lines.append(f"{k} = {toml_str(str(e.get(k, '')))}")
        lines.append("")
    path.write_text("\n".join(lines))


def read_index(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    import tomllib

    return tomllib.loads(path.read_text()).get("capture", [])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agent", action="append", help="only this agent (repeatable)")
    p.add_argument("--only", action="append", help="only this scenario name (repeatable)")
    p.add_argument("--out", default=str(CORPUS), help="corpus directory (default: tests/agents/corpus)")
    a = p.parse_args(argv)
    out = Path(a.out)
    index = read_index(out / "index.toml")
    failures: list[str] = []
    for agent, make in SCENARIOS.items():
        if a.agent and agent not in a.agent:
            continue
        if not binary(agent):
            print(f"{agent}: not installed (run scripts/agents); skipped", file=sys.stderr)
            continue
        vhome = Path(tempfile.mkdtemp(prefix="orch-cap-v-"))
        version = version_of(agent, vhome)
        shutil.rmtree(vhome, ignore_errors=True)
        for sc in make():
            if a.only and sc.name not in a.only:
                continue
            print(f"{agent} {version}: {sc.name}")
            res = run_scenario(sc, version, out)
            failures += res.failures
            done = {c["file"] for c in res.captures}
            index = [e for e in index if e["file"] not in done] + res.captures
            write_index(index, out / "index.toml")
    if failures:
        print("\n".join(["FAILED:"] + failures), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
