"""Where the signing key ring comes from: Secrets Manager in AWS, the local state locally."""

from __future__ import annotations

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
