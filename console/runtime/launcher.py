"""Starting workers: agent profiles, tmux sessions on a private socket, captured processes.

The one launch implementation (DESIGN.md section 6) used by `orch dispatch --launch`, the
console and the watcher (retries, autopilot). A launch renders the brief to a file, reserves the
attempt in the store (so two launchers can never start two workers for it), starts the profile's
command in the attempt's worktree (or a scratch directory in analysis mode) and records the
session name or pid and the log path.

Profiles come from `.agents/orch.toml` (beside the database, or $ORCH_AGENTS_FILE):

    [agents.codex]
    command = "codex exec --yolo \\"$(cat {brief_file})\\""
    runtime = "tmux"          # or "process"
    env = { CODEX_HOME = "/home/me/.codex" }
    max_parallel = 3
    model = "gpt-5.5"         # optional; `orch dispatch --launch --model M` overrides it
    effort = "high"           # optional: minimal low medium high xhigh max, as the agent takes them

Placeholders (shell-quoted when substituted): {brief_file} {cwd} {worktree} {db} {run_id}
{task_id} {attempt_no} {thread_id} {agent} {python} {inbox} {log_file} {model} {effort}. Write them
bare or inside "$(...)": a placeholder inside "..." or '...' is refused, as the quoting would not
hold there. A built-in agent's command needs no {model} or {effort}: its flags are added
(model_effort.py); a command of another program takes them only through the placeholders.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from orch_console.store import brief
from orch_console.store import runtime as rt

from orch_console.store.dispatch import leader_name, public_attempt
from orch_console.store.db import Store
from orch_console.store.errors import InvalidInput, InvalidState, NotFound, OrchError
from orch_console.store.states import LIVE_ATTEMPT
from orch_console.store.validate import check_effort, check_model

from . import model_effort
from .profiles import Profile

RUNTIMES = ("tmux", "process")
SIM_COMMAND = "{python} -P -m orch_console.console.runtime.sim --db {db} --thread {thread_id} --agent {agent}"


class AtCapacity(InvalidState):
    """The profile already runs max_parallel workers: the launch can happen when a slot frees."""

    def __init__(self, message: str, profile: str) -> None:
        super().__init__(message)
        self.profile = profile




BUILTIN = {
    "sim": Profile("sim", SIM_COMMAND, "process", builtin=True),
    "sim-tmux": Profile("sim-tmux", SIM_COMMAND, "tmux", builtin=True),
}


# -- profiles --------------------------------------------------------------------------------
def profiles_file(db_path: str) -> Path:
    env = os.environ.get("ORCH_AGENTS_FILE")
    if env:
        return Path(env)
    return Path(db_path).resolve().parent / "orch.toml"


def load_profiles(db_path: str) -> dict[str, Profile]:
    """Built-in profiles, overridden and extended by the TOML file when it exists."""
    import tomllib  # only when profiles are read: the console imports this module for capture()

    from .agents import builtin_profiles

    out = {**BUILTIN, **builtin_profiles()}  # real agents: claude, codex, gemini, aider, opencode (+ variants)
    path = profiles_file(db_path)
    if not path.exists():
        return out
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"cannot read agent profiles {path}: {exc}") from None
    agents = doc.get("agents", {})
    if not isinstance(agents, dict):
        raise InvalidInput(f"{path}: [agents.NAME] tables expected")
    for name, spec in agents.items():
        if not isinstance(spec, dict):
            raise InvalidInput(f"{path}: agents.{name} must be a table")
        base = out.get(name)
        command = spec.get("command", base.command if base else "")
        runtime = spec.get("runtime", base.runtime if base else "process")
        if not isinstance(command, str) or not command.strip():
            raise InvalidInput(f"{path}: agents.{name}.command is required")
        if runtime not in RUNTIMES:
            raise InvalidInput(f"{path}: agents.{name}.runtime must be tmux or process, not {runtime!r}")
        quoted = quoted_placeholders(command)
        if quoted:
            raise InvalidInput(f"{path}: agents.{name}.command has {{{quoted[0]}}} inside shell quotes; placeholders "
                               f"are shell-quoted when substituted, so write them bare ({{{quoted[0]}}}, not "
                               f"\"{{{quoted[0]}}}\"), or inside \"$(...)\"")
        env = spec.get("env", {})
        if not isinstance(env, dict):
            raise InvalidInput(f"{path}: agents.{name}.env must be a table")
        try:
            max_parallel = int(spec.get("max_parallel", base.max_parallel if base else 0))
        except (TypeError, ValueError):
            raise InvalidInput(f"{path}: agents.{name}.max_parallel must be an integer") from None
        model = check_model(spec["model"], f"{path}: agents.{name}.model") if "model" in spec \
            else (base.model if base else "")
        effort = check_effort(spec["effort"], f"{path}: agents.{name}.effort") if "effort" in spec \
            else (base.effort if base else "")
        prof = Profile(name, command, runtime, {str(k): str(v) for k, v in env.items()}, max_parallel,
                       model=model, effort=effort)
        try:
            model_effort.apply(prof, launching=False)  # an effort its agent does not take: said now
        except InvalidInput as exc:
            raise InvalidInput(f"{path}: agents.{name}: {exc.message}") from None
        out[name] = prof
    return out


def profiles_digest(db_path: str) -> str:
    """A fingerprint of the agent profiles file as it is now ("absent" when there is none)."""
    path = profiles_file(db_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        return f"unreadable:{exc.errno}"
    return hashlib.sha256(data).hexdigest()[:16]


def resolve_profile(profiles: dict[str, Profile], *candidates: str | None) -> Profile:
    for c in candidates:
        if c and c in profiles:
            return profiles[c]
    named = [c for c in candidates if c]
    raise InvalidInput(f"no agent profile {' or '.join(repr(c) for c in named) or 'given'}; "
                       f"known: {', '.join(sorted(profiles))} (define more in .agents/orch.toml)")


PLACEHOLDERS = frozenset({"brief_file", "cwd", "worktree", "db", "run_id", "task_id", "attempt_no", "thread_id",
                          "agent", "python", "inbox", "log_file", "model", "effort"})


def quoted_placeholders(template: str) -> list[str]:
    """Placeholders that sit inside shell quotes: shlex.quote protects a value only where the shell
    reads it unquoted; inside "..." a `$(..)` in the value runs, inside '...' the quoting ends
    (issue 15, L2). A `$(...)` or backquotes inside double quotes start a fresh, unquoted context,
    so the README's `"$(cat {brief_file})"` is fine."""
    stack = ["n"]  # n: unquoted (top level, or inside $(..) / `..`), d: "..", s: '..'
    bad: list[str] = []
    i = 0
    while i < len(template):
        c, top = template[i], stack[-1]
        if top == "s":
            if c == "'":
                stack.pop()
            else:
                m = re.match(r"\{([a-z_]+)\}", template[i:])
                if m and m.group(1) in PLACEHOLDERS:
                    bad.append(m.group(1))
            i += 1
            continue
        if c == "\\":
            i += 2
            continue
        m = re.match(r"\{([a-z_]+)\}", template[i:])
        if m and m.group(1) in PLACEHOLDERS:
            if top == "d":
                bad.append(m.group(1))
            i += len(m.group(0))
            continue
        if template.startswith("$(", i):
            stack.append("n")
            i += 2
            continue
        if c == "`":
            if top == "b":
                stack.pop()
            else:
                stack.append("b")
        elif c == ")" and top == "n" and len(stack) > 1:
            stack.pop()
        elif c == '"':
            if top == "d":
                stack.pop()
            else:
                stack.append("d")
        elif c == "'" and top in ("n", "b"):
            stack.append("s")
        i += 1
    return bad


def render_command(template: str, values: dict[str, str]) -> str:
    """Substitute known {placeholders}, shell-quoted; other braces are left alone."""
    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        return shlex.quote(values[key]) if key in values else m.group(0)

    return re.sub(r"\{([a-z_]+)\}", sub, template)


# -- naming ----------------------------------------------------------------------------------
def tmux_socket(db_path: str) -> str:
    """One private tmux server per database: tests and demos never touch the user's server."""
    digest = hashlib.sha1(str(Path(db_path).resolve()).encode()).hexdigest()[:12]
    return f"orch-{digest}"


def exact_target(session: str) -> str:
    """A tmux target naming exactly this session (and its current pane): a bare name also
    matches another session by prefix or fnmatch pattern."""
    return f"={session}:"


def session_name(run_id: str, task_id: str, attempt_no: int) -> str:
    """orch-<run>-<task>-a<N>-<hash>: readable, and unique across runs: the readable part alone is
    ambiguous (run a-b task T1 and run a task b-T1; `.` and `_`), the hash of the exact triple
    is not. Only [A-Za-z0-9_-], so tmux finds nothing to expand in it."""
    digest = hashlib.sha256(f"{run_id}\0{task_id}\0{attempt_no}".encode()).hexdigest()[:8]
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"orch-{run_id}-{task_id}-a{attempt_no}-{digest}")


def runtime_dir(db_path: str, run_id: str, task_id: str, attempt_no: int) -> Path:
    return Path(db_path).resolve().parent / "runtime" / run_id / task_id / f"a{attempt_no}"


def bin_path(name: str) -> str:
    cand = Path(sys.executable).parent / name
    return str(cand) if cand.exists() else name


def tmux(db_path: str, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    argv = ["tmux", "-L", tmux_socket(db_path), *args]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return subprocess.CompletedProcess(argv, 127, "", "tmux is not installed (runtime tmux needs it)")


# -- processes -------------------------------------------------------------------------------
_children: dict[int, subprocess.Popen[bytes]] = {}


def reap() -> None:
    """Collect exited children this process started, so they do not linger as zombies."""
    for pid, p in list(_children.items()):
        if p.poll() is not None:
            _children.pop(pid, None)


def pid_alive(pid: int | None, thread_id: str | None = None) -> bool | None:
    """Is the worker alive? With thread_id, a process that is not the attempt's worker (its pid
    was reused after the worker died) counts as dead: it carries no ORCH_THREAD=thread_id."""
    if not pid:
        return None
    reap()
    stat = Path(f"/proc/{pid}/stat")
    try:
        text = stat.read_text()
        if text[text.rindex(")") + 2:][:1] in ("Z", "X"):
            return False
        if thread_id:
            try:
                env = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                return True  # cannot tell; assume it is ours
            return f"ORCH_THREAD={thread_id}".encode() in env.split(b"\0")
        return True
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def session_exists(db_path: str, session: str) -> bool:
    try:
        return tmux(db_path, "has-session", "-t", exact_target(session)).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_worker_pids(thread_id: str, db_path: str | None = None) -> list[int]:
    """Processes that carry ORCH_THREAD=thread_id (and ORCH_DB=db_path, given one) in their
    environment: the worker of an attempt whose launcher died before recording its pid (issue 15,
    M6). Session leaders (the launched shell) first."""
    if not thread_id:
        return []
    want = f"ORCH_THREAD={thread_id}".encode()
    want_db = f"ORCH_DB={Path(db_path).resolve()}".encode() if db_path else None
    me = os.getpid()
    found: list[tuple[bool, int]] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for name in entries:
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if want not in env or (want_db is not None and want_db not in env):
            continue
        if pid_alive(pid) is False:
            continue
        try:
            leader = os.getpgid(pid) == pid
        except OSError:
            continue
        found.append((not leader, pid))
    return [pid for _, pid in sorted(found)]


def tmux_panes(db_path: str) -> dict[str, dict[str, Any]]:
    """Every session on the private server: {name: {dead, pid, status}}; {} when no server runs."""
    try:
        p = tmux(db_path, "list-panes", "-a", "-F", "#{session_name}\t#{pane_dead}\t#{pane_pid}\t#{pane_dead_status}")
    except (OSError, subprocess.TimeoutExpired):
        return {}
    out: dict[str, dict[str, Any]] = {}
    if p.returncode != 0:
        return out
    for line in p.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            out[parts[0]] = {"dead": parts[1] == "1", "pid": int(parts[2] or 0),
                             "status": parts[3] if len(parts) > 3 else ""}
    return out


def capture(db_path: str, attempt: dict[str, Any], lines: int = 200) -> str:
    """The worker's screen (tmux) or the tail of its log (process)."""
    if attempt.get("runtime") == "tmux" and attempt.get("runtime_ref"):
        try:
            p = tmux(db_path, "capture-pane", "-p", "-J", "-t", exact_target(attempt["runtime_ref"]), "-S", f"-{lines}")
        except (OSError, subprocess.TimeoutExpired):
            return ""
        if p.returncode == 0:
            return p.stdout
    return tail_file(attempt.get("log_path") or "", lines)


def tail_file(path: str, lines: int = 200, max_bytes: int = 64 * 1024) -> str:
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


def attach_argv(db_path: str, attempt: dict[str, Any]) -> list[str]:
    """The command that attaches a terminal to a tmux worker (the console suspends and runs it)."""
    if attempt.get("runtime") != "tmux" or not attempt.get("runtime_ref"):
        raise InvalidState("this worker does not run in tmux; its output is in " + (attempt.get("log_path") or "-"))
    return ["tmux", "-L", tmux_socket(db_path), "attach-session", "-t", exact_target(attempt["runtime_ref"])]


# -- launch ----------------------------------------------------------------------------------
def launch(store: Store, *, run_id: str, task_id: str, attempt_no: int | None = None,
           profile: str | None = None, runtime: str | None = None) -> dict[str, Any]:
    """Start the worker for an attempt (the latest by default). Raises InvalidState when the
    attempt is already launched or has ended: one attempt, one worker."""
    att = rt.get_attempt(store, run_id, task_id, attempt_no)
    if att is None:
        raise NotFound(f"task {task_id} in run {run_id} has no attempt to launch; dispatch it first")
    if att["runtime"]:
        raise InvalidState(f"attempt {att['attempt_no']} of {task_id} was already launched "
                           f"({att['runtime']} {att['runtime_ref'] or att['pid'] or ''})".rstrip())
    if att["status"] not in LIVE_ATTEMPT:
        raise InvalidState(f"attempt {att['attempt_no']} of {task_id} is {att['status']}; nothing to launch")
    profiles = load_profiles(store.path)
    cfg = rt.run_settings_config(store, run_id)
    if not cfg.get("profiles_sha"):
        # the run's first launch pins the profiles file: the watcher launches with it until the
        # leader confirms a change (console/runtime/healing.py, issue 15)
        from orch_console.store import runs

        runs.run_config(store, run_id=run_id, updates={"profiles_sha": profiles_digest(store.path)})
    prof = resolve_profile(profiles, profile, att["profile"], cfg.get("profile"), att["assigned_to"])
    mode = runtime or prof.runtime
    if mode not in RUNTIMES:
        raise InvalidInput(f"runtime must be tmux or process, not {mode!r}")
    # the attempt's model and effort (orch dispatch --model/--effort) over the profile's
    template, chosen = model_effort.apply(prof, att["model"], att["effort"])
    if prof.max_parallel:
        running = rt.running_workers(store, prof.name)
        if running >= prof.max_parallel:
            raise AtCapacity(f"profile {prof.name} already runs {running} worker(s) "
                             f"(max_parallel={prof.max_parallel}); launch later", prof.name)
    from orch_console.store import holds

    held = holds.active(store).get(prof.name)  # the leader's own launch goes ahead, told why it may not work
    n = att["attempt_no"]
    if att["worktree_path"] or att["execution_mode"] == "code":
        # A code attempt starts in its own worktree or not at all: a blind mkdir would make a plain
        # directory in which git finds the main checkout (issue 15, M7).
        from orch_console.store.checks import check_cwd

        _, missing = check_cwd(att)
        if missing:
            raise InvalidState(f"cannot launch attempt {n} of {task_id}: "
                               f"{missing.replace('the check was not run', 'nothing was started')}; "
                               f"retry the task for a fresh worktree")
    work = runtime_dir(store.path, run_id, task_id, n)
    work.mkdir(parents=True, exist_ok=True)
    brief_file = work / "brief.md"
    brief_file.write_text(brief.render(store, run_id=run_id, task_id=task_id, attempt_no=n,
                                       inbox_cmd=bin_path("inbox")))
    cwd = Path(att["worktree_path"]) if att["worktree_path"] else work / "scratch"
    if not att["worktree_path"]:
        cwd.mkdir(parents=True, exist_ok=True)
    log_file = work / "worker.log"
    db = str(Path(store.path).resolve())
    values = {"brief_file": str(brief_file), "cwd": str(cwd), "worktree": att["worktree_path"] or str(cwd),
              "db": db, "run_id": run_id, "task_id": task_id, "attempt_no": str(n),
              "thread_id": att["thread_id"], "agent": att["assigned_to"], "python": sys.executable,
              "inbox": bin_path("inbox"), "log_file": str(log_file), **chosen}
    command = render_command(template, values)
    env = {"ORCH_DB": db, "ORCH_RUN": run_id, "ORCH_TASK": task_id, "ORCH_ATTEMPT": str(n),
           "ORCH_THREAD": att["thread_id"], "ORCH_AGENT": att["assigned_to"], "ORCH_BRIEF_FILE": str(brief_file),
           "ORCH_WORKTREE": att["worktree_path"] or "",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    worker_env = cfg.get("worker_env") or {}
    if isinstance(worker_env, dict):
        env.update({str(k): str(v) for k, v in worker_env.items()})
    env.update(prof.env)
    from .agents import prepare

    command, prepared = prepare(command, cwd, env)  # real agents: PATH, trust pre-accepted in their own settings
    from orch_console.console.runtime import hooks  # Claude Code / Codex hooks for this attempt (issue 12)

    command, hook_notes = hooks.prepare(command, cwd=cwd, db=db, thread_id=att["thread_id"],
                                        agent=att["assigned_to"], inbox=bin_path("inbox"), env=env)
    from orch_console.store import tokens

    token, token_hash = tokens.new_token()
    env[tokens.ENV] = token  # last: no profile or run setting replaces the attempt's own token
    session = session_name(run_id, task_id, n) if mode == "tmux" else ""
    if session and session_exists(store.path, session):
        # Not ours (a stale server of an earlier database at this path): never record, and so
        # never later stop, a session this attempt did not create.
        raise InvalidState(f"tmux session {session} already exists on {tmux_socket(store.path)}; "
                           f"stop it (tmux -L {tmux_socket(store.path)} kill-session -t ={session}) and launch again")
    if rt.record_launch_intent(store, thread_id=att["thread_id"], runtime=mode, runtime_ref=session,
                               profile=prof.name, brief_path=str(brief_file), log_path=str(log_file),
                               token_hash=token_hash) is None:
        raise InvalidState(f"attempt {n} of {task_id} was launched by someone else meanwhile")
    try:
        pid = _start_tmux(store.path, session, command, cwd, env, log_file) if mode == "tmux" \
            else _start_process(command, cwd, env, log_file)
    except (OSError, subprocess.SubprocessError, OrchError) as exc:
        msg = exc.message if isinstance(exc, OrchError) else f"{type(exc).__name__}: {exc}"
        rt.end_attempt(store, thread_id=att["thread_id"], end_reason="crashed",
                       summary=f"launch failed: {msg}", evidence=command)
        raise InvalidState(f"could not launch {prof.name} for {task_id}: {msg}") from None
    a = rt.record_launched(store, thread_id=att["thread_id"], pid=pid, command=command)
    return {"attempt": public_attempt(a), "profile": prof.name, "runtime": mode, "command": command,
            "model": chosen["model"], "effort": chosen["effort"], "cwd": str(cwd),
            "attach": attach_argv(store.path, a) if mode == "tmux" else None, "prepared": prepared,
            "hooks": hook_notes,
            "warning": (f"profile {prof.name} is held ({held['kind']}): {held['reason']}; launched because you asked"
                        if held else "")}


def launch_or_queue(store: Store, *, run_id: str, task_id: str, attempt_no: int | None = None,
                    profile: str | None = None, runtime: str | None = None) -> dict[str, Any]:
    """launch(); when the profile is at max_parallel, queue the launch instead (issue 15, M8): the
    watcher starts it when a slot frees. A queued launch returns {"queued": True, ...}."""
    try:
        return launch(store, run_id=run_id, task_id=task_id, attempt_no=attempt_no, profile=profile,
                      runtime=runtime)
    except AtCapacity as exc:
        att = rt.get_attempt(store, run_id, task_id, attempt_no)
        if att is None or not rt.queue_launch(store, thread_id=att["thread_id"], profile=exc.profile,
                                              runtime=runtime or "", reason=exc.message):
            raise
        return {"queued": True, "profile": exc.profile, "runtime": runtime or "",
                "reason": exc.message + "; queued: the watcher (`orch watch` or the console) launches it when "
                                        "a slot frees"}


def _start_process(command: str, cwd: Path, env: dict[str, str], log_file: Path) -> int:
    with open(log_file, "ab") as log:
        p = subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, env=os.environ | env, stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    _children[p.pid] = p
    return p.pid


def tmux_escape(text: str) -> str:
    """A literal for a tmux argument that tmux format-expands (and strftime-expands): `#` starts a
    format (`#(cmd)` runs cmd, `#{..}`, `#S`, ...) and `%` a time conversion."""
    return text.replace("#", "##").replace("%", "%%")


def tmux_shell_command(command: str, cwd: Path) -> str:
    """The pane's shell command: change to the worker's directory inside the shell (shell-quoted),
    never through `new-session -c`, which tmux format-expands; a cd that fails ends the pane."""
    return f"cd -- {shlex.quote(str(cwd))} || exit 97\n{command}"


def _start_tmux(db_path: str, session: str, command: str, cwd: Path, env: dict[str, str],
                log_file: Path) -> int:
    # No -c: the path is handed to the shell, not to tmux (H1). The shell command argv and the -e
    # values are not format-expanded; the pipe-pane command is, so it is escaped.
    args = ["new-session", "-d", "-s", session, "-x", "160", "-y", "48"]
    for k, v in env.items():
        args += ["-e", f"{k}={v}"]
    # Chained in one client call: the options are set before the server reaps a fast exit, so a
    # crash leaves a dead pane (and its last screen) behind instead of a vanished session.
    target = exact_target(session)
    args += ["/bin/sh", "-c", tmux_shell_command(command, cwd), ";",
             "set-option", "-t", target, "remain-on-exit", "on",
             ";", "pipe-pane", "-t", target, "-o", tmux_escape(f"exec cat >> {shlex.quote(str(log_file))}")]
    p = tmux(db_path, *args)
    if p.returncode != 0:
        raise InvalidState(f"tmux new-session failed: {(p.stderr or p.stdout).strip()[:300]}")
    info = tmux_panes(db_path).get(session)
    return int(info["pid"]) if info else 0


# -- control ---------------------------------------------------------------------------------
def stop(db_path: str, attempt: dict[str, Any], *, grace: float = 2.0) -> bool:
    """Stop an attempt's worker (tmux session or process group). True if something was stopped."""
    stopped = False
    if attempt.get("runtime") == "tmux" and attempt.get("runtime_ref"):
        try:
            stopped = tmux(db_path, "kill-session", "-t", exact_target(attempt["runtime_ref"])).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            pass
    pid = attempt.get("pid")
    thread = attempt.get("thread_id")
    if not pid and attempt.get("runtime") == "process" and thread:
        # never recorded (the launcher died between start and record): found by ORCH_THREAD
        found = find_worker_pids(thread, db_path)
        pid = found[0] if found else None
    if pid and attempt.get("runtime") == "process" and pid_alive(pid, thread):
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped = True
        except (ProcessLookupError, PermissionError):
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and pid_alive(pid, thread):
            time.sleep(0.02)
        if pid_alive(pid, thread):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        reap()
    return stopped


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
SEND_KEYS_MAX = 4096


def check_keys_text(text: str) -> None:
    """One line of plain text: a newline or carriage return would run as a separate command in
    the worker's shell, an escape could drive its terminal (L1)."""
    m = _CONTROL.search(text)
    if m:
        raise InvalidInput(f"keys to type must be one line of plain text; found control character "
                           f"{m.group(0)!r} at position {m.start()}")
    if len(text) > SEND_KEYS_MAX:
        raise InvalidInput(f"keys to type are limited to {SEND_KEYS_MAX} characters, not {len(text)}")


def send_keys(store: Store, *, run_id: str, task_id: str, text: str, enter: bool = True,
              by: str | None = None) -> dict[str, Any]:
    """Type the leader's answer into a tmux worker's terminal (a prompt like `Continue? [y/n]`)."""
    check_keys_text(text)
    att = rt.get_attempt(store, run_id, task_id)
    if att is None:
        raise NotFound(f"task {task_id} has no attempt")
    if att["runtime"] != "tmux" or not att["runtime_ref"]:
        raise InvalidState(f"attempt {att['attempt_no']} of {task_id} has no terminal to type into "
                           f"(runtime {att['runtime'] or 'none'})")
    target = exact_target(att["runtime_ref"])
    # `--`: text that starts with `-` (-1, --force, -R) is typed, never parsed as send-keys flags.
    p = tmux(store.path, "send-keys", "-t", target, "-l", "--", text) if text else None
    if (p is None or p.returncode == 0) and enter:
        p = tmux(store.path, "send-keys", "-t", target, "Enter")
    if p is None:
        raise InvalidInput("nothing to type: the text is empty and enter is off")
    if p.returncode != 0:
        raise InvalidState(f"tmux send-keys failed: {(p.stderr or p.stdout).strip()[:300]}")
    rt.record_input_sent(store, thread_id=att["thread_id"], text=text, by=by or leader_name())
    return {"sent": text, "enter": enter, "session": att["runtime_ref"]}


def kill_server(db_path: str) -> None:
    """Stop the private tmux server of a database (tests and the demo clean up with this)."""
    try:
        tmux(db_path, "kill-server")
    except (OSError, subprocess.TimeoutExpired):
        pass
