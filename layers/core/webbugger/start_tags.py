"""Where each attribute of one HTML start tag lies in the source.

The HTML parser (justhtml) tells where an element's start tag begins and what its attributes
decode to, but not where each attribute's value is. This follows the tokenizer's states for one
start tag (HTML Living Standard §13.2.5.6 to §13.2.5.40: tag name, attribute name and value,
self-closing) to find them, so that one value can be replaced and nothing else touched.
"""

from __future__ import annotations

from dataclasses import dataclass

# The tokenizer's whitespace; CR counts because input preprocessing turns it into LF.
_SPACE = frozenset("\t\n\f\r ")


@dataclass(frozen=True, slots=True)
class AttributeSpan:
    """One attribute as written: its lowercased name and where its value is.

    ``start``/``end`` delimit the value *with* its quotes (``quote`` is ``"``, ``'`` or empty for
    an unquoted value); an attribute written without a value has ``start == end``.
    """

    name: str
    start: int
    end: int
    quote: str


@dataclass(frozen=True, slots=True)
class StartTag:
    """A start tag's lowercased name, its attributes in source order and the offset after ``>``."""

    name: str
    attributes: tuple[AttributeSpan, ...]
    end: int

    def first(self, name: str) -> AttributeSpan | None:
        """The attribute the parser keeps for ``name`` (a repeated attribute's first occurrence)."""
        return next((attribute for attribute in self.attributes if attribute.name == name), None)


def _value(html: str, i: int) -> tuple[int, str]:
    """The end of the attribute value starting at ``i`` and its quote (the before-value state)."""
    n = len(html)
    while i < n and html[i] in _SPACE:
        i += 1
    if i < n and html[i] in "\"'":
        close = html.find(html[i], i + 1)
        return (n if close < 0 else close + 1), html[i]
    while i < n and html[i] not in _SPACE and html[i] != ">":
        i += 1
    return i, ""


def scan_start_tag(html: str, start: int) -> StartTag | None:
    """The start tag at ``html[start]`` (a ``<``), or None if none begins there or it never ends."""
    n = len(html)
    if not (start + 1 < n and html[start] == "<" and html[start + 1].isascii() and html[start + 1].isalpha()):
        return None
    i = start + 1
    while i < n and html[i] not in _SPACE and html[i] not in "/>":
        i += 1
    name = html[start + 1 : i].lower()
    attributes: list[AttributeSpan] = []
    while True:
        while i < n and (html[i] in _SPACE or html[i] == "/"):  # before-attribute-name, self-closing
            i += 1
        if i >= n:
            return None  # end of input inside a tag: the parser drops the tag
        if html[i] == ">":
            return StartTag(name, tuple(attributes), i + 1)
        name_start = i
        i += 1  # the first character is part of the name, even "="
        while i < n and html[i] not in _SPACE and html[i] not in "/>=":
            i += 1
        attribute_name = html[name_start:i].lower()
        while i < n and html[i] in _SPACE:  # after-attribute-name
            i += 1
        if i < n and html[i] == "=":
            i += 1
            while i < n and html[i] in _SPACE:
                i += 1
            value_start = i
            if i < n and html[i] == ">":  # "name=>": an empty value
                attributes.append(AttributeSpan(attribute_name, i, i, ""))
                continue
            i, quote = _value(html, i)
            attributes.append(AttributeSpan(attribute_name, value_start, i, quote))
        else:
            attributes.append(AttributeSpan(attribute_name, i, i, ""))
