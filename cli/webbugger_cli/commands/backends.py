"""Where the ``link``, ``stats``, ``export`` and ``erase`` commands get their data.

The local stack is read and written through the core's service layer (:mod:`webbugger.service`,
which the admin API's routes call too); a deployed stack through its admin API
(:mod:`webbugger_cli.admin_client`, SigV4-signed). Both answer with the same plain records, so
each command has one output path (:mod:`~webbugger_cli.commands.local_backend`,
:mod:`~webbugger_cli.commands.admin_backend`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from webbugger_cli.admin_client import deployed_admin
from webbugger_cli.commands.admin_backend import AdminBackend
from webbugger_cli.commands.local_backend import LocalBackend
from webbugger_cli.stack import resolve_stack

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from datetime import date

    from webbugger.counters import Stats
    from webbugger.refs import Ref
    from webbugger.registry import Kind
    from webbugger.service.beacons import BeaconQuery as ExportQuery
    from webbugger.service.qr import QrFormat

    from webbugger_cli.commands.backend_records import Record


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


def open_backend(stack_name: str | None, region: str | None) -> Backend:
    """The local stack's backend, or the admin API of the deployed stack ``stack_name``."""
    if stack_name is None:
        return LocalBackend(resolve_stack(None))
    admin = deployed_admin(stack_name, region)
    return AdminBackend(admin.client, admin.api_url)
