"""`orch-worker-brief`: render the worker brief from a saved `orch --json dispatch` response.

The original skill's third executable (`./assets/orch-worker-brief --dispatch-json FILE --db PATH
> brief.txt`): the same job as `orch brief --dispatch-json FILE`, printing the brief itself, as
plain text, so it can be redirected into the file a worker agent is started with. With --json it
prints the envelope `orch brief` prints. Errors are one line on stderr (or the error envelope)
with the usual exit codes.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .common import Context, Parser, add_globals, main_for
from .inbox import EXIT_HELP


def h_worker_brief(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    from orch_console.store import brief

    return {"brief": brief.render_from_dispatch_json(ctx.store, args.dispatch_json)}


def build() -> Parser:
    p = Parser(prog="orch-worker-brief", description="Render the worker brief (the prompt for a worker agent) "
               "from the saved output of `orch --json dispatch`.", epilog=EXIT_HELP,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_globals(p, top=True)
    p.add_argument("--dispatch-json", metavar="FILE", required=True,
                   help="the saved output of `orch --db PATH --json dispatch ...`")
    p.set_defaults(handler=h_worker_brief, command_name="brief", render_key="brief")
    p._orch_choices = lambda: set()  # type: ignore[method-assign]  # no subcommands
    return p


def _renderers() -> dict:
    def plain(data: dict[str, Any], args: Any = None) -> None:
        sys.stdout.write(data["brief"] if data["brief"].endswith("\n") else data["brief"] + "\n")

    return {"brief": plain}


def main(argv: list[str] | None = None) -> int:
    return main_for("orch-worker-brief", build, argv, _renderers)


if __name__ == "__main__":
    raise SystemExit(main())
