"""Generic ``(type, id)`` references: what was hit, who hit it, where the traffic came from.

The text form is ``type:id``; the id may itself contain colons (a ``url`` target's id is a URL), so
the text splits at the first colon only. An entity reference may carry no id (text form ``type``),
which asks for a new entity of that type.

Every reference refuses what no key may hold (control characters of C0 and DEL, over-long ids);
:func:`check_new_ref` refuses more of an id about to be given out, where what it looks like must
be what it is.
"""

from __future__ import annotations

import re

from webbugger.errors import InvalidReferenceError
from webbugger.frozen import Frozen

TYPE_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,39}\Z")
# Ids become DynamoDB index keys (at most 2048 bytes with the type); URLs are the longest ids.
MAX_ID_BYTES = 1900
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Unicode categories an id given out may not hold: controls (C1 too), format characters (bidi
# overrides and isolates, zero-width spaces, the byte order mark), line and paragraph separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})
# Zero-width non-joiner and joiner: words of some scripts (Persian) and emoji sequences need them,
# as RFC 8264 (PRECIS) keeps them in identifiers.
_JOINERS = frozenset("\u200c\u200d")


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


def check_new_ref(ref: Ref) -> Ref:
    """``ref``, if its id may be given out: minted into a URL, recorded as a send, or the id of a
    new record. :class:`InvalidReferenceError` for an id that starts or ends with whitespace, or
    holds a character no one sees (a C1 control, a bidi override, a zero-width space, a line
    separator...): two ids that look the same would count as two people.

    Only where ids come in from a user (the admin API, the CLI): ids already signed into tokens or
    stored with beacons are read as they are, so that nothing made before this rule is lost."""
    ident = ref.id
    if ident is None:
        return ref
    if ident != ident.strip():
        raise InvalidReferenceError(f"id {ident!r} of {ref.type!r} reference starts or ends with whitespace")
    import unicodedata  # for ids coming in only, not at the track function's cold start

    for char in ident:
        if char not in _JOINERS and unicodedata.category(char) in _INVISIBLE:
            raise InvalidReferenceError(
                f"id {ident!r} of {ref.type!r} reference holds an invisible character, U+{ord(char):04X}"
            )
    return ref
