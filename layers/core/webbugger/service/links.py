"""Stored links: create, read, change, disable and list them, through the :class:`LinkStore`
that the short-link target type (``link``) registers.

Checks made here, so that the admin API and the CLI refuse the same things: a link's
``valid_from`` must be before its ``expires_at`` (a change is checked against the stored link), a
new link's ``expires_at`` must be ahead (a change may expire a link now),
its fallback URL and the destinations of its routing rules and split must be ones a redirect may
go to (:mod:`webbugger.routing_fields` checks the rest of them), and ``url``, ``forward_query``,
``disabled`` and ``short_url_enabled`` cannot be removed.

A link's short URL (``/l/ID``) is off unless ``short_url_enabled`` is set: :func:`short_url`
is None for a link without one.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from webbugger.destinations import normalise_destination
from webbugger.errors import (
    ConfigurationError,
    InvalidCursorError,
    InvalidReferenceError,
    InvalidRoutingError,
    InvalidTimeError,
    NoShortUrlError,
    WebbuggerError,
)
from webbugger.routing_fields import MAX_RULES, check_rules, check_split, parse_rules
from webbugger.settings import lookup_cache_seconds
from webbugger.tracking import SHORT_LINK_TYPE, SHORT_URL_FLAG

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from webbugger.registry import LinkRecord, LinkStore, Registry

# Link ids the admin API accepts: what new_link_id makes, and readable custom ids.
LINK_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
LINK_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
# Fields that a link always has: a change may set them, not remove them.
REQUIRED_FIELDS = ("url", "forward_query", "disabled", SHORT_URL_FLAG)
# The track function's route of short URLs (template.yaml).
SHORT_PATH = "/l/"
# Set when the link is created; the other fields follow in an update.
CREATE_FIELDS = ("forward_query", "utm")


def link_store(registry: Registry) -> LinkStore:
    """The link store of the short-link target type."""
    target = registry.target(SHORT_LINK_TYPE)  # UnknownTypeError when no plugin registers it
    if target.store is None:
        raise ConfigurationError(
            f"target type {SHORT_LINK_TYPE!r} (from {target.origin}) offers no link store: "
            "its links cannot be managed"
        )
    return target.store


def check_link_id(link_id: str) -> str:
    """``link_id`` if a new link may have it: URL-safe characters only, since it is the path of
    the link's short URL (``/l/ID``); :class:`InvalidReferenceError` otherwise."""
    if not LINK_ID.match(link_id):
        raise InvalidReferenceError(
            f"invalid link id {link_id!r}: letters, digits, '-' and '_' only, at most 64 "
            "(it is the path of the link's short URL)"
        )
    return link_id


def _checked(changes: Mapping[str, object]) -> dict[str, object]:
    for name in REQUIRED_FIELDS:
        if name in changes and changes[name] is None:
            raise WebbuggerError(f"{name} cannot be null")
    fields = dict(changes)
    # Checked (and normalised) before anything is stored, whatever the store checks itself.
    if fields.get("rules") is not None:
        fields["rules"] = check_rules(fields["rules"], normalise_destination)
    if fields.get("split") is not None:
        fields["split"] = check_split(fields["split"], normalise_destination)
    return fields


def short_url(record: LinkRecord, base_url: str) -> str | None:
    """The link's short URL under ``base_url`` (the tracking domain), or None when it has none."""
    if record.get(SHORT_URL_FLAG) is not True:
        return None
    return f"{base_url.rstrip('/')}{SHORT_PATH}{record['id']}"


def require_short_url(record: LinkRecord, base_url: str) -> str:
    """The link's short URL; :class:`NoShortUrlError` saying how to turn it on when it has none."""
    url = short_url(record, base_url)
    if url is None:
        raise NoShortUrlError(
            f"link {record['id']!r} has no short URL: turn it on first "
            f"(webbugger link update {record['id']} --short-url, or PATCH {SHORT_URL_FLAG}: true)"
        )
    return url


def with_rule(
    rules: Sequence[Mapping[str, object]], rule: Mapping[str, object], position: int | None
) -> list[dict[str, object]]:
    """``rules`` with ``rule`` inserted at ``position`` (1 is first; None: last), all checked."""
    current = [dict(item) for item in rules]
    if len(current) >= MAX_RULES:
        raise InvalidRoutingError(f"a link has at most {MAX_RULES} rules")
    index = len(current) if position is None else max(0, min(position - 1, len(current)))
    current.insert(index, dict(rule))
    return [found.as_dict() for found in parse_rules(current, normalise_destination)]


def without_rule(rules: Sequence[Mapping[str, object]], name: str) -> list[dict[str, object]]:
    """``rules`` less the one called ``name``; :class:`InvalidRoutingError` when there is none."""
    kept = [dict(item) for item in rules if item.get("name") != name]
    if len(kept) == len(rules):
        raise InvalidRoutingError(f"no rule named {name!r}")
    return kept


def _moment(value: object) -> datetime | None:
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value)
    return value if isinstance(value, datetime) else None


def _check_window(fields: Mapping[str, object]) -> None:
    valid_from, expires_at = _moment(fields.get("valid_from")), _moment(fields.get("expires_at"))
    if valid_from is not None and expires_at is not None and valid_from >= expires_at:
        raise WebbuggerError("valid_from must be before expires_at")


def check_new_expiry(changes: Mapping[str, object], now: datetime | None = None) -> None:
    """:class:`InvalidTimeError` when a new link's ``expires_at`` is not ahead: such a link
    would answer its first hit with 404 (or its fallback URL)."""
    expires_at = _moment(changes.get("expires_at"))
    if expires_at is None:
        return
    if expires_at.tzinfo is None:  # the admin API's model refuses these; a caller's may be UTC
        expires_at = expires_at.replace(tzinfo=UTC)
    if expires_at <= (now or datetime.now(UTC)):
        raise InvalidTimeError(
            f"expires_at {expires_at.isoformat()} is in the past: the link would never be followed"
        )


def create_link(
    registry: Registry, url: str, link_id: str | None = None, changes: Mapping[str, object] | None = None
) -> LinkRecord:
    """Store a new link to ``url`` with ``changes`` (the fields :func:`update_link` takes) set;
    a random id unless one is given (:func:`check_link_id`); :class:`LinkExistsError` when the
    id is taken."""
    if link_id is not None:
        check_link_id(link_id)
    _check_window(changes or {})
    check_new_expiry(changes or {})
    fallback = (changes or {}).get("fallback_url")
    if fallback is not None:
        normalise_destination(str(fallback))  # refuse a bad one before anything is stored
    fields = _checked(changes or {})
    store = link_store(registry)
    utm = fields.get("utm")
    created = store.create(
        url,
        link_id,
        forward_query=bool(fields.get("forward_query", False)),
        utm=utm if isinstance(utm, dict) else {},
    )
    rest = {name: value for name, value in fields.items() if name not in CREATE_FIELDS}
    # The other fields follow in a second write (a store creates the essentials only).
    return (store.update(str(created["id"]), rest) if rest else None) or created


def get_link(registry: Registry, link_id: str) -> LinkRecord | None:
    """The link with this id, or None."""
    return link_store(registry).get(link_id)


def update_link(registry: Registry, link_id: str, changes: Mapping[str, object]) -> LinkRecord | None:
    """Change the given fields of a link (``None`` removes an optional field); the changed link,
    or None when there is none. Hits claimed so far are kept."""
    store = link_store(registry)
    current = store.get(link_id)
    if current is None:
        return None
    fields = _checked(changes)
    _check_window({**current, **fields})
    return store.update(link_id, fields)


def disable_link(registry: Registry, link_id: str) -> LinkRecord | None:
    """Disable a link (its hits answer 404, or go to its fallback URL; see
    :func:`change_delay`); None when there is none."""
    return link_store(registry).update(link_id, {"disabled": True})


def change_delay() -> str:
    """What a link's change waits for: each running track function keeps a link it read for
    ``LOOKUP_CACHE_SECONDS`` (so that a hit costs no read), and no container is told of a change."""
    return (
        f"hits may still be followed for up to {lookup_cache_seconds():g} s: each running track "
        "function keeps a link it read that long (LOOKUP_CACHE_SECONDS)"
    )


def _encode_cursor(link_id: str | None) -> str | None:
    if link_id is None:
        return None
    key = {"id": {"S": link_id}}
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii") + b"=" * (-len(cursor) % 4)))
        link_id = key["id"]["S"]
    except (ValueError, TypeError, KeyError, UnicodeError, binascii.Error) as exc:
        raise InvalidCursorError("cursor is not one this API gave") from exc
    if set(key) != {"id"} or not isinstance(link_id, str) or not LINK_ID.match(link_id):
        raise InvalidCursorError("cursor is not one this API gave")
    return link_id


def list_links(
    registry: Registry, limit: int, cursor: str | None = None
) -> tuple[list[LinkRecord], str | None]:
    """Up to ``limit`` links, and the cursor of the next page (None after the last one)."""
    links, last_id = link_store(registry).page(limit, _decode_cursor(cursor))
    return links, _encode_cursor(last_id)
