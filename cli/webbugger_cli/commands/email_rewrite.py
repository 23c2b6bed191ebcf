"""``webbugger email rewrite``: a message's links as signed redirects, and one open pixel.

One recipient (``--recipient``) writes the rewritten HTML to ``--out`` (default: stdout) and the
plain-text part (``--text``) to ``--text-out``; many (``--recipients FILE``, one id a line) write
one file pair per recipient into ``--out-dir``, or one JSON object per recipient to stdout. The
message is parsed once whatever the number of recipients (:mod:`webbugger.rewrite`).

Each distinct destination becomes one stored link of the campaign (its id derived from the
campaign and the URL, so a second run reuses it): created through the local stack's core or a
deployed stack's admin API, like ``webbugger link create``. The URLs are signed with the stack's
key ring, as ``webbugger url`` does. The campaign must exist: a beacon naming an unknown
campaign is refused, so every link would answer 404. Once the messages are written, each
recipient's send is recorded (once per recipient and campaign: :mod:`webbugger.sends`), the
denominator of the campaign's open and click rates.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from webbugger.errors import UnknownRecordError, UnknownTypeError
from webbugger.minting import tracking_url
from webbugger.refs import Ref, check_new_ref
from webbugger.runtime import default_registry

from webbugger_cli.commands import UsageError
from webbugger_cli.commands.backends import Backend, open_backend
from webbugger_cli.stack import resolve_stack

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from webbugger.registry import Registry
    from webbugger.rewrite import MessagePlan, RewrittenMessage
    from webbugger.tokens import TokenClaims

# Files are read and written byte for byte: bytes that are not UTF-8 survive as they were.
_ENCODING, _ERRORS = "utf-8", "surrogateescape"
_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


def _read(path: Path, option: str) -> str:
    try:
        return path.read_bytes().decode(_ENCODING, _ERRORS)
    except OSError as exc:
        raise UsageError(f"cannot read {option} {path}: {exc.strerror or exc}") from None


def _write(path: Path, text: str) -> None:
    try:
        path.write_bytes(text.encode(_ENCODING, _ERRORS))
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _recipients(args: argparse.Namespace) -> list[Ref]:
    """The recipients as references, checked (one per line in ``--recipients``; ``#`` comments)."""
    from webbugger.service.rewrite import recipient_ref  # as /rewrite: an id, not TYPE:ID

    if args.recipients is None:
        return [recipient_ref(args.recipient)]
    lines = _read(Path(args.recipients), "--recipients").splitlines()
    ids = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not ids:
        raise UsageError(f"--recipients {args.recipients} names no recipient")
    return [recipient_ref(recipient) for recipient in dict.fromkeys(ids)]


def _check_options(args: argparse.Namespace) -> None:
    if (args.recipient is None) == (args.recipients is None):
        raise UsageError("give --recipient ID, or --recipients FILE (one id a line)")
    if args.recipients is None and args.out_dir is not None:
        raise UsageError("--out-dir goes with --recipients; for one recipient use --out FILE")
    if args.recipients is not None and (args.out is not None or args.text_out is not None):
        raise UsageError("with --recipients use --out-dir DIR (or nothing, for JSON lines)")
    if args.text is not None and args.recipients is None and args.out is None and args.text_out is None:
        raise UsageError("with --text give --out FILE or --text-out FILE: stdout holds one part only")
    if args.text is not None and args.out is not None and _text_out(args) == Path(args.out):
        raise UsageError(f"--out {args.out} would be overwritten by the text part: give --text-out FILE")


def _text_out(args: argparse.Namespace) -> Path:
    return Path(args.text_out) if args.text_out else Path(args.out).with_suffix(".txt")


def _link_id_for(backend: Backend, campaign: Ref) -> Callable[[str], str]:
    """The campaign's stored link to a destination: read, or created the first time."""

    from webbugger.rewrite import campaign_link_id

    def link_id_for(destination: str) -> str:
        link_id = campaign_link_id(campaign, destination)
        try:
            stored = backend.get_link(link_id)
        except UsageError:  # no such link yet
            stored = backend.create_link(destination, link_id, {}, {})
        if stored.get("url") != destination:
            raise UsageError(f"link {link_id} exists with another URL ({stored.get('url')}): not reused")
        return link_id

    return link_id_for


def _check_campaign(registry: Registry, campaign: Ref) -> None:
    from webbugger.service.rewrite import check_campaign  # the sends' PynamoDB: not at start-up

    try:
        check_campaign(registry, campaign)
    except UnknownTypeError:
        raise  # one line of its own
    except UnknownRecordError:
        if campaign.id and campaign.id.startswith("campaign:"):  # TYPE:ID given where the id is asked
            raise UsageError(
                f"no {campaign}: --campaign takes the campaign's id: "
                f"`--campaign {campaign.id.removeprefix('campaign:')}`"
            ) from None
        raise UsageError(
            f"no {campaign}: create it first (`webbugger source create campaign:{campaign.id}`), "
            "or every link of the message would answer 404"
        ) from None


def _summary(plan: MessagePlan, first: RewrittenMessage, count: int, new_sends: int) -> str:
    reasons: dict[str, int] = {}
    for skipped in plan.skipped:
        reasons[skipped.reason.value] = reasons.get(skipped.reason.value, 0) + 1
    left = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items())) or "none"
    pixel = "pixel placed" if first.pixel else "NO PIXEL (no spot in the body would show it)"
    text = f", {first.text_wrapped} text links" if plan.text is not None else ""
    sends = f"{new_sends} new send(s) recorded"
    return (
        f"rewrote for {count} recipient(s): {first.wrapped} links{text} to {len(plan.destinations)} "
        f"destination(s), {pixel}{', honeypot' if first.honeypot else ''}; left alone: {left}; {sends}"
    )


def _file_stem(index: int, recipient: Ref) -> str:
    return f"{index:04d}-{_FILE_NAME_UNSAFE.sub('_', recipient.id or '')[:80]}"


def cmd_email_rewrite(args: argparse.Namespace) -> int:
    """Rewrite a message for one recipient or many."""
    # Imported here: the HTML parser takes ~0.1 s to import, which no other command should pay.
    from webbugger.rewrite import plan_message, render, resolve_links, unsubscribe_targets

    _check_options(args)
    campaign = check_new_ref(Ref("campaign", args.campaign))
    recipients = _recipients(args)
    html = _read(Path(args.message), "message")
    text = None if args.text is None else _read(Path(args.text), "--text")
    targets = [target for value in args.list_unsubscribe or () for target in unsubscribe_targets(value)]
    plan = plan_message(html, text, unsubscribe_urls=targets, track_unsubscribe=args.track_unsubscribe)
    registry = default_registry()
    stack = resolve_stack(args.stack, args.region)
    _check_campaign(registry, campaign)
    backend = open_backend(args.stack, args.region)
    links = resolve_links(plan, _link_id_for(backend, campaign))
    ring = stack.key_ring()

    def mint(claims: TokenClaims) -> str:
        return tracking_url(stack.api_url, claims, ring)

    out_dir = None if args.out_dir is None else Path(args.out_dir)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    first = None
    for index, recipient in enumerate(recipients, start=1):
        result = render(plan, links, mint, recipient=recipient, campaign=campaign, honeypot=args.honeypot)
        first = first or result
        if args.recipients is None:
            _write_one(args, result)
        elif out_dir is not None:
            _write(out_dir / f"{_file_stem(index, recipient)}.html", result.html)
            if result.text is not None:
                _write(out_dir / f"{_file_stem(index, recipient)}.txt", result.text)
        else:
            print(json.dumps({"recipient": recipient.id, "html": result.html, "text": result.text}))
    assert first is not None
    # Recorded once the messages are written: a run that failed sent nothing.
    new_sends = backend.record_sends(campaign, recipients)
    print(_summary(plan, first, len(recipients), new_sends), file=sys.stderr)
    return 0


def _write_one(args: argparse.Namespace, result: RewrittenMessage) -> None:
    if args.out is None:
        sys.stdout.write(result.html)
    else:
        _write(Path(args.out), result.html)
    if result.text is not None:
        _write(_text_out(args), result.text)


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``email rewrite`` to the command line."""
    email = commands.add_parser("email", help="prepare email for tracking").add_subparsers(
        dest="email_command", required=True, metavar="COMMAND"
    )
    rewrite = email.add_parser(
        "rewrite",
        parents=[common],
        help="wrap a message's links as signed redirects and add an open pixel",
        description="Wrap every trackable link of a message as a signed redirect carrying the "
        "recipient and the campaign, and add one open pixel; nothing else of the message changes.",
    )
    rewrite.add_argument("message", metavar="MESSAGE.html", help="the message's HTML part")
    who = rewrite.add_mutually_exclusive_group()
    who.add_argument("--recipient", metavar="ID", help="the recipient (an email address or your own id)")
    who.add_argument("--recipients", metavar="FILE", help="many recipients: one id a line")
    rewrite.add_argument("--campaign", metavar="ID", required=True, help="the campaign (a stored source)")
    rewrite.add_argument("--text", metavar="MESSAGE.txt", help="the message's plain-text part")
    rewrite.add_argument("--out", metavar="FILE", help="write the HTML here (default: stdout)")
    rewrite.add_argument(
        "--text-out", metavar="FILE", help="write the text part here (default: --out's .txt)"
    )
    rewrite.add_argument("--out-dir", metavar="DIR", help="with --recipients: one NNNN-ID.html (.txt) each")
    rewrite.add_argument(
        "--honeypot", action="store_true", help="add an invisible link: whatever follows it is a machine"
    )
    rewrite.add_argument(
        "--track-unsubscribe", action="store_true", help="wrap unsubscribe links too (left alone by default)"
    )
    rewrite.add_argument(
        "--list-unsubscribe",
        metavar="VALUE",
        action="append",
        help="the List-Unsubscribe header's value (or one URL): links to its targets are left alone "
        "unless --track-unsubscribe (repeatable)",
    )
    rewrite.set_defaults(handler=cmd_email_rewrite)
