"""``webbugger link create|list|show|update|disable``: stored links (``link rule``, ``link split``
and ``link qr``: :mod:`webbugger_cli.commands.link_routing`).

The local stack is changed through the core (:mod:`webbugger.service.links`); a deployed one
through its admin API. Every option is checked before any stack is looked for: a mistake is the news.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from webbugger.destinations import UTM_KEYS, normalise_destination
from webbugger.refs import Ref

from webbugger_cli.commands import UsageError, display, print_table
from webbugger_cli.commands.backends import open_backend
from webbugger_cli.commands.options import bounded, iso_time

if TYPE_CHECKING:
    from collections.abc import Sequence

    from webbugger_cli.commands.backend_records import Record

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 10_000
MAX_HITS = 10**12
URL_WIDTH = 60
# The HITS column's days, today included: the most /stats answers at once (and within the
# counters' retention, 400 days by default).
HITS_DAYS = timedelta(days=365)
_LIST_COLUMNS = ("ID", "STATE", "HITS", "MAX", "EXPIRES", "TAGS", "SHORT", "URL")


def _utm(pairs: Sequence[str]) -> dict[str, str]:
    """``--utm KEY=VALUE`` options as a dict; only the five UTM parameters, each once, not empty."""
    utm: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--utm expects KEY=VALUE, got {pair!r}")
        if key not in UTM_KEYS:
            raise UsageError(f"unknown UTM parameter {key!r}: use {', '.join(UTM_KEYS)}")
        if key in utm:
            raise UsageError(f"--utm {key} given more than once")
        if not value:
            raise UsageError(f"--utm {key} has an empty value")
        utm[key] = value
    return utm


def link_id(text: str) -> str:
    """A link id given on the command line, checked (one line for an id no link can have)."""
    Ref("link", text)  # InvalidReferenceError (one line) for an id no link can have
    return text


def _tags(values: Sequence[str]) -> list[str]:
    tags: list[str] = []
    for value in values:
        tag = value.strip()
        if not tag:
            raise UsageError("--tag needs a non-empty value")
        if tag not in tags:
            tags.append(tag)
    return tags


def link_changes(args: argparse.Namespace) -> dict[str, object]:
    """The link fields the options set, checked and normalised (update_link's field names)."""
    changes: dict[str, object] = {}
    url = getattr(args, "new_url", None)
    if url is not None:
        changes["url"] = normalise_destination(url)
    if args.valid_from is not None:
        changes["valid_from"] = args.valid_from
    if args.expires_at is not None:
        changes["expires_at"] = args.expires_at
    if args.valid_from is not None and args.expires_at is not None and args.expires_at <= args.valid_from:
        raise UsageError("--expires-at must be later than --valid-from")
    if args.max_hits is not None:
        changes["max_hits"] = args.max_hits
    if args.fallback_url is not None:
        changes["fallback_url"] = normalise_destination(args.fallback_url)
    if args.tag is not None:
        changes["tags"] = _tags(args.tag)
    if args.forward_query is not None:
        changes["forward_query"] = bool(args.forward_query)
    if args.short_url is not None:
        changes["short_url_enabled"] = bool(args.short_url)
    if getattr(args, "enable", False):
        changes["disabled"] = False
    return changes


def state(record: Record, now: datetime | None = None) -> str:
    """Whether a hit now would be followed: active, disabled, scheduled, expired or used-up."""
    moment = now or datetime.now(UTC)

    def time_of(name: str) -> datetime | None:
        value = record.get(name)
        return datetime.fromisoformat(value) if isinstance(value, str) and value else None

    valid_from, expires_at = time_of("valid_from"), time_of("expires_at")
    if record.get("disabled"):
        return "disabled"
    if valid_from is not None and moment < valid_from:
        return "scheduled"
    if expires_at is not None and moment >= expires_at:
        return "expired"
    max_hits = record.get("max_hits")
    if isinstance(max_hits, int) and int(record.get("hits") or 0) >= max_hits:
        return "used-up"
    return "active"


def _shown(record: Record, api_url: str) -> dict[str, Any]:
    from webbugger.service.links import short_url  # the tracker's modules: not at start-up

    # The admin API names the short URL itself (its tracking base may be a custom domain).
    short = record["short_url"] if "short_url" in record else short_url(record, api_url)
    shown = {"id": record["id"], "short_url": short}
    shown.update((key, value) for key, value in record.items() if key not in shown)
    return shown


def _print_link(record: Record, api_url: str, *, as_json: bool) -> None:
    shown = _shown(record, api_url)
    if as_json:
        print(json.dumps(shown))
        return
    shown["state"] = state(record)
    print_table([(name, display(value)) for name, value in shown.items()])


def cmd_link_create(args: argparse.Namespace) -> int:
    """Store a new link and print its id."""
    from webbugger.service.links import check_link_id, check_new_expiry  # the tracker's: not at start-up

    # Refuse an unusable URL or option before looking for a stack: the user's mistake is the news.
    url = normalise_destination(args.url)
    utm = _utm(args.utm or ())
    if args.id is not None:
        check_link_id(args.id)  # URL-safe: the id is the short URL's path
    changes = link_changes(args)
    check_new_expiry(changes)  # a link expired already would never be followed
    backend = open_backend(args.stack, args.region)
    record = backend.create_link(url, args.id, utm, changes)
    if args.json:
        print(json.dumps(_shown(record, backend.api_url)))
    else:
        print(record["id"])
    _note_uncapped_short_url(record)
    return 0


def _note_uncapped_short_url(record: Record) -> None:
    """Say so when a capped link has a short URL: anyone may follow /l/ID, so its hits never
    spend the cap (docs/links.md), and the short URL keeps working while minted URLs are left."""
    if record.get("max_hits") is not None and record.get("short_url_enabled"):
        print(
            f"note: the short URL of link {record['id']} (and its QR code) is not capped: only URLs "
            f"minted for the link spend its {record['max_hits']} hits",
            file=sys.stderr,
        )


def cmd_link_list(args: argparse.Namespace) -> int:
    """Print stored links, as a table (HITS: counted over the last 366 days) or as JSON lines."""
    backend = open_backend(args.stack, args.region)
    links = backend.list_links(args.limit)
    if args.json:
        for record in links:
            print(json.dumps(_shown(record, backend.api_url)))
        return 0
    records = list(links)
    # The counters' hits (every hit, as `stats` counts them), not the record's `hits`: those are
    # the claims against a cap, kept only for capped links.
    today = datetime.now(UTC).date()
    counted = backend.link_hits([str(record["id"]) for record in records], today - HITS_DAYS, today)
    rows = []
    for record, hits in zip(records, counted, strict=True):
        url = str(record.get("url") or "")
        if len(url) > URL_WIDTH:
            url = url[: URL_WIDTH - 1] + "…"
        expires = record.get("expires_at")
        rows.append(
            (
                str(record["id"]),
                state(record),
                str(hits),
                display(record.get("max_hits")),
                str(expires)[:16].replace("T", " ") if expires else "-",
                display(record.get("tags")),
                display(bool(record.get("short_url_enabled"))),
                url,
            )
        )
    if not rows:
        print("no links", file=sys.stderr)
        return 0
    print_table([_LIST_COLUMNS, *rows])
    return 0


def print_link(record: Record, api_url: str, *, as_json: bool) -> None:
    """One link, as a table of fields (with its state) or as one JSON object."""
    _print_link(record, api_url, as_json=as_json)


def cmd_link_show(args: argparse.Namespace) -> int:
    """Print one link (with its short URL)."""
    wanted = link_id(args.link_id)
    backend = open_backend(args.stack, args.region)
    _print_link(backend.get_link(wanted), backend.api_url, as_json=args.json)
    return 0


def cmd_link_update(args: argparse.Namespace) -> int:
    """Change some fields of a link and print it."""
    wanted = link_id(args.link_id)
    changes = link_changes(args)
    if not changes:
        raise UsageError(
            "nothing to change: give --url, --expires-at, --valid-from, --max-hits, --fallback-url, "
            "--tag, --forward-query/--no-forward-query, --short-url/--no-short-url or --enable"
        )
    backend = open_backend(args.stack, args.region)
    record = backend.update_link(wanted, changes)
    _print_link(record, backend.api_url, as_json=args.json)
    _note_uncapped_short_url(record)
    return 0


def cmd_link_disable(args: argparse.Namespace) -> int:
    """Disable a link: its hits answer 404 (or go to its fallback URL)."""
    wanted = link_id(args.link_id)
    backend = open_backend(args.stack, args.region)
    record = backend.disable_link(wanted)
    if args.json:
        print(json.dumps(_shown(record, backend.api_url)))
    else:
        print(f"disabled link {record['id']}")
    from webbugger.service.links import change_delay

    print(f"note: {change_delay()}", file=sys.stderr)  # not at once: see webbugger.cache
    return 0


def _link_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--expires-at",
        metavar="ISO",
        type=iso_time,
        help="refuse hits from this time (ISO 8601; UTC if no offset)",
    )
    parser.add_argument(
        "--valid-from", metavar="ISO", type=iso_time, help="refuse hits before this time (ISO 8601)"
    )
    parser.add_argument(
        "--max-hits", metavar="N", type=bounded(1, MAX_HITS), help="refuse hits after the first N"
    )
    parser.add_argument(
        "--fallback-url", metavar="URL", help="send refused hits here instead of answering 404"
    )
    parser.add_argument(
        "--tag", metavar="T", action="append", help="a tag (repeatable; on update, replaces the tags)"
    )
    parser.add_argument(
        "--forward-query",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="append the visitor's query parameters to the URL",
    )
    parser.add_argument(
        "--short-url",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="answer the link's unsigned short URL /l/ID (off unless turned on; its hits count "
        "against --max-hits)",
    )


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Add ``link create|list|show|update|disable`` to the command line; the ``link`` commands."""
    link = commands.add_parser("link", help="stored links").add_subparsers(
        dest="link_command", required=True, metavar="COMMAND"
    )
    create = link.add_parser("create", parents=[common], help="store a link to URL and print its id")
    create.add_argument("url", metavar="URL", help="absolute http or https URL")
    create.add_argument(
        "--id", help="the link's id: letters, digits, '-' and '_', at most 64 (default: a random one)"
    )
    _link_options(create)
    create.add_argument(
        "--utm",
        metavar="KEY=VALUE",
        action="append",
        help="set a UTM parameter on URL (repeatable; utm_source, utm_medium, utm_campaign, "
        "utm_term, utm_content)",
    )
    create.add_argument("--json", action="store_true", help="print the new link as one JSON object")
    create.set_defaults(handler=cmd_link_create)

    listing = link.add_parser(
        "list", parents=[common], help="print stored links (HITS: counted over the last 366 days)"
    )
    listing.add_argument(
        "--limit",
        type=bounded(1, MAX_LIST_LIMIT),
        default=DEFAULT_LIST_LIMIT,
        help=f"at most this many (default: {DEFAULT_LIST_LIMIT})",
    )
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=cmd_link_list)

    show = link.add_parser("show", parents=[common], help="print one link and its short URL")
    show.add_argument("link_id", metavar="ID", help="the link's id")
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.set_defaults(handler=cmd_link_show)

    update = link.add_parser("update", parents=[common], help="change a link and print it")
    update.add_argument("link_id", metavar="ID", help="the link's id")
    update.add_argument("--url", dest="new_url", metavar="URL", help="a new destination URL")
    _link_options(update)
    update.add_argument("--enable", action="store_true", help="enable a disabled link again")
    update.add_argument("--json", action="store_true", help="print the link as one JSON object")
    update.set_defaults(handler=cmd_link_update)

    disable = link.add_parser(
        "disable",
        parents=[common],
        help="disable a link (its hits answer 404, within LOOKUP_CACHE_SECONDS: 30 s by default)",
    )
    disable.add_argument("link_id", metavar="ID", help="the link's id")
    disable.add_argument("--json", action="store_true", help="print the link as one JSON object")
    disable.set_defaults(handler=cmd_link_disable)
    return link
