"""The headless core of Orch Console: schema, state machines and every domain operation.

Nothing here imports textual, rich, or the console/widgets/themes packages.
"""

from .db import Store, open_store
from .errors import (InvalidInput, InvalidState, LeaseConflict, NoMatchingWork, NotFound, OrchError,
                     StoreUnavailable)

__all__ = ["Store", "open_store", "OrchError", "NotFound", "InvalidInput", "InvalidState",
           "LeaseConflict", "NoMatchingWork", "StoreUnavailable"]
