"""The ``link`` target: a stored destination URL with a short id.

Per link, off by default: ``forward_query`` appends the visitor's query parameters to the
destination, ``utm`` sets fixed UTM parameters on it, and ``short_url_enabled`` lets the link
answer its unsigned short URL ``/l/ID`` (links stored before that field existed have it off too).
A link can be disabled, valid only from or until a time, or capped at a number of hits; a refused
hit answers 404, or redirects to the link's ``fallback_url`` when it has one (see
:meth:`Link.refusal`). Routing rules and an A/B split (:mod:`webbugger.routing`) may send a hit
elsewhere than ``url``; the link's UTM parameters apply to every destination.

The type offers its links to the admin API and the CLI as a :class:`webbugger.plugins.LinkStore`
(:class:`StoredLinks`), so neither imports this module.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.models import Model
from webbugger.destinations import UTM_KEYS, merge_query, normalise_destination, safe_location
from webbugger.errors import LinkExistsError, WebbuggerError
from webbugger.ids import new_link_id
from webbugger.models import utcnow
from webbugger.observability import logger
from webbugger.refs import Ref

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime

    from webbugger.plugins import LinkRecord, PluginTypes
    from webbugger.routing import Routing


class Link(Model):
    """A stored link."""

    class Meta:
        table_name = "unbound-links"

    id = UnicodeAttribute(hash_key=True)
    url = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    disabled = BooleanAttribute(default=False)
    forward_query = BooleanAttribute(default=False)
    utm: MapAttribute[str, str] = MapAttribute(null=True)  # type: ignore[no-untyped-call]
    valid_from = UTCDateTimeAttribute(null=True)
    expires_at = UTCDateTimeAttribute(null=True)
    max_hits = NumberAttribute(null=True)
    # Hits claimed against max_hits (kept only for capped links: one conditional update a hit).
    hits = NumberAttribute(null=True)
    fallback_url = UnicodeAttribute(null=True)
    tags = UnicodeSetAttribute(null=True)
    # Whether /l/ID answers (absent on links stored before it existed: off, as for new links).
    short_url_enabled = BooleanAttribute(attr_name="short", null=True)
    # Routing rules (a list of maps) and an A/B split (a map), as webbugger.routing stores them.
    rules = ListAttribute(null=True)  # type: ignore[var-annotated]
    split: MapAttribute[str, Any] = MapAttribute(null=True)  # type: ignore[no-untyped-call]

    def _utm(self) -> dict[str, str]:
        utm: dict[str, str] = self.utm.as_dict() if self.utm is not None else {}  # type: ignore[no-untyped-call]
        return utm

    def _split(self) -> dict[str, Any] | None:
        split: MapAttribute[str, Any] | None = self.split  # PynamoDB types it as never None
        return None if split is None else split.as_dict()  # type: ignore[no-untyped-call]

    def get_beacon_url(self) -> str:
        """Where a hit on this link goes: the URL with the link's UTM parameters."""
        utm = self._utm()
        return merge_query(self.url, utm) if utm else self.url

    @cached_property
    def routing(self) -> Routing | None:
        """The link's rules and split, parsed once per loaded link (the track function caches the
        link, so a hit parses nothing); each destination with the link's UTM parameters. A stored
        routing that does not parse (a hand-made item) is logged and ignored: the link's URL."""
        split = self._split()
        if not self.rules and split is None:
            return None
        # Imported here: the track function loads it on a routed link's first hit, not at start.
        from webbugger.routing import Routing
        from webbugger.routing_fields import parse_rules, parse_split

        utm = self._utm()

        def destination(url: str) -> str:
            return safe_location(merge_query(url, utm) if utm else url)

        try:
            return Routing(parse_rules(self.rules, destination), parse_split(split, destination))
        except WebbuggerError as exc:
            logger.error("stored routing of a link is unusable", extra={"link": self.id, "error": str(exc)})
            return None

    def refusal(self, now: datetime, *, claim: bool) -> str | None:
        """Why a hit at ``now`` is refused (disabled, not-yet-valid, expired, over-limit), or None.

        For a capped link, an accepted hit with ``claim`` takes one of the remaining hits
        atomically, so concurrent visitors can never exceed ``max_hits``. Without ``claim`` (a HEAD,
        or an unsigned short-URL hit, which never spends the hits of the URLs the owner minted)
        the hit is only checked against ``hits`` as last read, or as the last refused claim found.
        """
        if self.disabled:
            return "disabled"
        if self.valid_from is not None and now < self.valid_from:
            return "not-yet-valid"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        cap: float | None = self.max_hits  # PynamoDB types nullable attributes as non-null
        if cap is None:
            return None
        if not claim:
            return "over-limit" if (self.hits or 0) >= cap else None
        try:
            Link(self.id).update(
                actions=[Link.hits.add(1)],
                condition=Link.hits.does_not_exist() | (Link.hits < cap),
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                self.hits = cap  # this (cached) copy now knows: unclaimed checks refuse too
                return "over-limit"
            raise
        return None

    def to_record(self) -> dict[str, object]:
        """JSON-ready view (the admin API and the CLI)."""

        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "id": self.id,
            "url": self.url,
            "created_at": iso(self.created_at),
            "disabled": bool(self.disabled),
            "forward_query": bool(self.forward_query),
            "utm": self._utm(),
            "valid_from": iso(self.valid_from),
            "expires_at": iso(self.expires_at),
            "max_hits": None if self.max_hits is None else int(self.max_hits),
            "hits": int(self.hits or 0),
            "fallback_url": self.fallback_url,
            "tags": sorted(self.tags or ()),
            "short_url_enabled": self.short_url_enabled is True,
            "rules": list(self.rules or ()),
            "split": self._split(),
        }


def load(link_id: str) -> Link | None:
    """The stored link with this id, or None."""
    try:
        return Link.get(link_id)
    except Link.DoesNotExist:
        return None


def _check_utm(utm: Mapping[str, str]) -> dict[str, str]:
    unknown = sorted(set(utm) - set(UTM_KEYS))
    if unknown:
        raise WebbuggerError(f"unknown UTM parameter(s) {', '.join(unknown)}: use {', '.join(UTM_KEYS)}")
    return {key: str(value) for key, value in utm.items() if value}


def create_link(
    url: str,
    link_id: str | None = None,
    *,
    forward_query: bool = False,
    utm: Mapping[str, str] | None = None,
    short_url_enabled: bool = False,
) -> Link:
    """Store a new link to ``url`` (normalised and checked); a random id unless one is given.
    Its short URL answers only with ``short_url_enabled``."""
    destination = normalise_destination(url)
    utm_values = _check_utm(utm or {})
    if link_id is not None:
        Ref("link", link_id)  # validates the id's characters and length
    for _ in range(1 if link_id is not None else 5):
        link = Link(
            id=link_id or new_link_id(),
            url=destination,
            created_at=utcnow(),
            forward_query=forward_query,
            utm=utm_values or None,
            short_url_enabled=short_url_enabled,
        )
        try:
            link.save(condition=Link.id.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                continue
            raise
        return link
    raise LinkExistsError(f"link {link_id!r} already exists" if link_id else "could not find a free link id")


# Fields of a link that update_link changes; None removes an optional one.
UPDATABLE_FIELDS = (
    "url",
    "disabled",
    "forward_query",
    "utm",
    "valid_from",
    "expires_at",
    "max_hits",
    "fallback_url",
    "tags",
    "short_url_enabled",
    "rules",
    "split",
)


def _checked_value(name: str, value: object) -> object | None:
    """An optional field's value as stored (checked and normalised); None: remove the field."""
    if name == "fallback_url":
        return normalise_destination(str(value))
    if name == "utm":
        return _check_utm(cast("Mapping[str, str]", value)) or None
    if name == "tags":
        return {str(tag) for tag in cast("Iterable[object]", value)} or None
    if name in ("rules", "split"):
        from webbugger.routing_fields import check_rules, check_split  # the admin side only

        if name == "rules":
            return check_rules(value, normalise_destination) or None
        return check_split(value, normalise_destination)
    if name == "max_hits" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise WebbuggerError("max_hits must be a whole number of at least 1")
    return value  # max_hits, valid_from, expires_at


def _link_update_actions(changes: Mapping[str, object]) -> list[Any]:
    """PynamoDB update actions for ``changes`` (validated and normalised as create_link does)."""
    unknown = sorted(set(changes) - set(UPDATABLE_FIELDS))
    if unknown:
        raise WebbuggerError(f"cannot update link field(s) {', '.join(unknown)}")
    actions: list[Any] = []
    for name, value in changes.items():
        attribute = getattr(Link, name)
        if name in ("disabled", "forward_query", "short_url_enabled"):
            actions.append(attribute.set(bool(value)))
        elif name == "url":
            if not isinstance(value, str):
                raise WebbuggerError("a link's url is required")
            actions.append(Link.url.set(normalise_destination(value)))
        else:
            checked = None if value is None else _checked_value(name, value)
            actions.append(attribute.remove() if checked is None else attribute.set(checked))
    return actions


def update_link(link_id: str, changes: Mapping[str, object]) -> Link | None:
    """Change the given fields of a stored link (``None`` removes an optional field); the updated
    link, or None when there is no link ``link_id``. Hits claimed so far are kept."""
    actions = _link_update_actions(changes)
    if not actions:
        return load(link_id)
    link = Link(link_id)
    try:
        link.update(actions=actions, condition=Link.id.exists())
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return None
        raise
    return link


def disable_link(link_id: str) -> Link | None:
    """Disable a stored link (its hits answer 404, or its fallback URL); None when there is none."""
    return update_link(link_id, {"disabled": True})


def list_links(
    limit: int, start_key: dict[str, Any] | None = None
) -> tuple[list[Link], dict[str, Any] | None]:
    """Up to ``limit`` stored links (table order), and the key to resume after them (None at the end)."""
    found = Link.scan(limit=limit, last_evaluated_key=start_key)
    links = list(found)
    return links, found.last_evaluated_key


class StoredLinks:
    """The links table as a :class:`webbugger.plugins.LinkStore` (records: :meth:`Link.to_record`)."""

    def create(
        self, url: str, link_id: str | None, *, forward_query: bool, utm: Mapping[str, str]
    ) -> LinkRecord:
        """Store a new link (:func:`create_link`)."""
        return create_link(url, link_id, forward_query=forward_query, utm=utm).to_record()

    def get(self, link_id: str) -> LinkRecord | None:
        """The link, or None."""
        link = load(link_id)
        return None if link is None else link.to_record()

    def update(self, link_id: str, changes: Mapping[str, object]) -> LinkRecord | None:
        """Change some fields (:func:`update_link`); None when there is no such link."""
        link = update_link(link_id, changes)
        return None if link is None else link.to_record()

    def page(self, limit: int, after: str | None) -> tuple[list[LinkRecord], str | None]:
        """Up to ``limit`` links (table order) after link ``after``; the id to resume after."""
        links, last_key = list_links(limit, {"id": {"S": after}} if after else None)
        resume = last_key.get("id", {}).get("S") if last_key else None
        return [link.to_record() for link in links], resume


def register(types: PluginTypes) -> None:
    """Plugin entry point."""
    types.table(Link, variable="LINKS_TABLE")
    types.target("link", load=load, store=StoredLinks())
