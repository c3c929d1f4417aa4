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


_CONSOLE: Any = None


def console() -> Any:
    """One rich Console per process (making one probes the terminal each time)."""
    global _CONSOLE
    if _CONSOLE is None:
        from rich.console import Console

        _CONSOLE = Console(highlight=False, soft_wrap=False)
    return _CONSOLE


def text(value: Any, style: str = "") -> Any:
    from rich.text import Text

    return Text(one_line("" if value is None else str(value), 200), style=style)


def status_text(value: str) -> Any:
    return text(value, STATUS_STYLE.get(value, ""))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """Aligned columns of one-line cells. Laid out here rather than with rich's Table, which
    measured ~4 ms per row (a 50-row status took longer to print than to query)."""
    from rich.text import Text

    cells = [[x if isinstance(x, Text) else text(x) for x in r] for r in rows]
    width = console().width
    widths = [max([len(c)] + [len(r[i].plain) for r in cells]) for i, c in enumerate(columns)]
    # Too wide for the terminal: the widest columns give way first, down to 8 characters.
    excess = sum(widths) + 2 * (len(widths) - 1) - width
    while excess > 0:
        i = max(range(len(widths)), key=lambda k: widths[k])
        if widths[i] <= 8:
            break
        widths[i] -= 1
        excess -= 1
    out = Text()
    if title:
        out.append(title + "\n", style="bold")
    for i, c in enumerate(columns):
        out.append(c.ljust(widths[i]) + ("  " if i < len(columns) - 1 else ""), style="bold")
    for r in cells:
        out.append("\n")
        for i, cell in enumerate(r):
            cell = cell.copy()
            cell.truncate(widths[i], overflow="ellipsis")
            out.append_text(cell)
            if i < len(r) - 1:
                out.append(" " * (widths[i] - len(cell.plain) + 2))
    console().print(out, no_wrap=True, overflow="ellipsis", crop=True)


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
