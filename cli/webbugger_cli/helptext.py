"""What ``--help`` shows beyond the options: examples for every command, plain text (no
reStructuredText quoting from docstrings), ``--version``; and colour, on a terminal only.

The examples live here, one list per command, so that ``tests/unit/test_cli_help.py`` can check
that every command has some and each one parses.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

# A command's path (its words after `webbugger`) -> examples, each a command line.
EXAMPLES: dict[str, list[str]] = {
    "local": ["webbugger local", "webbugger local --port 8080 --front-door function-url"],
    "link create": [
        "webbugger link create https://example.com/pricing",
        "webbugger link create https://shop.example.com/sale --id spring-sale --utm utm_source=mail --json",
    ],
    "link list": ["webbugger link list", "webbugger link list --limit 500 --json"],
    "link show": ["webbugger link show spring-sale", "webbugger link show spring-sale --json"],
    "link update": [
        "webbugger link update spring-sale --expires-at 2026-06-30",
        "webbugger link update spring-sale --short-url --json",
    ],
    "link disable": ["webbugger link disable spring-sale", "webbugger link disable spring-sale --json"],
    "link rule add": [
        "webbugger link rule add spring-sale --name ios --os ios --url https://apps.apple.com/app/id1",
    ],
    "link rule list": ["webbugger link rule list spring-sale --json"],
    "link rule remove": ["webbugger link rule remove spring-sale ios"],
    "link split set": [
        "webbugger link split set spring-sale --variant a 50 https://example.com/a "
        "--variant b 50 https://example.com/b",
    ],
    "link split end": ["webbugger link split end spring-sale --winner a"],
    "link split remove": ["webbugger link split remove spring-sale"],
    "link qr": ["webbugger link qr spring-sale --svg --out spring.svg"],
    "email rewrite": [
        "webbugger email rewrite message.html --recipient alice@example.com --campaign spring-2026",
        "webbugger email rewrite message.html --recipients list.txt --campaign spring-2026 --out-dir out/",
    ],
    "url pixel": [
        "webbugger url pixel",
        "webbugger url pixel --entity recipient:alice@example.com --source campaign:spring-2026 --for email",
    ],
    "url redirect": [
        "webbugger url redirect --target link:spring-sale",
        "webbugger url redirect --target url:https://example.com/ --entity ip --json",
    ],
    "beacons list": [
        "webbugger beacons list",
        "webbugger beacons list --target link:spring-sale --days 7 --json",
    ],
    "types": ["webbugger types", "webbugger types --json"],
    "entity show": ["webbugger entity show recipient:alice@example.com --json"],
    "entity list": ["webbugger entity list", "webbugger entity list --type ip --limit 10 --json"],
    "source create": [
        'webbugger source create campaign:spring-2026 --name "Spring sale"',
        "webbugger --stack webbugger-prod source create campaign:spring-2026 --json",
    ],
    "source show": ["webbugger source show campaign:spring-2026"],
    "source list": ["webbugger source list", "webbugger source list --type campaign --json"],
    "stats": ["webbugger stats link:spring-sale --days 14", "webbugger stats campaign:spring-2026 --json"],
    "export": [
        "webbugger export --from 2026-05-01 --to 2026-05-31 > may.csv",
        "webbugger export --source campaign:spring-2026 --format jsonl",
    ],
    "sql": ["webbugger sql --list", "webbugger sql 'select count(*) from hits'"],
    "erase": ["webbugger erase recipient:alice@example.com --yes"],
    "report": [
        "webbugger report link:spring-sale --html report.html",
        "webbugger report campaign:spring-2026 --html campaign.html",
    ],
    "replay": ["webbugger replay spilled.log", "webbugger --stack webbugger-prod replay --since 6h --json"],
    "recount": [
        "webbugger recount",
        "webbugger --stack webbugger-prod recount --from 2026-05-01T09:00 --json",
    ],
    "doctor": ["webbugger --stack webbugger-prod doctor", "webbugger doctor --json"],
    "cost": ["webbugger cost --hits 1000000", "webbugger cost --hits 5000000 --profile open --json"],
    "classify": [
        "webbugger classify --user-agent 'Mozilla/5.0' --ip 17.58.0.1",
        "webbugger classify --jsonl < hits.jsonl",
    ],
    "relabel": ["webbugger relabel --from 2026-05-01", "webbugger relabel --json"],
}

# reStructuredText in docstrings reused as help: ``x`` and :role:`x` read as `x` in a terminal.
_RST = re.compile(r"``([^`]+)``|:[a-z]+:`~?([^`]+)`")


def plain(text: str | None) -> str | None:
    """``text`` with reStructuredText quoting made plain."""
    if text is None:
        return None
    return _RST.sub(lambda match: f"`{match.group(1) or match.group(2)}`", text)


def leaf_commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command that runs something (not a group of commands)."""
    groups = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    if not groups:
        yield path
    for group in groups:
        for name, sub in group.choices.items():
            yield from leaf_commands(sub, (*path, name))


def subparser(parser: argparse.ArgumentParser, path: Sequence[str]) -> argparse.ArgumentParser:
    """The parser of the command ``path``."""
    for name in path:
        group = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
        parser = group.choices[name]
    return parser


def finish(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> None:
    """Plain help texts everywhere, and each command's examples after its options."""
    parser.description = plain(parser.description)
    for action in parser._actions:
        action.help = plain(action.help) if action.help is not argparse.SUPPRESS else action.help
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = plain(choice.help)
            for name, sub in action.choices.items():
                finish(sub, (*path, name))
    examples = EXAMPLES.get(" ".join(path))
    if examples:
        # Kept as written: the default formatter would run the example lines together.
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        lines = [*(_wrapped(parser.epilog) if parser.epilog else []), "examples:"]
        parser.epilog = "\n".join([*lines, *(f"  {example}" for example in examples)])


def _wrapped(text: str) -> list[str]:
    import textwrap

    return [*textwrap.wrap(text, width=100), ""]


class VersionAction(argparse.Action):
    """``--version``: the installed distribution's version, looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("webbugger")
        except PackageNotFoundError:
            found = "unknown (not installed)"
        print(f"{parser.prog} {found}")  # on stdout, as argparse's own version action
        parser.exit(0)


def paint(text: str, colour: str, stream: TextIO = sys.stderr) -> str:
    """``text`` in ``colour`` (``red``, ``yellow``, ``green``) when ``stream`` is a terminal, and
    neither ``NO_COLOR`` (https://no-color.org) is set nor ``TERM=dumb``; else as it is."""
    codes = {"red": "31", "yellow": "33", "green": "32"}
    isatty = getattr(stream, "isatty", None)
    if not (callable(isatty) and isatty()) or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return text
    return f"\x1b[{codes[colour]}m{text}\x1b[0m"
