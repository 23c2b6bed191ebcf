"""Generic ``(type, id)`` references: what was hit, who hit it, where the traffic came from.

The text form is ``type:id``; the id may itself contain colons (a ``url`` target's id is a URL), so
the text splits at the first colon only. An entity reference may carry no id (text form ``type``),
which asks for a new entity of that type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from webbugger.errors import InvalidReferenceError

TYPE_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,39}\Z")
# Ids become DynamoDB index keys (at most 2048 bytes with the type); URLs are the longest ids.
MAX_ID_BYTES = 1900
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference to one record of a registered type. ``id`` is None for "a new one"."""

    type: str
    id: str | None = None

    def __post_init__(self) -> None:
        if not TYPE_NAME.match(self.type):
            raise InvalidReferenceError(
                f"invalid type name {self.type!r}: lowercase letters, digits, '_', '.', '-'; "
                "starting with a letter"
            )
        if self.id is not None:
            if not self.id:
                raise InvalidReferenceError(f"empty id in reference to type {self.type!r}")
            try:
                size = len(self.id.encode())
            except UnicodeEncodeError as exc:  # a lone surrogate (from a shell's undecodable bytes)
                raise InvalidReferenceError(f"id of {self.type!r} reference is not valid Unicode") from exc
            if size > MAX_ID_BYTES:
                raise InvalidReferenceError(
                    f"id of {self.type!r} reference is longer than {MAX_ID_BYTES} bytes"
                )
            if _CONTROL.search(self.id):
                raise InvalidReferenceError(f"id of {self.type!r} reference contains control characters")

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
