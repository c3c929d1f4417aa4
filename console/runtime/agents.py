"""Real agents as built-in profiles: Claude Code, Codex, Gemini CLI, aider, opencode.

Each agent has an interactive profile (runtime tmux, the brief as the first prompt, the attempt's
worktree as working directory) and, where the agent has one, a headless variant (runtime process:
`claude -p`, `codex exec`, `gemini -p`, `aider --message-file`, `opencode run`). By default they
work unattended inside their worktree (as the seeds run Codex with --yolo); the `-approvals`
variants ask, except for the worker's own `inbox` commands, which never wait for an approval.
`.agents/orch.toml` overrides and extends them (launcher.load_profiles).

Launch steps (`prepare`), done by the launcher before the agent starts, never guessed by the
watcher: the agent's trust dialog is pre-accepted for the attempt's worktree through the agent's
own settings file, in the agent home the profile names (`CLAUDE_CONFIG_DIR` / `HOME` for Claude
Code, `CODEX_HOME` / `HOME` for Codex, `HOME` for Gemini CLI's trustedFolders.json), else the
user's. Only that folder is trusted; no permission, sandbox or approval setting is changed.

`doctor()` is `orch agents`: each profile, its model and effort, its binary, the version, and what
is missing. How each agent takes a model and an effort: model_effort.py (which builds on this one).
Headless: imports no Textual and runs no SQL.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROMPT = '"$(cat {brief_file})"'


@dataclass(frozen=True)
class AgentSpec:
    name: str
    binary: str
    package: str        # how to install it
    interactive: str    # runtime tmux
    headless: str = ""  # runtime process
    approvals: str = ""  # runtime tmux, asks before acting (inbox excepted)
    env: tuple[tuple[str, str], ...] = ()
    credentials: tuple[str, ...] = ()  # environment variables that give it an API key


SPECS: dict[str, AgentSpec] = {s.name: s for s in (
    AgentSpec("claude", "claude", "npm install -g @anthropic-ai/claude-code",
              # the prompt comes before --allowedTools (it takes several values)
              f"claude {PROMPT} --permission-mode acceptEdits --allowedTools Bash",
              f"claude -p {PROMPT} --permission-mode acceptEdits --allowedTools Bash",
              f"claude {PROMPT} --allowedTools 'Bash(inbox:*)' Bash\\({{inbox}}:\\*\\)",
              env=(("DISABLE_AUTOUPDATER", "1"),), credentials=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")),
    # --no-daemon: the TUI otherwise leaves an app-server daemon (and a 424 MB copy) behind
    AgentSpec("codex", "codex", "npm install -g @openai/codex",
              f"codex --no-daemon --yolo {PROMPT}",
              f"codex exec --yolo --skip-git-repo-check {PROMPT}",
              f'codex --no-daemon -a on-request -s workspace-write --add-dir "$(dirname {{db}})" {PROMPT}',
              credentials=("OPENAI_API_KEY", "CODEX_API_KEY")),
    AgentSpec("gemini", "gemini", "npm install -g @google/gemini-cli",
              f"gemini --yolo -i {PROMPT}", f"gemini --yolo -p {PROMPT}", f"gemini -i {PROMPT}",
              credentials=("GEMINI_API_KEY", "GOOGLE_API_KEY")),
    AgentSpec("aider", "aider", "pipx install aider-chat",
              "aider --no-check-update --yes-always --message-file {brief_file}",
              "aider --no-check-update --no-pretty --yes-always --message-file {brief_file}",
              "aider --no-check-update --message-file {brief_file}",
              credentials=("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENROUTER_API_KEY")),
    AgentSpec("opencode", "opencode", "npm install -g opencode-ai",
              f"opencode --prompt {PROMPT}", f"opencode run {PROMPT}", "",
              credentials=("ANTHROPIC_API_KEY", "OPENAI_API_KEY")),
)}


def builtin_profiles() -> dict[str, Any]:
    """The built-in real-agent profiles, as launcher.Profile objects."""
    from .profiles import Profile

    out: dict[str, Any] = {}
    for s in SPECS.values():
        env = dict(s.env)
        out[s.name] = Profile(s.name, s.interactive, "tmux", env, builtin=True)
        if s.headless:
            out[f"{s.name}-headless"] = Profile(f"{s.name}-headless", s.headless, "process", env, builtin=True)
        if s.approvals:
            out[f"{s.name}-approvals"] = Profile(f"{s.name}-approvals", s.approvals, "tmux", env, builtin=True)
    return out


def agent_of(command: str) -> str:
    """Which known agent a profile's command runs (its first word), or ''."""
    try:
        words = shlex.split(command)
    except ValueError:
        return ""
    for w in words:
        if "=" in w and not w.startswith(("-", "/")):
            continue  # VAR=value prefixes
        name = Path(w).name
        return name if name in SPECS else ""
    return ""


# -- launch steps -------------------------------------------------------------------------------
def prepare(command: str, cwd: Path, env: dict[str, str]) -> tuple[str, list[str]]:
    """Before the agent starts: make its binary and `inbox` reachable, and pre-accept its trust
    dialog for cwd in its own settings. Returns the command to run and what was done."""
    agent = agent_of(command)
    if not agent:
        return command, []
    done = []
    spec = SPECS[agent]
    if not shutil.which(spec.binary, path=env.get("PATH")):
        found = require_binary(command, env)
        # installed by scripts/agents into $ORCH_AGENTS_DIR, not on PATH
        env["PATH"] = str(Path(found).parent) + os.pathsep + env.get("PATH", "")
        done.append(f"{agent}: {Path(found).parent} added to PATH")
    if agent == "claude":
        done.append(trust_claude(claude_config_file(env), cwd))
        done += first_run_claude(claude_config_file(env), env)
    elif agent == "codex":
        done.append(trust_codex(codex_home(env) / "config.toml", repo_root(cwd)))
    elif agent == "gemini":
        done.append(trust_gemini(Path(env.get("HOME") or os.path.expanduser("~")) / ".gemini" / "trustedFolders.json",
                                 cwd))
    # tmux (3.2+) gives a new pane the server's PATH, not the one passed with -e: set it in the
    # command, so the agent's own shell finds `inbox` (and the agent's binary) as the brief says
    if env.get("PATH"):
        command = f"export PATH={shlex.quote(env['PATH'])}; {command}"
    return command, done


def require_binary(command: str, env: dict[str, str] | None = None) -> str:
    """The path of the agent binary a profile's command runs; InvalidInput (exit 30) when it is
    missing, so nothing is dispatched or launched for it. '' for commands of no known agent."""
    agent = agent_of(command)
    if not agent:
        return ""
    spec = SPECS[agent]
    found = find_binary(spec.binary, env)
    if not found:
        from orch_console.store.errors import InvalidInput

        raise InvalidInput(f"{spec.binary} not found on PATH (nor in $ORCH_AGENTS_DIR); install it with "
                           f"`{spec.package}` (or scripts/agents), then check with `orch agents`")
    return found


def claude_config_file(env: dict[str, str]) -> Path:
    if env.get("CLAUDE_CONFIG_DIR") or os.environ.get("CLAUDE_CONFIG_DIR"):
        return Path(env.get("CLAUDE_CONFIG_DIR") or os.environ["CLAUDE_CONFIG_DIR"]) / ".claude.json"
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".claude.json"


def codex_home(env: dict[str, str]) -> Path:
    if env.get("CODEX_HOME") or os.environ.get("CODEX_HOME"):
        return Path(env.get("CODEX_HOME") or os.environ["CODEX_HOME"])
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".codex"


def repo_root(path: Path) -> Path:
    """The main repository of a worktree (Codex applies trust to the repository root)."""
    try:
        p = subprocess.run(["git", "-C", str(path), "rev-parse", "--path-format=absolute", "--git-common-dir"],
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return path
    common = p.stdout.strip()
    return Path(common).parent if p.returncode == 0 and common.endswith("/.git") else path


def trust_claude(config: Path, folder: Path) -> str:
    """projects[folder].hasTrustDialogAccepted = true in Claude Code's .claude.json (what pressing
    "Yes, I trust this folder" writes). Everything else in the file is kept; written atomically."""
    doc: dict[str, Any] = {}
    if config.exists():
        try:
            doc = json.loads(config.read_text() or "{}")
        except (OSError, ValueError):
            return f"claude: {config} is not readable JSON; trust dialog not pre-accepted"
    key = str(folder.resolve())
    projects = doc.setdefault("projects", {})
    entry = projects.setdefault(key, {})
    if entry.get("hasTrustDialogAccepted") is True:
        return f"claude: {key} already trusted in {config}"
    entry["hasTrustDialogAccepted"] = True
    _atomic_write(config, json.dumps(doc, indent=2))
    return f"claude: trusted {key} in {config}"


def first_run_claude(config: Path, env: dict[str, str]) -> list[str]:
    """Claude Code's first-run screens, answered as the user would, only when the profile gives it
    an API key in its own env (or the run's worker_env; a key merely inherited from the leader's
    shell is not taken as a choice to bill it): the onboarding (theme picker and
    login, which offline makes a preflight call and exits 1) is marked completed, and "Do you want
    to use this API key?" (default No) is answered Yes for that key only, by its last 20
    characters, which is what Claude Code itself stores, unless the user once answered No for
    it. Without a key nothing is touched: the
    login screen is the leader's, and the watcher reports it as why the launch cannot proceed."""
    key = env.get("ANTHROPIC_API_KEY") or ""
    if not key:
        return []
    doc: dict[str, Any] = {}
    if config.exists():
        try:
            doc = json.loads(config.read_text() or "{}")
        except (OSError, ValueError):
            return [f"claude: {config} is not readable JSON; first-run screens not pre-answered"]
    done = []
    if doc.get("hasCompletedOnboarding") is not True:
        doc["hasCompletedOnboarding"] = True
        done.append(f"claude: onboarding marked completed in {config} (the profile gives an API key)")
    responses = doc.setdefault("customApiKeyResponses", {})
    approved = responses.setdefault("approved", [])
    responses.setdefault("rejected", [])
    if key[-20:] in responses["rejected"]:
        done.append(f"claude: the profile's API key (...{key[-4:]}) was rejected before in {config}; left as it is")
    elif key[-20:] not in approved:
        approved.append(key[-20:])
        done.append(f"claude: the profile's API key (...{key[-4:]}) approved in {config}")
    if done:
        _atomic_write(config, json.dumps(doc, indent=2))
    return done


def trust_codex(config: Path, folder: Path) -> str:
    """[projects."<folder>"] trust_level = "trusted" in Codex's config.toml."""
    import tomllib

    key = str(folder.resolve())
    text = config.read_text() if config.exists() else ""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return f"codex: {config} is not valid TOML; trust dialog not pre-accepted"
    if doc.get("projects", {}).get(key, {}).get("trust_level") == "trusted":
        return f"codex: {key} already trusted in {config}"
    if key in doc.get("projects", {}):
        return f"codex: {config} has its own [projects.\"{key}\"] entry; left as it is"
    section = f'\n[projects.{json.dumps(key)}]\ntrust_level = "trusted"\n'
    _atomic_write(config, text.rstrip("\n") + ("\n" if text.strip() else "") + section)
    return f"codex: trusted {key} in {config}"


def trust_gemini(config: Path, folder: Path) -> str:
    """{"<folder>": "TRUST_FOLDER"} in Gemini CLI's trustedFolders.json (its "Trust folder" answer)."""
    doc: dict[str, Any] = {}
    if config.exists():
        try:
            doc = json.loads(config.read_text() or "{}")
        except (OSError, ValueError):
            return f"gemini: {config} is not readable JSON; trust dialog not pre-accepted"
    key = str(folder.resolve())
    if doc.get(key) == "TRUST_FOLDER":
        return f"gemini: {key} already trusted in {config}"
    if key in doc:
        return f"gemini: {config} has its own entry for {key} ({doc[key]}); left as it is"
    doc[key] = "TRUST_FOLDER"
    _atomic_write(config, json.dumps(doc, indent=2))
    return f"gemini: trusted {key} in {config}"


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- doctor -------------------------------------------------------------------------------------
def find_binary(name: str, env: dict[str, str] | None = None) -> str:
    path = (env or {}).get("PATH") or os.environ.get("PATH", "")
    extra = os.environ.get("ORCH_AGENTS_DIR")
    if extra:
        path = os.pathsep.join([path, str(Path(extra) / "node_modules" / ".bin"),
                                str(Path(extra) / "aider-venv" / "bin")])
    return shutil.which(name, path=path) or ""


def version(binary: str) -> str:
    """`BIN --version` with a scratch HOME (some agents create their home directories on first run)."""
    with tempfile.TemporaryDirectory(prefix="orch-agent-version-") as home:
        env = {**os.environ, "HOME": home, "CODEX_HOME": os.path.join(home, ".codex"),
               "XDG_CONFIG_HOME": os.path.join(home, ".config"), "XDG_DATA_HOME": os.path.join(home, ".local/share"),
               "XDG_CACHE_HOME": os.path.join(home, ".cache"), "XDG_STATE_HOME": os.path.join(home, ".local/state")}
        os.makedirs(env["CODEX_HOME"], exist_ok=True)
        try:
            p = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, env=env, cwd=home,
                               stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return ""
    m = re.search(r"\d+\.\d+\.\d+\S*", p.stdout)
    return m.group() if m else ""


def doctor(profiles: dict[str, Any], with_versions: bool = True) -> list[dict[str, Any]]:
    """One row per profile: agent, binary path, version, and each missing piece with what to do."""
    versions: dict[str, str] = {}
    rows = []
    for name in sorted(profiles):
        prof = profiles[name]
        agent = agent_of(prof.command)
        row: dict[str, Any] = {"profile": name, "agent": agent, "runtime": prof.runtime, "builtin": prof.builtin,
                               "command": prof.command, "model": prof.model, "effort": prof.effort,
                               "binary": "", "version": "", "missing": []}
        if not agent:
            rows.append(row)  # sim or a custom command: nothing known to check
            continue
        spec = SPECS[agent]
        env = {**os.environ, **prof.env}
        row["binary"] = find_binary(spec.binary, prof.env)
        if not row["binary"]:
            row["missing"].append(f"{spec.binary} not found on PATH; install it: {spec.package}")
        elif with_versions:
            if row["binary"] not in versions:
                versions[row["binary"]] = version(row["binary"])
            row["version"] = versions[row["binary"]]
            if not row["version"]:
                row["missing"].append(f"`{spec.binary} --version` failed; reinstall it: {spec.package}")
        if prof.runtime == "tmux" and not shutil.which("tmux"):
            row["missing"].append("tmux not found (runtime tmux needs it; or use the -headless profile)")
        if not any(env.get(k) for k in spec.credentials) and not _logged_in(agent, prof.env):
            row["missing"].append(f"no credentials: set {' or '.join(spec.credentials)} in the profile's env, "
                                  f"or log in once with `{spec.binary}`")
        rows.append(row)
    return rows


def _logged_in(agent: str, env: dict[str, str]) -> bool:
    """Whether the agent's home holds a login (only that a file exists; nothing is read)."""
    if agent == "claude":
        cfg = claude_config_file(env)
        return (cfg.parent / ".claude" / ".credentials.json").exists() or (cfg.parent / ".credentials.json").exists()
    if agent == "codex":
        home = codex_home(env)
        if (home / "auth.json").exists():
            return True
        try:
            import tomllib

            return bool(tomllib.loads((home / "config.toml").read_text()).get("model_provider"))
        except (OSError, ValueError):
            return False
    if agent == "gemini":
        return (Path(env.get("HOME") or os.path.expanduser("~")) / ".gemini" / "oauth_creds.json").exists()
    return False
