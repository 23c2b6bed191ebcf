"""``webbugger link rule add|list|remove``, ``link split set|end|remove`` and ``link qr``: where a
stored link sends each visitor, and a QR code of its short URL.

Rules and the split are fields of the link (:mod:`webbugger.routing` says what they mean): each
command reads the link, changes the field and writes it back, through the local core or the
deployed admin API. Options are checked (by the core's own checks) before any stack is looked for.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webbugger.destinations import normalise_destination
from webbugger.routing import DEVICES, SYSTEMS
from webbugger.routing_fields import MAX_VARIANTS, MAX_WEIGHT, check_rules, check_split

from webbugger_cli.commands import UsageError, display, print_table
from webbugger_cli.commands.backends import open_backend
from webbugger_cli.commands.links import link_id, print_link
from webbugger_cli.commands.options import bounded, iso_time

if TYPE_CHECKING:
    from collections.abc import Sequence

    from webbugger.service.qr import QrFormat

    from webbugger_cli.commands.backend_records import Record

CONDITIONS = ("device", "os", "country", "language", "query")


def _listed(values: Sequence[str] | None) -> list[str] | None:
    """Repeated options, each possibly comma-separated, as one list (None when not given)."""
    if not values:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _query(pairs: Sequence[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    query: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--query expects NAME=VALUE, got {pair!r}")
        query[key] = value
    return query


def rule_from_options(args: argparse.Namespace) -> dict[str, Any]:
    """The rule the options describe, checked as the core checks a stored one."""
    rule: dict[str, Any] = {"url": args.url}
    if args.name is not None:
        rule["name"] = args.name
    for field in ("device", "os", "country", "language"):
        values = _listed(getattr(args, field))
        if values is not None:
            rule[field] = values
    query = _query(args.query)
    if query is not None:
        rule["query"] = query
    checked = check_rules([rule], normalise_destination)[0]
    if args.name is None:
        del checked["name"]  # named when added: the first rN that the link's rules leave free
    return checked


def when(rule: Record) -> str:
    """A rule's conditions in one cell: ``device=ios; country=DE,AT``."""
    parts = []
    for field in CONDITIONS:
        value = rule.get(field)
        if value:
            shown = (
                ",".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else ",".join(value)
            )
            parts.append(f"{field}={shown}")
    return "; ".join(parts)


def print_rules(rules: Sequence[Record], *, as_json: bool) -> None:
    """A link's rules in their order (first match wins), as a table or one JSON list."""
    if as_json:
        print(json.dumps(list(rules)))
        return
    if not rules:
        print("no rules: every hit goes to the link's url (or its split)", file=sys.stderr)
        return
    rows = [(str(n), str(rule["name"]), when(rule), str(rule["url"])) for n, rule in enumerate(rules, 1)]
    print_table([("#", "NAME", "WHEN", "URL"), *rows])


def print_split(split: Record | None, *, as_json: bool) -> None:
    """A link's split: its variants with their shares, its end and winner."""
    if as_json:
        print(json.dumps(split))
        return
    if not split:
        print("no split", file=sys.stderr)
        return
    total = sum(int(variant["weight"]) for variant in split["variants"])
    rows = [
        (str(v["name"]), str(v["weight"]), f"{100 * int(v['weight']) / total:.1f}%", str(v["url"]))
        for v in split["variants"]
    ]
    print_table([("VARIANT", "WEIGHT", "SHARE", "URL"), *rows])
    print(f"ends: {display(split.get('ends_at'))}; winner: {display(split.get('winner'))}")


def cmd_rule_add(args: argparse.Namespace) -> int:
    """Add a routing rule to a link (last, or at --position) and print its rules."""
    wanted = link_id(args.link_id)
    rule = rule_from_options(args)
    backend = open_backend(args.stack, args.region)
    from webbugger.service.links import with_rule  # PynamoDB: not at the CLI's start-up

    rules = with_rule(backend.get_link(wanted).get("rules") or [], rule, args.position)
    print_rules(backend.update_link(wanted, {"rules": rules}).get("rules") or [], as_json=args.json)
    return 0


def cmd_rule_list(args: argparse.Namespace) -> int:
    """Print a link's routing rules."""
    wanted = link_id(args.link_id)
    backend = open_backend(args.stack, args.region)
    print_rules(backend.get_link(wanted).get("rules") or [], as_json=args.json)
    return 0


def cmd_rule_remove(args: argparse.Namespace) -> int:
    """Remove one of a link's routing rules, by name."""
    wanted = link_id(args.link_id)
    backend = open_backend(args.stack, args.region)
    from webbugger.service.links import without_rule

    rules = without_rule(backend.get_link(wanted).get("rules") or [], args.name)
    updated = backend.update_link(wanted, {"rules": rules or None})
    if args.json:
        print_rules(updated.get("rules") or [], as_json=True)
        return 0
    print(f"removed rule {args.name} of link {wanted}")
    return 0


def _variants(given: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    variants = []
    for name, weight, url in given:
        try:
            share = bounded(1, MAX_WEIGHT)(weight)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"--variant {name}: weight {exc}") from None
        variants.append({"name": name, "weight": share, "url": url})
    return variants


def cmd_split_set(args: argparse.Namespace) -> int:
    """Give a link an A/B split (replacing any) and print it."""
    wanted = link_id(args.link_id)
    ends_at = None if args.ends_at is None else args.ends_at.isoformat()
    raw = {"variants": _variants(args.variant), "ends_at": ends_at, "winner": args.winner}
    split = check_split(raw, normalise_destination)
    backend = open_backend(args.stack, args.region)
    print_split(backend.update_link(wanted, {"split": split}).get("split"), as_json=args.json)
    return 0


def cmd_split_end(args: argparse.Namespace) -> int:
    """End a link's split (now, or at --at) and serve the winner from then on."""
    wanted = link_id(args.link_id)
    ends_at = (args.at or datetime.now(UTC)).isoformat()
    backend = open_backend(args.stack, args.region)
    split = backend.get_link(wanted).get("split")
    if not split:
        raise UsageError(f"link {wanted} has no split")
    changed = check_split({**split, "ends_at": ends_at, "winner": args.winner}, normalise_destination)
    print_split(backend.update_link(wanted, {"split": changed}).get("split"), as_json=args.json)
    return 0


def cmd_split_remove(args: argparse.Namespace) -> int:
    """Remove a link's split: every hit no rule takes goes to the link's url again."""
    wanted = link_id(args.link_id)
    backend = open_backend(args.stack, args.region)
    updated = backend.update_link(wanted, {"split": None})
    if args.json:
        print_link(updated, backend.api_url, as_json=True)
        return 0
    print(f"removed the split of link {wanted}")
    return 0


def cmd_link_qr(args: argparse.Namespace) -> int:
    """Write a QR code of a link's short URL (PNG, or SVG with --svg) to --out or stdout."""
    wanted = link_id(args.link_id)
    fmt: QrFormat = "svg" if args.svg else "png"
    if args.out is None and fmt == "png" and sys.stdout.isatty():
        raise UsageError("a PNG is not for a terminal: give --out FILE, redirect the output, or use --svg")
    backend = open_backend(args.stack, args.region)
    url, image = backend.link_qr(wanted, fmt)
    if args.out is None:
        sys.stdout.buffer.write(image)
        sys.stdout.flush()
    else:
        Path(args.out).write_bytes(image)
        print(f"wrote {args.out}: a QR code of {url}", file=sys.stderr)
    return 0


def _rule_parsers(
    link: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    rule = link.add_parser(
        "rule", help="routing rules: where hits go by device, OS, country, language, query"
    )
    rules = rule.add_subparsers(dest="rule_command", required=True, metavar="COMMAND")
    add = rules.add_parser("add", parents=[common], help="add a rule (first match wins) and print the rules")
    add.add_argument("link_id", metavar="ID", help="the link's id")
    add.add_argument("--url", required=True, metavar="URL", help="where the rule sends its hits")
    add.add_argument("--name", help="the rule's name, recorded on its beacons (default: r1, r2, ...)")
    add.add_argument(
        "--device", action="append", metavar="D", help=f"one of {', '.join(DEVICES)} (repeatable)"
    )
    add.add_argument("--os", action="append", metavar="OS", help=f"one of {', '.join(SYSTEMS)} (repeatable)")
    add.add_argument(
        "--country",
        action="append",
        metavar="CC",
        help="ISO country code, e.g. DE (CloudFront's; repeatable)",
    )
    add.add_argument(
        "--language", action="append", metavar="L", help="preferred language, e.g. de or de-CH (repeatable)"
    )
    add.add_argument("--query", action="append", metavar="NAME=VALUE", help="a query parameter's value")
    add.add_argument("--position", type=bounded(1, 1000), help="1 for first (default: last)")
    add.add_argument("--json", action="store_true", help="print the rules as one JSON list")
    add.set_defaults(handler=cmd_rule_add)
    listing = rules.add_parser("list", parents=[common], help="print a link's rules in order")
    listing.add_argument("link_id", metavar="ID", help="the link's id")
    listing.add_argument("--json", action="store_true", help="one JSON list")
    listing.set_defaults(handler=cmd_rule_list)
    remove = rules.add_parser("remove", parents=[common], help="remove a rule by name")
    remove.add_argument("link_id", metavar="ID", help="the link's id")
    remove.add_argument("name", metavar="NAME", help="the rule's name (see `link rule list`)")
    remove.add_argument("--json", action="store_true", help="print the rules left as one JSON list")
    remove.set_defaults(handler=cmd_rule_remove)


def _split_parsers(
    link: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    split = link.add_parser("split", help="an A/B split: weighted destinations, stable per visitor")
    splits = split.add_subparsers(dest="split_command", required=True, metavar="COMMAND")
    put = splits.add_parser("set", parents=[common], help="give the link a split (replacing any)")
    put.add_argument("link_id", metavar="ID", help="the link's id")
    put.add_argument(
        "--variant",
        nargs=3,
        action="append",
        required=True,
        metavar=("NAME", "WEIGHT", "URL"),
        help=f"a variant (2 to {MAX_VARIANTS}): its name, weight (1 to {MAX_WEIGHT}) and URL",
    )
    put.add_argument("--ends-at", metavar="ISO", type=iso_time, help="end the split then (ISO 8601)")
    put.add_argument("--winner", metavar="NAME", help="the variant served after --ends-at")
    put.add_argument("--json", action="store_true", help="print the split as one JSON object")
    put.set_defaults(handler=cmd_split_set)
    end = splits.add_parser("end", parents=[common], help="end the split and serve its winner")
    end.add_argument("link_id", metavar="ID", help="the link's id")
    end.add_argument(
        "--winner", required=True, metavar="NAME", help="the variant every hit gets from then on"
    )
    end.add_argument("--at", metavar="ISO", type=iso_time, help="when (default: now)")
    end.add_argument("--json", action="store_true", help="print the split as one JSON object")
    end.set_defaults(handler=cmd_split_end)
    remove = splits.add_parser("remove", parents=[common], help="remove the split")
    remove.add_argument("link_id", metavar="ID", help="the link's id")
    remove.add_argument("--json", action="store_true", help="print the link as one JSON object")
    remove.set_defaults(handler=cmd_split_remove)


def add_parsers(
    link: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``link rule``, ``link split`` and ``link qr`` to the ``link`` commands."""
    _rule_parsers(link, common)
    _split_parsers(link, common)
    qr = link.add_parser("qr", parents=[common], help="a QR code of the link's short URL")
    qr.add_argument("link_id", metavar="ID", help="the link's id (its short URL must be on)")
    kind = qr.add_mutually_exclusive_group()
    kind.add_argument("--png", action="store_true", help="a PNG image (the default)")
    kind.add_argument("--svg", action="store_true", help="an SVG image")
    qr.add_argument("--out", metavar="FILE", help="write it to FILE (default: stdout)")
    qr.set_defaults(handler=cmd_link_qr)
