"""What classification stores on a beacon: its class with the reasons (:class:`Verdict`) and the
browser, OS and device family of its user agent (:class:`Device`).

Their own module so that :mod:`webbugger.classify`, which makes them, and
:mod:`webbugger.counters`, which stores and counts them, both import them without importing
each other.
"""

from __future__ import annotations

from dataclasses import dataclass

HUMAN = "human"


@dataclass(frozen=True, slots=True)
class Device:
    """Browser, OS and device family of a user agent (None where ua-parser knows nothing)."""

    browser: str | None = None
    os: str | None = None
    device: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A class and the reasons for it (short codes)."""

    classification: str
    reasons: tuple[str, ...] = ()

    @property
    def human(self) -> bool:
        """Whether the class is human."""
        return self.classification == HUMAN
