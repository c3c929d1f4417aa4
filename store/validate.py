"""Input rules applied before anything is written: ids, sizes, JSON payloads, bodies."""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

from .errors import InvalidInput

# Ids become branch names and paths, so they are restricted to a safe alphabet.
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
THREAD_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
MAX_FIELD_BYTES = 1024 * 1024
# Every duration has a maximum (issue 15, M1): a lease at most a day, any other duration (a wait,
# a check's timeout, a run's thresholds) at most a week. Above it: invalid_input.
MAX_LEASE_SECONDS = 24 * 3600
MAX_DURATION_SECONDS = 7 * 24 * 3600


def check_id(value: str | None, what: str, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise InvalidInput(f"{what} is required")
        return ""
    if not isinstance(value, str) or not ID_RE.fullmatch(value) or ".." in value \
            or value.endswith((".lock", ".")):
        raise InvalidInput(
            f"invalid {what} {value!r}: use 1-64 characters from A-Z a-z 0-9 . _ -, "
            f"starting with a letter or digit")
    return value


def check_thread_id(value: str | None, *, required: bool = True) -> str:
    if not value:
        if required:
            raise InvalidInput("thread id is required (--thread)")
        return ""
    if not THREAD_ID_RE.fullmatch(value) or ".." in value:
        raise InvalidInput(f"invalid thread id {value!r}")
    return value


def check_text(value: str | None, what: str, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if required and not value.strip():
        raise InvalidInput(f"{what} is required and must not be empty")
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > MAX_FIELD_BYTES:
        raise InvalidInput(f"{what} is {size:,} bytes; the limit is {MAX_FIELD_BYTES:,} (1 MiB)")
    # Lone surrogates cannot be stored as UTF-8; keep the text, mark the bad code points.
    return value.encode("utf-8", errors="replace").decode("utf-8") if _has_surrogate(value) else value


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def check_json(value: str | None, what: str = "--payload-json") -> str:
    """Validate a JSON document given as text; returns it normalised ('' when absent)."""
    if value is None or value == "":
        return ""
    check_text(value, what)
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"{what} is not valid JSON: {exc}") from None
    text = json.dumps(parsed, ensure_ascii=False, separators=(",", ":"))
    # a lone surrogate given as an escape ("\ud800") stays an escape: it has no UTF-8 form to store
    return json.dumps(parsed, separators=(",", ":")) if _has_surrogate(text) else text


def read_body(body: str | None, body_file: str | None) -> str | None:
    """The --body / --body-file pair: at most one, and the file must be readable text."""
    if body is not None and body_file is not None:
        raise InvalidInput("--body and --body-file are mutually exclusive; give one")
    if body_file is None:
        return None if body is None else check_text(body, "--body")
    try:
        if os.path.isdir(body_file):
            raise InvalidInput(f"--body-file {body_file} is a directory")
        # Read at most one byte past the cap: a pipe or device (/dev/stdin, /dev/zero) has no size.
        with open(body_file, "rb") as f:
            data = f.read(MAX_FIELD_BYTES + 1)
        if len(data) > MAX_FIELD_BYTES:
            raise InvalidInput(f"--body-file {body_file} is larger than 1 MiB")
    except InvalidInput:
        raise
    except OSError as exc:
        raise InvalidInput(f"cannot read --body-file {body_file}: {exc.strerror or exc}") from None
    return check_text(data.decode("utf-8", errors="replace"), "--body-file")


def positive_int(value: Any, what: str, default: int) -> int:
    if value is None:
        return default
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be an integer, not {value!r}") from None
    return n if n > 0 else default


def check_seconds(value: Any, what: str, *, maximum: float = MAX_DURATION_SECONDS, zero_ok: bool = False,
                  integer: bool = False) -> float:
    """A duration in seconds: finite, not negative, not 0 unless zero_ok (0 = forever / none),
    at most maximum."""
    import math

    try:
        n = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be a number of seconds, not {value!r}") from None
    if not math.isfinite(n) or n < 0 or (n == 0 and not zero_ok) or (integer and n != int(n)):
        kind = "a whole number of seconds" if integer else "a number of seconds"
        raise InvalidInput(f"{what} must be {kind} {'from 0' if zero_ok else 'above 0'} up to "
                           f"{maximum:g}, not {value!r}")
    if n > maximum:
        raise InvalidInput(f"{what} is {n:g}s; the maximum is {maximum:g}s")
    return n


def lease_seconds(value: Any, default: int) -> int:
    """--lease-seconds: absent means the default; otherwise 1 to MAX_LEASE_SECONDS (a day)."""
    if value is None:
        return default
    return int(check_seconds(value, "--lease-seconds", maximum=MAX_LEASE_SECONDS, integer=True))


# -- time ------------------------------------------------------------------------------------
_second: tuple[int, str] = (-1, "")  # the last whole second and its text (one tuple: thread-safe)


def now_ts(t: float | None = None) -> str:
    """UTC timestamp with microseconds, fixed width so text order is time order."""
    global _second
    t = time.time() if t is None else t
    whole = int(t)
    second = _second
    if whole != second[0]:
        second = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{second[1]}.{int((t - whole) * 1e6):06d}Z"


def parse_ts_or(value: Any, default: float) -> float:
    """parse_ts that never raises: default for a value that is no timestamp of ours."""
    try:
        return parse_ts(value)
    except (ValueError, TypeError, OverflowError):
        return default


def parse_ts(value: str) -> float:
    """The stored format back to epoch seconds; ValueError for anything else (parse_ts_or never
    raises)."""
    if not value:
        return 0.0
    import calendar

    base, _, frac = value.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + (float("0." + frac) if frac else 0.0)
