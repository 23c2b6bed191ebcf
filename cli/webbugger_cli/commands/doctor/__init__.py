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

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from webbugger.errors import WebbuggerError
from webbugger.modes import Mode
from webbugger.tokens import TokenClaims

from webbugger_cli.admin_client import AdminApiError
from webbugger_cli.commands.doctor.beacon_checks import check_cleanup, check_headers
from webbugger_cli.commands.doctor.fetch import CheckFailedError
from webbugger_cli.commands.doctor.run_state import RunState
from webbugger_cli.commands.doctor.stack_checks import check_admin, check_outputs, check_secret, check_tables
from webbugger_cli.commands.doctor.subjects import Subject, deployed_subject, local_subject
from webbugger_cli.commands.doctor.tracking_checks import (
    check_origin,
    check_pixel,
    check_redirect,
    check_tampered,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator


PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
# Each check: its name, what it does, and the checks it needs to have passed.
_Step = tuple[str, Callable[[RunState], str], tuple[str, ...]]
_STEPS: list[_Step] = [
    ("outputs", check_outputs, ()),
    ("secret", check_secret, ()),
    ("tables", check_tables, ()),
    ("admin-api", check_admin, ()),
    ("pixel", check_pixel, ("secret",)),
    ("redirect", check_redirect, ("secret", "admin-api")),
    ("tampered", check_tampered, ("secret",)),
    ("headers", check_headers, ("pixel", "admin-api")),
]
# Only with the function-URL front door behind CloudFront; before the cleanup.
_ORIGIN_STEP: _Step = ("origin", check_origin, ("secret",))
_CLEANUP_STEP: _Step = ("cleanup", check_cleanup, ("admin-api",))


@dataclass
class Check:
    """One line of the report."""

    name: str
    status: str
    detail: str


@dataclass
class Doctor:
    """Runs the checks in order; later checks use what earlier ones found (:attr:`state`)."""

    subject: Subject
    checks: list[Check] = field(default_factory=list)
    state: RunState = field(init=False)

    def __post_init__(self) -> None:
        self.state = RunState(self.subject)

    def run(self) -> list[Check]:
        """Every check, in order."""
        steps = list(_STEPS)
        if self.subject.front_door == "function-url" and self.subject.behind_cloudfront:
            steps.append(_ORIGIN_STEP)
        steps.append(_CLEANUP_STEP)
        for name, step, needs in steps:
            failed = [need for need in needs if not self._passed(need)]
            if failed:
                self.checks.append(Check(name, SKIP, f"not run: the {', '.join(failed)} check failed"))
                continue
            self.checks.append(self._attempt(name, step))
        return self.checks

    def _passed(self, name: str) -> bool:
        return any(check.name == name and check.status == PASS for check in self.checks)

    def _attempt(self, name: str, step: Callable[[RunState], str]) -> Check:
        from botocore.exceptions import BotoCoreError, ClientError  # doctor talks to AWS; others may not

        try:
            return Check(name, PASS, step(self.state))
        except (CheckFailedError, AdminApiError) as exc:
            message = str(exc)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            message = f"AWS error {error.get('Code', '?')}: {error.get('Message', exc)}"
        except (BotoCoreError, WebbuggerError, OSError, ValueError) as exc:
            message = f"{type(exc).__name__}: {exc}"
        return Check(name, FAIL, " ".join(message.split()))

    def try_urls(self) -> Iterator[str]:
        """A plain pixel URL and the doctor link's redirect URL, once the checks passed."""
        if self.state.ring is None or self.state.link_url is None:
            return
        yield f"pixel URL:    {self.state.mint(TokenClaims(mode=Mode.PIXEL))}"
        yield f"redirect URL: {self.state.link_url}  -> {self.state.link_destination}"


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
