"""Making worker text safe to put on a terminal. Stored text is never changed; this runs at render.

ESC, C0 controls other than tab and newline, DEL and C1 controls are replaced, so no escape
sequence (colour, OSC 8 link, window title, cursor movement) written by a worker reaches the
leader's terminal. Markup safety is the renderer's job: always wrap in rich Text, never parse.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[P^_X][^\x1b]*(?:\x1b\\)?"
                      r"|\x1b.?|[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str | None, *, keep_newlines: bool = True) -> str:
    """Strip ANSI/OSC/DCS escape sequences and control characters."""
    if not text:
        return ""
    out = _CONTROL.sub("", text)
    out = out.replace("\r\n", "\n")
    if not keep_newlines:
        out = out.replace("\n", " ").replace("\t", " ")
    return _NL_CONTROL.sub("", out) if not keep_newlines else out.replace("\r", "")


def one_line(text: str | None, width: int = 120) -> str:
    """A single clipped line for tables; the full text is in the detail views."""
    s = " ".join(clean(text, keep_newlines=False).split())
    return s if len(s) <= width else s[: max(0, width - 1)] + "…"
