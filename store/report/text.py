"""Formatters both report formats share."""

from __future__ import annotations

from typing import Any


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def attempts_text(attempts: list[dict[str, Any]]) -> str:
    return ", ".join(f"a{a['attempt_no']} {a['end_reason'] or a['status']}" for a in attempts) or "—"
