"""The application-protocol seam: what a protocol tells the packet analysis, and the registry of protocols.

A protocol is one module under this package (or anywhere, see "Adding a
protocol") with a module-level ``PROTOCOL`` object that has:

* ``name`` (``"search"``) and ``claims(client_port, server_port) -> bool``:
  which streams it wants to look at (every stream, for a protocol that
  recognises its own bytes);
* ``session() -> Session``: fresh state for one stream. The analysis feeds it
  each direction's payload **in sequence order, each byte once**
  (``feed(direction, seq, data, no, ts_ns) -> [MessageEvent]``; direction 0
  is client → server); it says ``alive`` (False: these bytes are not this
  protocol, drop me) and ``recognised`` (True: they are; the stream is mine);
  ``in_message(direction)`` while bytes of an unfinished message wait;
  ``abandon(direction)`` returns the packets of a message it gave up on;
  ``describe(direction, seq, length, ts_ns)`` may name a packet no event
  named (computed when the row is shown: echo says which bytes came back);
  optionally ``describes(direction) -> bool``: False if ``describe`` never
  names a packet of that direction (the rows then skip the call; asked again
  after each analysis step);
  ``close(direction)`` frees a finished direction; optionally
  ``wants(direction) -> bool``: False once the session ignores that
  direction's bytes for good (the analysis then stops reassembling them for
  it; without the method, a session wants both directions while ``alive``);
* ``scapy_layer() -> type | None``: a scapy ``Packet`` class for full
  dissection (bound to the stream's server port), imported only then.

Every string a protocol returns is shown in a terminal: escape wire bytes with
:mod:`netlens.textsafe`.

Adding a protocol: write one module with ``PROTOCOL``. Built-in protocols are
listed in :data:`BUILTIN`; others load from the ``NETLENS_PROTOCOLS``
environment variable (module names or ``.py`` paths, separated by ``,``), or
``--protocol`` of ``netlens read``/``capture``. The analysis offers every
stream's bytes to every protocol that claims it, in registry order, until one
recognises them; that one names the stream's messages from then on.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from netlens.errors import UserError

#: Modules of the protocols every analysis knows, in the order they are offered a stream.
BUILTIN = ("netlens.capture.protocols.search", "netlens.capture.protocols.echo")
#: Environment variable naming more protocol modules (names or .py paths, comma-separated).
ENV = "NETLENS_PROTOCOLS"


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A message completed (or the stream broke the protocol) in one direction."""

    #: One line for the packet list, already escaped for the terminal.
    summary: str
    #: Packets whose payload carried the message, in sequence order.
    packets: tuple[int, ...]
    #: Sequence number of the message's first byte, and its length on the wire.
    start_seq: int = 0
    length: int = 0
    #: True for "the bytes broke the protocol" notes rather than messages.
    error: bool = False


class Session(Protocol):
    """One stream's state for one protocol (both directions)."""

    alive: bool
    recognised: bool

    def feed(self, direction: int, seq: int, data: bytes, no: int, ts_ns: int) -> list[MessageEvent]:
        """Take the next in-order bytes of ``direction`` (from packet ``no``); return what they completed."""
        ...

    def in_message(self, direction: int) -> bool:
        """True while bytes of an unfinished message of ``direction`` wait."""
        ...

    def abandon(self, direction: int) -> list[int]:
        """Give up on ``direction`` (its reassembly overflowed); the packets of the message lost with it."""
        ...

    def describe(self, direction: int, seq: int, length: int, ts_ns: int) -> str | None:
        """A one-line summary of a packet no event named (None: show its bytes)."""
        ...

    def close(self, direction: int) -> None:
        """``direction`` ended (FIN or RST): free what it buffers."""
        ...


class AppProtocol(Protocol):
    """A protocol module's ``PROTOCOL`` object."""

    name: str

    def claims(self, client_port: int, server_port: int) -> bool:
        """True if streams between these ports may carry this protocol."""
        ...

    def session(self) -> Session:
        """Fresh state for one stream."""
        ...

    def scapy_layer(self) -> Any:
        """The scapy ``Packet`` class for full dissection, or None (imports scapy)."""
        ...


_registry: list[AppProtocol] | None = None


def registered() -> tuple[AppProtocol, ...]:
    """Every protocol the analysis uses: the built-in ones, then those named in ``NETLENS_PROTOCOLS``."""
    global _registry
    if _registry is None:
        protocols = [load(name) for name in BUILTIN]
        for spec in os.environ.get(ENV, "").split(","):
            if spec.strip():
                add(protocols, load(spec.strip()))
        _registry = protocols
    return tuple(_registry)


def register(protocol: AppProtocol) -> None:
    """Add ``protocol`` to the registry (after the ones there; a protocol of the same name is replaced)."""
    protocols = list(registered())
    add(protocols, protocol)
    global _registry
    _registry = protocols


def register_specs(specs: Sequence[str]) -> None:
    """Load and register protocol modules named on a command line (``--protocol``)."""
    for spec in specs:
        register(load(spec))


def add(protocols: list[AppProtocol], protocol: AppProtocol) -> None:
    """Append ``protocol`` to ``protocols``, replacing one of the same name."""
    protocols[:] = [p for p in protocols if p.name != protocol.name] + [protocol]


def load(spec: str) -> AppProtocol:
    """The ``PROTOCOL`` of a module given by name (``pkg.mod``) or path (``dir/mod.py``); UserError if none."""
    try:
        if spec.endswith(".py") or os.sep in spec:
            path = Path(spec)
            module_spec = importlib.util.spec_from_file_location(f"netlens_protocol_{path.stem}", path)
            if module_spec is None or module_spec.loader is None or not path.is_file():
                raise UserError(f"there is no protocol module at {spec}.", exit_code=2)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(spec)
    except UserError:
        raise
    except Exception as exc:  # a third-party module may fail in any way: one sentence, not a traceback
        raise UserError(f"the protocol module {spec} failed to load: {type(exc).__name__}: {exc}.",
                        exit_code=2) from None
    protocol = getattr(module, "PROTOCOL", None)
    if protocol is None or not all(hasattr(protocol, attr) for attr in ("name", "claims", "session")):
        raise UserError(f"the module {spec} has no PROTOCOL with name, claims() and session().", exit_code=2)
    return protocol  # type: ignore[no-any-return]
