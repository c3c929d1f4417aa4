"""Human-readable output for both CLIs: aligned plain-text tables and lines.

Worker text is cleaned of escape sequences and control characters (store.sanitize) and printed
as text, never interpreted. Colour is plain SGR codes when stdout is a terminal (and NO_COLOR is
unset): rich cost ~60 ms of start-up on every human-facing command, more than the query itself.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple

from orch_console.store.sanitize import clean, one_line

from .common import terminal_columns

STATUS_STYLE = {
    "ready": "cyan", "planned": "dim", "dispatched": "blue", "running": "yellow", "claimed": "yellow",
    "in_progress": "yellow", "blocked": "magenta", "verifying": "cyan", "done": "green",
    "failed": "red", "cancelled": "dim", "pending": "blue", "active": "yellow", "passed": "green",
}
SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35",
       "cyan": "36"}


class Styled(NamedTuple):
    """One line of already-cleaned text and the style to print it in."""

    plain: str
    style: str = ""


def _colour() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _fmt(s: Styled, colour: bool) -> str:
    codes = ";".join(SGR[p] for p in s.style.split() if p in SGR)
    return f"\x1b[{codes}m{s.plain}\x1b[0m" if colour and codes and s.plain else s.plain


def _styled(value: Any) -> Styled:
    return value if isinstance(value, Styled) else Styled(clean("" if value is None else str(value),
                                                                keep_newlines=False))


def text(value: Any, style: str = "") -> Styled:
    return Styled(one_line("" if value is None else str(value), 200), style)


def status_text(value: str) -> Styled:
    return text(value, STATUS_STYLE.get(value, ""))


def _clip(s: Styled, width: int) -> Styled:
    return s if len(s.plain) <= width else Styled(s.plain[: max(0, width - 1)] + "…", s.style)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """Aligned columns of one-line cells; when too wide for the terminal the widest columns give
    way first, down to 8 characters."""
    cells = [[x if isinstance(x, Styled) else text(x) for x in r] for r in rows]
    widths = [max([len(c)] + [len(r[i].plain) for r in cells]) for i, c in enumerate(columns)]
    excess = sum(widths) + 2 * (len(widths) - 1) - terminal_columns(100)
    while excess > 0:
        i = max(range(len(widths)), key=lambda k: widths[k])
        if widths[i] <= 8:
            break
        widths[i] -= 1
        excess -= 1
    colour = _colour()
    out = [_fmt(Styled(title, "bold"), colour)] if title else []
    out.append("  ".join(_fmt(_clip(Styled(c.ljust(widths[i]), "bold"), widths[i]), colour)
                         for i, c in enumerate(columns)).rstrip())
    for r in cells:
        parts = []
        for i, cell in enumerate(r):
            cell = _clip(cell, widths[i])
            pad = " " * (widths[i] - len(cell.plain)) if i < len(r) - 1 else ""
            parts.append(_fmt(cell, colour) + pad)
        out.append("  ".join(parts).rstrip())
    sys.stdout.write("\n".join(out) + "\n")


def line(*parts: Any) -> None:
    colour = _colour()
    sys.stdout.write("".join(_fmt(_styled(p), colour) for p in parts) + "\n")


def block(body: str) -> None:
    """Multi-line worker text, cleaned, printed verbatim."""
    sys.stdout.write(clean(body).rstrip() + "\n")


def kv(pairs: list[tuple[str, Any]]) -> None:
    colour = _colour()
    width = max((len(k) for k, _ in pairs), default=0)
    for k, v in pairs:
        sys.stdout.write(_fmt(Styled(f"{k.rjust(width)}  ", "bold"), colour) + _fmt(_styled(v) if isinstance(v, Styled)
                                                                                      else text(v), colour) + "\n")
