"""Where the ``link``, ``stats``, ``export`` and ``erase`` commands get their data.

The local stack is read and written through the core's service layer (:mod:`webbugger.service`,
which the admin API's routes call too); a deployed stack through its admin API
(:mod:`webbugger_cli.admin_client`, SigV4-signed). Both answer with the same plain records, so
each command has one output path.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from webbugger.errors import NotFoundError
from webbugger.refs import Ref
from webbugger.registry import Kind
from webbugger.runtime import default_registry

from webbugger_cli.admin_client import AdminApiError, AdminClient, deployed_admin
from webbugger_cli.commands import UsageError
from webbugger_cli.stack import require_counters, resolve_stack

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from webbugger.counters import Stats
    from webbugger.service.beacons import BeaconQuery as ExportQuery
    from webbugger.service.qr import QrFormat

    from webbugger_cli.stack import Stack

# Links per request when listing (the admin API's page, the local scan's page).
LINK_PAGE = 100
# Beacons per admin API export request.
EXPORT_PAGE = 1000
# Recipients per POST /sends (the admin API's maximum).
SENDS_BATCH = 1000

Record = dict[str, Any]


class Backend(Protocol):
    """What the commands need of a stack."""

    @property
    def api_url(self) -> str:
        """Base URL of the stack's public routes."""

    def list_links(self, limit: int) -> Iterator[Record]:
        """Up to ``limit`` stored links (table order)."""

    def get_link(self, link_id: str) -> Record:
        """One link; :class:`UsageError` when there is none."""

    def create_link(
        self, url: str, link_id: str | None, utm: Mapping[str, str], changes: Mapping[str, object]
    ) -> Record:
        """Store a new link with ``changes`` (the same fields as an update) applied."""

    def update_link(self, link_id: str, changes: Mapping[str, object]) -> Record:
        """Change some fields of a link; :class:`UsageError` when there is none."""

    def disable_link(self, link_id: str) -> Record:
        """Disable a link; :class:`UsageError` when there is none."""

    def link_qr(self, link_id: str, fmt: QrFormat) -> tuple[str, bytes]:
        """The link's short URL and its QR code; :class:`UsageError` when there is no link."""

    def variant_clicks(self, link_id: str, first: date, last: date) -> Record:
        """A link's clicks per A/B variant (:meth:`VariantClicks.as_dict`)."""

    def link_hits(self, link_ids: list[str], first: date, last: date) -> list[int]:
        """Each link's hits from ``first`` to ``last``, as its counters have them."""

    def stats(self, kind: Kind, ref: Ref, first: date, last: date) -> Stats:
        """A reference's daily counters; refused (one line) for a reference with no stored
        record and nothing counted."""

    def campaign(self, ref: Ref, first: date, last: date) -> Record:
        """A campaign's figures (:meth:`CampaignFigures.as_dict`, with ``from`` and ``to``)."""

    def record_sends(self, campaign: Ref, recipients: list[Ref]) -> int:
        """Record the campaign's send to each recipient (once each); how many were new."""

    def export(self, query: ExportQuery) -> Iterator[Record]:
        """Beacon records, newest first, read lazily."""

    def erase(self, entity: Ref) -> Record:
        """Delete an entity's beacons, counters and record; what was removed."""

    def recount(self, since: str | None, until: str | None, cursor: str | None) -> Record:
        """One page of a recount (:meth:`Recounted.as_dict`, ``next_cursor`` None after the last)."""


def _link_ref(link_id: str) -> Ref:
    from webbugger.tracking import SHORT_LINK_TYPE  # the tracker's modules: not at start-up

    return Ref(SHORT_LINK_TYPE, link_id)


def _no_link(link_id: str) -> UsageError:
    return UsageError(f"no link with id {link_id!r}")


def jsonable_changes(changes: Mapping[str, object]) -> dict[str, object]:
    """Link changes as a JSON body: times in ISO 8601."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value for name, value in changes.items()
    }


class LocalBackend:
    """The local stack, through the core (DynamoDB Local)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    @property
    def api_url(self) -> str:
        return self.stack.api_url

    def list_links(self, limit: int) -> Iterator[Record]:
        cursor: str | None = None
        left = limit
        from webbugger.service import links

        while left > 0:
            found, cursor = links.list_links(default_registry(), min(left, LINK_PAGE), cursor)
            yield from found[:left]
            left -= len(found)
            if cursor is None:
                return

    def get_link(self, link_id: str) -> Record:
        from webbugger.service import links

        return _found(links.get_link(default_registry(), link_id), link_id)

    def create_link(
        self, url: str, link_id: str | None, utm: Mapping[str, str], changes: Mapping[str, object]
    ) -> Record:
        from webbugger.service import links

        return links.create_link(default_registry(), url, link_id, {**changes, "utm": dict(utm)})

    def update_link(self, link_id: str, changes: Mapping[str, object]) -> Record:
        from webbugger.service import links

        return _found(links.update_link(default_registry(), link_id, changes), link_id)

    def disable_link(self, link_id: str) -> Record:
        from webbugger.service import links

        return _found(links.disable_link(default_registry(), link_id), link_id)

    def link_qr(self, link_id: str, fmt: QrFormat) -> tuple[str, bytes]:
        from webbugger.service.qr import link_qr

        try:
            return link_qr(default_registry(), link_id, self.stack.api_url, fmt)
        except NotFoundError:
            raise _no_link(link_id) from None

    def variant_clicks(self, link_id: str, first: date, last: date) -> Record:
        from webbugger.service.stats import variant_clicks

        try:
            return variant_clicks(default_registry(), link_id, first, last).as_dict()
        except NotFoundError:
            raise _no_link(link_id) from None

    def link_hits(self, link_ids: list[str], first: date, last: date) -> list[int]:
        from webbugger.service.stats import read_stats

        require_counters(self.stack)
        return [read_stats(Kind.TARGET, _link_ref(link_id), first, last).totals.total for link_id in link_ids]

    def stats(self, kind: Kind, ref: Ref, first: date, last: date) -> Stats:
        from webbugger.service.stats import read_stats

        require_counters(self.stack)
        return read_stats(kind, ref, first, last, registry=default_registry())

    def campaign(self, ref: Ref, first: date, last: date) -> Record:
        from webbugger.service.stats import campaign_figures

        require_counters(self.stack)
        figures = campaign_figures(default_registry(), ref, first, last)
        return figures.as_dict() | {"from": first.isoformat(), "to": last.isoformat()}

    def record_sends(self, campaign: Ref, recipients: list[Ref]) -> int:
        from webbugger.runtime import default_settings
        from webbugger.sends import record_sends

        require_counters(self.stack)
        return record_sends(campaign, recipients, default_settings())

    def export(self, query: ExportQuery) -> Iterator[Record]:
        from webbugger.service.beacons import beacon_records

        return beacon_records(query)

    def erase(self, entity: Ref) -> Record:
        from webbugger.service.beacons import erase

        require_counters(self.stack)
        return erase(default_registry(), entity, self.stack.visitor_salt()).as_dict()

    def recount(self, since: str | None, until: str | None, cursor: str | None) -> Record:
        from webbugger.service.recount import recount_range  # the stream's modules: not at start-up

        require_counters(self.stack)
        settings = self.stack.settings
        found = recount_range(
            default_registry(), settings, self.stack.visitor_salt(), since=since, until=until, cursor=cursor
        )
        return found.as_dict()


def _found(record: Record | None, link_id: str) -> Record:
    if record is None:
        raise _no_link(link_id)
    return record


def stats_from_dict(data: Any) -> Stats:
    """:meth:`Stats.as_dict` read back (the admin API's answer)."""
    from webbugger.counters import DayCounts, Stats

    try:
        days = [
            DayCounts(
                str(day["day"]),
                int(day.get("total", 0)),
                int(day.get("unique", 0)),
                int(day.get("human", 0)),
                int(day.get("machine", 0)),
                int(day.get("unique_human_opens", 0)),
                int(day.get("unique_human_clicks", 0)),
            )
            for day in data["days"]
        ]
        return Stats(str(data["ref"]), Kind(data["kind"]), days)
    except (KeyError, TypeError, ValueError) as exc:
        raise AdminApiError(f"the admin API's stats answer is malformed ({exc!r})") from None


def _link_path(link_id: str) -> str:
    return f"/links/{quote(link_id, safe='')}"


def _link_record(data: Any) -> Record:
    # A link itself, or wrapped as {"link": {...}}.
    if isinstance(data, dict) and isinstance(data.get("link"), dict):
        data = data["link"]
    if not isinstance(data, dict) or "id" not in data:
        raise AdminApiError("the admin API's link answer is malformed")
    return data


class AdminBackend:
    """A deployed stack, through its admin API."""

    def __init__(self, client: AdminClient, api_url: str) -> None:
        self.client = client
        self._api_url = api_url

    @property
    def api_url(self) -> str:
        return self._api_url

    def _link_call(self, link_id: str, method: str, path: str, payload: object = None) -> Record:
        try:
            return _link_record(self.client.request(method, path, payload=payload).json())
        except AdminApiError as exc:
            if exc.status == 404 and exc.code in (None, "not_found", "NotFound", "link_not_found"):
                raise _no_link(link_id) from None
            raise

    def list_links(self, limit: int) -> Iterator[Record]:
        cursor: str | None = None
        left = limit
        while left > 0:
            page = self.client.request("GET", "/links", {"limit": min(left, LINK_PAGE), "cursor": cursor})
            data = page.json()
            items = data.get("links", data.get("items")) if isinstance(data, dict) else data
            if not isinstance(items, list):
                raise AdminApiError("the admin API's link listing is malformed")
            for item in items[:left]:
                yield _link_record(item)
            left -= len(items)
            cursor = page.next_cursor
            if cursor is None and isinstance(data, dict):
                cursor = data.get("next_cursor") or data.get("cursor") or None
            if cursor is None or not items:
                return

    def get_link(self, link_id: str) -> Record:
        return self._link_call(link_id, "GET", _link_path(link_id))

    def create_link(
        self, url: str, link_id: str | None, utm: Mapping[str, str], changes: Mapping[str, object]
    ) -> Record:
        payload: dict[str, object] = {"url": url, **jsonable_changes(changes)}
        if link_id is not None:
            payload["id"] = link_id
        if utm:
            payload["utm"] = dict(utm)
        return _link_record(self.client.request("POST", "/links", payload=payload).json())

    def update_link(self, link_id: str, changes: Mapping[str, object]) -> Record:
        return self._link_call(link_id, "PATCH", _link_path(link_id), jsonable_changes(changes))

    def disable_link(self, link_id: str) -> Record:
        return self._link_call(link_id, "POST", f"{_link_path(link_id)}/disable")

    def link_qr(self, link_id: str, fmt: QrFormat) -> tuple[str, bytes]:
        try:
            page = self.client.request("GET", f"{_link_path(link_id)}/qr", {"format": fmt})
        except AdminApiError as exc:
            if exc.status == 404:
                raise _no_link(link_id) from None
            raise
        return page.headers.get("x-short-url", ""), page.body

    def variant_clicks(self, link_id: str, first: date, last: date) -> Record:
        query = {"from": first.isoformat(), "to": last.isoformat()}
        try:
            answer = self.client.get_json(f"{_link_path(link_id)}/variants", query)
        except AdminApiError as exc:
            if exc.status == 404:
                raise _no_link(link_id) from None
            raise
        if not isinstance(answer, dict) or not isinstance(answer.get("variants"), list):
            raise AdminApiError("the admin API's variant clicks answer is malformed")
        return answer

    def link_hits(self, link_ids: list[str], first: date, last: date) -> list[int]:
        return [self.stats(Kind.TARGET, _link_ref(link_id), first, last).totals.total for link_id in link_ids]

    def stats(self, kind: Kind, ref: Ref, first: date, last: date) -> Stats:
        query = {"ref": str(ref), "kind": str(kind), "from": first.isoformat(), "to": last.isoformat()}
        return stats_from_dict(self.client.get_json("/stats", query))

    def campaign(self, ref: Ref, first: date, last: date) -> Record:
        query = {"ref": str(ref), "from": first.isoformat(), "to": last.isoformat()}
        answer = self.client.get_json("/stats/campaign", query)
        if not isinstance(answer, dict) or not isinstance(answer.get("links"), list):
            raise AdminApiError("the admin API's campaign stats answer is malformed")
        return answer

    def record_sends(self, campaign: Ref, recipients: list[Ref]) -> int:
        new = 0
        for start in range(0, len(recipients), SENDS_BATCH):
            entities = [str(who) for who in recipients[start : start + SENDS_BATCH]]
            answer = self.client.request(
                "POST", "/sends", payload={"source": str(campaign), "entities": entities}
            )
            recorded = answer.json().get("recorded") if isinstance(answer.json(), dict) else None
            if not isinstance(recorded, int):
                raise AdminApiError("the admin API's sends answer is malformed")
            new += recorded
        return new

    def export(self, query: ExportQuery) -> Iterator[Record]:
        params: dict[str, object] = {
            "from": query.since.isoformat(),
            "to": query.until.isoformat(),
            "format": "jsonl",
            "limit": EXPORT_PAGE,
        }
        if query.kind is not None and query.ref is not None:
            params[str(query.kind)] = str(query.ref)
        for line in self.client.lines("/export", params):
            try:
                record = json.loads(line)
            except ValueError:
                raise AdminApiError("the admin API's export holds a line that is not JSON") from None
            if not isinstance(record, dict):
                raise AdminApiError("the admin API's export holds a line that is not a JSON object")
            yield record

    def erase(self, entity: Ref) -> Record:
        answer = self.client.request("POST", "/erase", payload={"entity": str(entity)}).json()
        if not isinstance(answer, dict):
            raise AdminApiError("the admin API's erase answer is not a JSON object")
        return answer

    def recount(self, since: str | None, until: str | None, cursor: str | None) -> Record:
        payload = {
            name: value for name, value in (("from", since), ("to", until), ("cursor", cursor)) if value
        }
        answer = self.client.request("POST", "/recount", payload=payload).json()
        if not isinstance(answer, dict):
            raise AdminApiError("the admin API's recount answer is not a JSON object")
        return answer


def open_backend(stack_name: str | None, region: str | None) -> Backend:
    """The local stack's backend, or the admin API of the deployed stack ``stack_name``."""
    if stack_name is None:
        return LocalBackend(resolve_stack(None))
    admin = deployed_admin(stack_name, region)
    return AdminBackend(admin.client, admin.api_url)
