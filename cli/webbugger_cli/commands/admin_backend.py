"""A deployed stack as the commands' backend: through its admin API (:mod:`webbugger_cli.admin_client`,
SigV4-signed), its answers checked and read back as the local backend's records."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from webbugger.registry import Kind

from webbugger_cli.admin_client import AdminApiError, AdminClient
from webbugger_cli.commands.backend_records import LINK_PAGE, link_ref, no_link

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from datetime import date

    from webbugger.counters import Stats
    from webbugger.refs import Ref
    from webbugger.service.beacons import BeaconQuery as ExportQuery
    from webbugger.service.qr import QrFormat

    from webbugger_cli.commands.backend_records import Record

# Beacons per admin API export request.
EXPORT_PAGE = 1000
# Recipients per POST /sends (the admin API's maximum).
SENDS_BATCH = 1000


def jsonable_changes(changes: Mapping[str, object]) -> dict[str, object]:
    """Link changes as a JSON body: times in ISO 8601."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value for name, value in changes.items()
    }


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
                raise no_link(link_id) from None
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
                raise no_link(link_id) from None
            raise
        return page.headers.get("x-short-url", ""), page.body

    def variant_clicks(self, link_id: str, first: date, last: date) -> Record:
        query = {"from": first.isoformat(), "to": last.isoformat()}
        try:
            answer = self.client.get_json(f"{_link_path(link_id)}/variants", query)
        except AdminApiError as exc:
            if exc.status == 404:
                raise no_link(link_id) from None
            raise
        if not isinstance(answer, dict) or not isinstance(answer.get("variants"), list):
            raise AdminApiError("the admin API's variant clicks answer is malformed")
        return answer

    def link_hits(self, link_ids: list[str], first: date, last: date) -> list[int]:
        return [self.stats(Kind.TARGET, link_ref(link_id), first, last).totals.total for link_id in link_ids]

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
