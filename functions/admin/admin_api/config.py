"""This function's settings (the admin's DynamoDB timeouts, every model bound) and the tracking
base URL that minted URLs and short URLs start with."""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from webbugger.errors import ConfigurationError
from webbugger.models import Beacon
from webbugger.runtime import bind_tables, default_registry
from webbugger.settings import get_settings

if TYPE_CHECKING:
    from webbugger.settings import Settings

TRACKING_BASE_URL_VARIABLE = "TRACKING_BASE_URL"


def _configured() -> Settings:
    # Keyed on the process's settings, so a reset of those (runtime.reset()) is seen here too.
    return _with_admin_bounds(get_settings())


@cache
def _with_admin_bounds(base: Settings) -> Settings:
    return base._replace(ddb_connect_timeout=2.0, ddb_read_timeout=10.0, ddb_max_retries=3)


def settings() -> Settings:
    """This function's settings, with every model bound to its table (the admin's timeouts).

    Rebinds when the models were bound by someone else (the local stack runs every function in
    one process, and the track function binds the same models with its tighter bounds; tests run
    several local stacks, on other DynamoDB Local endpoints, with the same table names).
    """
    current = _configured()
    meta: Any = Beacon.Meta
    if (
        getattr(meta, "read_timeout_seconds", None) != current.ddb_read_timeout
        or getattr(meta, "table_name", None) != current.beacons_table
        or getattr(meta, "host", None) != current.dynamodb_endpoint
    ):
        bind_tables(default_registry(), current)
    return current


def tracking_base_url() -> str:
    """The tracking API's base URL (template: the HttpApi's URL, or the tracking domain's)."""
    base = os.environ.get(TRACKING_BASE_URL_VARIABLE, "").rstrip("/")
    if not base:
        raise ConfigurationError(f"{TRACKING_BASE_URL_VARIABLE} is not set")
    return base
