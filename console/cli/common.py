"""What both CLIs share: the parser that never exits with a traceback, the JSON envelope, exit
codes, body and artifact flags, and the dispatcher that turns every failure into a clear line.

Imports neither textual nor rich: both CLIs must start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, cast

from orch_console.store.errors import EXIT_CODES, InvalidInput, NotFound, OrchError

if TYPE_CHECKING:
    from orch_console.store.db import Store

# The epilog of both CLIs' --help: what their exit codes and --json output mean.
EXIT_HELP = """\
exit codes: 0 ok; 10 no_matching_work (also a wait that timed out); 20 lease_conflict;
30 invalid_input / invalid_state / usage; 40 not_found; 50 internal_error.
With --json every command prints one object: {"ok": true, "command": ..., "data": {...}}
or {"ok": false, "error": {"code": ..., "message": ...}}."""

Handler = Callable[[argparse.Namespace, "Context"], dict[str, Any]]


class UsageError(InvalidInput):
    pass


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error raises (exit 30 with the envelope) instead of exiting 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")

    # set by main_for: with --json even --help answers with one envelope
    json_mode = False
    # set by main_for: the one top-level command to build (None: all of them)
    only: str | None = None

    def print_help(self, file: Any = None) -> None:
        if Parser.json_mode:
            _write_json({"ok": True, "command": "help", "data": {"prog": self.prog, "help": self.format_help()}})
        else:
            super().print_help(file)

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse sizes help from shutil.get_terminal_size, and importing shutil (with bz2, lzma,
        # fnmatch) is ~5 ms of every CLI call; add_argument builds a formatter even without --help.
        # every parser here takes an argparse.HelpFormatter subclass (typeshed types the class as a
        # callable of prog only)
        formatter = cast("type[argparse.HelpFormatter]", self.formatter_class)
        return formatter(prog=self.prog, width=max(terminal_columns(80) - 2, 11))  # as argparse

    def _orch_choices(self) -> set[str]:
        return {name for a in self._actions if isinstance(a, argparse._SubParsersAction) for name in a.choices}

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)


def terminal_columns(default: int) -> int:
    """$COLUMNS, else the width of the terminal on stdout, else default (help and text tables)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return default


class _Skipped:
    """Stands in for the parser of a command this invocation does not name: every call is a
    no-op that returns it again. Building all ~40 subparsers costs ~15 ms of a CLI call whose
    budget is 150 ms, and `orch status` needs only its own."""

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **kw: self


SKIPPED: Any = _Skipped()
GLOBAL_OPTIONS_WITH_VALUE = ("--db", "--agent")
GLOBAL_FLAGS = ("--json",)


def named_command(argv: Sequence[str]) -> str | None:
    """The command an argv names, when only global options come before it; else None (build all)."""
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok in GLOBAL_OPTIONS_WITH_VALUE:
            i += 2
        elif tok in GLOBAL_FLAGS or tok.split("=", 1)[0] in GLOBAL_OPTIONS_WITH_VALUE and "=" in tok:
            i += 1
        elif tok.startswith("-"):
            return None  # --help, --version or a mistake: the full parser says what is wrong
        else:
            return tok
    return None


def top_commands(parser: Parser, title: str = "commands") -> argparse._SubParsersAction:
    """The parser's command list; with Parser.only set, only that command is built under it."""
    sub = parser.add_subparsers(title=title, metavar="COMMAND", parser_class=Parser)
    sub._orch_top = True  # type: ignore[attr-defined]
    return sub


def skipped(sub: Any, name: str) -> bool:
    return sub is SKIPPED or (Parser.only is not None and getattr(sub, "_orch_top", False) and name != Parser.only)


def group(sub: argparse._SubParsersAction, name: str, help_text: str) -> Any:
    """A command with subcommands (`orch run init`, `orch verify status`)."""
    if skipped(sub, name):
        return SKIPPED
    g = sub.add_parser(name, help=help_text, description=help_text)
    add_globals(g, top=False)
    return g.add_subparsers(title=f"{name} commands", metavar="COMMAND", parser_class=Parser)


# Commands that only read: on a missing database they say so instead of creating it.
READ_COMMANDS = frozenset({"status", "show", "list", "ready", "blocked", "brief", "wait", "report", "plan",
                           "fetch", "watch", "wait-reply", "holds"})


class Context:
    """Lazily opened store plus output options for one command invocation."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json = bool(getattr(args, "json", False))
        self._store: Store | None = None

    @property
    def store(self) -> Any:
        if self._store is None:
            from orch_console.store.db import Store

            name = getattr(self.args, "command_name", "")
            if name in READ_COMMANDS:
                from orch_console.store.db import default_db_path

                path = getattr(self.args, "db", None) or default_db_path()
                # (a missing directory is the Store's own invalid_input)
                if not os.path.exists(path) and os.path.isdir(os.path.dirname(os.path.abspath(path))):
                    # a read never makes a new, empty database (issue 15, L8): a mistyped --db would
                    # otherwise answer "no such run" or "no threads" (exit 10: "no work")
                    raise NotFound(f"database {path} does not exist (a new one is made by `inbox init`, "
                                   f"`orch run init` or any write)")
            # `init` is the command that makes a new database, directories included
            self._store = Store(getattr(self.args, "db", None),
                                create_dirs=True if getattr(self.args, "command_name", "") == "init" else None)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def add_globals(p: argparse.ArgumentParser, *, top: bool, agent: bool = False) -> None:
    """--db and --json work before or after the command name (`orch --json status` or `orch status --json`)."""
    default = None if top else argparse.SUPPRESS
    p.add_argument("--db", metavar="PATH", default=default,
                   help="SQLite database (default: $ORCH_DB or .agents/coord.db)")
    p.add_argument("--json", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="print exactly one JSON envelope: {ok, command, data} or {ok, error}")
    if agent:
        p.add_argument("--agent", metavar="NAME", default=default,
                       help="the agent acting (fallback for --agent/--from on every command)")


def add_body(p: argparse.ArgumentParser, what: str = "message body") -> None:
    p.add_argument("--body", metavar="TEXT", help=f"{what} (or --body-file)")
    p.add_argument("--body-file", metavar="PATH", help=f"read the {what} from a file")


def add_artifacts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--artifact", metavar="PATH", action="append", default=[],
                   help="attach a file reference to the message (repeatable)")
    p.add_argument("--artifact-kind", metavar="KIND", default="", help="kind of the attached artifacts")
    p.add_argument("--artifact-metadata-json", metavar="JSON", default="",
                   help="metadata for the attached artifacts, as a JSON object")


def artifacts_of(args: argparse.Namespace) -> tuple:
    from orch_console.store.records import Artifact
    from orch_console.store.validate import check_json, check_text

    paths = getattr(args, "artifact", None) or []
    if not paths:
        if getattr(args, "artifact_kind", "") or getattr(args, "artifact_metadata_json", ""):
            raise InvalidInput("--artifact-kind and --artifact-metadata-json need --artifact PATH")
        return ()
    meta = check_json(args.artifact_metadata_json, "--artifact-metadata-json")
    kind = check_text(args.artifact_kind, "--artifact-kind")
    return tuple(Artifact(path=check_text(p, "--artifact", required=True), kind=kind, metadata_json=meta)
                 for p in paths)


def body_of(args: argparse.Namespace) -> str | None:
    from orch_console.store.validate import read_body

    return read_body(getattr(args, "body", None), getattr(args, "body_file", None))


def csv_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def emit_ok(ctx: Context, command: str, data: dict[str, Any],
            render: Callable[[dict[str, Any], argparse.Namespace], None] | None) -> None:
    if ctx.json:
        _write_json({"ok": True, "command": command, "data": data})
    elif render is not None:
        render(data, ctx.args)
    else:
        _write_json(data)


def emit_error(as_json: bool, err: OrchError) -> int:
    if as_json:
        doc: dict[str, Any] = {"ok": False, "error": err.to_dict()}
        if err.data:
            doc["error"]["data"] = err.data
        _write_json(doc)
    else:
        sys.stderr.write(f"error ({err.code}): {err.message}\n")
    return err.exit_code


def _write_json(doc: dict[str, Any]) -> None:
    # ASCII only: raw C1 controls or U+2028 in worker text would break line readers and terminals
    sys.stdout.write(encode_envelope(doc) + "\n")
    sys.stdout.flush()


def encode_envelope(doc: dict[str, Any]) -> str:
    """The envelope as one line of ASCII JSON. A RawJSON value in doc["data"] (a read model SQLite
    already encoded) is spliced in as is, then everything non-ASCII is \\u-escaped."""
    from orch_console.store.records import RawJSON

    data = doc.get("data")
    if not isinstance(data, dict):
        data = {}  # nothing to splice: doc is dumped as is
    raw = {k: v for k, v in data.items() if isinstance(v, RawJSON)}
    if not raw:
        return json.dumps(doc, ensure_ascii=True, default=str, separators=(",", ":"))
    tag = os.urandom(8).hex()  # a marker no stored text can forge
    marks = {k: f"@raw-{tag}-{i}@" for i, k in enumerate(raw)}
    out = json.dumps({**doc, "data": {k: marks.get(k, v) for k, v in data.items()}}, ensure_ascii=True,
                     default=str, separators=(",", ":"))
    for k, mark in marks.items():
        out = out.replace(f'"{mark}"', raw[k].text, 1)
    return out if out.isascii() else _NON_ASCII.sub(_escape_char, out)


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c < 0x10000:
        return f"\\u{c:04x}"
    c -= 0x10000
    return f"\\u{0xd800 | (c >> 10):04x}\\u{0xdc00 | (c & 0x3ff):04x}"


def wants_json(argv: Sequence[str]) -> bool:
    return "--json" in argv


def main_for(prog: str, build: Callable[[], Parser], argv: Sequence[str] | None,
             renderers: Callable[[], dict[str, Callable[[dict[str, Any], argparse.Namespace], None]]],
             gate: Callable[[argparse.Namespace, Context], None] | None = None) -> int:
    """renderers is a loader: the text renderers are imported only for human output. gate checks
    the caller's worker token (store/tokens.py) before the handler runs."""
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = wants_json(argv)
    Parser.json_mode = as_json
    ctx: Context | None = None
    try:
        Parser.only = named_command(argv)
        parser = build()
        if Parser.only is not None and Parser.only not in parser._orch_choices():
            Parser.only = None  # not a command: the full parser lists the real ones
            parser = build()
        if not argv:
            parser.print_help()
            return 0
        args = parser.parse_args(argv)
        handler: Handler | None = getattr(args, "handler", None)
        if handler is None:
            raise UsageError(f"{prog}: choose a command (see {prog} --help)")
        ctx = Context(args)
        if gate is not None:
            gate(args, ctx)
        data = handler(args, ctx)
        emit_ok(ctx, args.command_name, data, None if ctx.json else renderers().get(args.render_key))
        return 0
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    except OrchError as exc:
        return emit_error(as_json, exc)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception as exc:  # the contract: never a traceback, always an envelope
        if os.environ.get("ORCH_DEBUG"):
            import traceback

            traceback.print_exc()
        return emit_error(as_json, OrchError(f"internal error: {type(exc).__name__}: {exc}"))
    finally:
        if ctx is not None:
            ctx.close()


def command(sub: argparse._SubParsersAction, name: str, handler: Handler, help_text: str, *,
            render_key: str | None = None, agent: bool = False, epilog: str | None = None) -> Parser:
    if skipped(sub, name):
        return SKIPPED
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_globals(p, top=False, agent=agent)
    p.set_defaults(handler=handler, command_name=name, render_key=render_key or name)
    return p


__all__ = ["Parser", "Context", "UsageError", "add_globals", "add_body", "add_artifacts", "artifacts_of",
           "body_of", "csv_list", "main_for", "command", "group", "top_commands", "EXIT_CODES"]
