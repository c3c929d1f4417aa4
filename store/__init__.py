"""The headless core of Orch Console: schema, state machines and every domain operation.

Nothing here imports textual, rich, or the console/widgets/themes packages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (InvalidInput, InvalidState, LeaseConflict, NoMatchingWork, NotFound, OrchError,
                     StoreUnavailable)

if TYPE_CHECKING:
    from .db import Store, open_store

__all__ = ["Store", "open_store", "OrchError", "NotFound", "InvalidInput", "InvalidState",
           "LeaseConflict", "NoMatchingWork", "StoreUnavailable"]


def __getattr__(name: str) -> Any:
    # Store and open_store load db.py (sqlite3, the schema) on first use, so that importing a
    # submodule (the widgets' plain models, states) does not pull in the SQL layer.
    if name in ("Store", "open_store"):
        from . import db

        return getattr(db, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
