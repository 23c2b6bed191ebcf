"""The ``campaign`` source: a name and a creation time. A beacon naming an unknown campaign gets
404 unless its link says to ignore errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynamodb.attributes import UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model
from webbugger.errors import WebbuggerError
from webbugger.models import utcnow
from webbugger.refs import Ref, check_new_ref

from webbugger_plugins.records import page_of

if TYPE_CHECKING:
    from webbugger.plugins import PluginTypes


class CampaignExistsError(WebbuggerError):
    """A campaign with this id already exists."""


class Campaign(Model):
    """A campaign that traffic can be attributed to."""

    class Meta:
        table_name = "unbound-campaigns"

    id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()

    def to_record(self) -> dict[str, object]:
        """JSON-ready view."""
        return {"id": self.id, "name": self.name, "created_at": self.created_at.isoformat()}


def load(campaign_id: str) -> Campaign | None:
    """The stored campaign, or None."""
    try:
        return Campaign.get(campaign_id)
    except Campaign.DoesNotExist:
        return None


def create_campaign(campaign_id: str, name: str | None = None) -> Campaign:
    """Store a new campaign; :class:`CampaignExistsError` if the id is taken."""
    check_new_ref(Ref("campaign", campaign_id))  # validates the id
    campaign = Campaign(id=campaign_id, name=name, created_at=utcnow())
    try:
        campaign.save(condition=Campaign.id.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise CampaignExistsError(f"campaign {campaign_id!r} already exists") from exc
        raise
    return campaign


def register(types: PluginTypes) -> None:
    """Plugin entry point."""
    types.table(Campaign, variable="CAMPAIGNS_TABLE")
    types.source("campaign", load=load, create=create_campaign, page=page_of(Campaign))
