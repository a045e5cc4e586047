"""The README and the command line agree, as sqlite-utils checks its docs: every `--flag` the
README names exists on some command, and every option of every command is named in the README.

A flag added without its documentation, or a documented flag renamed or removed, fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from pipeline.axiomatic_sandbox.__main__ import _parser as axiomatic_parser
from pipeline.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")

OTHER_TOOLS_FLAGS = {
    "--rows": "python -m bench --rows N (the benchmark, not kayse-etl)",
    "--xlsx-rows": "python -m bench --xlsx-rows N (the benchmark)",
    "--rounds": "python -m bench --rounds N (the benchmark)",
    "--skip-load": "python -m bench --skip-load (the benchmark)",
    "--check": "ruff format --check (make lint)",
}
"""Flags the README names that belong to other programs it shows."""

AXIOMATIC_SANDBOX_FLAGS = {
    option
    for action in axiomatic_parser()._actions
    for option in action.option_strings
    if option.startswith("--") and option != "--help"
}
"""The flags of `python -m pipeline.axiomatic_sandbox` (the local Axiomatic), which the README shows too."""


def commands() -> dict[str, Any]:
    """The app as click sees it (typer carries its own copy of click: no isinstance checks):
    every command by its full name ("validate", "mappings init"), and "kayse-etl" itself for the
    options given before a command (--version, --quiet, --verbose, shell completion)."""
    root = typer.main.get_command(app)
    found: dict[str, Any] = {"kayse-etl": root}

    def walk(group: Any, prefix: str) -> None:
        for name, command in group.commands.items():
            full = f"{prefix} {name}".strip()
            if hasattr(command, "commands"):
                found[full] = command
                walk(command, full)
            else:
                found[full] = command

    walk(root, "")
    return found


def option_names() -> dict[str, list[str]]:
    """Every long option name (`--x`) → the commands that have it (--help and -h on all)."""
    names: dict[str, list[str]] = {}
    for command_name, command in commands().items():
        for param in command.params:
            if param.param_type_name == "option":
                for name in [*param.opts, *param.secondary_opts]:
                    if name.startswith("--"):
                        names.setdefault(name, []).append(command_name)
    names["--help"] = list(commands())  # click adds it (and -h) to every command itself
    return names


def readme_flags() -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", README))


def test_the_walk_finds_the_commands_and_their_options() -> None:
    names = option_names()
    assert {
        "validate",
        "plan",
        "load",
        "runs",
        "sandbox",
        "mappings init",
        "crm fields push",
        "extract axiomatic",
    } <= set(commands())
    assert {"--entity", "--timelines", "--axiomatic-port"} <= set(names)
    assert {"--seed", "--page-cap", "--envelope"} <= AXIOMATIC_SANDBOX_FLAGS
    assert {"--mapping", "--ledger", "--report-dir", "--encoding", "--delimiter"} <= set(names)
    # the options given before a command, shell completion's among them
    assert {"--version", "--quiet", "--verbose", "--install-completion", "--show-completion"} <= set(names)
    assert {"--out", "--force"} <= set(names)


@pytest.mark.parametrize("flag", sorted(readme_flags() - set(OTHER_TOOLS_FLAGS)))
def test_every_flag_the_readme_names_exists(flag: str) -> None:
    assert flag in option_names() or flag in AXIOMATIC_SANDBOX_FLAGS, (
        f"the README names {flag}, but no kayse-etl command (nor python -m pipeline.axiomatic_sandbox) has it"
    )


@pytest.mark.parametrize("flag", sorted(AXIOMATIC_SANDBOX_FLAGS))
def test_every_flag_of_the_local_axiomatic_is_named_in_the_readme(flag: str) -> None:
    assert flag in readme_flags(), f"python -m pipeline.axiomatic_sandbox {flag} is not named in the README"


@pytest.mark.parametrize("flag", sorted(option_names()))
def test_every_option_is_named_in_the_readme(flag: str) -> None:
    where = ", ".join(option_names()[flag])
    assert flag in readme_flags(), f"{flag} (on {where}) is not named in the README"


def test_flags_of_other_tools_are_still_named_there() -> None:
    """The allowance above must not outlive its reason."""
    stale = [flag for flag in OTHER_TOOLS_FLAGS if flag not in readme_flags() or flag in option_names()]
    assert stale == []
