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


# An agent's model and reasoning effort (issue 12): each goes to the agent's CLI as one argument,
# shell-quoted; the alphabet keeps it one plain word there (never a second flag, never a new line)
# and the errors clear. Which efforts an agent takes is the runtime's business (model_effort.py).
MODEL_MAX = 128
MODEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+\[\]-]*")
EFFORTS = ("minimal", "low", "medium", "high", "xhigh", "max")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_model(value: str | None, what: str = "--model") -> str:
    """A model name as the agent's CLI takes it (`opus`, `gpt-5.5`, `openrouter/x/y`); '' when absent."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, not {value!r}")
    if not value.strip():
        raise InvalidInput(f"{what} must not be empty (leave it out for the agent's default model)")
    bad = _CONTROL_RE.search(value)
    if bad:
        raise InvalidInput(f"{what} has control character {bad.group(0)!r} at position {bad.start()}")
    if len(value) > MODEL_MAX:
        raise InvalidInput(f"{what} is {len(value)} characters; the limit is {MODEL_MAX}")
    if not MODEL_RE.fullmatch(value):
        raise InvalidInput(f"invalid {what} {value!r}: use letters, digits and . _ - : / @ + [ ], starting "
                           f"with a letter or digit")
    return value


def check_effort(value: str | None, what: str = "--effort") -> str:
    """A reasoning effort, one of EFFORTS; '' when absent."""
    if value is None:
        return ""
    if value not in EFFORTS:
        shown = repr(value) if isinstance(value, str) and len(value) <= 40 else "that value"
        raise InvalidInput(f"{what} must be one of {', '.join(EFFORTS)}, not {shown}")
    return str(value)


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


def pipe_wait_seconds() -> float:
    """How long a read from a pipe or FIFO waits for its writer, and then for each next chunk."""
    try:
        return min(max(float(os.environ.get("ORCH_PIPE_WAIT_SECONDS", "10")), 0.0), 600.0)
    except ValueError:
        return 10.0


def _size_text(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit:,} bytes"


def read_capped(path: str, what: str, limit: int = MAX_FIELD_BYTES) -> bytes:
    """The bytes of a file named on the command line, never more than limit (issue 15, M12):
    regular files, devices (/dev/zero has no size) and pipes alike are read to at most one byte
    past the cap. A pipe or FIFO whose writer does not show up, or stops writing, within
    pipe_wait_seconds() is refused (L6) instead of blocking forever. InvalidInput on every
    failure, naming `what` (the flag) and the path."""
    import select
    import stat as stat_

    label = f"{what} {path}" if what else path
    too_big = f"{label} is larger than {_size_text(limit)}"
    try:
        st = os.stat(path)
        if stat_.S_ISDIR(st.st_mode):
            raise InvalidInput(f"{label} is a directory")
        if not (stat_.S_ISFIFO(st.st_mode) or stat_.S_ISSOCK(st.st_mode)):
            if stat_.S_ISREG(st.st_mode) and st.st_size > limit:
                raise InvalidInput(too_big)
            with open(path, "rb") as f:
                data = f.read(limit + 1)
            if len(data) > limit:
                raise InvalidInput(too_big)
            return data
        # A pipe: opened without blocking (a FIFO with no writer would block the open), then each
        # chunk waited for with poll, so a missing or silent writer cannot hang the command.
        wait = pipe_wait_seconds()
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
            chunks: list[bytes] = []
            total = 0
            while True:
                if not poller.poll(int(wait * 1000)):
                    raise InvalidInput(f"{label}: nothing to read after {wait:g}s (a pipe or FIFO with no "
                                       f"writer?)")
                try:
                    chunk = os.read(fd, min(65536, limit + 1 - total))
                except BlockingIOError:
                    continue
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    raise InvalidInput(too_big)
        finally:
            os.close(fd)
    except InvalidInput:
        raise
    except OSError as exc:
        raise InvalidInput(f"cannot read {label}: {exc.strerror or exc}") from None


def read_body(body: str | None, body_file: str | None, what: str = "--body-file") -> str | None:
    """The --body / --body-file pair: at most one, and the file must be readable text. `what`
    names the file's flag in errors (--spec-file, --output-file read through here too)."""
    if body is not None and body_file is not None:
        raise InvalidInput(f"--body and {what} are mutually exclusive; give one")
    if body_file is None:
        return None if body is None else check_text(body, "--body")
    data = read_capped(body_file, what, MAX_FIELD_BYTES)
    return check_text(data.decode("utf-8", errors="replace"), what)


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
    """--lease-seconds: absent, 0 or less means the default (as the original CLI documents);
    otherwise up to MAX_LEASE_SECONDS (a day)."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0):
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
    import calendar  # only for stored timestamps; the CLI's start-up path does not need it

    base, _, frac = value.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + (float("0." + frac) if frac else 0.0)
