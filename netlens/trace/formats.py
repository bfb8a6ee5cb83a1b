"""Tracepoint record layouts, read from the kernel's own ``format`` files.

Every tracepoint describes its binary record in ``events/<system>/<name>/format``:
one line per field with its C type, offset, size and signedness, and a
``print fmt`` whose ``__print_symbolic`` tables name enum values (TCP states,
reset and drop reasons). Offsets and enum numbers change between kernel
versions (``tcp_send_reset`` gained ``reason`` and switched to ``sockaddr``
fields in 6.10, ``skb_drop_reason`` grows every release), so nothing here is
hard-coded: a :class:`FieldReader` is built from the parsed layout and unpacks
the fields it was asked for with one ``struct`` call.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_FIELD = re.compile(
    r"field:(?P<decl>[^;]+);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);\s*signed:(?P<signed>-?\d+);"
)
_ARRAY = re.compile(r"^(?P<type>.*?)\s*(?P<name>\w+)\s*\[(?P<length>\d*)\]$")
_PLAIN = re.compile(r"^(?P<type>.*?)\s*\b(?P<name>\w+)$")
_SYMBOL = re.compile(r'\{\s*(-?(?:0x[0-9a-fA-F]+|\d+))\s*,\s*"([^"]*)"\s*\}')
_INT_CODES = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
              (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q"}


class FormatError(ValueError):
    """A ``format`` file lacks something netlens needs (an unknown kernel layout)."""


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a tracepoint record."""

    name: str
    ctype: str
    offset: int
    size: int
    signed: bool
    array: int | None = None  # element count of a fixed array (``__u8 saddr[4]`` -> 4)

    @property
    def code(self) -> str:
        """The ``struct`` code that reads this field: an integer, or raw bytes for arrays and odd sizes."""
        if self.array is None and "__data_loc" not in self.ctype:
            int_code = _INT_CODES.get((self.size, self.signed))
            if int_code is not None:
                return int_code
        return f"{self.size}s"


@dataclass(frozen=True, slots=True)
class EventFormat:
    """The parsed ``format`` file of one tracepoint."""

    system: str
    name: str
    id: int
    fields: tuple[Field, ...]
    print_fmt: str = ""
    _by_name: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update((f.name, f) for f in self.fields)

    @property
    def full_name(self) -> str:
        """``system:name``, as ``set_event`` and perf spell it."""
        return f"{self.system}:{self.name}"

    def field(self, name: str) -> Field | None:
        """The field called ``name``, or None when this kernel's tracepoint lacks it."""
        return self._by_name.get(name)

    def has(self, *names: str) -> bool:
        """Whether every one of ``names`` is a field of this tracepoint."""
        return all(name in self._by_name for name in names)

    def symbols(self, field_name: str) -> dict[int, str]:
        """The ``__print_symbolic`` table of ``field_name`` in the print format (value -> name).

        Entries whose value is a C identifier rather than a number (some
        tracepoints print ``{ TCP_ESTABLISHED, "TCP_ESTABLISHED" }``) are
        skipped: their numbers are not in the file.
        """
        marker = f"__print_symbolic(REC->{field_name},"
        start = self.print_fmt.find(marker)
        if start < 0:
            return {}
        depth, end = 0, len(self.print_fmt)
        for index in range(start + len("__print_symbolic"), len(self.print_fmt)):
            char = self.print_fmt[index]
            depth += (char == "(") - (char == ")")
            if depth == 0:
                end = index
                break
        table = self.print_fmt[start:end]
        return {int(value, 0): name for value, name in _SYMBOL.findall(table)}


def parse_format(text: str, system: str) -> EventFormat:
    """Parse the text of a ``format`` file (raises :class:`FormatError` when it is not one)."""
    name = re.search(r"^name:\s*(\S+)", text, re.MULTILINE)
    ident = re.search(r"^ID:\s*(\d+)", text, re.MULTILINE)
    if name is None or ident is None:
        raise FormatError(f"not a tracepoint format (no name or ID) in {system}")
    fields = []
    for line in text.splitlines():
        if "field:" not in line:
            continue
        match = _FIELD.search(line)
        if match is None:
            raise FormatError(f"cannot read the field line {line.strip()!r} of {system}:{name[1]}")
        decl = " ".join(match["decl"].split())
        array = _ARRAY.match(decl)
        if array is not None:
            ctype, fname = array["type"], array["name"]
            length: int | None = int(array["length"]) if array["length"] else 0
        else:
            plain = _PLAIN.match(decl)
            if plain is None:
                raise FormatError(f"cannot read the field declaration {decl!r} of {system}:{name[1]}")
            ctype, fname, length = plain["type"], plain["name"], None
        fields.append(Field(fname, ctype, int(match["offset"]), int(match["size"]), match["signed"] == "1", length))
    fmt = re.search(r"^print fmt:\s*(.*)$", text, re.MULTILINE)
    return EventFormat(system, name[1], int(ident[1]), tuple(fields), fmt[1] if fmt else "")


def read_format(events_dir: Path, system: str, name: str) -> EventFormat:
    """Read and parse ``events_dir/system/name/format``."""
    return parse_format((events_dir / system / name / "format").read_text(), system)


class FieldReader:
    """Unpacks chosen fields of one tracepoint's records with a single precompiled ``struct``.

    ``unpack(buf, offset)`` returns the present fields in offset order;
    :meth:`index` says where each one sits (None for a field this kernel's
    tracepoint lacks), so a decoder looks its indices up once, not per record.
    """

    __slots__ = ("_positions", "_struct", "size", "unpack")

    def __init__(self, fmt: EventFormat, names: Sequence[str]) -> None:
        wanted = sorted({f.name: f for f in (fmt.field(n) for n in names) if f is not None}.values(),
                        key=lambda f: f.offset)
        codes, position = ["="], 0
        for f in wanted:
            if f.offset < position:
                raise FormatError(f"overlapping fields in {fmt.full_name} at {f.name}")
            if f.offset > position:
                codes.append(f"{f.offset - position}x")
            codes.append(f.code)
            position = f.offset + f.size
        self._struct = struct.Struct("".join(codes))
        self.size = self._struct.size
        self._positions = {f.name: i for i, f in enumerate(wanted)}
        #: ``unpack(buf, offset) -> tuple``: the bound ``struct.unpack_from`` (no wrapper on the hot path).
        self.unpack = self._struct.unpack_from

    def index(self, name: str) -> int | None:
        """Where ``name`` sits in the tuple :attr:`unpack` returns, or None if the kernel lacks it."""
        return self._positions.get(name)
