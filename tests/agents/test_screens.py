"""The recognisers' tricky cases (issue 12), on real captures from the corpus and small screens
built from them."""

from __future__ import annotations

import re
from pathlib import Path

from orch_console.console.runtime import screens
from orch_console.store.liveness import classify_pane

CORPUS = Path(__file__).resolve().parent / "corpus"


def cap(name: str) -> str:
    return (CORPUS / name).read_text()


def test_a_question_far_above_its_options_is_found():
    """Claude's permission menu: the question sits 4 lines above the options and the footer 2 below;
    the old two-line scan called it active."""
    text = cap("claude/permission-bash.txt")
    assert classify_pane(text)[0] == "active"  # what the watcher saw before
    v = screens.classify(text, "claude")
    assert (v.state, v.kind) == ("waiting_input", "permission")
    assert v.question == "Do you want to proceed?"
    assert [o.key for o in v.options] == ["1", "2", "3"]
    assert v.options[0].selected and v.options[0].label == "Yes"


def test_a_long_command_between_question_and_options_still_reads_the_question():
    body = "\n".join(f"   line {i} of a long heredoc" for i in range(8))
    text = f""" Bash command

{body}

 Do you want to proceed?
 ❯ 1. Yes
   2. No

 Esc to cancel · Tab to amend
"""
    v = screens.classify(text, "claude")
    assert (v.state, v.kind, v.question) == ("waiting_input", "permission", "Do you want to proceed?")


def test_aider_yes_no_with_default_is_waiting_with_its_options():
    for line, kind in [("Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]:", "permission"),
                       ("Add file to the chat? (Y)es/(N)o/(D)on't ask again [Yes]:", "permission"),
                       ("Create new file? (Y)es/(N)o [Yes]:", "permission"),
                       ("Add .aider* to .gitignore (recommended)? (Y)es/(N)o [Yes]:", "dialog"),
                       ("Login to OpenRouter or create a free account? (Y)es/(N)o [Yes]:", "login"),
                       ("Open documentation URL for more info? (Y)es/(N)o/(D)on't ask again [Yes]:", "question")]:
        text = f"Aider v0.86.2\nsome output\n\n{line}\n"
        v = screens.classify(text, "aider")
        assert (v.state, v.kind) == ("waiting_input", kind), line
        assert v.options[0] == screens.Option("y", "Yes", True)
        assert classify_pane(text)[0] == "active"  # the old pattern knew [y/n], not aider's form


def test_an_answered_aider_prompt_is_not_waiting():
    text = "Add .aider* to .gitignore (recommended)? (Y)es/(N)o [Yes]: y\nAdded .aider* to .gitignore\n"
    assert screens.classify(text, "aider").state != "waiting_input"


def test_a_ticking_timer_is_not_progress():
    a = cap("codex/working-command-running.txt")
    b = a.replace("Working (18s", "Working (47s")
    assert a != b and screens.fingerprint(a) == screens.fingerprint(b)
    c = cap("claude/working-bash-running.txt")
    # the spinner glyph turns and the timer and token count tick: "✶ Working… (11s · ↓ 20 tokens)"
    d = re.sub(r"^\S (\w+)… \(\d+s · ↓ \d+ tokens\)", r"✻ \1… (2m 3s · ↓ 31 tokens)", c, flags=re.M)
    assert c != d and screens.fingerprint(c) == screens.fingerprint(d)
    # real new output is progress
    e = c.replace("Bash(sleep 25)", "Bash(sleep 25)\n  hello from the command")
    assert e != c and screens.fingerprint(c) != screens.fingerprint(e)


def test_a_menu_above_the_prompt_is_history():
    text = cap("claude/idle-after-turn.txt").replace(
        "● Wrote hello into proof.txt.", "● Pick one:\n  ❯ 1. Yes\n    2. No\n  Esc to cancel")
    v = screens.classify(text, "claude")
    assert v.state == "idle", v


def test_an_error_in_an_earlier_turn_is_history():
    text = cap("claude/working-thinking.txt").replace(
        "❯ Run the slow command", "❯ first\n\n● API Error: 400 bad\n\n❯ Run the slow command")
    assert screens.classify(text, "claude").state == "working"


def test_a_network_retry_is_an_error_not_work_even_with_esc_to_interrupt():
    for name, agent in [("claude/network-retrying.txt", "claude"), ("codex/network-reconnecting.txt", "codex")]:
        text = cap(name)
        assert "esc to interrupt" in text
        assert (screens.classify(text, agent).state, screens.classify(text, agent).kind) == ("error", "network")


def test_exited_at_start_up_is_an_error_not_active():
    text = cap("claude/exited-offline-start.txt")
    assert classify_pane(text)[0] == "active"
    v = screens.classify(text, "claude")
    assert (v.state, v.kind, v.rule) == ("error", "exited", "pane_dead")


def test_nothing_recognised_is_unknown_never_a_guess():
    v = screens.classify("compiling foo v1.2\nlinking\nsome progress output\n", "claude")
    assert (v.state, v.kind, v.rule) == ("unknown", "", "")
    assert screens.classify("just text", None).state == "unknown"


def test_a_blank_screen_is_starting():
    assert screens.classify("\n\n   \n", "codex").state == "starting"


def test_a_boxed_dialog_is_read_inside_its_box():
    """Gemini CLI draws its dialogs in boxes (real-agents.md section 2)."""
    text = """╭──────────────────────────────────────────────╮
│ Allow execution of [Shell]?                  │
│                                              │
│ ● 1. Allow once                              │
│   2. Allow for this session                  │
│   3. No, suggest changes (esc)               │
╰──────────────────────────────────────────────╯
"""
    v = screens.classify(text, "gemini")
    assert (v.state, v.kind) == ("waiting_input", "permission")
    assert v.question == "Allow execution of [Shell]?" and len(v.options) == 3


def test_generic_rules_of_the_liveness_module_still_hold_for_unknown_agents():
    assert screens.classify("building\nContinue? [y/n]", "mytool").state == "waiting_input"
    assert screens.classify("building\nContinue? [y/n] y\nok", "mytool").state != "waiting_input"
    v = screens.classify("step 1\nTraceback (most recent call last)\n  File x\nValueError: bad", "mytool")
    assert v.state == "error"


def test_the_version_is_read_from_the_banner():
    assert screens.classify(cap("claude/idle-fresh.txt"), "claude").version == "2.1.197"
    assert screens.classify(cap("codex/idle-fresh.txt"), "codex").version == "0.171.0"
    assert screens.classify(cap("claude/trust-dialog.txt"), "claude").version == ""  # not on screen: not guessed


def test_api_key_fields_never_echo_the_key_into_the_verdict():
    v = screens.classify(cap("codex/login-api-key-field.txt"), "codex")
    assert (v.state, v.kind) == ("waiting_input", "login")
    assert "sk-" not in repr(v.to_dict())
