"""The README documents every command-line option, and no option that does not exist."""

import re
from pathlib import Path

from latentmorph.cli import build_parser

README = (Path(__file__).parents[1] / "README.md").read_text()


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and "transition" in a.choices)
    return sub.choices


def test_every_option_of_every_command_is_in_the_readme():
    for name, command in _commands().items():
        assert f"latentmorph {name}" in README
        for action in command._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert f"`{flag}" in README or f"{flag} " in README, (name, flag)


def test_the_readme_names_no_option_that_does_not_exist():
    known = {f for c in _commands().values() for a in c._actions for f in a.option_strings}
    for flag in set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", README)):
        assert flag in known, flag
