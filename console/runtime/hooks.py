"""Real agents' own hooks, per attempt (issue 12 items 5 and 6).

Install (at launch, `prepare`):
* Claude Code: hooks in the worktree's `.claude/settings.local.json` (merged into what is there;
  kept out of commits through the repository's `info/exclude`, the file
  `git rev-parse --git-path info/exclude` names, which worktrees share).
* Codex: hooks passed on its command line (`-c hooks.<Event>=[...]`), each trusted by its own
  hash in the same session-flags layer (`-c hooks.state={...}`), exactly as Codex computes it
  (sha256 of the hook's normalized identity). Nothing global is written and nothing else is
  trusted: a hook the user has not reviewed stays untrusted.

Each hook runs `inbox hook --thread T --agent A --source S --event E`, which reads the hook's JSON
on stdin and records it for the attempt (store/hook_events.py). It is fast and never blocks the
agent, except for PermissionRequest: that one becomes an approval waiting on the leader
(store/approvals.py); the hook waits for the answer in bounded polls and prints the agent's
documented decision JSON on stdout. When nobody answers in time it prints nothing, and the agent
shows its own menu (answered by keys, `approve_by_keys`).

Fuse (`fuse`): the watcher's view of an attempt from its latest hook and its screen. A fresh hook
wins; the screen decides once hooks are stale; a flip away from working is debounced; "done"
never comes from here (only `inbox done`, a process exit or a result end an attempt).

Headless: imports no Textual.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from pathlib import Path

# `inbox hook` runs on every hook call of the agents: this module imports only what that path
# needs (no dataclasses, subprocess, hashlib or pathlib at import time: ~100 ms of start-up).

CLAUDE_EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest", "PostToolUse",
                 "Notification", "Stop", "SessionEnd")
CODEX_EVENTS = ("SessionStart", "UserPromptSubmit", "PreToolUse", "PermissionRequest", "PostToolUse", "Stop")
CODEX_LABELS = {"SessionStart": "session_start", "UserPromptSubmit": "user_prompt_submit",
                "PreToolUse": "pre_tool_use", "PermissionRequest": "permission_request",
                "PostToolUse": "post_tool_use", "Stop": "stop"}
CODEX_FLAGS_SOURCE = "/<session-flags>/config.toml"
ORCH_MARK = "orch-hook"          # every orch hook command carries it: found and replaced on relaunch
APPROVAL_WAIT_SECONDS = 540.0    # how long a PermissionRequest hook waits for the leader
HOOK_TIMEOUT = 600               # the agents' own limit on a hook (seconds): the wait fits inside it
QUICK_TIMEOUT = 30
EXCLUDE_LINE = "/.claude/settings.local.json"


# -- which agent ------------------------------------------------------------------------------
_AGENT_WORD = re.compile(r"(?:^|[;&|(]|\bexec|\benv)\s*(?:[A-Za-z_]\w*=\S*\s+)*"   # VAR=value prefixes
                         r"((?:[^\s;&|()'\"]*/)?(claude|codex))(?=\s|$)")


def agent_of(command: str) -> str:
    """'claude' or 'codex' when the command starts that agent (its first program word), else ''."""
    m = _AGENT_WORD.search(command)
    return m.group(2) if m else ""


# -- the hook command -------------------------------------------------------------------------
def hook_command(inbox: str, db: str, thread_id: str, agent: str, source: str, event: str,
                 wait_seconds: float | None = None) -> str:
    extra = ("--wait-seconds", f"{wait_seconds:g}") if wait_seconds is not None and event == "PermissionRequest" else ()
    return " ".join(shlex.quote(x) for x in (inbox, "--db", db, "hook", "--thread", thread_id, "--agent", agent,
                                             "--source", source, "--event", event, *extra, "--mark", ORCH_MARK))


def approval_wait(env: dict[str, str] | None) -> float | None:
    """ORCH_APPROVAL_WAIT_SECONDS (profile env, else orch's): how long a permission waits for the
    leader before the agent asks on its own screen; None: the default."""
    raw = (env or {}).get("ORCH_APPROVAL_WAIT_SECONDS") or os.environ.get("ORCH_APPROVAL_WAIT_SECONDS")
    if not raw:
        return None
    try:
        return max(0.0, min(float(raw), float(HOOK_TIMEOUT - 30)))
    except ValueError:
        return None


def claude_settings(inbox: str, db: str, thread_id: str, agent: str, wait: float | None = None) -> dict[str, Any]:
    hooks: dict[str, Any] = {}
    for ev in CLAUDE_EVENTS:
        h = {"type": "command", "command": hook_command(inbox, db, thread_id, agent, "claude", ev, wait),
             "timeout": HOOK_TIMEOUT if ev == "PermissionRequest" else QUICK_TIMEOUT}
        hooks[ev] = [{"matcher": "", "hooks": [h]}] if ev in ("PreToolUse", "PostToolUse", "PermissionRequest") \
            else [{"hooks": [h]}]
    return hooks


def install_claude(cwd: Path, inbox: str, db: str, thread_id: str, agent: str, wait: float | None = None) -> str:
    """Merge orch's hooks into <cwd>/.claude/settings.local.json (the user's own entries kept,
    earlier orch entries replaced) and keep the file out of commits."""
    path = cwd / ".claude" / "settings.local.json"
    doc: dict[str, Any] = {}
    if path.exists():
        try:
            doc = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            return f"claude hooks: {path} is not readable JSON; hooks not installed"
        if not isinstance(doc, dict):
            return f"claude hooks: {path} is not a JSON object; hooks not installed"
    hooks = doc.get("hooks")
    if not isinstance(hooks, dict):
        hooks = {}
    for ev, groups in claude_settings(inbox, db, thread_id, agent, wait).items():
        kept = [g for g in hooks.get(ev, []) if not _is_orch_group(g)]
        hooks[ev] = kept + groups
    doc["hooks"] = hooks
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, path)
    excluded = exclude_from_git(cwd, EXCLUDE_LINE)
    return f"claude hooks: {len(CLAUDE_EVENTS)} events in {path}" + (f"; {excluded}" if excluded else "")


def _is_orch_group(g: Any) -> bool:
    return isinstance(g, dict) and any(ORCH_MARK in str(h.get("command", "")) for h in g.get("hooks", [])
                                       if isinstance(h, dict))


def exclude_from_git(cwd: Path, line: str) -> str:
    """Add line to the repository's info/exclude (shared by its worktrees), once."""
    import subprocess
    from pathlib import Path
    try:
        p = subprocess.run(["git", "-C", str(cwd), "rev-parse", "--path-format=absolute", "--git-path",
                            "info/exclude"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if p.returncode != 0 or not p.stdout.strip():
        return ""
    exclude = Path(p.stdout.strip())
    text = exclude.read_text() if exclude.exists() else ""
    if line in text.splitlines():
        return ""
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with open(exclude, "a") as fh:
        fh.write(("" if not text or text.endswith("\n") else "\n") + line + "\n")
    return f"{line} added to {exclude}"


def codex_hook_hash(event: str, command: str, timeout: int = HOOK_TIMEOUT, matcher: str | None = None) -> str:
    """Codex's trust hash of one command hook: sha256 of the sorted, compact JSON of its normalized
    identity {event_name, matcher?, hooks: [{type, command, timeout, async}]}."""
    ident: dict[str, Any] = {"event_name": CODEX_LABELS.get(event, event),
                             "hooks": [{"type": "command", "command": command, "timeout": timeout, "async": False}]}
    if matcher is not None:
        ident["matcher"] = matcher
    import hashlib

    text = json.dumps(ident, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def codex_args(inbox: str, db: str, thread_id: str, agent: str, wait: float | None = None) -> list[str]:
    """`-c` overrides that define orch's hooks for this Codex session and trust exactly them."""
    args: list[str] = []
    state = []
    for ev in CODEX_EVENTS:
        timeout = HOOK_TIMEOUT if ev == "PermissionRequest" else QUICK_TIMEOUT
        cmd = hook_command(inbox, db, thread_id, agent, "codex", ev, wait)
        args += ["-c", f"hooks.{ev}=[{{hooks=[{{type=\"command\",command={json.dumps(cmd)},timeout={timeout}}}]}}]"]
        key = f"{CODEX_FLAGS_SOURCE}:{CODEX_LABELS[ev]}:0:0"
        state.append(f"{json.dumps(key)}={{trusted_hash={json.dumps(codex_hook_hash(ev, cmd, timeout))}}}")
    args += ["-c", "hooks.state={" + ",".join(state) + "}"]
    return args


def prepare(command: str, *, cwd: Path, db: str, thread_id: str, agent: str, inbox: str,
            env: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """At launch: install the hooks of the agent the command starts. Returns (command, notes).
    A profile with ORCH_HOOKS=0 in its env gets none (its menus are answered by keys)."""
    kind = agent_of(command)
    if kind and (env or {}).get("ORCH_HOOKS", os.environ.get("ORCH_HOOKS", "1")) in ("0", "no", "false", "off"):
        return command, [f"{kind} hooks: off (ORCH_HOOKS=0)"]
    if kind == "claude":
        return command, [install_claude(cwd, inbox, db, thread_id, agent, approval_wait(env))]
    if kind == "codex":
        extra = " ".join(shlex.quote(a) for a in codex_args(inbox, db, thread_id, agent, approval_wait(env)))
        m = _AGENT_WORD.search(command)
        assert m is not None
        return command[:m.end(1)] + " " + extra + command[m.end(1):], \
            [f"codex hooks: {len(CODEX_EVENTS)} events on the command line, trusted by hash"]
    return command, []


# -- the hook side (inbox hook) ---------------------------------------------------------------
def decision_json(source: str, decision: str, reason: str = "") -> dict[str, Any]:
    """The PermissionRequest answer in the agents' documented shape (the same for Claude Code and
    Codex): hookSpecificOutput.decision.behavior allow|deny, with a message when denied."""
    d: dict[str, Any] = {"behavior": "allow" if decision in ("allow", "always") else "deny"}
    if d["behavior"] == "deny":
        d["message"] = reason or "denied by the leader"
    return {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": d}}


def handle_hook(store: Any, *, thread_id: str, agent: str, source: str, event: str, raw: str,
                wait_seconds: float = APPROVAL_WAIT_SECONDS, inbox_path: str = "") -> dict[str, Any] | None:
    """Record one hook call; for PermissionRequest wait for the answer. Returns the JSON to print
    on stdout (or None: print nothing, the agent goes on as if no hook had spoken)."""
    from orch_console.store import approvals, hook_events

    try:
        payload = json.loads(raw) if raw.strip() else {}
    except ValueError:
        payload = {"unparsed": raw[:2000]}
    if not isinstance(payload, dict):
        payload = {"value": payload}
    event = event or str(payload.get("hook_event_name") or "")
    if event != "PermissionRequest":
        hook_events.record(store, thread_id=thread_id, event=event, payload=payload, agent=agent, source=source)
        return None
    # the hook's row and the approval in one commit: the watcher flags it on that one wake-up
    ap = approvals.request(store, thread_id=thread_id, source=source, agent=agent, payload=payload,
                           inbox_path=inbox_path, hook_event=event)
    if ap["status"] == "pending":
        aid = ap["approval_id"]
        decided = approvals.wait_decision(store, aid, wait_seconds)
        if decided is None:  # nobody answered in time: the agent asks on its own screen
            approvals.expire(store, aid, "no answer in time; the agent shows its own menu (orch approve types "
                                         "the key)")
            decided = approvals.get(store, aid)
            if decided is None or decided["status"] != "decided":  # (unless answered in the very last moment)
                return None
        ap = decided
    approvals.mark_delivered(store, ap["approval_id"])
    hook_events.record(store, thread_id=thread_id, event="PermissionDecision", agent=agent, source=source,
                       payload={"decision": ap["decision"], "approval_id": ap["approval_id"]})
    return decision_json(source, ap["decision"], ap["reason"])


# -- answering without a hook: keys into the pane ----------------------------------------------
MENU = re.compile(r"Do you want to proceed\?|Would you like to run the following command\?|"
                  r"Do you want to (make this edit|create|allow)|Allow execution of|Permission required",
                  re.IGNORECASE)


def menu_shown(screen: str) -> bool:
    lines = [ln for ln in (screen or "").splitlines() if ln.strip()]
    return any(MENU.search(ln) for ln in lines[-30:])


def pick_option(options: list[Any], decision: str) -> str:
    """The key of the screen menu's option for a decision (options: screens.Option or dicts)."""
    def label(o: Any) -> str:
        return str(o.label if hasattr(o, "label") else o.get("label", "")).lower()

    def key(o: Any) -> str:
        return str(o.key if hasattr(o, "key") else o.get("key", ""))

    for o in options:
        lab = label(o)
        always = "always" in lab or "don't ask" in lab or "do not ask" in lab or "session" in lab
        if decision == "deny" and (lab.startswith("no") or "reject" in lab or "cancel" in lab):
            return key(o)
        if decision == "always" and always and not lab.startswith("no"):
            return key(o)
        if decision == "allow" and (lab.startswith("yes") or lab.startswith("allow")) and not always:
            return key(o)
    return ""


def keys_for(source: str, decision: str, screen: str = "") -> list[str]:
    """What to type into the pane for decision: the menu's own key when the screen shows one."""
    from orch_console.store.approvals import OPTIONS

    try:
        from orch_console.console.runtime import screens

        v = screens.classify(screen, source or None) if screen else None
        k = pick_option(list(v.options), decision) if v is not None and v.options else ""
        if k:
            return [k]
    except Exception:  # the recogniser is a help here, never a requirement
        pass
    if decision == "always" and source == "codex":
        decision = "allow"
    for o in OPTIONS.get(source, []):
        if o["decision"] == decision and o["key"]:
            return [o["key"]]
    return {"allow": ["Enter"], "always": ["Enter"], "deny": ["Escape"]}[decision]


def _screen_agent(screen: str) -> str:
    try:
        from orch_console.console.runtime import screens

        return screens.detect_agent(screen)
    except Exception:
        return ""


def _menu_line(screen: str) -> str:
    lines = [ln.strip() for ln in screen.splitlines() if ln.strip()]
    for i, ln in enumerate(lines):
        if MENU.search(ln):
            return " / ".join(lines[max(0, i - 2):i + 1])[:500]
    return ""


# -- fusion -----------------------------------------------------------------------------------
HOOK_FRESH_SECONDS = 20.0   # a hook younger than this wins over the screen
DEBOUNCE_SECONDS = 3.0      # a flip away from working must hold this long
ANSWERED_MENU_SECONDS = 1.5  # a menu this soon after its request was decided is the answered one


class Fused(NamedTuple):
    state: str      # working | waiting_input | idle | starting | exited | error | unknown | ''
    source: str     # 'hook' | 'screen' | 'debounce'
    line: str = ""


def fuse(*, now: float, hook_state: str = "", hook_at: float = 0.0, hook_detail: str = "", hook_event: str = "",
         screen_state: str = "", screen_line: str = "", screen_changed_at: float = 0.0,
         approval_pending: bool = False, prev_state: str = "", prev_since: float = 0.0,
         fresh_seconds: float = HOOK_FRESH_SECONDS, debounce_seconds: float = DEBOUNCE_SECONDS) -> Fused:
    """One attempt's state from its latest hook and its screen.

    * A fresh hook wins: younger than fresh_seconds, or newer than the screen's last change (the
      screen has shown nothing since). A permission hook wins exactly while its request waits
      for the leader (approval_pending).
    * Otherwise the screen decides (the hooks are stale).
    * A flip from working to anything but a hook's waiting_input (a permission request is
      reported at once) holds only after debounce_seconds; until then the state stays working.
      prev_state/prev_since are the previous verdict and since when a flip away was first seen.
    * Never 'done': a Stop hook says idle (the turn is over), SessionEnd says exited.
    """
    if hook_state == "waiting_input":
        # a permission hook counts while its request waits for the leader; once answered (or given
        # up, or answered by a rule) the screen shows what happened since. A Notification that
        # says "needs your permission" has no request of ours behind it: fresh for a while only.
        fresh = approval_pending or (hook_event == "Notification" and now - hook_at <= fresh_seconds)
    else:
        fresh = bool(hook_state) and (now - hook_at <= fresh_seconds or hook_at >= screen_changed_at)
    if fresh:
        cand = Fused(hook_state, "hook", hook_detail)
    else:
        cand = Fused(screen_state or "unknown", "screen", screen_line)
    if prev_state == "working" and cand.state != "working":
        immediate = cand.source == "hook" and cand.state in ("waiting_input", "exited")
        if not immediate and (not prev_since or now - prev_since < debounce_seconds):
            return Fused("working", "debounce", cand.line)
    return cand


def screen_state_of(pane_state: str) -> str:
    """The old generic classifier's words in fuse()'s terms."""
    return {"active": "working", "waiting_input": "waiting_input", "error": "error"}.get(pane_state, pane_state)


def fuse_for_attempt(store: Any, memo: dict[str, Any], a: dict[str, Any], *, now: float, pane_state: str,
                     pane_line: str, output_changed_at: float) -> tuple[str, str]:
    """The watcher's hook: (pane_state, pane_line) for store.liveness.judge, fused with the
    attempt's latest hook. Attempts whose agent never ran a hook are judged by the screen alone,
    unchanged. memo keeps, per attempt, the last fused state and since when a flip away from
    working was first seen (the debounce)."""
    from orch_console.store import approvals, hook_events

    last = hook_events.latest(store, a["thread_id"])
    if last is None:
        return pane_state, pane_line
    pending = approvals.pending_id(store, a["thread_id"])
    if not pending and pane_state == "waiting_input" and approvals.decided_within(store, a["thread_id"],
                                                                                  ANSWERED_MENU_SECONDS):
        # The menu the agent drew while its hook waited, still up until the hook hands the answer
        # back (it polls every 0.2 s) and the agent redraws: answered, not a new request. Flagging
        # it would use up the flag of the next real one.
        pane_state, pane_line = "active", ""
    prev_state, prev_since = memo.get(a["thread_id"], ("", 0.0))
    f = fuse(now=now, hook_state=last.state, hook_at=last.at, hook_detail=last.detail, hook_event=last.event,
             screen_state=screen_state_of(pane_state), screen_line=pane_line, screen_changed_at=output_changed_at,
             approval_pending=bool(pending), prev_state=prev_state, prev_since=prev_since)
    if f.source == "debounce":
        memo[a["thread_id"]] = ("working", prev_since or now)
    else:
        memo[a["thread_id"]] = (f.state, 0.0)
    if f.state == "waiting_input":
        line = f.line if f.source != "hook" else f"permission request: {last.detail}"[:300]
        return "waiting_input", line
    if f.state == "error":
        return "error", f.line
    if f.state == "unknown" and not pane_state:
        return "", ""
    return "active", ""
