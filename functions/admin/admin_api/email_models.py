"""The email routes' request and answer models: ``/rewrite``, ``/rewrite/batch``, ``/sends`` and
``/stats/campaign`` (the others are in :mod:`admin_api.models`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MAX_REWRITE_BATCH = 500
MAX_SENDS = 1000
MAX_MESSAGE = 1_000_000  # characters of a message part (Gmail clips a mail past 102 KB)


class RewriteFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    html: str = Field(max_length=MAX_MESSAGE, description="The message's HTML part")
    text: str | None = Field(default=None, max_length=MAX_MESSAGE, description="Its plain-text part")
    campaign: str = Field(max_length=512, description="The campaign's id (a stored campaign)")
    honeypot: bool = Field(default=False, description="Add an invisible link: what follows it is a machine")
    track_unsubscribe: bool = Field(default=False, description="Wrap unsubscribe links too")
    list_unsubscribe: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=10, description="List-Unsubscribe values (targets left alone)"
    )


class RewriteRequest(RewriteFields):
    recipient: str = Field(min_length=1, max_length=320, description="The recipient's id (an address)")


class RewriteBatch(RewriteFields):
    recipients: list[str] = Field(min_length=1, max_length=MAX_REWRITE_BATCH)


class SkippedOut(BaseModel):
    href: str
    reason: str


class RewriteSummary(BaseModel):
    wrapped: int = Field(description="Links of the HTML wrapped")
    text_wrapped: int = Field(description="Links of the plain-text part wrapped")
    pixel: bool = Field(description="Whether the pixel was placed (false: no spot in the body shows it)")
    honeypot: bool
    links: dict[str, str] = Field(description="Each destination's stored link id")
    skipped: list[SkippedOut] = Field(description="Links left alone, and why")
    new_sends: int = Field(description="Sends recorded now (a recipient already sent is not again)")


class RecipientMessage(BaseModel):
    recipient: str
    html: str
    text: str | None = None


class RewriteOut(RewriteSummary, RecipientMessage):
    pass


class RewriteBatchOut(RewriteSummary):
    messages: list[RecipientMessage]


class SendsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(max_length=2048, description="TYPE:ID of the campaign (a source)")
    entities: list[str] = Field(
        min_length=1, max_length=MAX_SENDS, description="TYPE:ID of each recipient (an entity)"
    )


class SendsOut(BaseModel):
    source: str
    recorded: int = Field(description="Sends recorded now (an entity already sent is not again)")
    sent: int = Field(description="The source's sends in all")


class LinkClicksOut(BaseModel):
    target: str
    url: str | None = None
    unique_human_clicks: int
    human_clicks: int
    machine_clicks: int


class CampaignStatsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    campaign: str
    first: str = Field(alias="from")
    last: str = Field(alias="to")
    sent: int
    unique_human_opens: int = Field(description="Recipients sent, with a human open or a human click")
    open_rate: float | None = Field(description="unique_human_opens / sent (null: nothing sent)")
    unique_human_clicks: int
    click_rate: float | None = Field(description="unique_human_clicks / sent")
    click_to_open_rate: float | None = Field(description="unique_human_clicks / unique_human_opens")
    openers_not_sent: int = Field(description="Openers with no recorded send: left out of the rates")
    human_opens: int
    human_clicks: int
    machine_opens: int = Field(description="Opens by machines: privacy prefetches, image proxies")
    machine_clicks: int = Field(description="Clicks by machines: link scanners, the honeypot")
    machine_classes: dict[str, int] = Field(description="Machine hits by class")
    pending: int = Field(description="Hits not labelled yet (the stream labels them within seconds)")
    scanned: int
    capped: bool = Field(description="Whether the scan of the campaign's beacons stopped at its cap")
    links: list[LinkClicksOut]
