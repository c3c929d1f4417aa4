"""Every capture in the corpus of real agent screens is classified as its index says.

The corpus (tests/agents/corpus/, index.toml) holds tmux captures of the REAL agents, made by
tests/agents/capture.py; when an agent's new version draws a screen differently, re-capturing
shows it here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from orch_console.console.runtime import screens

CORPUS = Path(__file__).resolve().parent / "corpus"
INDEX = tomllib.loads((CORPUS / "index.toml").read_text())["capture"]


def test_the_corpus_covers_the_states_that_matter():
    have = {(e["agent"], e["state"], e["kind"]) for e in INDEX}
    for agent in ("claude", "codex"):
        for state, kind in [("waiting_input", "dialog"), ("waiting_input", "login"), ("waiting_input", "permission"),
                            ("working", ""), ("idle", ""), ("error", "network"), ("error", "exited")]:
            assert (agent, state, kind) in have, f"no {agent} capture of {state}/{kind}"


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_capture_is_classified_as_its_true_state(entry):
    text = (CORPUS / entry["file"]).read_text()
    v = screens.classify(text, entry["agent"])
    assert (v.state, v.kind) == (entry["state"], entry["kind"]), f"{entry['file']}: {v}"
    assert v.rule and (v.line or v.state == "starting"), "a verdict names its rule and line"
    if v.state == "waiting_input" and v.rule == "menu":
        assert len(v.options) >= 2 and v.question


@pytest.mark.parametrize("entry", INDEX, ids=[e["file"] for e in INDEX])
def test_capture_is_classified_the_same_without_naming_the_agent(entry):
    """Detected from the screen, or judged by the generic rules: the same state, or unknown; never
    a different guess."""
    text = (CORPUS / entry["file"]).read_text()
    v = screens.classify(text)
    assert v.state in (entry["state"], "unknown"), f"{entry['file']}: {v}"


def test_version_is_read_from_the_screen_when_shown():
    for e in INDEX:
        text = (CORPUS / e["file"]).read_text()
        v = screens.classify(text, e["agent"])
        if e["agent"] == "claude" and "Claude Code v" in text or e["agent"] == "codex" and "OpenAI Codex (v" in text:
            assert v.version == e["version"], e["file"]
