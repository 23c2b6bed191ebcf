"""The registry of target, entity and source types: the seam plugins register through.

A type name is what django-webbugger's content type was: the ``type`` of a ``type:id``
reference. Names are unique within a kind (target, entity, source).

- A **target** type loads a record by id; the record says where to send the visitor with
  ``get_beacon_url()``, else ``get_absolute_url()``; a record with neither gives 404. It may
  also check an id before a URL is minted for it (``check``), and offer its records as stored
  links (a :class:`LinkStore`: the ``link`` type's, which the admin API and the CLI manage).
- An **entity** type gets or creates a record by id (a new one when no id is given). The record
  has an ``id`` attribute, and may have a ``beacon_update(request)`` hook, called with a
  :class:`webbugger.request.HitRequest` before the visitor gets the response.
- A **source** type loads a record by id; a missing source gives 404 unless the link says to
  ignore errors. It may offer ``create(id, name)`` (``webbugger source create``).
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every annotation
# given as a string (a ForwardRef), 17 compiles for the three types below at the track function's
# cold start. So the names the annotations use are imported (all loaded by then anyway).
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from webbugger.errors import TypeClashError, UnknownTypeError
from webbugger.refs import TYPE_NAME

if TYPE_CHECKING:
    from pynamodb.models import Model


class Kind(StrEnum):
    """The three roles a type can play in a beacon."""

    TARGET = "target"
    ENTITY = "entity"
    SOURCE = "source"


class HookMode(StrEnum):
    """When an entity's ``beacon_update`` runs."""

    # Before the visitor is answered, within the hook budget (django-webbugger's semantics).
    INLINE = "inline"
    # After the beacon is stored, from the table's stream: retried, applied once per beacon.
    DEFERRED = "deferred"
    # No hook: no record is got or created on a hit, by either function (a new entity gets a new
    # id in its beacon); the type reads what it shows from the beacons (the built-in recipient).
    NONE = "none"


Loader = Callable[[str], Any]
GetOrCreate = Callable[[str | None], Any]
# The id a tracking URL may carry, normalised; raises a WebbuggerError saying why an id may not.
IdCheck = Callable[[str], str]
# Stores a new record with this id and (optional) human-readable name.
SourceCreator = Callable[[str, str | None], Any]
# Up to ``limit`` stored records (the store's order) after the one with id ``after`` (None: from
# the start), and the id to resume after (None at the end): for listings.
Pager = Callable[[int, str | None], tuple[list[Any], str | None]]
# A stored link as JSON-ready fields: id, url, created_at, disabled, forward_query, utm,
# valid_from, expires_at (times in ISO 8601), max_hits, hits, fallback_url, tags.
LinkRecord = dict[str, Any]


class LinkStore(Protocol):
    """What a target type of stored links offers, so that the admin API and the CLI can manage
    them (:mod:`webbugger.service.links`) without importing the plugin that defines them."""

    def create(
        self, url: str, link_id: str | None, *, forward_query: bool, utm: Mapping[str, str]
    ) -> LinkRecord:
        """Store a new link to ``url``; a random id unless one is given; :class:`LinkExistsError`
        when the id is taken."""
        ...

    def get(self, link_id: str) -> LinkRecord | None:
        """The link, or None."""
        ...

    def update(self, link_id: str, changes: Mapping[str, object]) -> LinkRecord | None:
        """Change the given fields (``None`` removes an optional one); None when there is no link."""
        ...

    def page(self, limit: int, after: str | None) -> tuple[list[LinkRecord], str | None]:
        """Up to ``limit`` links (the store's order) after the one with id ``after``, and the id
        to resume after (None at the end)."""
        ...


# The registered types are NamedTuples rather than frozen dataclasses: as immutable, and each
# about 0.4 ms cheaper to define, which the track function's cold start pays (bench/cold_start.py).


class TargetType(NamedTuple):
    """How to load a target by id."""

    name: str
    load: Loader
    origin: str
    # Checks an id before a URL is minted for it (the url type: its host must be allowed).
    check: IdCheck | None = None
    # The type's records are stored links, managed through this (the link type).
    store: LinkStore | None = None


class EntityType(NamedTuple):
    """How to get or create an entity by id (``None``: create a new one)."""

    name: str
    get_or_create: GetOrCreate
    origin: str
    hooks: HookMode = HookMode.INLINE
    # Reads an entity without creating it (for listings and `webbugger entity show`).
    load: Loader | None = None
    # Lists stored entities (`webbugger entity list`).
    page: Pager | None = None


class SourceType(NamedTuple):
    """How to load a source by id."""

    name: str
    load: Loader
    origin: str
    # Stores a new source record (``webbugger source create``).
    create: SourceCreator | None = None
    # Lists stored sources (`webbugger source list`).
    page: Pager | None = None


RegisteredType = TargetType | EntityType | SourceType


class Registry:
    """Registered types by kind and name."""

    def __init__(self) -> None:
        self._types: dict[Kind, dict[str, RegisteredType]] = {kind: {} for kind in Kind}
        # PynamoDB models of plugins' own tables, with the variable naming each table.
        self.tables: list[tuple[type[Model], str]] = []

    def _add(self, kind: Kind, registered: RegisteredType) -> None:
        if not TYPE_NAME.match(registered.name):
            raise TypeClashError(f"invalid {kind} type name {registered.name!r}")
        existing = self._types[kind].get(registered.name)
        if existing is not None:
            raise TypeClashError(
                f"{kind} type {registered.name!r} from {registered.origin} clashes with the one from "
                f"{existing.origin}"
            )
        self._types[kind][registered.name] = registered

    def register_target(
        self,
        name: str,
        load: Loader,
        *,
        origin: str = "core",
        check: IdCheck | None = None,
        store: LinkStore | None = None,
    ) -> None:
        """Register a target type: ``load(id)`` returns the record, or None when there is none."""
        self._add(Kind.TARGET, TargetType(name, load, origin, check, store))

    def register_entity(
        self,
        name: str,
        get_or_create: GetOrCreate,
        *,
        origin: str = "core",
        hooks: HookMode = HookMode.INLINE,
        load: Loader | None = None,
        page: Pager | None = None,
    ) -> None:
        """Register an entity type: ``get_or_create(id or None)`` returns the record (with an ``id``)."""
        self._add(Kind.ENTITY, EntityType(name, get_or_create, origin, hooks, load, page))

    def register_source(
        self,
        name: str,
        load: Loader,
        *,
        origin: str = "core",
        create: SourceCreator | None = None,
        page: Pager | None = None,
    ) -> None:
        """Register a source type: ``load(id)`` returns the record, or None when there is none."""
        self._add(Kind.SOURCE, SourceType(name, load, origin, create, page))

    def add_table(self, model: "type[Model]", variable: str) -> None:
        """Record a plugin's PynamoDB model, bound to the table named by ``variable`` at first use."""
        self.tables.append((model, variable))

    def _get(self, kind: Kind, name: str) -> Any:
        try:
            return self._types[kind][name]
        except KeyError:
            raise UnknownTypeError(f"no {kind} type named {name!r} is registered") from None

    def get(self, kind: Kind, name: str) -> RegisteredType:
        """The ``kind`` type called ``name``; :class:`UnknownTypeError` if none."""
        found: RegisteredType = self._get(kind, name)
        return found

    def target(self, name: str) -> TargetType:
        """The target type called ``name``; :class:`UnknownTypeError` if none."""
        found: TargetType = self._get(Kind.TARGET, name)
        return found

    def entity(self, name: str) -> EntityType:
        """The entity type called ``name``; :class:`UnknownTypeError` if none."""
        found: EntityType = self._get(Kind.ENTITY, name)
        return found

    def source(self, name: str) -> SourceType:
        """The source type called ``name``; :class:`UnknownTypeError` if none."""
        found: SourceType = self._get(Kind.SOURCE, name)
        return found

    def has(self, kind: Kind, name: str) -> bool:
        """Whether ``name`` is registered for ``kind``."""
        return name in self._types[kind]

    def kinds_of(self, name: str) -> list[Kind]:
        """The kinds ``name`` is registered for (none, one, or several)."""
        return [kind for kind in Kind if name in self._types[kind]]

    def listing(self) -> list[tuple[Kind, RegisteredType]]:
        """Every registered type, by kind then name."""
        return [(kind, self._types[kind][name]) for kind in Kind for name in sorted(self._types[kind])]


def resolve_target_url(record: Any) -> str | None:
    """django-webbugger's order: ``get_beacon_url()``, else ``get_absolute_url()``, else None."""
    for method_name in ("get_beacon_url", "get_absolute_url"):
        method = getattr(record, method_name, None)
        if callable(method):
            url = method()
            return url if isinstance(url, str) else None
    return None
