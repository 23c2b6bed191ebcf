"""What every check of the doctor may end in: a failure said in one line, and a plain GET."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from webbugger_cli.admin_client import Page

HTTP_TIMEOUT = 15.0
MAX_BODY = 64 * 1024


class CheckFailedError(Exception):
    """A check did not pass; the message says what was seen, in one line."""


def fetch(url: str, headers: dict[str, str] | None = None) -> Page:
    """GET ``url`` without following redirects; :class:`CheckFailedError` if it cannot be reached."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CheckFailedError(f"not an http(s) URL: {url!r}")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname, parts.port, timeout=HTTP_TIMEOUT)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", target, headers=headers or {})
        response = connection.getresponse()
        body = response.read(MAX_BODY)
    except (OSError, http.client.HTTPException) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CheckFailedError(f"cannot reach {parts.scheme}://{parts.netloc}: {reason}") from exc
    finally:
        connection.close()
    return Page(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
