"""What both backends of the commands answer with (plain records), and what they share about links."""

from __future__ import annotations

from typing import Any

from webbugger.refs import Ref

from webbugger_cli.commands import UsageError

# Links per request when listing (the admin API's page, the local scan's page).
LINK_PAGE = 100

Record = dict[str, Any]


def link_ref(link_id: str) -> Ref:
    """The reference of the short link ``link_id`` (as its counters are keyed)."""
    from webbugger.tracking import SHORT_LINK_TYPE  # the tracker's modules: not at start-up

    return Ref(SHORT_LINK_TYPE, link_id)


def no_link(link_id: str) -> UsageError:
    """The one-line refusal for a link that does not exist."""
    return UsageError(f"no link with id {link_id!r}")
