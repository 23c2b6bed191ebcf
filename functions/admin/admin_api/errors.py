"""Errors as answers: ``{"error": {"code": ..., "message": ...}}`` with a status and a stable code
for each domain error of the core (the handlers that use this are in ``app.py``)."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import Response
from webbugger.errors import (
    BatchItemError,
    ConfigurationError,
    InvalidCursorError,
    InvalidReferenceError,
    InvalidRoutingError,
    InvalidTimeError,
    LinkExistsError,
    NoShortUrlError,
    NotFoundError,
    StoreUnavailableError,
    UnknownRecordError,
    UnknownTypeError,
    UnsafeDestinationError,
    WebbuggerError,
)

# Domain errors → (status, stable code); an error answers as the first of its classes listed.
DOMAIN_ERRORS: dict[type[Exception], tuple[int, str]] = {
    LinkExistsError: (409, "link_exists"),
    UnsafeDestinationError: (400, "bad_url"),
    UnknownTypeError: (400, "unknown_type"),
    UnknownRecordError: (400, "unknown_record"),
    InvalidReferenceError: (400, "bad_reference"),
    InvalidCursorError: (400, "bad_cursor"),
    InvalidTimeError: (400, "bad_time"),
    InvalidRoutingError: (400, "bad_routing"),
    NoShortUrlError: (409, "no_short_url"),
    NotFoundError: (404, "not_found"),
    StoreUnavailableError: (503, "unavailable"),
    ConfigurationError: (500, "misconfigured"),
    WebbuggerError: (400, "bad_request"),
}


def status_and_code(exc: WebbuggerError) -> tuple[int, str]:
    """How ``exc`` answers; a batch item's error answers as that error would."""
    cause = exc.cause if isinstance(exc, BatchItemError) else exc
    return next(DOMAIN_ERRORS[kind] for kind in type(cause).__mro__ if kind in DOMAIN_ERRORS)


def error_answer(status: int, code: str, message: str) -> Response[str]:
    """An error answer."""
    body = json.dumps({"error": {"code": code, "message": message}})
    return Response(status_code=status, content_type="application/json", body=body)
