"""The `webbugger` command: run the local stack, create links, mint tracking URLs, list beacons.

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
import itertools
import json
import os
import sys
from typing import TYPE_CHECKING, NoReturn

from webbugger.errors import WebbuggerError
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.plugins import load_plugins
from webbugger.refs import Ref
from webbugger.registry import Kind, Registry
from webbugger.runtime import default_registry
from webbugger.service.mint import MintRequest, check_records, pixel_claims
from webbugger.tokens import Purpose

from webbugger_cli.admin_client import AdminApiError
from webbugger_cli.commands import (
    UsageError,
    classify,
    cost,
    doctor,
    email_rewrite,
    erase,
    export,
    link_routing,
    links,
    print_table,
    records,
    recount,
    relabel,
    replay,
    report,
    sql,
    stats,
    types,
)
from webbugger_cli.helptext import VersionAction, finish, paint
from webbugger_cli.local import state
from webbugger_cli.stack import StackError, adopt_local_parameters, resolve_stack
from webbugger_cli.template import FRONT_DOORS, TemplateError
from webbugger_cli.terminal import terminal_text

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from webbugger.models import Beacon
    from webbugger.tokens import TokenClaims

PROG = "webbugger"
DEFAULT_PORT = 3000
USER_AGENT_WIDTH = 40
REASONS_WIDTH = 40
EXIT_USER_ERROR = 1
EXIT_INTERRUPTED = 130

__all__ = ["UsageError", "build_parser", "main"]


# --- local --------------------------------------------------------------------------------------


def cmd_local(args: argparse.Namespace) -> int:
    """Run the local stack in the foreground until interrupted."""
    # Imported here: it pulls in the local server, which no other command needs.
    from webbugger_cli.local.run import run

    return run(args.port if args.port is not None else _default_port(), args.front_door)


# --- url ----------------------------------------------------------------------------------------


def _registry(args: argparse.Namespace) -> Registry:
    """The types the URL's references name: only their plugins, when the running local stack
    published which plugin registers each (importing every plugin costs PynamoDB and botocore,
    ~0.3 s: bench/cli.py); else every plugin the functions load. A type the stack does not have
    is then missing either way: one line, exit 1."""
    running = state.read_running() if args.stack is None else None
    if running is None or running.types is None:
        return default_registry()  # a broken plugin is a PluginLoadError: one line, exit 1
    named = {(kind.value, text.partition(":")[0]) for kind in Kind if (text := getattr(args, kind.value))}
    modules = [
        str(entry["origin"]) for entry in running.types if (entry.get("kind"), entry.get("name")) in named
    ]
    registry = Registry()
    load_plugins(registry, dict.fromkeys(modules))
    return registry


def _claims(args: argparse.Namespace, mode: Mode, registry: Registry) -> TokenClaims:
    """The claims the options ask for, each reference checked as the admin API's ``/mint`` checks
    it: a registered type, and a ``url`` target on a host the stack allows (the type's check);
    that the target and source exist is checked once the stack's tables are known."""
    honeypot = getattr(args, "honeypot", False)
    request = MintRequest(args.target, args.entity, args.source, args.ignore_errors, honeypot, args.purpose)
    pixel = pixel_claims(registry, request)
    return pixel if mode is Mode.PIXEL else pixel.replace(mode=mode, honeypot=honeypot)


def cmd_url(args: argparse.Namespace) -> int:
    """Print a signed pixel or redirect URL (or, with --json, it and its claims)."""
    mode = Mode(args.mode)
    if mode is Mode.REDIRECT and args.target is None:
        raise UsageError("a redirect URL needs --target TYPE:ID")
    registry = _registry(args)
    claims = _claims(args, mode, registry)
    # Tables are bound only for plugins that have some (a link or a campaign is read): a url
    # target, or none, needs no database.
    stack = resolve_stack(args.stack, args.region, registry, bind=bool(registry.tables))
    check_records(registry, [claims])  # a target or source that does not exist: one line
    url = tracking_url(stack.api_url, claims, stack.key_ring())
    if claims.purpose is Purpose.EMAIL and claims.entity and claims.source:  # the rates need its send
        sends = f"no send of {claims.source} recorded for {claims.entity}: POST /sends records it"
        print(f"{paint(f'{PROG}: note:', 'yellow')} {sends}", file=sys.stderr)
    if args.json:
        refs = {"target": claims.target, "entity": claims.entity, "source": claims.source}
        shown = {kind: str(ref) for kind, ref in refs.items() if ref is not None}
        print(json.dumps({"url": url, "mode": claims.mode.value, **shown, "purpose": str(claims.purpose)}))
    else:
        print(url)
    return 0


# --- beacons ------------------------------------------------------------------------------------

_COLUMNS = ("time", "mode", "class", "target", "entity", "source", "ip", "user agent", "reasons")


def _cut(text: str | None, width: int) -> str:
    if not text:
        return "-"
    return text if len(text) <= width else text[: width - 1] + "…"


def _row(beacon: Beacon) -> tuple[str, ...]:
    record = beacon.to_record()
    return (
        beacon.created_at.strftime("%Y-%m-%d %H:%M:%SZ"),
        beacon.mode,
        # Not labelled yet: the stream function labels a beacon with a reference within seconds.
        record["classification"] or "pending",
        beacon.target or "-",
        beacon.entity or "-",
        beacon.source or "-",
        beacon.ip or "-",
        _cut(beacon.user_agent, USER_AGENT_WIDTH),
        _cut(record["reasons"], REASONS_WIDTH),
    )


def _require_record(kind: Kind, ref: Ref, found: str) -> None:
    """:class:`NotFoundError` when nothing was found for ``ref`` and it names no stored record:
    a mistyped id must not read as "no traffic" (as ``stats`` refuses it)."""
    from webbugger.errors import NotFoundError
    from webbugger.runtime import default_registry
    from webbugger.service.stats import record_exists

    if record_exists(default_registry(), kind, ref) is False:
        raise NotFoundError(f"no {ref.type} {kind} with id {ref.id!r}, {found}")


def cmd_beacons_list(args: argparse.Namespace) -> int:
    """Print the latest beacons, newest first, as a table or as JSON lines."""
    kind, ref = None, None
    for candidate in Kind:
        text = getattr(args, candidate.value)
        if text is not None:
            # Not checked against the registry: old beacons may name types no longer registered.
            kind, ref = candidate, Ref.parse(text)
    from webbugger.beacon_queries import latest_beacons

    resolve_stack(args.stack, args.region)
    beacons = list(itertools.islice(latest_beacons(kind=kind, ref=ref, days=args.days), args.limit))
    if not beacons and kind is not None and ref is not None:
        _require_record(kind, ref, f"and no beacons in the last {args.days} days")
    if args.json:
        for beacon in beacons:
            print(json.dumps(beacon.to_record()))
        return 0
    rows = [_row(beacon) for beacon in beacons]
    if not rows:
        print(f"no beacons in the last {args.days} days", file=sys.stderr)
        return 0
    print_table([tuple(name.upper() for name in _COLUMNS), *rows])
    return 0


# --- parser -------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An argument parser whose refusals are one line (subcommands' parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            2, f"{paint(f'{self.prog}: error:', 'red')} {_one_line(message)} (see `{self.prog} --help`)\n"
        )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    value = _positive(text)
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


def _ref_options(parser: argparse.ArgumentParser, *, target_required: bool) -> None:
    parser.add_argument("--target", metavar="TYPE:ID", required=target_required, help="what is hit")
    parser.add_argument(
        "--entity", metavar="TYPE[:ID]", help="who hits it (a bare TYPE makes a new one per hit)"
    )
    parser.add_argument("--source", metavar="TYPE:ID", help="where the traffic comes from")
    parser.add_argument(
        "--ignore-errors", action="store_true", help="record the hit even if the source does not exist"
    )
    parser.add_argument(
        "--for",
        dest="purpose",
        choices=[str(purpose) for purpose in Purpose],
        default=str(Purpose.WEB),
        help="what the URL goes in (default: web); a hit seconds after an email mint may be a "
        "mail gateway's, never so on a web page",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object: the URL and its claims")


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

    url = commands.add_parser("url", help="mint signed tracking URLs").add_subparsers(
        dest="mode", required=True, metavar="MODE"
    )
    pixel = url.add_parser("pixel", parents=[common], help="print a 1x1 GIF pixel URL")
    _ref_options(pixel, target_required=False)
    redirect = url.add_parser("redirect", parents=[common], help="print a redirect URL")
    _ref_options(redirect, target_required=False)  # checked in cmd_url, for a one-line message
    redirect.add_argument(
        "--honeypot",
        action="store_true",
        help="a honeypot link: hide it in the mail; whatever follows it is counted as a machine",
    )
    redirect.epilog = (
        "A url:URL target (the destination signed into the token) must be on a host the stack "
        "allows: a deployed stack's AllowedRedirectHosts parameter; locally, the "
        "ALLOWED_REDIRECT_HOSTS that `make run` was started with."
    )
    for sub in (pixel, redirect):
        sub.set_defaults(handler=cmd_url)

    beacons = commands.add_parser("beacons", help="recorded beacons").add_subparsers(
        dest="beacons_command", required=True, metavar="COMMAND"
    )
    listing = beacons.add_parser(
        "list",
        parents=[common],
        help="print the latest beacons, newest first, with their class and its reasons",
    )
    only = listing.add_mutually_exclusive_group()
    for kind in Kind:
        only.add_argument(f"--{kind.value}", metavar="TYPE:ID", help=f"only the beacons of this {kind}")
    listing.add_argument("--days", type=_positive, default=30, help="how far back to look (default: 30)")
    listing.add_argument("--limit", type=_positive, default=50, help="at most this many (default: 50)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=cmd_beacons_list)

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
