"""The error vocabulary shared by the store, both CLIs and the console.

Each error carries one of the contract's codes; the CLI maps the code to its exit status.
"""

from __future__ import annotations

EXIT_CODES: dict[str, int] = {
    "no_matching_work": 10,
    "lease_conflict": 20,
    "invalid_input": 30,
    "invalid_state": 30,
    "not_found": 40,
    "internal_error": 50,
}


class OrchError(Exception):
    """A failure the caller can act on; `code` is one of EXIT_CODES."""

    code = "internal_error"

    def __init__(self, message: str, *, data: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data or {}

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.code]

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


class NotFound(OrchError):
    code = "not_found"


class InvalidInput(OrchError):
    code = "invalid_input"


class InvalidState(OrchError):
    code = "invalid_state"


class LeaseConflict(OrchError):
    code = "lease_conflict"


class NoMatchingWork(OrchError):
    code = "no_matching_work"


class InternalError(OrchError):
    code = "internal_error"


class StoreUnavailable(OrchError):
    """The database file cannot be used: not SQLite, corrupt, unreadable, read-only, full."""

    code = "internal_error"
