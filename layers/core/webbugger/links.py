"""Creating and reading stored links (the ``link`` target's records)."""

from __future__ import annotations

from pynamodb.exceptions import PutError

from webbugger.destinations import normalise_destination
from webbugger.errors import WebbuggerError
from webbugger.ids import new_link_id
from webbugger.models import Link, utcnow
from webbugger.refs import Ref


class LinkExistsError(WebbuggerError):
    """A link with the requested id already exists."""


def _conditional_failed(exc: PutError) -> bool:
    return exc.cause_response_code == "ConditionalCheckFailedException"


def create_link(url: str, link_id: str | None = None) -> Link:
    """Store a new link to ``url`` (normalised and checked); a random id unless one is given."""
    destination = normalise_destination(url)
    if link_id is not None:
        Ref("link", link_id)  # validates the id's characters and length
    attempts = 1 if link_id is not None else 5
    for _ in range(attempts):
        link = Link(id=link_id or new_link_id(), url=destination, created_at=utcnow())
        try:
            link.save(condition=Link.id.does_not_exist())
        except PutError as exc:
            if _conditional_failed(exc):
                continue
            raise
        return link
    raise LinkExistsError(f"link {link_id!r} already exists" if link_id else "could not find a free link id")
