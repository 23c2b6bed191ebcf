"""Small immutable value classes, for those the track function defines at its cold start.

A frozen dataclass generates and compiles its methods (``__init__``, ``__eq__``, ``__hash__``,
``__repr__``, ``__setattr__``...) when its class is defined: 0.5-0.65 ms for each of
:class:`webbugger.refs.Ref` and :class:`webbugger.tokens.TokenClaims`, about 1 % of the track
function's import (bench/cold_start.py). :class:`Frozen` writes those methods once, here; a
subclass lists its fields in ``__slots__`` and sets them in its own ``__init__`` with
:meth:`Frozen._freeze`. Instances behave as a frozen dataclass's: compared and hashed by their
fields, never changed after ``__init__``, copied with changes by :meth:`Frozen.replace`.
"""

from __future__ import annotations

from typing import Any, Self


class Frozen:
    """Base of an immutable value class whose fields are its ``__slots__``, in order."""

    __slots__ = ()

    def _freeze(self, **values: Any) -> None:
        """Set the fields once, from ``__init__``."""
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _fields(self) -> dict[str, Any]:
        names: tuple[str, ...] = self.__slots__  # the subclass's: its fields
        return {name: getattr(self, name) for name in names}

    def _values(self) -> tuple[Any, ...]:
        # Straight from the slots: __eq__ and __hash__ run on every hit (no dict on the way).
        names: tuple[str, ...] = self.__slots__
        return tuple(getattr(self, name) for name in names)

    def replace(self, **changes: Any) -> Self:
        """A copy with the given fields changed (validated again, as a new instance is)."""
        return type(self)(**{**self._fields(), **changes})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._fields().items())
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        # copy and pickle: rebuilt through __init__ (object's default would set the slots, refused).
        return (type(self), self._values())
