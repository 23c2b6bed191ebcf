"""The two ways a beacon is triggered."""

from enum import StrEnum


class Mode(StrEnum):
    """``pixel``: answer a 1x1 GIF. ``redirect``: answer 302 to the target."""

    PIXEL = "pixel"
    REDIRECT = "redirect"
