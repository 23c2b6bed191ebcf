"""Rewrite an email for tracking: every trackable link becomes a signed redirect; one pixel is added.

Only the rewritten ``href`` values change and the pixel (with the optional honeypot link) is
inserted: every other character of the message is kept as it was, never re-serialised.

The HTML is parsed by justhtml, an HTML5 (WHATWG) parser, with scripting off as in a mail client.
It finds the ``<a>`` and ``<area>`` elements a mail client would see (not text inside comments,
``<textarea>``, ``<title>`` or ``<template>``), decodes each ``href`` as a browser does (``&amp;``
becomes ``&``, while ``&region=`` stays as written) and tells where each start tag begins;
:mod:`webbugger.start_tags` then finds the attribute's value inside that one tag.

A link is left alone when it is not an absolute ``http(s)`` URL (``mailto:``, ``tel:``, ``#...``,
relative), is marked ``data-webbugger="no-track"``, or (unless ``track_unsubscribe``) is an
unsubscribe link: a ``List-Unsubscribe`` target, or a link whose text, other attributes or URL say
"unsubscribe" or "opt out". The pixel replaces a ``<!-- webbugger:pixel -->`` comment in the body,
else goes before ``</body>``, else at the end; a spot is used only if parsing the document with the
pixel there puts the pixel in the body.

A batch costs one parse: :func:`plan_message` parses, :func:`resolve_links` gets one stored link
per distinct destination, and :func:`render` signs and splices for each recipient.
"""

from __future__ import annotations

import hashlib
import html as html_escape
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from justhtml import Comment, Element, JustHTML, Node
from justhtml.transforms.linkify_core import find_links

from webbugger.destinations import normalise_destination
from webbugger.errors import UnsafeDestinationError
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.start_tags import scan_start_tag
from webbugger.tokens import Purpose, TokenClaims

PIXEL_PLACEHOLDER = "webbugger:pixel"  # written <!-- webbugger:pixel -->
NO_TRACK_ATTRIBUTE = "data-webbugger"
NO_TRACK_VALUE = "no-track"
_LINK_ELEMENTS = ("a", "area")
_UNSUBSCRIBE = re.compile(r"unsubscribe|opt[\s_-]?out", re.IGNORECASE)
_BODY_END = re.compile(r"</body(?=[\t\n\f\r />])", re.IGNORECASE)
_ANGLE_TARGET = re.compile(r"<([^<>]*)>")
_SENTINEL = "webbugger:sentinel"
_BODY_END_TRIES = 3  # each costs a parse
_URL_SPACE = "".join(map(chr, range(0x21)))  # C0 controls and space, stripped from a URL's ends
_URL_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
# Display:block keeps the pixel off any line of text (a line would add height to the message).
_PIXEL = '<img src="{}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0">'
# Hidden from people and screen readers; link scanners follow every href all the same.
_HONEYPOT = (
    '<a href="{}" aria-hidden="true" tabindex="-1" '
    'style="display:none;max-height:0;overflow:hidden;mso-hide:all">&#8203;</a>'
)

LinkIdFor = Callable[[str], str]
"""Returns the id of the stored link to a (normalised) destination URL, creating it if need be."""
MintUrl = Callable[[TokenClaims], str]
"""Returns the signed tracking URL for these claims (:func:`webbugger.minting.tracking_url`)."""


class SkipReason(StrEnum):
    """Why a link was left as it was."""

    MAILTO = "mailto"
    TEL = "tel"
    ANCHOR = "anchor"
    RELATIVE = "relative"
    OTHER_SCHEME = "other-scheme"
    NO_TRACK = "no-track"
    UNSUBSCRIBE = "unsubscribe"
    INVALID = "invalid-url"


@dataclass(frozen=True, slots=True)
class SkippedLink:
    """A link left unchanged, as it was written (decoded), and why."""

    href: str
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class Replacement:
    """``source[start:end]`` is to be replaced; ``quote`` is an ``href`` value's quote character."""

    start: int
    end: int
    destination: str = ""
    quote: str = ""


@dataclass(frozen=True)
class MessagePlan:
    """What rewriting a message changes, found once and then rendered for each recipient."""

    html: str
    text: str | None
    html_links: tuple[Replacement, ...]
    text_links: tuple[Replacement, ...]
    pixel: Replacement | None
    skipped: tuple[SkippedLink, ...]

    @property
    def destinations(self) -> tuple[str, ...]:
        """Each distinct (normalised) destination, in order of first appearance."""
        return tuple(dict.fromkeys(link.destination for link in (*self.html_links, *self.text_links)))


@dataclass(frozen=True)
class RewrittenMessage:
    """One recipient's message, and what was done to it."""

    html: str
    text: str | None
    wrapped: int
    text_wrapped: int
    pixel: bool
    honeypot: bool
    links: dict[str, str] = field(default_factory=dict)  # destination -> stored link id
    skipped: tuple[SkippedLink, ...] = ()


def unsubscribe_targets(header: str) -> list[str]:
    """The URLs of a ``List-Unsubscribe`` header value (``<mailto:...>, <https://...>``); a bare
    URL is taken as one target."""
    targets = _ANGLE_TARGET.findall(header) or [header]
    return [target.strip() for target in targets if target.strip()]


def _normalised(url: str) -> str | None:
    try:
        return normalise_destination(url)
    except UnsafeDestinationError:
        return None


def _scheme_reason(href: str) -> SkipReason | None:
    """Why ``href`` (decoded, stripped as a browser does) is not a trackable URL; None if it is."""
    lowered = href.lower()
    if lowered.startswith(("http://", "https://")):
        return None
    if lowered.startswith("mailto:"):
        return SkipReason.MAILTO
    if lowered.startswith("tel:"):
        return SkipReason.TEL
    if not href or href.startswith("#"):
        return SkipReason.ANCHOR
    if re.match(r"[a-z][a-z0-9+.-]*:", lowered):
        return SkipReason.OTHER_SCHEME
    return SkipReason.RELATIVE


def _walk(node: Node) -> Iterator[Node]:
    """Every element and comment under ``node`` in document order; not the contents of a
    ``<template>`` (never shown), nor text."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(child for child in reversed(current.children or ()) if isinstance(child, Node))


def _parse(html: str) -> JustHTML:
    return JustHTML(html, sanitize=False, track_node_locations=True, scripting_enabled=False)


@dataclass
class _Planner:
    html: str
    unsubscribe: frozenset[str]
    track_unsubscribe: bool
    skipped: list[SkippedLink] = field(default_factory=list)

    def skip(self, href: str, reason: SkipReason) -> None:
        self.skipped.append(SkippedLink(href, reason))

    def destination(self, href: str, context: str) -> str | None:
        """The normalised destination of a trackable ``href``, or None (and the skip noted)."""
        reason = _scheme_reason(href)
        normalised = _normalised(href) if reason is None else None
        if reason is None and normalised is None:
            reason = SkipReason.INVALID
        elif (
            reason is None
            and not self.track_unsubscribe
            and (href in self.unsubscribe or normalised in self.unsubscribe or _UNSUBSCRIBE.search(context))
        ):
            reason = SkipReason.UNSUBSCRIBE
        if reason is not None:
            self.skip(href, reason)
            return None
        return normalised

    def html_link(self, element: Element, start: int) -> Replacement | None:
        """The rewrite of the link element whose start tag begins at ``html[start]``, or None."""
        attrs = element.attrs
        tag = scan_start_tag(self.html, start)
        span = tag.first("href") if tag is not None else None
        # The tag found there must be the one the parser read (same attributes): if not, skip it.
        if tag is None or span is None or list(dict.fromkeys(a.name for a in tag.attributes)) != list(attrs):
            return None
        # A browser strips the URL's ends and drops tabs and newlines inside it.
        href = _URL_TAB_OR_NEWLINE.sub("", (attrs.get("href") or "").strip(_URL_SPACE))
        if (attrs.get(NO_TRACK_ATTRIBUTE) or "").strip().lower() == NO_TRACK_VALUE:
            self.skip(href, SkipReason.NO_TRACK)
            return None
        others = " ".join(value or "" for name, value in attrs.items() if name != "href")
        destination = self.destination(href, f"{element.to_text()} {others} {href}")
        return None if destination is None else Replacement(span.start, span.end, destination, span.quote)

    def text_links(self, text: str) -> list[Replacement]:
        """The URLs of a plain-text part to rewrite; the words between the previous URL (or the
        line's start) and a URL tell whether it is an unsubscribe link."""
        found, previous_end = [], 0
        for match in find_links(text):
            if match.kind != "url" or not match.text.lower().startswith(("http://", "https://")):
                continue
            words = text[max(previous_end, text.rfind("\n", 0, match.start) + 1) : match.start]
            previous_end = match.end
            destination = self.destination(match.text, f"{words} {match.text}")
            if destination is not None:
                found.append(Replacement(match.start, match.end, destination))
        return found


def _in_body(node: Node) -> bool:
    parent = node.parent
    while parent is not None and parent.name != "body":
        parent = parent.parent
    return parent is not None


def _pixel_spots(html: str, document: JustHTML, shift: int) -> Iterator[tuple[int, int]]:
    """Where the pixel may go, best first: the placeholder comment in the body, before one of the
    last ``</body>`` tags (the real one may be followed by others in comments), at the end."""
    for node in _walk(document.root):
        offset, data = node.origin_offset, node.data
        if isinstance(node, Comment) and offset is not None and isinstance(data, str) and _in_body(node):
            written = f"<!--{data}-->"
            if data.strip().lower() == PIXEL_PLACEHOLDER and html.startswith(written, offset + shift):
                yield offset + shift, offset + shift + len(written)
                break
    for end in list(_BODY_END.finditer(html))[: -_BODY_END_TRIES - 1 : -1]:
        yield end.start(), end.start()
    yield len(html), len(html)


def _lands_in_body(html: str, at: int, end: int) -> bool:
    """Whether the pixel and honeypot written over ``html[at:end]`` are elements of the body (not
    text of a comment, a ``<textarea>`` or an attribute)."""
    probe = _insertion(_SENTINEL, _SENTINEL)
    found = [
        _in_body(node)
        for node in _walk(_parse(html[:at] + probe + html[end:]).root)
        if isinstance(node, Element) and _SENTINEL in (node.attrs.get("src"), node.attrs.get("href"))
    ]
    return found == [True, True]


def _insertion(pixel_url: str, honeypot_url: str | None) -> str:
    honeypot = "" if honeypot_url is None else _HONEYPOT.format(html_escape.escape(honeypot_url))
    return honeypot + _PIXEL.format(html_escape.escape(pixel_url))


def plan_message(
    html: str,
    text: str | None = None,
    *,
    unsubscribe_urls: Sequence[str] = (),
    track_unsubscribe: bool = False,
) -> MessagePlan:
    """Find what rewriting ``html`` (and its plain-text part ``text``) changes. Never raises for
    bad HTML: whatever the parser does not see as a link is left alone."""
    targets = {url.strip() for url in unsubscribe_urls}
    targets |= {normalised for url in targets if (normalised := _normalised(url)) is not None}
    planner = _Planner(html, frozenset(targets), track_unsubscribe)
    shift = 1 if html.startswith("\ufeff") else 0  # the parser drops a byte-order mark
    document = _parse(html[shift:])
    seen: set[int] = set()
    html_links = []
    for node in _walk(document.root):
        if not (isinstance(node, Element) and node.name in _LINK_ELEMENTS and node.namespace == "html"):
            continue
        offset = node.origin_offset
        # The parser may clone an element (misnested tags): one start tag, one rewrite.
        if offset is not None and offset not in seen and "href" in node.attrs:
            seen.add(offset)
            link = planner.html_link(node, offset + shift)
            if link is not None:
                html_links.append(link)
    html_links.sort(key=lambda link: link.start)
    spots = (spot for spot in _pixel_spots(html, document, shift) if _lands_in_body(html, *spot))
    pixel = next((Replacement(at, end) for at, end in spots), None)
    text_links = planner.text_links(text) if text is not None else []
    return MessagePlan(html, text, tuple(html_links), tuple(text_links), pixel, tuple(planner.skipped))


def campaign_link_id(campaign: Ref, destination: str) -> str:
    """The id of the campaign's stored link to ``destination``: the same for every recipient and
    every run, so each link is stored once and its clicks are that campaign's."""
    return "m-" + hashlib.blake2b(f"{campaign}\n{destination}".encode(), digest_size=10).hexdigest()


def resolve_links(plan: MessagePlan, link_id_for: LinkIdFor) -> dict[str, str]:
    """The stored link id of each distinct destination of ``plan``: one call each."""
    return {destination: link_id_for(destination) for destination in plan.destinations}


def email_claims(
    mode: Mode, target: Ref | None, recipient: Ref, campaign: Ref, *, honeypot: bool = False
) -> TokenClaims:
    """The claims of an email's tracking URL: the one place that says what such a token is for
    (email: a hit seconds after minting may then be a gateway's, see :mod:`webbugger.classify`)."""
    return TokenClaims(mode, target, recipient, campaign, honeypot=honeypot, purpose=Purpose.EMAIL)


def _spliced(source: str, replacements: Sequence[tuple[int, int, str]]) -> str:
    parts, last = [], 0
    for start, end, new in sorted(replacements):
        parts += [source[last:start], new]
        last = end
    parts.append(source[last:])
    return "".join(parts)


def render(
    plan: MessagePlan,
    links: dict[str, str],
    mint: MintUrl,
    *,
    recipient: Ref,
    campaign: Ref,
    honeypot: bool = False,
) -> RewrittenMessage:
    """One recipient's message from ``plan``: each link signed once per destination."""
    urls: dict[str, str] = {}

    def url_for(destination: str) -> str:
        if destination not in urls:
            target = Ref("link", links[destination])
            urls[destination] = mint(email_claims(Mode.REDIRECT, target, recipient, campaign))
        return urls[destination]

    edits = []
    for link in plan.html_links:
        quote = link.quote or '"'  # an unquoted value is written quoted: a URL may hold "=" or "&"
        edits.append((link.start, link.end, f"{quote}{html_escape.escape(url_for(link.destination))}{quote}"))
    honeypot_url = None
    if honeypot and plan.destinations and plan.pixel is not None:
        target = Ref("link", links[plan.destinations[0]])
        honeypot_url = mint(email_claims(Mode.REDIRECT, target, recipient, campaign, honeypot=True))
    if plan.pixel is not None:
        pixel_url = mint(email_claims(Mode.PIXEL, None, recipient, campaign))
        edits.append((plan.pixel.start, plan.pixel.end, _insertion(pixel_url, honeypot_url)))
    text = plan.text
    if text is not None:
        text = _spliced(text, [(link.start, link.end, url_for(link.destination)) for link in plan.text_links])
    return RewrittenMessage(
        html=_spliced(plan.html, edits),
        text=text,
        wrapped=len(plan.html_links),
        text_wrapped=len(plan.text_links),
        pixel=plan.pixel is not None,
        honeypot=honeypot_url is not None,
        links={destination: links[destination] for destination in plan.destinations},
        skipped=plan.skipped,
    )


def rewrite_message(
    html: str,
    text: str | None = None,
    *,
    recipient: Ref,
    campaign: Ref,
    link_id_for: LinkIdFor,
    mint: MintUrl,
    honeypot: bool = False,
    track_unsubscribe: bool = False,
    unsubscribe_urls: Sequence[str] = (),
) -> RewrittenMessage:
    """Rewrite one message for one recipient (:func:`plan_message`, :func:`resolve_links` and
    :func:`render` in one call; for many recipients, plan once and render each)."""
    plan = plan_message(html, text, unsubscribe_urls=unsubscribe_urls, track_unsubscribe=track_unsubscribe)
    links = resolve_links(plan, link_id_for)
    return render(plan, links, mint, recipient=recipient, campaign=campaign, honeypot=honeypot)
