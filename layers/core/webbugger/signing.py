"""Where secrets come from: Secrets Manager in AWS, the local state locally. The signing key ring
signs URLs; the visitor-salt secret salts unique-visitor keys (and never rotates with the keys)."""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from webbugger.errors import ConfigurationError
from webbugger.tokens import KeyRing

if TYPE_CHECKING:
    from webbugger.settings import Settings


def load_key_ring(settings: Settings) -> KeyRing:
    """The current key ring. In AWS it is cached per container for ``secret_cache_seconds``."""
    if settings.signing_secret_arn:
        # Imported here: only a deployed function needs boto3's Secrets Manager client.
        from aws_lambda_powertools.utilities import parameters

        secret: Any = parameters.get_secret(
            settings.signing_secret_arn, max_age=settings.secret_cache_seconds
        )
        if isinstance(secret, bytes):
            secret = secret.decode()
        return KeyRing.from_json(str(secret))
    if settings.local_signing_keys:
        return KeyRing.from_json(settings.local_signing_keys)
    raise ConfigurationError("no signing key: set SIGNING_SECRET_ARN (AWS) or WEBBUGGER_SIGNING_KEYS (local)")


def load_visitor_salt(settings: Settings) -> bytes:
    """The secret that each day's unique-visitor salt derives from (cached like the key ring)."""
    if settings.visitor_salt_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        secret: Any = parameters.get_secret(
            settings.visitor_salt_secret_arn, max_age=settings.secret_cache_seconds
        )
        return secret if isinstance(secret, bytes) else str(secret).encode()
    if settings.local_visitor_salt:
        return settings.local_visitor_salt.encode()
    raise ConfigurationError(
        "no visitor salt: set VISITOR_SALT_SECRET_ARN (AWS) or WEBBUGGER_VISITOR_SALT (local)"
    )


def load_origin_secret(settings: Settings) -> bytes | None:
    """The secret CloudFront sends us (cached like the key ring), or None when there is none."""
    if settings.origin_secret_arn:
        from aws_lambda_powertools.utilities import parameters

        secret: Any = parameters.get_secret(settings.origin_secret_arn, max_age=settings.secret_cache_seconds)
        return secret if isinstance(secret, bytes) else str(secret).encode()
    if settings.local_origin_secret:
        return settings.local_origin_secret.encode()
    return None


def keyed_digest(secret: bytes, purpose: bytes, text: str) -> str:
    """HMAC-SHA256 of ``text`` (hex) under a key derived from ``secret`` for ``purpose``: names
    that a reader without the secret cannot test a guess against (tombstones, analytics rows)."""
    key = hmac.new(secret, purpose, hashlib.sha256).digest()
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
