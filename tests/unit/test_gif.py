"""The pixel: a valid, fully transparent 1x1 GIF that no cache keeps."""

from __future__ import annotations

import io

from PIL import Image
from webbugger.gif import NO_CACHE_HEADERS, TRANSPARENT_GIF


def test_transparent_gif_decodes_as_one_transparent_pixel() -> None:
    with Image.open(io.BytesIO(TRANSPARENT_GIF)) as image:
        assert image.format == "GIF"
        assert image.size == (1, 1)
        image.load()
        rgba = image.convert("RGBA")
        pixel = rgba.getpixel((0, 0))
    assert isinstance(pixel, tuple)
    assert pixel[3] == 0


def test_transparent_gif_is_small_and_well_formed() -> None:
    assert len(TRANSPARENT_GIF) <= 43
    assert TRANSPARENT_GIF.startswith(b"GIF89a")
    assert TRANSPARENT_GIF.endswith(b";")


def test_no_cache_headers_are_exactly_as_specified() -> None:
    assert dict(NO_CACHE_HEADERS) == {
        "Cache-Control": "no-cache, no-store, must-revalidate, private, max-age=0",
        "Pragma": "no-cache",
        "Expires": "0",
    }
