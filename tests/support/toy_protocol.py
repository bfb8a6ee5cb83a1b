"""A toy application protocol, registered from outside netlens (``NETLENS_PROTOCOLS`` or ``--protocol``).

Lines of text on port 7777: every complete line (ending in ``\\n``) is a
message, summarised as ``toy line 'text'``; the packets that carried it are
reported so the analysis can say "reassembled from N segments".
"""

from __future__ import annotations

from typing import Any

from netlens.capture.protocols import MessageEvent

PORT = 7777


class ToySession:
    """Line framing per direction."""

    def __init__(self) -> None:
        self.alive = True
        self.recognised = False
        self.buffers = (bytearray(), bytearray())
        self.parts: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])

    def feed(self, direction: int, seq: int, data: bytes, no: int, ts_ns: int) -> list[MessageEvent]:
        buffer, parts = self.buffers[direction], self.parts[direction]
        if not parts or parts[-1][0] != no:
            parts.append((no, seq))
        buffer += data
        events = []
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            self.recognised = True
            packets = tuple(dict.fromkeys(n for n, _ in parts))
            events.append(MessageEvent(f"toy line {line.decode('ascii', 'replace')!r}", packets, parts[0][1],
                                       len(line) + 1))
            buffer[:] = rest
            parts[:] = [(no, seq)] if rest else []
        return events

    def in_message(self, direction: int) -> bool:
        return bool(self.buffers[direction])

    def abandon(self, direction: int) -> list[int]:
        return [n for n, _ in self.parts[direction]]

    def describe(self, direction: int, seq: int, length: int, ts_ns: int) -> str | None:
        return None

    def close(self, direction: int) -> None:
        """Nothing to free."""


class Toy:
    name = "toy"

    def claims(self, client_port: int, server_port: int) -> bool:
        return PORT in (client_port, server_port)

    def session(self) -> ToySession:
        return ToySession()

    def scapy_layer(self) -> Any:
        return None


PROTOCOL = Toy()
