"""Worker text to screen: always rich Text (never markup), always sanitised first."""

from __future__ import annotations

import functools
import time
from typing import Any

from rich.style import Style
from rich.text import Text

from orch_console.store.sanitize import clean, one_line
from orch_console.store.validate import parse_ts

STATUS_GLYPH = {"planned": "·", "ready": "○", "dispatched": "◔", "running": "◑", "blocked": "◆",
                "verifying": "◕", "done": "●", "failed": "✗", "cancelled": "⊘"}


def component_style(widget: Any, name: str) -> Style:
    """A component class's style on the widget; no style when the theme leaves it out."""
    try:
        return widget.get_component_rich_style(name, partial=True)
    except KeyError:
        return Style()


def plain(text: str | None, style: Style | str = "") -> Text:
    """Multi-line worker text, escape sequences stripped, markup never parsed."""
    return Text(clean(text), style=style, no_wrap=False)


def cell(text: str | None, width: int = 60, style: Style | str = "") -> Text:
    """One clipped line for a table cell."""
    return Text(one_line(text, width), style=style, no_wrap=True, overflow="ellipsis")


@functools.lru_cache(maxsize=64)
def _midnight(day: str) -> float:
    return parse_ts(day + "T00:00:00")


@functools.lru_cache(maxsize=8192)
def _parsed(ts: str) -> float:
    """parse_ts for the stored format (2026-01-01T12:34:56.123456Z): the day through parse_ts once
    (strptime costs ~40 µs, and every heartbeat brings a new stamp), the time of day by hand."""
    if len(ts) >= 19 and ts[4] == "-" and ts[10] == "T" and ts[13] == ":" and ts[16] == ":" \
            and ts[11:13].isdigit() and ts[14:16].isdigit() and ts[17:19].isdigit():
        frac = ts[20:].rstrip("Z") if ts[19:20] == "." else ""
        if not frac or frac.isdigit():
            return (_midnight(ts[:10]) + int(ts[11:13]) * 3600 + int(ts[14:16]) * 60 + int(ts[17:19])
                    + (float("0." + frac) if frac else 0.0))
    return parse_ts(ts)


def age(ts: str, now: float | None = None) -> str:
    """'42s', '5m', '3h', '2d': how long ago a stored timestamp was."""
    if not ts:
        return ""
    try:
        secs = max(0.0, (time.time() if now is None else now) - _parsed(ts))
    except ValueError:
        return ""
    if secs < 60:
        return f"{int(secs)}s"
    if secs < 3600:
        return f"{int(secs // 60)}m"
    if secs < 86400:
        return f"{int(secs // 3600)}h{int(secs % 3600 // 60):02d}"
    return f"{int(secs // 86400)}d"
