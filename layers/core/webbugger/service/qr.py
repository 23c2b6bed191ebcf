"""QR codes of a stored link's short URL, as PNG or SVG, made with segno (a maintained, pure
Python QR encoder: no system packages).

segno is a dependency of the admin function and of the CLI (pyproject.toml's ``admin`` group and
``cli`` extra), not of the core layer: it is imported on first use, never by the track function.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Literal

from webbugger.errors import NotFoundError
from webbugger.service.links import get_link, require_short_url

if TYPE_CHECKING:
    from webbugger.registry import Registry

QrFormat = Literal["png", "svg"]
QR_FORMATS: tuple[QrFormat, ...] = ("png", "svg")
CONTENT_TYPES: dict[str, str] = {"png": "image/png", "svg": "image/svg+xml"}
# Pixels a module (PNG) or user units a module (SVG), and the quiet zone ISO/IEC 18004 asks for.
SCALE = 8
QUIET_ZONE = 4


def qr_code(text: str, fmt: QrFormat = "png") -> bytes:
    """``text`` as a QR code image (error correction M, or higher where it fits the same size)."""
    import segno  # the admin function and the CLI only

    code = segno.make_qr(text, error="m")
    out = io.BytesIO()
    code.save(out, kind=fmt, scale=SCALE, border=QUIET_ZONE)
    return out.getvalue()


def link_qr(registry: Registry, link_id: str, base_url: str, fmt: QrFormat = "png") -> tuple[str, bytes]:
    """The short URL of link ``link_id`` under ``base_url`` and its QR code. :class:`NotFoundError`
    when there is no such link, :class:`NoShortUrlError` when its short URL is off."""
    record = get_link(registry, link_id)
    if record is None:
        raise NotFoundError(f"no link {link_id!r}")
    url = require_short_url(record, base_url)
    return url, qr_code(url, fmt)
