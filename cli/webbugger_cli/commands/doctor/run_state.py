"""One run of the doctor: who it says it is (its own source, entity and user agent, so that its
hits are told apart from real traffic and erased afterwards) and what its checks found so far."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from webbugger.minting import tracking_url
from webbugger.refs import Ref

if TYPE_CHECKING:
    from webbugger.tokens import KeyRing, TokenClaims

    from webbugger_cli.admin_client import AdminClient
    from webbugger_cli.commands.doctor.subjects import Subject

DOCTOR_SOURCE_TYPE = "campaign"
# The built-in entity type that keeps a record per id (erased with the beacons).
DOCTOR_ENTITY_TYPE = "ip"
DOCTOR_USER_AGENT = "webbugger-doctor/1 ({run})"


@dataclass
class RunState:
    """The run's identity, and what earlier checks found that later ones use."""

    subject: Subject
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ring: KeyRing | None = None
    admin: AdminClient | None = None
    link_url: str | None = None
    link_destination: str | None = None
    pixel_url: str | None = None
    pixel_sent_at: datetime | None = None

    @property
    def source(self) -> Ref:
        """The unique source of this run's pixel."""
        return Ref(DOCTOR_SOURCE_TYPE, f"webbugger-doctor-{self.run_id}")

    @property
    def entity(self) -> Ref:
        """The entity of this run's hits: erasing it removes the beacons the run recorded."""
        return Ref(DOCTOR_ENTITY_TYPE, f"webbugger-doctor-{self.run_id}")

    @property
    def user_agent(self) -> str:
        """The user agent this run's pixel is fetched with."""
        return DOCTOR_USER_AGENT.format(run=self.run_id)

    def mint(self, claims: TokenClaims) -> str:
        """A tracking URL of the stack for ``claims``, signed with its key ring."""
        assert self.ring is not None  # the secret check passed
        return tracking_url(self.subject.tracking_base, claims, self.ring)
