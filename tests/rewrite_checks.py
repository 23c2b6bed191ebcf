"""Checks of a rewritten message that do not trust the rewriter: they align the two documents.

:func:`rewritten_parts` walks the original and the rewritten text side by side. Outside the
tracking URLs it must find the very same characters; each tracking URL must stand where the
original had an ``href`` value; the pixel (with the optional honeypot) may be inserted, replacing
the placeholder comment if there was one. Anything else that differs fails the check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from webbugger.tokens import KeyRing, TokenClaims, verify

BASE = "https://t.invalid"
PLACEHOLDER = re.compile(r"<!--\s*webbugger:pixel\s*-->", re.IGNORECASE)
_TOKEN = r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"  # KID.SEALED (webbugger.tokens)


def _rewritten(base: str) -> re.Pattern[str]:
    """A tracking URL as an attribute value, or the inserted pixel (and honeypot), of ``base``."""
    base = re.escape(base.rstrip("/"))
    return re.compile(
        rf"(?P<value>([\"'])(?P<link>{base}/r/{_TOKEN})\2)"
        rf"|(?P<insert>(?:<a href=\"(?P<honeypot>{base}/r/{_TOKEN})\" aria-hidden=\"true\" "
        rf"tabindex=\"-1\" style=\"[^\"]*\">&#8203;</a>)?"
        rf"<img src=\"(?P<pixel>{base}/p/{_TOKEN})\.gif\" width=\"1\" height=\"1\" alt=\"\" "
        rf"style=\"[^\"]*\">)"
    )


_HREF_BEFORE = re.compile(r"\bhref[\t\n\f\r ]*=[\t\n\f\r ]*\Z", re.IGNORECASE)
_ORIGINAL_VALUE = re.compile(r"\"[^\"]*\"|'[^']*'|[^\t\n\f\r >]+")


@dataclass
class RewrittenParts:
    """What the alignment found: the rewritten links' original values and tokens, the pixel's."""

    original_values: list[str] = field(default_factory=list)
    link_tokens: list[str] = field(default_factory=list)
    pixel_tokens: list[str] = field(default_factory=list)
    honeypot_tokens: list[str] = field(default_factory=list)
    placeholder_replaced: bool = False


def rewritten_parts(original: str, rewritten: str, base: str = BASE) -> RewrittenParts:
    """Align ``rewritten`` with ``original``; AssertionError at the first difference not allowed.
    ``base`` is the tracking URLs' base."""
    parts = RewrittenParts()
    i = j = 0
    for match in _rewritten(base).finditer(rewritten):
        kept = rewritten[j : match.start()]
        assert original.startswith(kept, i), f"changed near offset {i}: {original[i : i + 80]!r}"
        i += len(kept)
        if match.group("value"):
            assert _HREF_BEFORE.search(original[max(0, i - 64) : i]), f"not an href value at {i}"
            value = _ORIGINAL_VALUE.match(original, i)
            assert value is not None, f"no attribute value at {i}"
            parts.original_values.append(value.group())
            parts.link_tokens.append(match.group("link").rsplit("/", 1)[1])
            i = value.end()
        else:
            parts.pixel_tokens.append(match.group("pixel").rsplit("/", 1)[1])
            if match.group("honeypot"):
                parts.honeypot_tokens.append(match.group("honeypot").rsplit("/", 1)[1])
            placeholder = PLACEHOLDER.match(original, i)
            if placeholder is not None:
                parts.placeholder_replaced = True
                i = placeholder.end()
        j = match.end()
    assert rewritten[j:] == original[i:], f"changed near offset {i}: {original[i : i + 80]!r}"
    return parts


def text_tokens(original: str, rewritten: str, base: str = BASE) -> tuple[list[str], list[str]]:
    """The original URLs a plain-text part's tracking URLs replaced, and their tokens; the text
    around them must be unchanged."""
    url = re.compile(rf"{re.escape(base.rstrip('/'))}/r/{_TOKEN}")
    pieces = url.split(rewritten)
    pattern = r"(https?://\S+?)".join(re.escape(piece) for piece in pieces)
    aligned = re.fullmatch(pattern, original, re.DOTALL)
    assert aligned is not None, "the text part changed outside the rewritten URLs"
    return list(aligned.groups()), [found.rsplit("/", 1)[1] for found in url.findall(rewritten)]


def claims_of(tokens: list[str], ring: KeyRing) -> list[TokenClaims]:
    """Each token verified with ``ring`` (InvalidTokenError if one does not verify)."""
    return [verify(token, ring) for token in tokens]
