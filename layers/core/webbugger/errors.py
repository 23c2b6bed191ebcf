"""Domain errors. Handlers map them to HTTP answers in one place."""


class WebbuggerError(Exception):
    """Base class of every error the core raises on purpose."""


class NotFoundError(WebbuggerError):
    """The request names something that does not exist or cannot be used: answer 404, record nothing."""


class InvalidTokenError(NotFoundError):
    """A tracking token that is malformed, truncated, tampered with or signed by an unknown key."""


class UnknownTypeError(NotFoundError):
    """A reference names a type that no plugin registered."""


class UnsafeDestinationError(NotFoundError):
    """A target resolved to a URL we will not redirect to (not absolute http/https, or malformed)."""


class InvalidReferenceError(WebbuggerError, ValueError):
    """Text that is not a valid ``type:id`` reference."""


class UnknownRecordError(WebbuggerError):
    """A reference names a record its type does not have: a URL minted for it would answer 404."""


class TypeClashError(WebbuggerError):
    """Two registrations claim the same type name for the same kind."""


class StoreUnavailableError(WebbuggerError):
    """The database could not be read in time, and nothing cached can stand in."""


class ConfigurationError(WebbuggerError):
    """The deployment's settings are missing or invalid."""


class LinkExistsError(WebbuggerError):
    """A link with the requested id already exists."""


class InvalidRoutingError(WebbuggerError):
    """A link's routing rules or A/B split that do not make sense (the message says why)."""


class NoShortUrlError(WebbuggerError):
    """The link has no short URL (``/l/ID``): it was not turned on for it."""


class InvalidCursorError(WebbuggerError):
    """A page cursor that this service did not give out."""


class InvalidTimeError(WebbuggerError):
    """A time or day that does not parse, or a range that is empty or too long."""


class BatchItemError(WebbuggerError):
    """One item of a batch was refused: the message names its index; ``cause`` is the item's error."""

    def __init__(self, index: int, cause: WebbuggerError) -> None:
        super().__init__(f"items[{index}]: {cause}")
        self.index = index
        self.cause = cause
