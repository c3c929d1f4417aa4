"""The wave report: what a leader hands on at the end of a run (ops-orchestrate "Reporting").

`report_data` (data.py) gathers everything once; Markdown (markdown.py), HTML (html.py) and JSON
only format it. Worker text is cleaned of control characters and escaped for the target format.
"""

from __future__ import annotations

import json
from typing import Any

from ..db import Store
from ..errors import InvalidInput
from .data import report_data
from .html import to_html
from .markdown import to_markdown


def to_json(data: dict[str, Any]) -> str:
    # ASCII: C1 controls (U+009B CSI, U+009D OSC) from worker text are \u-escaped, never written
    # raw to a terminal (issue 15, L4); the JSON means the same
    return json.dumps(data, ensure_ascii=True, indent=2)


def render(store: Store, *, run_id: str, fmt: str) -> str:
    data = report_data(store, run_id=run_id)
    if fmt == "md":
        return to_markdown(data)
    if fmt == "json":
        return to_json(data)
    if fmt == "html":
        return to_html(data)
    raise InvalidInput("--format must be md, json or html")


__all__ = ["report_data", "to_markdown", "to_json", "to_html", "render"]
