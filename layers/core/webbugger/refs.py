"""Generic ``(type, id)`` references: what was hit, who hit it, where the traffic came from.

The text form is ``type:id``; the id may itself contain colons (a ``url`` target's id is a URL), so
the text splits at the first colon only. An entity reference may carry no id (text form ``type``),
which asks for a new entity of that type.
"""

from __future__ import annotations

import re

from webbugger.errors import InvalidReferenceError
from webbugger.frozen import Frozen

TYPE_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,39}\Z")
# Ids become DynamoDB index keys (at most 2048 bytes with the type); URLs are the longest ids.
MAX_ID_BYTES = 1900
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Ref(Frozen):
    """A reference to one record of a registered type. ``id`` is None for "a new one".

    Immutable, compared and hashed by its fields (a :class:`Frozen` rather than a frozen dataclass:
    cheaper to define at the track function's cold start)."""

    __slots__ = ("type", "id")  # noqa: RUF023 - the fields, in order
    type: str
    id: str | None

    def __init__(self, type: str, id: str | None = None) -> None:
        if not TYPE_NAME.match(type):
            raise InvalidReferenceError(
                f"invalid type name {type!r}: lowercase letters, digits, '_', '.', '-'; "
                "starting with a letter"
            )
        if id is not None:
            if not id:
                raise InvalidReferenceError(f"empty id in reference to type {type!r}")
            try:
                size = len(id.encode())
            except UnicodeEncodeError as exc:  # a lone surrogate (from a shell's undecodable bytes)
                raise InvalidReferenceError(f"id of {type!r} reference is not valid Unicode") from exc
            if size > MAX_ID_BYTES:
                raise InvalidReferenceError(f"id of {type!r} reference is longer than {MAX_ID_BYTES} bytes")
            if _CONTROL.search(id):
                raise InvalidReferenceError(f"id of {type!r} reference contains control characters")
        self._freeze(type=type, id=id)

    def __str__(self) -> str:
        return self.type if self.id is None else f"{self.type}:{self.id}"

    @classmethod
    def parse(cls, text: str, *, allow_new: bool = False) -> Ref:
        """Parse ``type:id`` (or bare ``type`` when ``allow_new``) into a reference."""
        type_name, sep, ident = text.partition(":")
        if not sep:
            if allow_new:
                return cls(type_name)
            raise InvalidReferenceError(f"expected TYPE:ID, got {text!r}")
        return cls(type_name, ident)


def parse_optional(text: str | None, *, allow_new: bool = False) -> Ref | None:
    """Parse a reference that may be absent."""
    return None if text is None else Ref.parse(text, allow_new=allow_new)
