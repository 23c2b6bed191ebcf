"""A plugin whose inline entity hook overruns any sensible budget: entity ``sleepy``.

The hook waits on ``RELEASE`` (at most ``MAX_WAIT_S``); tests set it when done so that the
abandoned hook thread ends at once. ``FINISHED`` lists the beacon ids whose hook got to the end.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webbugger.plugins import HitRequest, PluginTypes

TYPE_NAME = "sleepy"
MAX_WAIT_S = 2.0
RELEASE = threading.Event()
STARTED: list[str] = []
FINISHED: list[str] = []


@dataclass
class Sleepy:
    id: str

    def beacon_update(self, request: HitRequest) -> None:
        STARTED.append(request.beacon_id)
        RELEASE.wait(MAX_WAIT_S)
        FINISHED.append(request.beacon_id)


def get_or_create(entity_id: str | None) -> Sleepy:
    return Sleepy(entity_id or "sleepy-new")


def register(types: PluginTypes) -> None:
    types.entity(TYPE_NAME, get_or_create=get_or_create)
