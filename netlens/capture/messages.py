"""Search-protocol messages inside captured TCP streams.

Each direction of each stream has a :class:`MessageStream`: TCP payloads go
in, in whatever order they were captured, and come out in sequence order into
a :class:`netlens.proto.Decoder` — retransmitted bytes are fed once,
segments that arrive early wait for the gap to fill. When the decoder
completes a message, the packet that completed it learns what the message
said, and every packet that carried part of it is known (so one byte per
segment still reads as one request).

A direction whose bytes are not this protocol (echo traffic, HTTP, junk after
the one request) is dropped quietly; a message whose JSON header arrived whole
but was wrong gets a "malformed search message" note.
"""

from __future__ import annotations

from dataclasses import dataclass

from netlens.proto import Decoder, Message, MessageComplete, ProtocolError, ProtoHeaderRead
from netlens.textsafe import safe_str

_MASK = 0xFFFFFFFF
#: Out-of-order segments held per direction before reassembly gives up.
MAX_PENDING_SEGMENTS = 256
MAX_PENDING_BYTES = 1 << 20
#: Longest info text kept for a message (values from the wire can be huge).
MAX_INFO = 160


@dataclass(frozen=True)
class MessageEvent:
    """A message completed (``message`` set) or the stream broke the protocol (``error`` set)."""

    info: str
    #: Packet numbers whose payload carried this message, in order.
    packets: tuple[int, ...]
    message: Message | None = None
    error: str | None = None
    #: Sequence number of the message's first byte, and its length on the wire.
    start_seq: int = 0
    length: int = 0


def describe_message(message: Message, direction: int) -> str:
    """``search request 'morpheus'`` / ``response result '...'``, escaped and length-capped."""
    role = "request" if direction == 0 else "response"
    text = message.describe()
    value = message.value
    action = value.get("action") if value is not None else None
    if action is not None and text.startswith(f"{action} "):
        text = f"{action} {role} {text[len(str(action)) + 1:]}"
    else:
        text = f"{role} {text}"
    text = safe_str(text)
    return text if len(text) <= MAX_INFO else text[: MAX_INFO - 1] + "…"


class MessageStream:
    """Sequence-ordered reassembly of one direction into search-protocol messages."""

    __slots__ = ("decoder", "next_seq", "pending", "pending_bytes", "parts", "framed", "alive", "abandoned")

    def __init__(self) -> None:
        # Created on the first payload byte: most directions of most streams carry none.
        self.decoder: Decoder | None = None
        self.next_seq: int | None = None
        self.pending: dict[int, tuple[bytes, int]] = {}
        self.pending_bytes = 0
        #: [packet number, bytes, seq of first byte] fed but not yet part of a completed message.
        self.parts: list[list[int]] = []
        #: The decoder read a whole JSON header at least once: this direction speaks the
        #: protocol (dissection then binds the search layer to the stream's port).
        self.framed = False
        self.alive = True
        #: Packets that carried part of a message when reassembly gave up (the caller clears it).
        self.abandoned: list[int] = []

    def feed(self, seq: int, data: bytes, no: int, direction: int) -> list[MessageEvent]:
        """Take one segment's payload (``seq`` is its first byte); return what it completed."""
        if not self.alive or not data:
            return []
        if self.next_seq is None:
            self.next_seq = seq
        offset = (seq - self.next_seq) & _MASK
        if offset >= 0x80000000:  # starts before what was fed: keep only the new tail
            overlap = (self.next_seq - seq) & _MASK
            if overlap >= len(data):
                return []
            data, seq = data[overlap:], self.next_seq
        elif offset:  # a gap: hold the segment until the bytes before it arrive
            if seq not in self.pending:
                self.pending[seq] = (data, no)
                self.pending_bytes += len(data)
                if len(self.pending) > MAX_PENDING_SEGMENTS or self.pending_bytes > MAX_PENDING_BYTES:
                    self._give_up()
            return []
        events = self._feed(data, no, direction)
        # Segments that waited for this one may now be next in line.
        while self.alive and self.pending:
            entry = self._take_pending()
            if entry is None:
                break
            pending_data, pending_no = entry
            # Bytes that waited are credited to the packet that carried them; the
            # caller still reports the message on the packet that filled the gap.
            events += self._feed(pending_data, pending_no, direction)
        return events

    def _take_pending(self) -> tuple[bytes, int] | None:
        assert self.next_seq is not None
        for seq in list(self.pending):
            data, no = self.pending[seq]
            offset = (self.next_seq - seq) & _MASK
            if offset < 0x80000000:  # starts at or before next_seq
                del self.pending[seq]
                self.pending_bytes -= len(data)
                if offset < len(data):
                    return data[offset:], no
        return None

    def _feed(self, data: bytes, no: int, direction: int) -> list[MessageEvent]:
        decoder = self.decoder
        if decoder is None:
            decoder = self.decoder = Decoder()
        assert self.next_seq is not None
        self.parts.append([no, len(data), self.next_seq])
        self.next_seq = (self.next_seq + len(data)) & _MASK
        try:
            events = decoder.feed(data)
        except ProtocolError as exc:
            # "answerable" means the JSON header arrived whole: this was the protocol, broken.
            # Anything else (bytes that never looked like a message, even after a good
            # one) is just not this protocol, and the packet list shows the bytes instead.
            self._give_up()
            if not exc.answerable:
                return []
            return [MessageEvent(f"malformed search message: {safe_str(exc.reason)}", (no,), error=str(exc))]
        out: list[MessageEvent] = []
        for event in events:
            if isinstance(event, ProtoHeaderRead):
                continue
            self.framed = True
            if isinstance(event, MessageComplete):
                start = self.parts[0][2] if self.parts else self.next_seq
                packets = self._take_parts(event.wire_length)
                out.append(MessageEvent(describe_message(event.message, direction), packets, event.message,
                                        start_seq=start, length=event.wire_length))
        return out

    @property
    def in_message(self) -> bool:
        """True while bytes of an unfinished message are buffered."""
        return bool(self.parts)

    def _take_parts(self, length: int) -> tuple[int, ...]:
        """Pop the packets whose bytes made up a message of ``length`` bytes."""
        packets: list[int] = []
        while length > 0 and self.parts:
            part = self.parts[0]
            if not packets or packets[-1] != part[0]:
                packets.append(part[0])
            if part[1] <= length:
                length -= part[1]
                self.parts.pop(0)
            else:
                part[1] -= length
                part[2] = (part[2] + length) & _MASK
                length = 0
        return tuple(packets)

    def _give_up(self) -> None:
        self.alive = False
        self.decoder = None
        self.abandoned = [part[0] for part in self.parts] + [no for _, no in self.pending.values()]
        self.pending.clear()
        self.pending_bytes = 0
        self.parts.clear()

    def close(self) -> None:
        """Free the buffers of a finished direction (the stream is closed)."""
        if self.alive and not self.parts and not self.pending:
            self.decoder = None
            self.alive = False
