"""Build frozen, slotted dataclass instances without the cost of their generated ``__init__``.

A frozen dataclass's ``__init__`` must go around its own ``__setattr__`` (which
raises), so it stores every field through ``object.__setattr__``: about 140 ns
a field on CPython 3.11, against about 10 ns for a plain slotted class. A
snapshot of 10,000 sockets builds some 900,000 fields, which would cost more
than the whole 150 ms budget of a snapshot. So the hot path builds each object
with a mutable twin class that has the *same slots in the same order*, then
re-labels it with ``__class__`` assignment, which CPython allows between
classes of identical layout. The result is an ordinary instance of the frozen
class: equal to, hashed like and as immutable as one built by its constructor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def fast_builder(cls: type[T]) -> Callable[..., T]:
    """Return a positional constructor for the frozen, slotted dataclass ``cls``.

    The constructor takes every field positionally, in declaration order, with
    no defaults and no ``__post_init__``; it is for parsers that already hold
    validated values. Everyone else should call ``cls(...)``.
    """
    params = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = tuple(field.name for field in params)
    if getattr(cls, "__slots__", None) != names:
        raise TypeError(f"{cls.__name__} must be a slotted dataclass whose slots are its fields")
    twin = dataclasses.make_dataclass(f"_{cls.__name__}Builder", names, slots=True, eq=False, repr=False)

    def build(*values: Any) -> T:
        obj = twin(*values)
        obj.__class__ = cls  # same slot layout: CPython permits the re-label
        return obj  # type: ignore[no-any-return]

    build.__doc__ = f"Build a {cls.__name__} from all its fields, positionally (hot path)."
    return build
