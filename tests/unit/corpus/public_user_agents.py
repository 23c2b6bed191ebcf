"""Public test sets of real user agents, machines and browsers, nobody here wrote.

Machines:

- ``crawlerdetect``: every line of ``tests/fixtures/user_agent/crawlers.txt`` in crawlerdetect
  0.4.2's source distribution on PyPI (crawlerdetect-0.4.2.tar.gz, sha256 2ecbc825ec9b...cb2ef,
  "synced with JayBizzle/Crawler-Detect v1.4.1"), committed as ``public/crawlerdetect-crawlers.txt``
  (MIT licence; the wheel does not ship its tests).
- ``crawler-user-agents``: every ``instances`` example of ``crawler-user-agents.json`` in the
  installed crawler-user-agents package (1.67.0 in uv.lock).
- ``device-detector``: every ``user_agent`` of ``tests/fixtures/upstream/bots.yml`` in the
  installed device-detector package (6.5.1 in uv.lock; Matomo's own fixtures).

Browsers:

- ``crawlerdetect``: every 55th line (3,000 lines) of the same source distribution's
  ``tests/fixtures/user_agent/devices.txt`` (165,640 lines), committed as
  ``public/crawlerdetect-devices-sample.txt``.
- ``device-detector``: the ``user_agent`` of every fixture whose client type is ``browser`` in the
  installed package's other ``tests/fixtures/upstream/*.yml`` files (34,505).

Each list's detector knows its own list by construction; the figures that say how well a list
does on traffic it was not written for are in ``bench/classify.py`` (each list against the others').
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent / "public"


def _lines(name: str) -> list[str]:
    text = (HERE / name).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


@cache
def _device_detector_fixtures() -> list[tuple[str, dict[str, object]]]:
    import yaml_rs  # device-detector's own YAML reader (a dependency of it): fast

    fixtures = []
    folder = files("device_detector") / "tests" / "fixtures" / "upstream"
    for path in sorted(folder.iterdir(), key=lambda item: item.name):
        if path.name.endswith(".yml"):
            for entry in yaml_rs.loads(path.read_text(encoding="utf-8")) or []:
                fixtures.append((path.name, entry))
    return fixtures


def crawlerdetect_machines() -> list[str]:
    """crawlerdetect 0.4.2's crawler fixtures."""
    return _lines("crawlerdetect-crawlers.txt")


def crawler_user_agents_machines() -> list[str]:
    """crawler-user-agents' examples of each pattern."""
    data = json.loads((files("crawleruseragents") / "crawler-user-agents.json").read_text(encoding="utf-8"))
    return [instance for entry in data for instance in entry.get("instances", [])]


def device_detector_machines() -> list[str]:
    """Matomo's bot fixtures, as device-detector ships them."""
    return [str(entry["user_agent"]) for name, entry in _device_detector_fixtures() if name == "bots.yml"]


def crawlerdetect_browsers() -> list[str]:
    """The committed sample of crawlerdetect 0.4.2's device (browser) fixtures."""
    return _lines("crawlerdetect-devices-sample.txt")


def device_detector_browsers() -> list[str]:
    """Matomo's fixtures of browsers (client type ``browser``), as device-detector ships them."""
    found = []
    for name, entry in _device_detector_fixtures():
        client = entry.get("client")
        if name != "bots.yml" and isinstance(client, dict) and client.get("type") == "browser":
            found.append(str(entry["user_agent"]))
    return found


# (kind, source) -> loader
SETS: dict[tuple[str, str], Callable[[], list[str]]] = {
    ("machine", "crawlerdetect"): crawlerdetect_machines,
    ("machine", "crawler-user-agents"): crawler_user_agents_machines,
    ("machine", "device-detector"): device_detector_machines,
    ("browser", "crawlerdetect"): crawlerdetect_browsers,
    ("browser", "device-detector"): device_detector_browsers,
}


def every_nth(items: list[str], limit: int) -> list[str]:
    """At most ``limit`` of ``items``, evenly spread (deterministic)."""
    step = max(1, -(-len(items) // limit))
    return items[::step]
