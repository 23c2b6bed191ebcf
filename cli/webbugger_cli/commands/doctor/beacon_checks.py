"""The doctor's checks through the admin API after the hits: the pixel's beacon recorded what was
sent, and this run's beacons are erased."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from webbugger_cli.commands.doctor.fetch import CheckFailedError
from webbugger_cli.commands.doctor.tracking_checks import DOCTOR_LANGUAGE

if TYPE_CHECKING:
    from webbugger_cli.commands.doctor.run_state import RunState

# The beacon is written before the GIF is sent, but it is found through an index (eventually consistent).
READBACK_SECONDS = 15.0
READBACK_INTERVAL = 0.5


def _read_back(run: RunState) -> dict[str, Any] | None:
    """The run's pixel beacon, read through the admin API (None if not found in time)."""
    assert run.admin is not None and run.pixel_sent_at is not None
    since = (run.pixel_sent_at - timedelta(minutes=5)).isoformat()
    deadline = time.monotonic() + READBACK_SECONDS
    while True:
        page = run.admin.get_json("/beacons", {"source": str(run.source), "from": since, "limit": 10})
        beacons = page.get("beacons") if isinstance(page, dict) else None
        if isinstance(beacons, list) and beacons and isinstance(beacons[0], dict):
            found: dict[str, Any] = beacons[0]
            return found
        if time.monotonic() >= deadline:
            return None
        time.sleep(READBACK_INTERVAL)


def check_headers(run: RunState) -> str:
    """The pixel's beacon recorded the user agent, language and (behind CloudFront) country."""
    beacon = _read_back(run)
    if beacon is None:
        raise CheckFailedError(
            f"no beacon of source {run.source} within {READBACK_SECONDS:.0f} s of the pixel's 200"
        )
    wrong = []
    if beacon.get("user_agent") != run.user_agent:
        wrong.append(f"user agent {beacon.get('user_agent')!r} (sent {run.user_agent!r})")
    if beacon.get("language") != DOCTOR_LANGUAGE:
        wrong.append(f"language {beacon.get('language')!r} (sent {DOCTOR_LANGUAGE!r})")
    country = beacon.get("country")
    if run.subject.behind_cloudfront and not country:
        wrong.append("no country (CloudFront-Viewer-Country not forwarded)")
    if wrong:
        raise CheckFailedError("the beacon recorded " + "; ".join(wrong))
    if run.subject.behind_cloudfront:
        return f"beacon recorded user agent, language and country {country}"
    return "beacon recorded user agent and language (country: no CloudFront in front of this stack)"


def check_cleanup(run: RunState) -> str:
    """The beacons this run recorded are erased through the admin API."""
    assert run.admin is not None  # the admin-api check passed
    if run.pixel_sent_at is None and run.link_url is None:
        return "nothing to remove: no hit was sent"
    # This run's beacons are all younger than the run (5 minutes of clock skew allowed): only
    # those minutes are read for the ones the stream has not listed yet.
    since = (run.started_at - timedelta(minutes=5)).isoformat()
    payload = {"entity": str(run.entity), "since": since}
    erased = run.admin.request("POST", "/erase", payload=payload).json()
    if not isinstance(erased, dict) or not isinstance(erased.get("beacons"), int):
        raise CheckFailedError("the admin API's answer to /erase is malformed")
    count = erased["beacons"]
    return f"removed this run's {count} beacon{'s' if count != 1 else ''} (entity {run.entity})"
