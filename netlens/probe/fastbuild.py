"""Build frozen, slotted dataclass instances without the cost of their generated ``__init__``.

A frozen dataclass's ``__init__`` must go around its own ``__setattr__`` (which
raises), so it stores every field through ``object.__setattr__(self, name,
value)``: a name lookup in the type for every field, about 80 ns each here. A
snapshot of 10,000 sockets stores some 150,000 fields, and the change tracker
as many again.

A slot is a *member descriptor* on the class (``SocketInfo.__dict__["state"]``),
and its ``__set__`` is exactly the store ``object.__setattr__`` ends with, minus
the lookup. So a builder here creates the instance with ``object.__new__(cls)``
and calls each slot's ``__set__`` in turn: the object is a ``cls`` from its
first moment, built through the class's own descriptors, and as immutable
afterwards as any other (its ``__setattr__`` still raises). The calls are
unrolled into one generated function per class (as ``dataclasses`` generates
``__init__``), which halves their cost against a loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def fast_builder(cls: type[T]) -> Callable[..., T]:
    """Return a positional constructor for the frozen, slotted dataclass ``cls``.

    The constructor takes every field positionally, in declaration order
    (``init=False`` fields included), with no defaults, no conversion and no
    ``__post_init__``; it is for parsers that already hold validated values.
    Everyone else should call ``cls(...)``.
    """
    names = tuple(field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]
    if getattr(cls, "__slots__", None) != names:
        raise TypeError(f"{cls.__name__} must be a slotted dataclass whose slots are its fields")
    if cls.__new__ is not object.__new__:
        raise TypeError(f"{cls.__name__} has its own __new__; build it with its constructor")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    params = ", ".join(f"v{i}" for i in range(len(names)))
    lines = [f"def build({params}):", "    obj = _new(_cls)"]
    for i, name in enumerate(names):
        namespace[f"_set{i}"] = cls.__dict__[name].__set__  # the slot's own store (a member descriptor)
        lines.append(f"    _set{i}(obj, v{i})  # {name}")
    lines.append("    return obj")
    exec("\n".join(lines), namespace)  # source made from field names only, as dataclasses does
    build: Callable[..., T] = namespace["build"]
    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    build.__doc__ = f"Build a {cls.__name__} from all its fields, positionally (hot path)."
    return build
