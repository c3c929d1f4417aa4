"""The words and shapes an agent's screen is read by, shared by every agent's rules.

The regular expressions here were written against the corpus of real captures in
tests/agents/corpus/ (see screens.py). They live apart from the rules that use them so the
decision procedure in screens.py reads as steps, and so a new agent's wording is added in one
place: menu and footer shapes (what a structural menu looks like), the words that tell a
permission request from a dialog or a login, and the error families with their kinds.

Pure: no Textual, no SQL, no tmux.
"""

from __future__ import annotations

import re

# --------------------------------------------------------------------------------------------------
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

# --------------------------------------------------------------------------------------------------
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

# --------------------------------------------------------------------------------------------------
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
    """The error family a line's words belong to ('' for none). The specific families are tried
    before the broad API one: "API Error: 401" is auth and a 429 a usage limit, not api."""
    for kind, pat in (("auth", ERR_AUTH), ("usage_limit", ERR_USAGE), ("network", ERR_NETWORK), ("api", ERR_API)):
        if pat.search(line):
            return kind
    return ""


def menu_kind(block: str) -> str:
    """What a menu (or prompt) asks for, from the text around it: a permission request outranks a
    dialog, which outranks a login; anything else is a question for the leader."""
    if PERMISSION.search(block):
        return "permission"
    if DIALOG.search(block):
        return "dialog"
    if LOGIN.search(block):
        return "login"
    return "question"
