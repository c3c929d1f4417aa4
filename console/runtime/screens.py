"""What is an agent's screen showing? Per-agent recognisers over tmux `capture-pane -p` text.

Pure functions: no Textual, no SQL, no tmux. `classify(text, agent)` reads the screen's structure
(the last menu and its numbered options, the footer hints under it, the question above it,
spinners and "esc to interrupt", the prompt line and its footer, the latest turn's error banners,
tmux's "Pane is dead" line) and returns a Verdict:

    working                              the agent is busy (spinner, "esc to interrupt")
    waiting_input  permission|question|dialog|login, with the options offered
    idle                                 at its prompt, nothing running
    error          auth|network|usage_limit|api|exited
    starting                             a blank screen or a start-up banner with no prompt yet
    unknown                              no rule fired: never a guess

Each verdict names the rule that fired, the line it fired on, and the agent's version when the
screen shows it. The rules were written against the corpus of real captures in
tests/agents/corpus/ (Claude Code 2.1.197, Codex 0.171.0, Gemini CLI 0.61.0, opencode
1.18.33, aider 0.86.2), which tests/agents/test_corpus.py checks. Agents without a profile get
the generic rules (structural menus, y/n prompts, the liveness patterns of store/liveness.py).

`fingerprint(text)` hashes a screen with its timers and spinners masked, so a ticking
"Working (48s • esc to interrupt)" is not mistaken for progress.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from orch_console.store.liveness import screen_signature

STATES = ("working", "waiting_input", "idle", "error", "starting", "unknown")
WAIT_KINDS = ("permission", "question", "dialog", "login")
ERROR_KINDS = ("auth", "network", "usage_limit", "api", "exited")
MENU_WINDOW = 45     # how far up from the bottom a menu may start (Codex's approval overlay is tall)
QUESTION_WINDOW = 14  # how far above a menu's first option its question may sit

@dataclass(frozen=True)
class Option:
    key: str          # "1", "y"
    label: str        # "Yes, and always allow access to repo/ from this project"
    selected: bool = False

@dataclass(frozen=True)
class Verdict:
    state: str
    kind: str = ""
    rule: str = ""
    line: str = ""
    agent: str = ""
    version: str = ""
    question: str = ""
    options: tuple[Option, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["options"] = [asdict(o) for o in self.options]
        return d

# -- shared patterns ------------------------------------------------------------------------------
RULE = re.compile(r"^\s*[─━═]{10,}\s*$|^[\s╭╮╰╯─━═┌┐└┘│]+$")
BOX_EDGE = re.compile(r"^\s*[│┃║]\s?|\s?[│┃║]\s*$")
OPTION = re.compile(r"^\s*(?P<cur>[❯›>▶●→]\s*)?(?P<num>\d{1,2})\.\s+(?P<label>\S.*?)\s*$")
MENU_FOOTER = re.compile(r"enter to (confirm|select|continue|submit|save)|esc to (cancel|go back|back)|"
                         r"press enter|tab to amend|enter continue|enter confirm|esc skip|↑/↓ to navigate|"
                         r"use enter to select|"
                         r"\(esc\)\s*$", re.IGNORECASE)
TEXT_FIELD_FOOTER = re.compile(r"press enter to (save|submit)", re.IGNORECASE)
PANE_DEAD = re.compile(r"^Pane is dead \(status (?P<status>-?\d+)")
# aider: "Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]:" -- the default ends the line
AIDER_YN = re.compile(r"^(?P<q>.*?\?)\s*(?P<opts>(?:\([A-Za-z]\)[\w' ]+/?)+)\s*\[(?P<default>[\w' ]+)\]:\s*$")

PERMISSION = re.compile(r"Do you want to proceed|Would you like to run the following command|"
                        r"Do you want to (make this edit|create|overwrite|allow|fetch)|Permission required|"
                        r"Allow (execution|once|this)|requires? (approval|permission)|wants to (run|use|navigate)|"
                        r"^\s*Bash command\s*$|Run shell command\?|Add (file|url)s? to the chat\?|"
                        r"Create new file\?|Allow edits to file|Edit the files\?", re.IGNORECASE | re.MULTILINE)
DIALOG = re.compile(r"trust (this|the) folder|trust the files|Quick safety check|Do you want to use this API key|"
                    r"Hooks need review|Folder access|Bypass Permissions mode|new MCP server|"
                    r"to \.gitignore|what's new in this version", re.IGNORECASE)
LOGIN = re.compile(r"Sign in with|Sign in another way|Use an OpenAI API key|Paste or type your API key|"
                   r"How would you like to authenticate|Login to OpenRouter|Select login method|"
                   r"Enter (your )?\w* ?API Key", re.IGNORECASE)

ERR_AUTH = re.compile(r"Not logged in|Please run /login|Invalid API key|API Error:? \(?401|authentication_error|"
                      r"OAuth token (has )?expired|Invalid authentication credentials|AuthenticationError|"
                      r"401 Unauthorized|invalid_api_key", re.IGNORECASE)
ERR_USAGE = re.compile(r"usage limit|limit reached|rate.?limit|\b429\b|Too Many Requests|RateLimitError|"
                       r"quota exceeded|resets? (at|in)\b|credit balance is too low", re.IGNORECASE)
ERR_NETWORK = re.compile(r"Unable to connect|ConnectionRefused|ENOTFOUND|ECONNREFUSED|Reconnecting\.\.\.|"
                         r"waiting for network|Connection failed|error sending request|fetch failed|"
                         r"Cannot connect to API|Connection error|Failed to connect|network error",
                         re.IGNORECASE)
ERR_API = re.compile(r"API Error|API error · Retrying|exceeded retry limit|Overloaded|InternalServerError|"
                     r"stream error|unexpected status|server_error|\b5\d\d\b.*error", re.IGNORECASE)
WORKING_ANY = re.compile(r"\b(esc|ctrl\+c|press esc) to (interrupt|cancel)\b", re.IGNORECASE)

def clean(line: str) -> str:
    """A screen line without its box edges (Gemini and others draw dialogs in boxes) or trailing blanks."""
    return BOX_EDGE.sub("", line.rstrip()).rstrip()

def error_kind(line: str) -> str:
    for kind, pat in (("auth", ERR_AUTH), ("usage_limit", ERR_USAGE), ("network", ERR_NETWORK), ("api", ERR_API)):
        if pat.search(line):
            return kind
    return ""

def menu_kind(block: str) -> str:
    if PERMISSION.search(block):
        return "permission"
    if DIALOG.search(block):
        return "dialog"
    if LOGIN.search(block):
        return "login"
    return "question"

# -- agent profiles -------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgentScreen:
    name: str
    signature: re.Pattern[str]                 # tells this agent's screen from others
    version: re.Pattern[str] | None = None
    composer: re.Pattern[str] | None = None    # the prompt line the user types into
    composer_needs_rule_above: bool = False    # Claude draws its composer between two rules
    composer_footer: re.Pattern[str] | None = None  # Codex: a footer line must follow its composer
    echo: re.Pattern[str] | None = None        # how a submitted prompt shows in the transcript
    working: re.Pattern[str] | None = None     # busy markers in the latest turn or the footer
    idle_login: re.Pattern[str] | None = None  # at the prompt, but not logged in
    prompt_last_line: re.Pattern[str] | None = None  # line-oriented agents (aider): the prompt is the last line
    ready_footer: re.Pattern[str] | None = None  # at the prompt, this footer shows once the session is up

CLAUDE = AgentScreen(
    "claude",
    signature=re.compile(r"Claude Code v\d|Claude Code'll be able|\? for shortcuts · ← for agents|"
                         r"Unable to connect to Anthropic services|Tab to amend"),
    version=re.compile(r"Claude Code v(\d+\.\d+\.\d+)"),
    composer=re.compile(r"^❯(?:[\s\u00a0]|$)"),
    composer_needs_rule_above=True,
    echo=re.compile(r"^❯[\s\u00a0]+\S"),
    # "✶ Blanching… (11s · ↓ 20 tokens)" (a done turn reads "✻ Baked for 0s": no ellipsis)
    working=re.compile(r"^[✳✽✶✻✢·*]\s+\S.*…|esc to interrupt|ctrl\+c to interrupt|⎿\s+Running…"),
    idle_login=re.compile(r"Not logged in · Run /login"),
)
CODEX = AgentScreen(
    "codex",
    signature=re.compile(r"OpenAI Codex \(v|Ask Codex to do anything|Welcome to Codex|Codex can read, edit"),
    version=re.compile(r"OpenAI Codex \(v(\d+\.\d+\.\d+)\)"),
    composer=re.compile(r"^›\s"),
    composer_footer=re.compile(r"\? for shortcuts|^\s{2}\S.* · |esc to interrupt|context left|% left"),
    echo=re.compile(r"^›\s+\S"),
    working=re.compile(r"^[•◦]\s+Working \(|esc to interrupt|background terminals? running"),
    # "fake-model default · /path": the model line appears when the session is configured
    ready_footer=re.compile(r"^\s{2}\S.* · "),
)
AIDER = AgentScreen(
    "aider",
    signature=re.compile(r"^Aider v\d|\(Y\)es/\(N\)o|aider\.chat|^Main model: |^Repo-map:", re.MULTILINE),
    version=re.compile(r"Aider v(\d+\.\d+\.\d+)"),
    echo=re.compile(r"^\w*> \S"),
    working=re.compile(r"Waiting for \S+|Thinking\.\.\.|░█|█░|Retrying in \d"),
    prompt_last_line=re.compile(r"^(\w+ )?(architect|ask|code|diff|whole|multi)?>\s*$"),
)
GEMINI = AgentScreen(
    "gemini",
    signature=re.compile(r"Gemini CLI v\d|Type your message or @path/to/file|Trusting a folder allows Gemini CLI"),
    version=re.compile(r"Gemini CLI v(\d+\.\d+\.\d+)"),
    composer=re.compile(r"^\s*[>*!]\s"),  # ">" normal, "*" in YOLO mode, "!" in shell mode
    composer_footer=re.compile(r"workspace \(|no sandbox|/model|\bsandbox\b"),
    echo=re.compile(r"^\s*>\s+\S"),
    # "⠴ Thinking... (esc to cancel, 1s)"
    working=re.compile(r"esc to cancel|^\s*[⠁-⣿]\s+\S"),
)
OPENCODE = AgentScreen(
    "opencode",
    signature=re.compile(r"OpenCode \d|Ask anything…|tab agents\s+ctrl\+p commands|△ Permission required"),
    # "• OpenCode 1.18.33" in the sidebar, or the version alone at the end of the status line
    version=re.compile(r"OpenCode (\d+\.\d+\.\d+)|:\S+\s{20,}(\d+\.\d+\.\d+)\s*$", re.MULTILINE),
    composer=re.compile(r"^\s*Ask anything…"),
    working=re.compile(r"esc (to )?interrupt"),
)
GENERIC = AgentScreen("", signature=re.compile(r"(?!x)x"))
AGENTS: dict[str, AgentScreen] = {a.name: a for a in (CLAUDE, CODEX, AIDER, GEMINI, OPENCODE)}

def detect_agent(text: str) -> str:
    for a in AGENTS.values():
        if a.signature.search(text):
            return a.name
    return ""

# -- the recogniser ---------------------------------------------------------------------------------
def classify(text: str, agent: str | None = None) -> Verdict:
    """The verdict for one screen. agent: a profile name (claude, codex, gemini, opencode, aider), '' or
    None to detect it from the screen; any other agent gets the generic rules."""
    raw = (text or "").replace("\r", "")
    name = (agent or "").strip().lower() or detect_agent(raw)
    prof = AGENTS.get(name, GENERIC)
    raw_lines = raw.split("\n")
    lines = [clean(ln) for ln in raw_lines]
    while lines and not lines[-1].strip():
        lines.pop()
    boxed = [bool(re.match(r"^\s*[│┃║]", ln)) for ln in raw_lines[:len(lines)]]
    version = ""
    if prof.version:
        m = prof.version.search(raw)
        version = next((g for g in m.groups() if g), "") if m else ""

    def v(state: str, kind: str = "", rule: str = "", line: str = "", **kw: Any) -> Verdict:
        return Verdict(state, kind, rule, line.strip()[:300], name, version, **kw)

    if not lines:
        return v("starting", rule="blank_screen")

    # 1. tmux kept the pane after the agent exited (remain-on-exit)
    m = PANE_DEAD.match(lines[-1].strip())
    if m:
        return v("error", "exited", "pane_dead", lines[-1])

    composer = _composer(lines, prof)
    # 2. a menu, with no prompt below it (a menu above the prompt is history)
    menu = _menu(lines, composer, boxed)
    if menu is not None:
        first, last, options, footer_line = menu
        block = "\n".join(lines[max(0, first - QUESTION_WINDOW):last + 1])
        question = _question(lines, first)
        return v("waiting_input", menu_kind(block), "menu", lines[first], question=question,
                 options=tuple(options))

    # 2b. a row of buttons over "enter confirm" (opencode: "Allow once   Allow always   Reject")
    buttons = _buttons(lines) if composer is None else None
    if buttons is not None:
        i, options = buttons
        block = "\n".join(lines[max(0, i - QUESTION_WINDOW):i + 1])
        q = next((lines[k].strip() for k in range(i - 1, max(-1, i - QUESTION_WINDOW - 1), -1)
                  if PERMISSION.search(lines[k])), "") or _question(lines, i)
        return v("waiting_input", menu_kind(block), "buttons", lines[i], question=q, options=tuple(options))

    # 3. a text field (Codex's API-key entry, Gemini's key prompt)
    tail = lines[-12:]
    for i in range(len(tail) - 1, -1, -1):
        if TEXT_FIELD_FOOTER.search(tail[i]) and composer is None:
            block = "\n".join(lines[-30:])
            # the question is the field's own prompt line, never the field's content (it may be a key)
            q = next((x.strip() for x in lines[-30:] if LOGIN.search(x) or x.strip().endswith("?")), "")
            return v("waiting_input", menu_kind(block), "text_field", tail[i], question=q)

    # 4. line-oriented y/n prompts on the last line (aider's "(Y)es/(N)o [Yes]:", "[y/n]")
    last_line = lines[-1].strip()
    m = AIDER_YN.match(last_line)
    if m:
        opts = tuple(Option(o[1].lower(), o[1] + o[3:].strip(), (o[1] + o[3:].strip()) == m["default"])
                     for o in re.findall(r"\([A-Za-z]\)[\w' ]+", m["opts"]))
        return v("waiting_input", menu_kind(m["q"]), "yes_no_default", last_line, question=m["q"].strip(), options=opts)
    from orch_console.store.liveness import ANSWERS, WAITING_INPUT

    for ln in reversed([x for x in lines if x.strip()][-2:]):
        ms = list(WAITING_INPUT.finditer(ln))
        if ms and ln[ms[-1].end():].strip().lower() not in ANSWERS:
            return v("waiting_input", menu_kind(ln), "yes_no", ln, question=ln.strip())

    # 5. the latest turn: error banners, then busy markers
    turn = _latest_turn(lines, composer, prof)
    below = lines[composer + 1:] if composer is not None else []
    for ln in reversed(turn):
        kind = error_kind(ln)
        if kind and _banner(ln):
            return v("error", kind, "turn_error", ln)
    if prof.working:
        for ln in list(reversed(below)) + list(reversed(turn[-8:])):
            if prof.working.search(ln):
                return v("working", rule="busy_marker", line=ln)
    elif any(WORKING_ANY.search(ln) for ln in lines[-15:]):
        ln = next(ln for ln in reversed(lines[-15:]) if WORKING_ANY.search(ln))
        return v("working", rule="interrupt_hint", line=ln)

    # 6. at the prompt
    if composer is not None:
        for ln in below:
            if prof.idle_login and prof.idle_login.search(ln):
                return v("waiting_input", "login", "prompt_not_logged_in", ln)
        if prof.ready_footer and not any(prof.ready_footer.search(x) for x in below[:4]):
            return v("starting", rule="prompt_before_session", line=lines[composer])
        return v("idle", rule="prompt", line=lines[composer])
    if prof.prompt_last_line and prof.prompt_last_line.match(last_line):
        return v("idle", rule="prompt", line=last_line)

    # 7. generic: an error in the last lines (store/liveness.py's families, kind from the words)
    from orch_console.store.liveness import ERROR

    for ln in reversed(lines[-6:]):
        kind = error_kind(ln)
        if ERROR.search(ln) or (kind and prof is not GENERIC):
            return v("error", kind, "error_line", ln)
    # 8. a start-up banner and nothing else yet
    if prof is not GENERIC and not any(ln.strip() for ln in lines[-8:]):
        return v("starting", rule="banner_only", line=next((x for x in lines if x.strip()), ""))
    return v("unknown")

def _composer(lines: list[str], prof: AgentScreen) -> int | None:
    """Index of the prompt line the user types into, if this agent's screen shows one."""
    if prof.composer is None:
        return None
    lo = max(0, len(lines) - MENU_WINDOW)
    for i in range(len(lines) - 1, lo - 1, -1):
        ln = lines[i]
        if not prof.composer.match(ln) or OPTION.match(ln):
            continue
        if prof.composer_needs_rule_above and not (i > 0 and RULE.match(lines[i - 1])):
            continue
        if prof.composer_footer is not None and not any(prof.composer_footer.search(x) for x in lines[i + 1:i + 5]):
            continue
        return i
    return None

def _menu(lines: list[str], composer: int | None,
          boxed: list[bool] | None = None) -> tuple[int, int, list[Option], str] | None:
    """(first option, last option, options, footer line) of the last numbered menu on screen: at
    least 2 options numbered from 1, and a footer hint under them, or a selected option in a box
    (Gemini's dialogs have no footer; a plain numbered list in the transcript has neither)."""
    lo = max(0, len(lines) - MENU_WINDOW)
    last = None
    for i in range(len(lines) - 1, lo - 1, -1):
        if OPTION.match(lines[i]):
            last = i
            break
    if last is None or (composer is not None and composer > last):
        return None
    found: list[tuple[int, re.Match[str]]] = []
    gap = 0
    i = last
    while i >= lo:
        m = OPTION.match(lines[i])
        if m:
            if found and int(m["num"]) != int(found[-1][1]["num"]) - 1:
                break
            found.append((i, m))
            gap = 0
            if m["num"] == "1":
                break
        else:
            gap += 1
            if gap > 3:
                break
        i -= 1
    if len(found) < 2 or found[-1][1]["num"] != "1":
        return None
    found.reverse()
    # options below the last one found continue the numbering (a rule may split them)
    j, n = last + 1, int(found[-1][1]["num"])
    while j < len(lines) and j <= last + 4:
        m = OPTION.match(lines[j])
        if m and int(m["num"]) == n + 1:
            found.append((j, m))
            n += 1
            last = j
        j += 1
    footer = next((lines[k] for k in range(last + 1, min(len(lines), last + 8)) if MENU_FOOTER.search(lines[k])), "")
    selected = any(m["cur"] for _, m in found)
    in_box = boxed is not None and all(k < len(boxed) and boxed[k] for k, _ in found)
    if not footer and not (selected and (in_box or any(MENU_FOOTER.search(m["label"]) for _, m in found))):
        return None
    options = [Option(m["num"], m["label"], bool(m["cur"])) for _, m in found]
    return found[0][0], last, options, footer

BUTTON_FOOTER = re.compile(r"\benter (to )?confirm\b", re.IGNORECASE)
BUTTON_HINT = re.compile(r"ctrl\+|⇆|\benter\b|\besc\b|fullscreen|select", re.IGNORECASE)

def _buttons(lines: list[str]) -> tuple[int, list[Option]] | None:
    """(line, options) of a row of buttons followed on the same line by an "enter confirm" hint."""
    for i in range(len(lines) - 1, max(-1, len(lines) - 16), -1):
        if not BUTTON_FOOTER.search(lines[i]):
            continue
        labels = []
        for item in re.split(r"\s{3,}", lines[i].strip()):
            if BUTTON_HINT.search(item):
                break
            labels.append(item.strip())
        if 2 <= len(labels) <= 6 and all(0 < len(x) <= 30 for x in labels):
            # which button is highlighted is a colour the text capture does not keep: none is marked
            return i, [Option(str(n), x, False) for n, x in enumerate(labels, 1)]
    return None

def _question(lines: list[str], first: int) -> str:
    """The question a menu answers: the nearest line above it ending in '?', else the nearest text."""
    nearest = ""
    for k in range(first - 1, max(-1, first - QUESTION_WINDOW - 1), -1):
        s = lines[k].strip()
        if not s or RULE.match(s):
            continue
        if s.endswith("?") or re.search(r"\?\s", s):
            return s
        nearest = nearest or s
    return nearest

def _latest_turn(lines: list[str], composer: int | None, prof: AgentScreen) -> list[str]:
    """The lines of the latest turn: after the last echoed prompt, above the composer."""
    end = composer if composer is not None else len(lines)
    start = max(0, end - 40)
    if prof.echo is not None:
        for i in range(end - 1, start - 1, -1):
            if prof.echo.match(lines[i]) and not OPTION.match(lines[i]):
                return lines[i + 1:end]
    return lines[start:end]

def _banner(line: str) -> bool:
    """Error words on a status or result line, not inside quoted output or a tool's text."""
    s = line.strip()
    return bool(re.match(r"^([●✻✶✳✢*⎿■✕×!⚠•◦└]|\S*Error|Unable|Failed|Not logged|API|Connection|litellm)", s))

def fingerprint(text: str) -> str:
    """A hash of the screen that ignores what changes without progress (timers, token counts,
    spinners and their status lines): a hash of store.liveness.screen_signature, the one the
    watcher compares between passes."""
    return hashlib.sha1(screen_signature(text).encode()).hexdigest()
