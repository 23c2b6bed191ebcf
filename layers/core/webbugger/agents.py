"""What a user agent says of the software behind it: a machine named by a maintained list, and the
browser, OS and device family of everything else.

Stream function only (never the track function's path): every library here is imported on first
use, and every answer is cached per user agent (stream batches repeat user agents a lot).

The lists, asked in this order (the first that knows the user agent names its class):

1. device-detector (the Python port of Matomo's DeviceDetector): its bot parser alone, with the
   bot's category (a ``Security Checker`` is a security scanner, a ``Social Media Agent`` a link
   preview, anything else a crawler). Its full parse costs ~10 ms a user agent; the bot parser is
   what we need and costs ~0.3 ms.
2. crawler-user-agents (monperrus/crawler-user-agents): its tags (``scanner`` → security scanner,
   ``social-preview`` → link preview, anything else, HTTP libraries included, → crawler).
3. crawlerdetect (the Python port of JayBizzle/Crawler-Detect) → crawler.
4. ua-parser's ``Spider`` device family → crawler.

Why all three lists: each knows about a tenth to a half of what the others list and it does not
(bench/classify.py measures every list against every list's published test data).
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

from webbugger.labels import Device

CACHE_SIZE = 8192

# device-detector bot categories that are not plain crawlers (Matomo's regexes/bots.yml).
_DEVICE_DETECTOR_CLASSES = {
    "Security Checker": "security-scanner",
    "Security search bot": "security-scanner",
    "Social Media Agent": "link-preview",
}
# crawler-user-agents tags that are not plain crawlers, strongest first.
_CRAWLER_USER_AGENTS_CLASSES = (
    ("scanner", "security-scanner"),
    ("social-preview", "link-preview"),
)


def _family(part: Any) -> str | None:
    family = getattr(part, "family", None)
    return None if family in (None, "", "Other") else str(family)


@lru_cache(maxsize=CACHE_SIZE)
def parse_device(user_agent: str | None) -> Device:
    """ua-parser's reading of a user agent (its bundled regexes; cached per user agent)."""
    if not user_agent:
        return Device()
    from ua_parser import parse  # stream function only

    result = parse(user_agent)
    return Device(_family(result.user_agent), _family(result.os), _family(result.device))


@cache
def _crawler_detect() -> Any:
    from crawlerdetect import CrawlerDetect  # type: ignore[import-untyped]  # stream function only

    return CrawlerDetect()


@lru_cache(maxsize=CACHE_SIZE)
def is_crawler(user_agent: str) -> bool:
    """crawlerdetect's verdict (cached per user agent)."""
    return bool(_crawler_detect().isCrawler(user_agent))


def _device_detector(user_agent: str) -> tuple[str, str] | None:
    from device_detector.parser import Bot  # type: ignore[import-untyped]  # stream function only
    from device_detector.utils import clean_ua  # type: ignore[import-untyped]

    bot = Bot(clean_ua(user_agent, user_agent.lower()), None).parse()
    if not bot.is_bot():
        return None
    category = str(bot.ua_data.get("category") or "")
    return _DEVICE_DETECTOR_CLASSES.get(category, "crawler"), "ua:device-detector"


@cache
def _crawler_user_agents() -> tuple[Any, list[tuple[re.Pattern[str], frozenset[str]]]]:
    import crawleruseragents  # type: ignore[import-untyped]  # stream function only

    entries = [
        (re.compile(entry["pattern"]), frozenset(entry.get("tags", ())))
        for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA
    ]
    return crawleruseragents, entries


def _crawler_user_agents_class(user_agent: str) -> tuple[str, str] | None:
    module, entries = _crawler_user_agents()
    if not module.is_crawler(user_agent):  # its own combined patterns: the fast "no"
        return None
    tags = frozenset().union(*(tags for pattern, tags in entries if pattern.search(user_agent)))
    for tag, classification in _CRAWLER_USER_AGENTS_CLASSES:
        if tag in tags:
            return classification, "ua:crawler-user-agents"
    return "crawler", "ua:crawler-user-agents"


@lru_cache(maxsize=CACHE_SIZE)
def listed_machine(user_agent: str) -> tuple[str, str] | None:
    """``(class, reason)`` from the first maintained list that names ``user_agent`` a machine,
    or None (cached per user agent)."""
    found = _device_detector(user_agent) or _crawler_user_agents_class(user_agent)
    if found:
        return found
    if is_crawler(user_agent):
        return "crawler", "ua:crawlerdetect"
    if parse_device(user_agent).device == "Spider":
        return "crawler", "ua:spider"
    return None


def warm_up() -> None:
    """Load every list's rules now (the stream function's init), so that no record waits."""
    listed_machine("Mozilla/5.0 (X11; Linux x86_64) warm-up")
    _crawler_user_agents()
