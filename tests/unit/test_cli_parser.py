"""The CLIs build only the subparser a command line names (start-up time); that parser must be the
very one the full build makes, and a command line naming no known command gets the full parser."""

from __future__ import annotations

import argparse

import pytest

from orch_console.console.cli import common, inbox, orch


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {name: p for a in parser._actions if isinstance(a, argparse._SubParsersAction)
            for name, p in a.choices.items()}


def _helps(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, str]:
    out = {}
    for name, p in _commands(parser).items():
        out[prefix + name] = p.format_help()
        out.update(_helps(p, prefix + name + " "))
    return out


@pytest.mark.parametrize("cli", [orch, inbox], ids=["orch", "inbox"])
def test_building_one_command_gives_the_same_parser_as_building_all(cli, monkeypatch) -> None:
    monkeypatch.setattr(common.Parser, "only", None)
    full = cli.build()
    every = _helps(full)
    assert len(_commands(full)) >= 10
    for name in _commands(full):
        monkeypatch.setattr(common.Parser, "only", name)
        lazy = cli.build()
        assert set(_commands(lazy)) == {name}
        assert {k: v for k, v in _helps(lazy).items()} == {k: v for k, v in every.items()
                                                           if k == name or k.startswith(name + " ")}


@pytest.mark.parametrize("argv, named", [
    (["status", "--run", "r"], "status"),
    (["--json", "status"], "status"),
    (["--db", "status", "ready"], "ready"),          # an option's value is not the command
    (["--db=x.db", "--json", "run", "init"], "run"),
    (["--agent", "w", "claim"], "claim"),
    (["--help", "status"], None),                    # help first: the full parser answers
    (["--jsn", "status"], None),                     # a mistake: the full parser says what is wrong
    ([], None),
])
def test_named_command(argv, named) -> None:
    assert common.named_command(argv) == named
