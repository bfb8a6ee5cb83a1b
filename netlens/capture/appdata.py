"""A stream's application data: its two directions reassembled in order and offered to the protocols.

The analysis keeps one :class:`StreamApps` per stream that carries payload.
Bytes go to every protocol session still in the running; a session that says
the bytes are not its protocol drops out, and the first one to recognise them
owns the stream from then on (the others are dropped).
"""

from __future__ import annotations

from collections.abc import Sequence

from netlens.capture.protocols import AppProtocol, MessageEvent, Session
from netlens.capture.reassembly import InOrder, Piece

#: Out-of-order segments held per direction before reassembly gives up.
MAX_PENDING_SEGMENTS = 256
MAX_PENDING_BYTES = 1 << 20
_MASK = 0xFFFFFFFF
_HALF = 0x80000000


class StreamApps:
    """Reassembly and protocol sessions of one stream."""

    __slots__ = ("sides", "candidates", "owner", "abandoned", "unfinished", "listening", "direct")

    def __init__(self, protocols: Sequence[AppProtocol]) -> None:
        self.sides = (InOrder(max_segments=MAX_PENDING_SEGMENTS, max_bytes=MAX_PENDING_BYTES),
                      InOrder(max_segments=MAX_PENDING_SEGMENTS, max_bytes=MAX_PENDING_BYTES))
        self.candidates: list[tuple[AppProtocol, Session]] = [(p, p.session()) for p in protocols]
        #: The protocol that recognised the stream's bytes, and its session.
        self.owner: tuple[AppProtocol, Session] | None = None
        #: Packets that carried part of a message when a session gave up (the caller clears it).
        self.abandoned: list[int] = []
        #: Per direction: bytes of an unfinished message wait in some session (kept up to date by feed()).
        self.unfinished = [False, False]
        #: Per direction: some session still reads its bytes (False: feed() would do nothing; the caller
        #: skips it, so a direction every protocol gave up on costs nothing per segment).
        self.listening = [False, False]
        #: A protocol owns the stream and no other session is left: in-order bytes go straight to it.
        self.direct = False
        self._listen()

    @property
    def alive(self) -> bool:
        """Some protocol still reads this stream."""
        return bool(self.candidates)

    def start_at(self, direction: int, seq: int) -> None:
        """The byte stream of ``direction`` starts at ``seq`` (known ISN + 1), even if its first data was missed."""
        side = self.sides[direction]
        if side.next_seq is None:
            side.next_seq = seq

    def start_after_syn(self, direction: int, syn_seen: bool, isn: int | None) -> None:
        """Before ``direction``'s first payload: with its SYN seen, its byte stream starts right after the ISN,
        even if the first data segment captured is not the first one sent."""
        if syn_seen and isn is not None:
            self.start_at(direction, (isn + 1) & _MASK)

    def feed(self, direction: int, seq: int, data: bytes, no: int, ts_ns: int) -> list[MessageEvent]:
        """One segment's payload; returns the message events the now in-order bytes completed."""
        side = self.sides[direction]
        if self.direct and seq == side.next_seq and not side.pending and not side.overflowed:
            # The usual case, once a protocol recognised the stream: the next bytes in order, nothing
            # waiting; straight to the owner's session (what push() would return, without building it).
            side.next_seq = (seq + len(data)) & _MASK
            session = self.candidates[0][1]
            found: list[MessageEvent] = session.feed(direction, seq, data, no, ts_ns)
            self.unfinished[direction] = session.in_message(direction)
            if not session.alive:
                self._drop_all()
            return found
        behind = (side.next_seq - seq) & _MASK if side.next_seq is not None else 0
        if len(data) <= behind < _HALF:
            return []  # bytes already delivered (a retransmission): what push() would say, cheaper
        pieces = side.push(seq, data, no)
        if side.overflowed:
            self._overflow(direction)
            return []
        if not pieces:
            return []
        if self.direct:
            # Recognised stream, pieces released by a filled gap: straight to the owner's session.
            session = self.candidates[0][1]
            found = []
            for piece_seq, piece, piece_no in pieces:
                found += session.feed(direction, piece_seq, piece, piece_no, ts_ns)
            self.unfinished[direction] = session.in_message(direction)
            if not session.alive:
                self._drop_all()
            return found
        return self._offer(direction, pieces, ts_ns)

    def _offer(self, direction: int, pieces: list[Piece], ts_ns: int) -> list[MessageEvent]:
        """Pieces of a stream no protocol owns yet, to every candidate; the first to recognise them owns it."""
        events: list[MessageEvent] = []
        for piece_seq, piece, piece_no in pieces:
            # Bytes that waited are credited to the packet that carried them; the
            # caller still reports the message on the packet that filled the gap.
            for candidate in list(self.candidates):
                session = candidate[1]
                events += session.feed(direction, piece_seq, piece, piece_no, ts_ns)
                if session.recognised and self.owner is None:
                    self._own(candidate)
                elif not session.alive and candidate in self.candidates:
                    self.candidates.remove(candidate)
        self.unfinished[direction] = any(session.in_message(direction) for _, session in self.candidates)
        self._listen()  # a session may have given up on a direction (not run once a protocol owns the stream)
        return events

    def _listen(self) -> None:
        """Work out :attr:`listening` and :attr:`direct` again (after the candidates or their directions changed)."""
        self.listening = [any(_wants(session, d) for _, session in self.candidates) for d in (0, 1)]
        self.direct = self.owner is not None and len(self.candidates) == 1

    def _drop_all(self) -> None:
        """The owner gave up: no protocol reads this stream any more."""
        self.candidates = []
        self._listen()

    def _own(self, candidate: tuple[AppProtocol, Session]) -> None:
        self.owner = candidate
        for other in self.candidates:
            if other is not candidate:
                for d in (0, 1):
                    self.abandoned += other[1].abandon(d)
        self.candidates = [candidate]
        self._listen()

    def _overflow(self, direction: int) -> None:
        self.abandoned += self.sides[direction].dropped
        for _, session in self.candidates:
            self.abandoned += session.abandon(direction)
        self.candidates = [c for c in self.candidates if c[1].alive]
        if self.owner is not None and self.owner not in self.candidates:
            self.owner = None
        self.unfinished = [any(s.in_message(d) for _, s in self.candidates) for d in (0, 1)]
        self._listen()

    def in_message(self, direction: int) -> bool:
        """Bytes of an unfinished message of ``direction`` wait in some session."""
        return self.unfinished[direction]

    def protocol_name(self) -> str:
        """Name of the protocol whose messages this stream carries (the owner, else the first candidate)."""
        if self.owner is not None:
            return self.owner[0].name
        return self.candidates[0][0].name if self.candidates else "application"

    def describe(self, direction: int, seq: int, length: int, ts_ns: int) -> str | None:
        """The owner's summary of a packet no event named."""
        if self.owner is None:
            return None
        return self.owner[1].describe(direction, seq, length, ts_ns)

    def close(self, direction: int) -> None:
        """``direction`` sent FIN or RST (a direction still waiting for a gap stays open for it)."""
        if self.sides[direction].pending:
            return
        for _, session in self.candidates:
            session.close(direction)
        self.candidates = [c for c in self.candidates if c[1].alive or c is self.owner]
        self.unfinished = [any(s.in_message(d) for _, s in self.candidates) for d in (0, 1)]
        self._listen()


def _wants(session: Session, direction: int) -> bool:
    """The session reads ``direction``'s bytes (its optional ``wants(direction)``; without it, while alive)."""
    wants = getattr(session, "wants", None)
    return session.alive if wants is None else bool(wants(direction))
