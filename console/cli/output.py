"""Human-readable output for both CLIs: rich tables of plain Text (markup never interpreted)."""

from __future__ import annotations

import sys
from typing import Any

from store.sanitize import clean, one_line

STATUS_STYLE = {
    "ready": "cyan", "planned": "dim", "dispatched": "blue", "running": "yellow", "claimed": "yellow",
    "in_progress": "yellow", "blocked": "magenta", "verifying": "cyan", "done": "green",
    "failed": "red", "cancelled": "dim", "pending": "blue", "active": "yellow", "passed": "green",
}


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def text(value: Any, style: str = "") -> Any:
    from rich.text import Text

    return Text(one_line("" if value is None else str(value), 200), style=style)


def status_text(value: str) -> Any:
    return text(value, STATUS_STYLE.get(value, ""))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold", show_edge=False, pad_edge=False)
    for c in columns:
        t.add_column(c, overflow="fold" if c in ("summary", "question") else "ellipsis")
    for r in rows:
        t.add_row(*[x if not isinstance(x, (str, int, float, type(None))) else text(x) for x in r])
    console().print(t)


def line(*parts: Any) -> None:
    from rich.text import Text

    out = Text()
    for p in parts:
        out.append(p if isinstance(p, Text) else Text(clean(str(p), keep_newlines=False)))
    console().print(out)


def block(body: str) -> None:
    """Multi-line worker text, cleaned, printed verbatim."""
    sys.stdout.write(clean(body).rstrip() + "\n")


def kv(pairs: list[tuple[str, Any]]) -> None:
    from rich.text import Text

    c = console()
    width = max((len(k) for k, _ in pairs), default=0)
    for k, v in pairs:
        c.print(Text(f"{k.rjust(width)}  ", style="bold") + (v if isinstance(v, Text) else text(v)))
