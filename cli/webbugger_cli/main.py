"""The `webbugger` command: run the local stack, create links, mint tracking URLs, list beacons.

Minting is :mod:`webbugger_cli.commands.url`, listing beacons :mod:`webbugger_cli.commands.beacons`.
Also: list the registered types (``types``, :mod:`webbugger_cli.commands.types`), create sources
and show stored entities and sources (:mod:`webbugger_cli.commands.records`), manage links
(``link``, :mod:`webbugger_cli.commands.links`), chart counters (``stats``), export beacons
(``export``), query them with SQL (``sql``), write HTML reports (``report``), and explain a
hit's class (``classify``) or re-run classification on stored beacons (``relabel``).

Every command talks to the running local stack unless ``--stack NAME`` names a deployed one
(``link``, ``stats`` and ``export`` then go through the stack's admin API, SigV4-signed).
A user's mistake ends the command with one line on stderr and exit status 1 (2 for arguments
the parser refuses), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, NoReturn

from webbugger.errors import WebbuggerError

from webbugger_cli.admin_client import AdminApiError
from webbugger_cli.commands import (
    UsageError,
    beacons,
    classify,
    cost,
    doctor,
    email_rewrite,
    erase,
    export,
    link_routing,
    links,
    records,
    recount,
    relabel,
    replay,
    report,
    sql,
    stats,
    types,
    url,
)
from webbugger_cli.commands.options import positive
from webbugger_cli.helptext import VersionAction, finish, paint
from webbugger_cli.stack import StackError, adopt_local_parameters
from webbugger_cli.template import FRONT_DOORS, TemplateError
from webbugger_cli.terminal import terminal_text

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

PROG = "webbugger"
DEFAULT_PORT = 3000
EXIT_USER_ERROR = 1
EXIT_INTERRUPTED = 130

__all__ = ["UsageError", "build_parser", "main"]


# --- local --------------------------------------------------------------------------------------


def cmd_local(args: argparse.Namespace) -> int:
    """Run the local stack in the foreground until interrupted."""
    # Imported here: it pulls in the local server, which no other command needs.
    from webbugger_cli.local.run import run

    return run(args.port if args.port is not None else _default_port(), args.front_door)


# --- parser -------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An argument parser whose refusals are one line (subcommands' parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            2, f"{paint(f'{self.prog}: error:', 'red')} {_one_line(message)} (see `{self.prog} --help`)\n"
        )

    def parse_known_args(  # type: ignore[override]  # typeshed's overloads; this one is all we call
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        # A command's parser gets every argument after the command's name, so what it leaves is
        # nobody's: refuse it here, naming the command's help, not the top level's list of commands.
        if extras and self.prog != PROG:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def _port(text: str) -> int:
    value = positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


def _default_port() -> int:
    try:
        return _port(os.environ.get("PORT") or str(DEFAULT_PORT))
    except argparse.ArgumentTypeError:
        raise UsageError(f"PORT={os.environ['PORT']!r} is not a TCP port") from None


def _stack_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--stack", metavar="NAME", default=default, help="deployed stack to use (default: the local stack)"
    )
    parser.add_argument("--region", default=default, help="AWS region of --stack (default: your AWS config)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    # Typed as a plain parser so that subcommand parsers (of the same class at run time) are too.
    parser: argparse.ArgumentParser = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=VersionAction, help="print the version and exit")
    _stack_options(parser, None)
    # Accept --stack/--region after the command too, without overriding a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    _stack_options(common, argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    local = commands.add_parser("local", help="run the local stack (DynamoDB Local and the HTTP API)")
    local.add_argument("--port", type=_port, default=None, help="HTTP port (default: $PORT, else 3000)")
    local.add_argument(
        "--front-door",
        choices=FRONT_DOORS,
        default=FRONT_DOORS[0],
        help="serve the tracking routes as the HTTP API (default) or as the track function's URL",
    )
    local.set_defaults(handler=cmd_local)

    link_routing.add_parsers(links.add_parsers(commands, common), common)
    email_rewrite.add_parsers(commands, common)

    url.add_parsers(commands, common)
    beacons.add_parsers(commands, common)

    types.add_parsers(commands)
    records.add_parsers(commands, common)
    stats.add_parsers(commands, common)
    export.add_parsers(commands, common)
    sql.add_parsers(commands, common)
    erase.add_parsers(commands, common)
    report.register(commands)
    replay.register(commands)
    doctor.add_parsers(commands, common)
    cost.add_parsers(commands)
    classify.add_parsers(commands)
    relabel.add_parsers(commands, common)
    recount.add_parsers(commands, common)
    finish(parser)
    return parser


# --- entry point --------------------------------------------------------------------------------


def _one_line(message: object) -> str:
    return terminal_text(" ".join(str(message).split()))


def _aws_message(exc: Exception) -> str | None:
    """One line for an error of botocore or PynamoDB; None for any other exception.

    Their exception classes are looked up among the loaded modules, not imported: a command that
    never loaded botocore (`url pixel`, bench/cli.py) cannot have raised one of its errors.
    """
    botocore = sys.modules.get("botocore.exceptions")
    pynamodb = sys.modules.get("pynamodb.exceptions")
    if botocore is not None and isinstance(exc, botocore.NoCredentialsError):
        return "no AWS credentials found: configure them (e.g. `aws configure` or AWS_PROFILE)"
    if botocore is not None and isinstance(exc, botocore.NoRegionError):
        return "no AWS region configured: pass --region or set AWS_REGION"
    if pynamodb is not None and isinstance(exc, pynamodb.PynamoDBException):
        return f"database error: {exc.cause or exc}"
    if botocore is not None and isinstance(exc, botocore.BotoCoreError | botocore.ClientError):
        return f"AWS error: {exc}"
    return None


def _dispatch(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return handler(args)
    except (UsageError, StackError, WebbuggerError, TemplateError, AdminApiError) as exc:
        message = str(exc)
        status = getattr(exc, "exit_code", EXIT_USER_ERROR)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_USER_ERROR
    except Exception as exc:
        aws = _aws_message(exc)
        if aws is None and not isinstance(exc, OSError):
            raise
        # An OSError: e.g. the state directory cannot be read or written.
        message = str(exc) if aws is None else aws
        status = EXIT_USER_ERROR
    print(f"{paint(f'{PROG}: error:', 'red')} {_one_line(message)}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``webbugger`` command with ``argv`` (default: the process's arguments)."""
    args = build_parser().parse_args(argv)
    if args.stack is None and args.command != "local":
        for note in adopt_local_parameters():
            print(f"{paint(f'{PROG}: note:', 'yellow')} {note}", file=sys.stderr)
    return _dispatch(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
