"""The doctor's checks of the stack's parts: Outputs, signing key ring, tables, admin API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webbugger_cli.admin_client import ADMIN_OUTPUT, AdminClient, region_of
from webbugger_cli.commands.doctor.fetch import HTTP_TIMEOUT, CheckFailedError
from webbugger_cli.commands.doctor.subjects import NEEDED_OUTPUTS, TABLE_SUFFIX, TRACKING_OUTPUT

if TYPE_CHECKING:
    from webbugger_cli.commands.doctor.run_state import RunState


def check_outputs(run: RunState) -> str:
    """The Outputs the CLI and a mail sender need are there."""
    outputs = run.subject.outputs
    missing = [name for name in NEEDED_OUTPUTS if not outputs.get(name)]
    if missing:
        raise CheckFailedError(f"missing Outputs: {', '.join(missing)}")
    where = (
        f"CloudFront/custom domain in front of the {run.subject.front_door}"
        if run.subject.behind_cloudfront
        else "the API's own URL"
    )
    admin = outputs[ADMIN_OUTPUT]
    return f"{TRACKING_OUTPUT} {run.subject.tracking_base} ({where}); {ADMIN_OUTPUT} {admin}"


def check_secret(run: RunState) -> str:
    """The URL-signing key ring is readable and well formed."""
    run.ring = run.subject.key_ring()
    count = len(run.ring.keys)
    keys = f"{count} key{'s' if count != 1 else ''}"
    return f"signing key ring readable: {keys}, current {run.ring.current!r}"


def check_tables(run: RunState) -> str:
    """Every ``...TableName`` output names a table that is ACTIVE."""
    tables = {key: value for key, value in run.subject.outputs.items() if key.endswith(TABLE_SUFFIX)}
    if not tables:
        raise CheckFailedError("no ...TableName Outputs")
    problems = []
    for output, table in sorted(tables.items()):
        status = run.subject.describe_table(table)
        if status != "ACTIVE":
            problems.append(f"{output} {table} is {status}")
    if problems:
        raise CheckFailedError("; ".join(problems))
    names = sorted(output.removesuffix(TABLE_SUFFIX) for output in tables)
    return f"{len(tables)} tables ACTIVE ({', '.join(names)})"


def check_admin(run: RunState) -> str:
    """The admin API answers (its OpenAPI document and a page of links)."""
    url = run.subject.outputs.get(ADMIN_OUTPUT)
    if not url:
        raise CheckFailedError(f"no {ADMIN_OUTPUT} output")
    region = region_of(url) or run.subject.region
    admin = AdminClient(url, region, run.subject.credentials(), timeout=HTTP_TIMEOUT)
    document = admin.get_json("/openapi.json")
    paths = document.get("paths") if isinstance(document, dict) else None
    if not isinstance(paths, dict) or "/mint/batch" not in paths:
        raise CheckFailedError("GET /openapi.json answered without the admin API's paths")
    admin.get_json("/links", {"limit": 1})
    run.admin = admin
    return f"GET /openapi.json ({len(paths)} paths) and GET /links answered"
