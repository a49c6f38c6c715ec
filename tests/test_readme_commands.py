"""The README's command table lists every `radview` subcommand with every option it takes, and no other."""

import argparse
import re
from pathlib import Path

import pytest

from viewer.cli import _load_commands

README = Path(__file__).resolve().parents[1] / "README.md"
#: subcommands whose row only names them: their own sub-subcommands are documented in their README section
SUMMARISED = {"pacs"}


def _rows(name: str) -> str:
    """The README command-table rows of ``radview name`` (a command may have several, e.g. render)."""
    rows = re.findall(rf"^\| `radview {re.escape(name)}[ `].*$", README.read_text(), flags=re.M)
    return "\n".join(rows)


def _long_options(module) -> list[str]:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return sorted({s for action in parser._actions for s in action.option_strings
                   if s.startswith("--") and s != "--help"})


@pytest.mark.parametrize("name", sorted(_load_commands()))
def test_every_subcommand_and_option_has_a_row(name):
    module = _load_commands()[name]
    rows = _rows(name)
    assert rows, f"README.md's command table has no row for `radview {name}`"
    if name in SUMMARISED:
        return
    options = _long_options(module)
    missing = [o for o in options if not re.search(rf"{re.escape(o)}(?![\w-])", rows)]
    assert not missing, f"README.md's `radview {name}` row(s) do not name {missing}"
    unknown = sorted(set(re.findall(r"(?<![\w-])--[a-z][\w-]*", rows)) - {*options, "--help", "--debug"})
    assert not unknown, f"README.md's `radview {name}` row(s) name {unknown}, which it does not take"
