"""``webbugger url pixel|redirect``: mint a signed tracking URL, its references checked as the
admin API's ``/mint`` checks them. Kept light: minting a ``url:`` target or none reads no table
and imports neither botocore nor PynamoDB (bench/cli.py, tests/unit/test_cli_start.py)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.plugins import load_plugins
from webbugger.registry import Kind, Registry
from webbugger.runtime import default_registry
from webbugger.service.mint import MintRequest, check_records, pixel_claims
from webbugger.tokens import Purpose

from webbugger_cli.commands import UsageError
from webbugger_cli.helptext import paint
from webbugger_cli.local import state
from webbugger_cli.stack import resolve_stack

if TYPE_CHECKING:
    import argparse

    from webbugger.tokens import TokenClaims


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
        print(f"{paint('webbugger: note:', 'yellow')} {sends}", file=sys.stderr)
    if args.json:
        refs = {"target": claims.target, "entity": claims.entity, "source": claims.source}
        shown = {kind: str(ref) for kind, ref in refs.items() if ref is not None}
        print(json.dumps({"url": url, "mode": claims.mode.value, **shown, "purpose": str(claims.purpose)}))
    else:
        print(url)
    return 0


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


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``url pixel`` and ``url redirect`` to the command line."""
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
