"""``webbugger [--stack NAME] doctor``: check that a stack works, one line per check.

The checks use only what a deployed stack publishes (its Outputs) and what its users touch:

- ``outputs``: the Outputs the CLI and a mail sender need are there;
- ``secret``: the URL-signing key ring is readable and well formed;
- ``tables``: every ``...TableName`` output names a table that is ACTIVE;
- ``admin-api``: the admin API answers (its OpenAPI document; SigV4-signed for a deployed stack);
- ``pixel``: a pixel minted with the stack's key, fetched through ``TrackingUrl``: 200 and the 43-byte GIF;
- ``redirect``: a redirect to the doctor's link (``webbugger-doctor``, created once through the admin
  API): 302 to the link's destination;
- ``tampered``: the pixel's token with one character changed: 404;
- ``headers``: the pixel's beacon, read back through the admin API, recorded the user agent and
  language the doctor sent, and, behind CloudFront, the viewer's country (CloudFront adds it only
  when its origin request policy forwards it);
- ``origin``, only with the function-URL front door behind CloudFront (``FrontDoor`` output
  ``function-url``): a pixel sent straight to the function URL (``ApiUrl``), unsigned, is refused
  with 403, so nothing reaches the function around CloudFront;
- ``cleanup``: the beacons this run recorded are erased through the admin API (``/erase`` of the
  run's entity), so that no doctor's hit stays in listings, exports and reports.

The pixel carries a unique source, ``campaign:webbugger-doctor-<random>`` with ``ignore_errors`` (no
campaign is created), so its beacon can be found again and told apart from real traffic; the pixel
and the redirect carry the run's own entity, ``ip:webbugger-doctor-<random>``, so that erasing it
removes both beacons (and the entity's record). Counters of the doctor's link and source keep their
sums (erasing never changes aggregates). After the checks, a pixel URL and a redirect URL of the
stack are printed: the first-run step after a deploy. Exit status: 0 when every check passes, 1
otherwise.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from webbugger.errors import WebbuggerError
from webbugger.gif import TRANSPARENT_GIF
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.tokens import KeyRing, TokenClaims

from webbugger_cli.admin_client import (
    ADMIN_OUTPUT,
    AdminApiError,
    AdminClient,
    Page,
    region_of,
    session_credentials,
)
from webbugger_cli.stack import StackError, describe_stack, stack_outputs

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator

    from botocore.credentials import Credentials

API_OUTPUT = "ApiUrl"
TRACKING_OUTPUT = "TrackingUrl"
FRONT_DOOR_OUTPUT = "FrontDoor"
SECRET_OUTPUT = "SigningSecretArn"  # noqa: S105 - an output name, not a secret
# What the doctor needs of a stack (tables besides these are checked when present).
NEEDED_OUTPUTS = (
    API_OUTPUT,
    TRACKING_OUTPUT,
    ADMIN_OUTPUT,
    "BeaconsTableName",
    "LinksTableName",
    SECRET_OUTPUT,
)
TABLE_SUFFIX = "TableName"
DOCTOR_LINK_ID = "webbugger-doctor"
DOCTOR_LINK_URL = "https://example.com/"
DOCTOR_SOURCE_TYPE = "campaign"
# The built-in entity type that keeps a record per id (erased with the beacons).
DOCTOR_ENTITY_TYPE = "ip"
DOCTOR_USER_AGENT = "webbugger-doctor/1 ({run})"
DOCTOR_LANGUAGE = "en-GB, da;q=0.5"
HTTP_TIMEOUT = 15.0
# The beacon is written before the GIF is sent, but it is found through an index (eventually consistent).
READBACK_SECONDS = 15.0
READBACK_INTERVAL = 0.5
MAX_BODY = 64 * 1024

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


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


@dataclass
class Subject:
    """The stack under examination, by what it publishes: Outputs, and the means to read it."""

    name: str
    outputs: dict[str, str]
    key_ring: Callable[[], KeyRing]
    describe_table: Callable[[str], str]
    credentials: Callable[[], Credentials]
    region: str

    @property
    def tracking_base(self) -> str:
        """Where visitors go: ``TrackingUrl`` (CloudFront or a custom domain), else the API's URL."""
        return self.outputs.get(TRACKING_OUTPUT) or self.outputs.get(API_OUTPUT, "")

    @property
    def behind_cloudfront(self) -> bool:
        """True when visitors reach the stack by another URL than the API's own (CloudFront)."""
        tracking = self.outputs.get(TRACKING_OUTPUT, "").rstrip("/")
        return bool(tracking) and tracking != self.outputs.get(API_OUTPUT, "").rstrip("/")

    @property
    def front_door(self) -> str:
        """What CloudFront forwards to: ``http-api`` (also when no output says) or ``function-url``."""
        return self.outputs.get(FRONT_DOOR_OUTPUT) or "http-api"


@dataclass
class Check:
    """One line of the report."""

    name: str
    status: str
    detail: str


@dataclass
class Doctor:
    """Runs the checks in order; later checks use what earlier ones found."""

    subject: Subject
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    checks: list[Check] = field(default_factory=list)
    ring: KeyRing | None = None
    admin: AdminClient | None = None
    link_url: str | None = None
    link_destination: str | None = None
    pixel_url: str | None = None
    pixel_sent_at: datetime | None = None

    @property
    def source(self) -> Ref:
        """The unique source of this run's pixel."""
        return Ref(DOCTOR_SOURCE_TYPE, f"webbugger-doctor-{self.run_id}")

    @property
    def entity(self) -> Ref:
        """The entity of this run's hits: erasing it removes the beacons the run recorded."""
        return Ref(DOCTOR_ENTITY_TYPE, f"webbugger-doctor-{self.run_id}")

    @property
    def user_agent(self) -> str:
        """The user agent this run's pixel is fetched with."""
        return DOCTOR_USER_AGENT.format(run=self.run_id)

    def run(self) -> list[Check]:
        """Every check, in order."""
        steps: list[tuple[str, Callable[[], str], tuple[str, ...]]] = [
            ("outputs", self.check_outputs, ()),
            ("secret", self.check_secret, ()),
            ("tables", self.check_tables, ()),
            ("admin-api", self.check_admin, ()),
            ("pixel", self.check_pixel, ("secret",)),
            ("redirect", self.check_redirect, ("secret", "admin-api")),
            ("tampered", self.check_tampered, ("secret",)),
            ("headers", self.check_headers, ("pixel", "admin-api")),
        ]
        if self.subject.front_door == "function-url" and self.subject.behind_cloudfront:
            steps.append(("origin", self.check_origin, ("secret",)))
        steps.append(("cleanup", self.check_cleanup, ("admin-api",)))
        for name, step, needs in steps:
            failed = [need for need in needs if not self._passed(need)]
            if failed:
                self.checks.append(Check(name, SKIP, f"not run: the {', '.join(failed)} check failed"))
                continue
            self.checks.append(self._attempt(name, step))
        return self.checks

    def _passed(self, name: str) -> bool:
        return any(check.name == name and check.status == PASS for check in self.checks)

    @staticmethod
    def _attempt(name: str, step: Callable[[], str]) -> Check:
        from botocore.exceptions import BotoCoreError, ClientError  # doctor talks to AWS; others may not

        try:
            return Check(name, PASS, step())
        except (CheckFailedError, AdminApiError) as exc:
            message = str(exc)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            message = f"AWS error {error.get('Code', '?')}: {error.get('Message', exc)}"
        except (BotoCoreError, WebbuggerError, OSError, ValueError) as exc:
            message = f"{type(exc).__name__}: {exc}"
        return Check(name, FAIL, " ".join(message.split()))

    # --- the checks -------------------------------------------------------------------------

    def check_outputs(self) -> str:
        outputs = self.subject.outputs
        missing = [name for name in NEEDED_OUTPUTS if not outputs.get(name)]
        if missing:
            raise CheckFailedError(f"missing Outputs: {', '.join(missing)}")
        where = (
            f"CloudFront/custom domain in front of the {self.subject.front_door}"
            if self.subject.behind_cloudfront
            else "the API's own URL"
        )
        admin = outputs[ADMIN_OUTPUT]
        return f"{TRACKING_OUTPUT} {self.subject.tracking_base} ({where}); {ADMIN_OUTPUT} {admin}"

    def check_secret(self) -> str:
        self.ring = self.subject.key_ring()
        count = len(self.ring.keys)
        keys = f"{count} key{'s' if count != 1 else ''}"
        return f"signing key ring readable: {keys}, current {self.ring.current!r}"

    def check_tables(self) -> str:
        tables = {key: value for key, value in self.subject.outputs.items() if key.endswith(TABLE_SUFFIX)}
        if not tables:
            raise CheckFailedError("no ...TableName Outputs")
        problems = []
        for output, table in sorted(tables.items()):
            status = self.subject.describe_table(table)
            if status != "ACTIVE":
                problems.append(f"{output} {table} is {status}")
        if problems:
            raise CheckFailedError("; ".join(problems))
        names = sorted(output.removesuffix(TABLE_SUFFIX) for output in tables)
        return f"{len(tables)} tables ACTIVE ({', '.join(names)})"

    def check_admin(self) -> str:
        url = self.subject.outputs.get(ADMIN_OUTPUT)
        if not url:
            raise CheckFailedError(f"no {ADMIN_OUTPUT} output")
        region = region_of(url) or self.subject.region
        admin = AdminClient(url, region, self.subject.credentials(), timeout=HTTP_TIMEOUT)
        document = admin.get_json("/openapi.json")
        paths = document.get("paths") if isinstance(document, dict) else None
        if not isinstance(paths, dict) or "/mint/batch" not in paths:
            raise CheckFailedError("GET /openapi.json answered without the admin API's paths")
        admin.get_json("/links", {"limit": 1})
        self.admin = admin
        return f"GET /openapi.json ({len(paths)} paths) and GET /links answered"

    def _mint(self, claims: TokenClaims) -> str:
        assert self.ring is not None  # the secret check passed
        return tracking_url(self.subject.tracking_base, claims, self.ring)

    def check_pixel(self) -> str:
        claims = TokenClaims(mode=Mode.PIXEL, entity=self.entity, source=self.source, ignore_errors=True)
        self.pixel_url = self._mint(claims)
        self.pixel_sent_at = datetime.now(UTC)
        headers = {"User-Agent": self.user_agent, "Accept-Language": DOCTOR_LANGUAGE}
        answer = fetch(self.pixel_url, headers)
        kind = answer.headers.get("content-type", "")
        if answer.status != http.HTTPStatus.OK or answer.body != TRANSPARENT_GIF:
            shown = f"{answer.status} {kind or 'no content type'}, {len(answer.body)} bytes"
            raise CheckFailedError(f"expected 200 and the 43-byte GIF, got {shown}")
        if not kind.startswith("image/gif"):
            raise CheckFailedError(f"the GIF came as {kind or 'no content type'}, not image/gif")
        caching = answer.headers.get("cache-control", "")
        if "no-store" not in caching:
            raise CheckFailedError(f"Cache-Control is {caching!r}: opens would be cached, not counted")
        return f"200 image/gif, {len(answer.body)} bytes, Cache-Control no-store"

    def _ensure_link(self) -> str:
        """The doctor's link's destination (the link is created on the first run)."""
        assert self.admin is not None
        path = f"/links/{quote(DOCTOR_LINK_ID, safe='')}"
        try:
            link = self.admin.get_json(path)
        except AdminApiError as exc:
            if exc.status != http.HTTPStatus.NOT_FOUND:
                raise
            payload = {"url": DOCTOR_LINK_URL, "id": DOCTOR_LINK_ID, "tags": ["webbugger-doctor"]}
            link = self.admin.request("POST", "/links", payload=payload).json()
        if not isinstance(link, dict) or not isinstance(link.get("url"), str):
            raise CheckFailedError(f"the admin API's answer for link {DOCTOR_LINK_ID!r} is malformed")
        if link.get("disabled"):
            raise CheckFailedError(f"link {DOCTOR_LINK_ID!r} is disabled: enable it or delete it")
        return str(link["url"])

    def check_redirect(self) -> str:
        expected = self._ensure_link()
        target = Ref("link", DOCTOR_LINK_ID)
        url = self._mint(TokenClaims(mode=Mode.REDIRECT, target=target, entity=self.entity))
        answer = fetch(url, {"User-Agent": self.user_agent})
        location = answer.headers.get("location")
        if answer.status != http.HTTPStatus.FOUND or location != expected:
            raise CheckFailedError(
                f"expected 302 to {expected}, got {answer.status} to {location or 'nowhere'}"
            )
        # The URL to try afterwards has no entity: its hits are the user's, not the doctor's.
        self.link_url = self._mint(TokenClaims(mode=Mode.REDIRECT, target=target))
        self.link_destination = expected
        return f"302 to {expected} (link {DOCTOR_LINK_ID})"

    def check_tampered(self) -> str:
        claims = TokenClaims(mode=Mode.PIXEL, source=self.source, ignore_errors=True)
        url = self._mint(claims)
        # Change the first character of the sealed token (its SIV, all six bits count): it no longer opens.
        head, _, tag = url.removesuffix(".gif").rpartition(".")
        changed = f"{head}.{'A' if tag[0] != 'A' else 'Q'}{tag[1:]}.gif"
        answer = fetch(changed, {"User-Agent": self.user_agent})
        if answer.status != http.HTTPStatus.NOT_FOUND:
            raise CheckFailedError(f"a tampered token answered {answer.status}, not 404")
        return "404 for a token with one character changed"

    def check_origin(self) -> str:
        assert self.ring is not None  # the secret check passed
        claims = TokenClaims(mode=Mode.PIXEL, source=self.source, ignore_errors=True)
        url = tracking_url(self.subject.outputs[API_OUTPUT], claims, self.ring)
        answer = fetch(url, {"User-Agent": self.user_agent})
        if answer.status != http.HTTPStatus.FORBIDDEN:
            raise CheckFailedError(
                f"the function URL answered a request CloudFront did not sign with {answer.status}, not 403"
            )
        return "403 for a pixel sent to the function URL around CloudFront (only signed requests pass)"

    def _read_back(self) -> dict[str, Any] | None:
        assert self.admin is not None and self.pixel_sent_at is not None
        since = (self.pixel_sent_at - timedelta(minutes=5)).isoformat()
        deadline = time.monotonic() + READBACK_SECONDS
        while True:
            page = self.admin.get_json("/beacons", {"source": str(self.source), "from": since, "limit": 10})
            beacons = page.get("beacons") if isinstance(page, dict) else None
            if isinstance(beacons, list) and beacons and isinstance(beacons[0], dict):
                found: dict[str, Any] = beacons[0]
                return found
            if time.monotonic() >= deadline:
                return None
            time.sleep(READBACK_INTERVAL)

    def check_headers(self) -> str:
        beacon = self._read_back()
        if beacon is None:
            raise CheckFailedError(
                f"no beacon of source {self.source} within {READBACK_SECONDS:.0f} s of the pixel's 200"
            )
        wrong = []
        if beacon.get("user_agent") != self.user_agent:
            wrong.append(f"user agent {beacon.get('user_agent')!r} (sent {self.user_agent!r})")
        if beacon.get("language") != DOCTOR_LANGUAGE:
            wrong.append(f"language {beacon.get('language')!r} (sent {DOCTOR_LANGUAGE!r})")
        country = beacon.get("country")
        if self.subject.behind_cloudfront and not country:
            wrong.append("no country (CloudFront-Viewer-Country not forwarded)")
        if wrong:
            raise CheckFailedError("the beacon recorded " + "; ".join(wrong))
        if self.subject.behind_cloudfront:
            return f"beacon recorded user agent, language and country {country}"
        return "beacon recorded user agent and language (country: no CloudFront in front of this stack)"

    def check_cleanup(self) -> str:
        assert self.admin is not None  # the admin-api check passed
        if self.pixel_sent_at is None and self.link_url is None:
            return "nothing to remove: no hit was sent"
        # This run's beacons are all younger than the run (5 minutes of clock skew allowed): only
        # those minutes are read for the ones the stream has not listed yet.
        since = (self.started_at - timedelta(minutes=5)).isoformat()
        payload = {"entity": str(self.entity), "since": since}
        erased = self.admin.request("POST", "/erase", payload=payload).json()
        if not isinstance(erased, dict) or not isinstance(erased.get("beacons"), int):
            raise CheckFailedError("the admin API's answer to /erase is malformed")
        count = erased["beacons"]
        return f"removed this run's {count} beacon{'s' if count != 1 else ''} (entity {self.entity})"

    # --- the first-run step -----------------------------------------------------------------

    def try_urls(self) -> Iterator[str]:
        """A plain pixel URL and the doctor link's redirect URL, once the checks passed."""
        if self.ring is None or self.link_url is None:
            return
        yield f"pixel URL:    {self._mint(TokenClaims(mode=Mode.PIXEL))}"
        yield f"redirect URL: {self.link_url}  -> {self.link_destination}"


# --- the stacks -------------------------------------------------------------------------------


def local_subject() -> Subject:
    """The running local stack; :class:`StackError` if none runs."""
    from botocore.credentials import Credentials

    from webbugger_cli.local import state
    from webbugger_cli.local.tables import local_client

    running = state.read_running()
    if running is None:
        raise StackError("no local stack is running: start it with `make run`")
    client = local_client(running)
    directory = Path(running.state_dir) if running.state_dir else state.state_dir()

    def key_ring() -> KeyRing:
        return KeyRing.from_json(state.load_or_create_signing_keys(directory))

    def describe_table(table: str) -> str:
        return str(client.describe_table(TableName=table)["Table"]["TableStatus"])

    return Subject(
        name=state.STACK_NAME,
        outputs=dict(running.outputs),
        key_ring=key_ring,
        describe_table=describe_table,
        # The local admin API does not check signatures; it is signed all the same (one code path).
        credentials=lambda: Credentials("local", "local"),
        region=state.LOCAL_REGION,
    )


def deployed_subject(name: str, region: str | None = None) -> Subject:
    """The deployed stack ``name``, by its CloudFormation Outputs; :class:`StackError` if there is none."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    outputs = stack_outputs(describe_stack(session, name))
    config = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 3, "mode": "standard"})
    dynamodb = session.client("dynamodb", config=config)
    secrets = session.client("secretsmanager", config=config)

    def key_ring() -> KeyRing:
        arn = outputs.get(SECRET_OUTPUT)
        if not arn:
            raise CheckFailedError(f"no {SECRET_OUTPUT} output")
        return KeyRing.from_json(secrets.get_secret_value(SecretId=arn)["SecretString"])

    def describe_table(table: str) -> str:
        return str(dynamodb.describe_table(TableName=table)["Table"]["TableStatus"])

    def credentials() -> Credentials:
        return session_credentials(session)

    return Subject(name, outputs, key_ring, describe_table, credentials, session.region_name or "")


# --- the command ------------------------------------------------------------------------------


def report_lines(checks: list[Check]) -> Iterator[str]:
    """One line per check: status, name, what was seen."""
    width = max(len(check.name) for check in checks)
    for check in checks:
        yield f"{check.status}  {check.name.ljust(width)}  {check.detail}"


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the stack; print one line per check, then URLs to try; 1 if any check failed."""
    subject = local_subject() if args.stack is None else deployed_subject(args.stack, args.region)
    doctor = Doctor(subject)
    checks = doctor.run()
    if args.json:
        print(json.dumps({"stack": subject.name, "checks": [vars(check) for check in checks]}))
    else:
        print(f"webbugger doctor: stack {subject.name} ({subject.tracking_base or 'no tracking URL'})")
        for line in report_lines(checks):
            print(line)
    failed = [check for check in checks if check.status != PASS]
    if failed:
        if not args.json:
            print(f"{len(failed)} of {len(checks)} checks did not pass")
        return 1
    if not args.json:
        print(f"all {len(checks)} checks passed; try:")
        for line in doctor.try_urls():
            print(f"  {line}")
    return 0


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``doctor`` to the command line."""
    doctor = commands.add_parser(
        "doctor",
        parents=[common],
        help="check a stack: routes, secret, tables, admin API, forwarded headers",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    doctor.add_argument("--json", action="store_true", help="the checks as one JSON object")
    doctor.set_defaults(handler=cmd_doctor)
