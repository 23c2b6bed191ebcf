"""A small client of a deployed stack's admin API: HTTPS requests signed with SigV4 (IAM auth).

The API is found by the stack's ``AdminApiUrl`` output; requests are signed for the service
``execute-api`` with the credentials of boto3's default session (environment, profile, SSO...).
An error answer (``{"error": {"code", "message"}}``) becomes an :class:`AdminApiError` whose
message is the API's own, one line for the user.
"""

from __future__ import annotations

import http.client
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from webbugger_cli.stack import StackError, describe_stack, stack_outputs

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from botocore.credentials import Credentials

ADMIN_OUTPUT = "AdminApiUrl"
SERVICE = "execute-api"
NEXT_CURSOR_HEADER = "X-Next-Cursor"
TIMEOUT_SECONDS = 30.0
# An error body longer than this is not worth showing in one line.
_MAX_SHOWN = 200
_EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com\Z")


class AdminApiError(Exception):
    """The admin API refused a request or could not be reached; the message is one line."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class Page:
    """One answer: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; :class:`AdminApiError` if it is not."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise AdminApiError(
                f"the admin API answered HTTP {self.status} with a body that is not JSON"
            ) from None

    @property
    def next_cursor(self) -> str | None:
        """Where the next page starts, or None on the last page."""
        return self.headers.get(NEXT_CURSOR_HEADER.lower()) or None


def region_of(url: str) -> str | None:
    """The region in an ``execute-api`` host name, or None."""
    match = _EXECUTE_API_HOST.search(urlsplit(url).hostname or "")
    return match.group(1) if match else None


def _error_message(status: int, body: bytes) -> AdminApiError:
    try:
        error = json.loads(body)["error"]
        message, code = str(error["message"]), error.get("code")
    except (ValueError, KeyError, TypeError):
        text = " ".join(body.decode("utf-8", "replace").split())
        if len(text) > _MAX_SHOWN:
            text = text[: _MAX_SHOWN - 1] + "…"
        if status == http.HTTPStatus.FORBIDDEN and not text:
            text = "forbidden (do your AWS credentials allow execute-api:Invoke on the admin API?)"
        return AdminApiError(f"the admin API answered HTTP {status}: {text or 'no body'}", status=status)
    return AdminApiError(message, status=status, code=None if code is None else str(code))


class AdminClient:
    """SigV4-signed requests to the admin API at ``base_url``."""

    def __init__(
        self, base_url: str, region: str, credentials: Credentials, *, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StackError(f"the admin API URL {base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.region = region
        self.credentials = credentials
        self.timeout = timeout

    def _url(self, path: str, query: Mapping[str, object] | None) -> str:
        params = {key: str(value) for key, value in (query or {}).items() if value is not None}
        encoded = urlencode(sorted(params.items()), quote_via=quote)
        return f"{self.base_url}{path}" + (f"?{encoded}" if encoded else "")

    def _signed(self, method: str, url: str, body: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        # Imported here, as below: botocore takes ~0.2 s to import, and only a deployed stack signs.
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        SigV4Auth(self.credentials, SERVICE, self.region).add_auth(request)
        return dict(request.headers.items())

    def _connection(self, url: str) -> http.client.HTTPConnection:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme == "https":
            return http.client.HTTPSConnection(host, parts.port, timeout=self.timeout)
        return http.client.HTTPConnection(host, parts.port, timeout=self.timeout)

    def _open(
        self, method: str, path: str, query: Mapping[str, object] | None, payload: object
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        url = self._url(path, query)
        body = None if payload is None else json.dumps(payload).encode()
        headers = self._signed(method, url, body)
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = self._connection(url)
        try:
            connection.request(method, target or "/", body=body, headers=headers)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise AdminApiError(f"cannot reach the admin API at {self.base_url}: {reason}") from exc
        if response.status >= 400:
            try:
                raise _error_message(response.status, response.read())
            finally:
                connection.close()
        return connection, response

    def request(
        self,
        method: str,
        path: str,
        query: Mapping[str, object] | None = None,
        payload: object = None,
    ) -> Page:
        """Send one request; the whole answer. :class:`AdminApiError` for an error status."""
        connection, response = self._open(method, path, query, payload)
        try:
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise AdminApiError(f"the admin API's answer was cut off: {exc}") from exc
        finally:
            connection.close()
        return Page(response.status, {k.lower(): v for k, v in response.getheaders()}, body)

    def get_json(self, path: str, query: Mapping[str, object] | None = None) -> Any:
        """GET ``path``; the body as JSON."""
        return self.request("GET", path, query).json()

    def lines(self, path: str, query: Mapping[str, object]) -> Iterator[bytes]:
        """GET ``path`` page after page (``cursor`` from each page's ``X-Next-Cursor`` header),
        yielding each non-empty body line as it arrives."""
        cursor: str | None = None
        while True:
            connection, response = self._open("GET", path, {**query, "cursor": cursor}, None)
            try:
                next_cursor = response.getheader(NEXT_CURSOR_HEADER) or None
                for line in response:  # read as it arrives: bounded memory however large the page
                    if line.strip():
                        yield line
            except (OSError, http.client.HTTPException) as exc:
                raise AdminApiError(f"the admin API's answer was cut off: {exc}") from exc
            finally:
                connection.close()
            if next_cursor is None:
                return
            cursor = next_cursor


def session_credentials(session: Any) -> Credentials:
    """A boto3 session's credentials; NoCredentialsError when there are none."""
    from botocore.exceptions import NoCredentialsError

    credentials: Credentials | None = session.get_credentials()
    if credentials is None:
        raise NoCredentialsError()
    return credentials


def default_credentials(region: str | None = None) -> Credentials:
    """boto3's default session's credentials; NoCredentialsError when there are none."""
    import boto3

    return session_credentials(boto3.session.Session(region_name=region))


@dataclass(frozen=True, slots=True)
class DeployedAdmin:
    """A deployed stack's admin API client, and the base URL of its public routes."""

    client: AdminClient
    api_url: str


def deployed_admin(name: str, region: str | None = None) -> DeployedAdmin:
    """The admin API of the deployed stack ``name``, by its CloudFormation outputs."""
    import boto3

    session = boto3.session.Session(region_name=region)
    outputs = stack_outputs(describe_stack(session, name))
    if ADMIN_OUTPUT not in outputs:
        raise StackError(f"stack {name!r} has no {ADMIN_OUTPUT} output: deploy a version with the admin API")
    credentials = session_credentials(session)
    url = outputs[ADMIN_OUTPUT]
    signing_region = region_of(url) or session.region_name
    client = AdminClient(url, signing_region, credentials)
    return DeployedAdmin(client, outputs.get("ApiUrl", ""))
