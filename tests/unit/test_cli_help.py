"""The command line's conventions: examples in every command's help (each of which parses),
plain help text, ``--json`` wherever a command prints a result, ``--version``, colour on a
terminal only."""

from __future__ import annotations

import contextlib
import io
import os
import pty
import shlex
import subprocess
import sys
from importlib.metadata import version

import pytest
from webbugger_cli.helptext import EXAMPLES, leaf_commands, subparser
from webbugger_cli.main import build_parser

PARSER = build_parser()
LEAVES = sorted(leaf_commands(PARSER))
# Commands that write files or streams rather than print a result: no --json.
NO_JSON = {("local",), ("link", "qr"), ("email", "rewrite"), ("export",), ("report",)}


def test_every_command_has_examples() -> None:
    assert {" ".join(path) for path in LEAVES} == set(EXAMPLES)


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_help_shows_the_examples_in_plain_text(path: tuple[str, ...]) -> None:
    shown = subparser(PARSER, path).format_help()
    assert "examples:\n" in shown
    for example in EXAMPLES[" ".join(path)]:
        assert f"  {example}\n" in shown
    assert "``" not in shown
    assert ":class:" not in shown


def test_the_top_level_help_is_plain() -> None:
    shown = PARSER.format_help()
    assert "``" not in shown
    assert shown.count("\n  ") > 10  # the commands, listed


@pytest.mark.parametrize(("command", "example"), [(c, e) for c, es in EXAMPLES.items() for e in es])
def test_each_example_parses(command: str, example: str) -> None:
    words = shlex.split(example)
    assert words[0] == "webbugger"
    # A shell redirection is the shell's, not the command's.
    for sign in ("<", ">"):
        if sign in words:
            del words[words.index(sign) :]
    with contextlib.redirect_stderr(io.StringIO()) as errors:
        try:
            args = PARSER.parse_args(words[1:])
        except SystemExit:
            pytest.fail(f"{example!r} does not parse: {errors.getvalue().strip()}")
    assert args.handler is not None
    assert command.split()[0] == args.command


@pytest.mark.parametrize("path", [p for p in LEAVES if p not in NO_JSON], ids=" ".join)
def test_every_command_that_prints_a_result_has_json(path: tuple[str, ...]) -> None:
    options = {option for action in subparser(PARSER, path)._actions for option in action.option_strings}
    assert options & {"--json", "--jsonl"}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "webbugger_cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def test_version() -> None:
    result = _cli("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"webbugger {version('webbugger')}\n", "")


def _stderr_on_a_terminal(*args: str, env: dict[str, str]) -> bytes:
    """What the CLI writes to stderr when stderr is a terminal (a pseudo-terminal here)."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "webbugger_cli.main", *args],
            stdout=subprocess.DEVNULL,
            stderr=follower,
            env={**os.environ, **env},
            timeout=60,
            check=False,
        )
        assert done.returncode == 2
        os.close(follower)
        follower = -1
        chunks = []
        with contextlib.suppress(OSError):  # EIO once everything written is read
            while chunk := os.read(leader, 4096):
                chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)


def test_colour_on_a_terminal_only() -> None:
    plain_env = {"TERM": "xterm"}
    coloured = _stderr_on_a_terminal("url", "nosuchmode", env={**plain_env, "NO_COLOR": ""})
    assert b"\x1b[31mwebbugger url: error:\x1b[0m" in coloured
    assert b"\x1b[" not in _stderr_on_a_terminal("url", "nosuchmode", env={**plain_env, "NO_COLOR": "1"})
    piped = _cli("url", "nosuchmode", env=plain_env)
    assert piped.returncode == 2
    assert piped.stderr.startswith("webbugger url: error: argument MODE: invalid choice")
    assert "\x1b[" not in piped.stderr
