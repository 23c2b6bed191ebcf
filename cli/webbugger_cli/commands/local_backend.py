"""The local stack as the commands' backend: read and written through the core's service layer
(:mod:`webbugger.service`, which the admin API's routes call too)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webbugger.errors import NotFoundError
from webbugger.registry import Kind
from webbugger.runtime import default_registry

from webbugger_cli.commands.backend_records import LINK_PAGE, link_ref, no_link
from webbugger_cli.stack import require_counters

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from datetime import date

    from webbugger.counters import Stats
    from webbugger.refs import Ref
    from webbugger.service.beacons import BeaconQuery as ExportQuery
    from webbugger.service.qr import QrFormat

    from webbugger_cli.commands.backend_records import Record
    from webbugger_cli.stack import Stack


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
            raise no_link(link_id) from None

    def variant_clicks(self, link_id: str, first: date, last: date) -> Record:
        from webbugger.service.stats import variant_clicks

        try:
            return variant_clicks(default_registry(), link_id, first, last).as_dict()
        except NotFoundError:
            raise no_link(link_id) from None

    def link_hits(self, link_ids: list[str], first: date, last: date) -> list[int]:
        from webbugger.service.stats import read_stats

        require_counters(self.stack)
        return [read_stats(Kind.TARGET, link_ref(link_id), first, last).totals.total for link_id in link_ids]

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
        from webbugger.service.beacons import beacon_records, within_retention

        # Clamped as the admin API clamps a deployed stack's export.
        return beacon_records(within_retention(query, self.stack.settings.retention_days))

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
        raise no_link(link_id)
    return record
