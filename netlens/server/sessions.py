"""What each mode does with the bytes of one connection — protocol logic, no sockets.

The loop reads and writes; a session decides. ``on_data`` and ``on_eof``
return an :class:`Outcome` that the loop turns into buffer operations,
selector changes and socket events. Keeping this apart from the loop is what
lets the same code be tested without a network.
"""

from __future__ import annotations

from netlens.proto import (
    Decoder,
    JsonHeaderRead,
    MessageComplete,
    ProtocolError,
    ProtoHeaderRead,
    ReplyCache,
    encode,
    error_response,
    reply,
)
from netlens.proto.message import short_repr, short_text
from netlens.server.events import CloseCause


class Outcome:
    """What the loop must do after a session saw bytes or an EOF."""

    __slots__ = ("stages", "reply", "summary", "stop_reading", "close_after_reply", "close_now",
                 "cause", "reason", "error")

    def __init__(self) -> None:
        #: (stage, detail) pairs reached, in order, for StageReached events.
        self.stages: list[tuple[str, str]] = []
        #: Bytes to append to the send buffer.
        self.reply: bytes | None = None
        #: Human summary of ``reply`` for a ResponseQueued event (None: no event).
        self.summary: str | None = None
        #: Stop reading this connection for good.
        self.stop_reading = False
        #: Close once the send buffer is empty.
        self.close_after_reply = False
        #: Close at once, without flushing.
        self.close_now = False
        self.cause = CloseCause.SERVER
        #: Why the connection will close.
        self.reason = ""
        #: A protocol error to log as an ErrorEvent.
        self.error: str | None = None


class EchoSession:
    """Echo mode: every byte received goes back; close when the peer closes."""

    mode = "echo"

    def __init__(self) -> None:
        self.stage = "echoing"
        self.detail = ""

    def on_data(self, data: bytes) -> Outcome:
        """Echo ``data``."""
        outcome = Outcome()
        outcome.reply = data
        return outcome

    def on_eof(self) -> Outcome:
        """The peer closed: flush what is left, then close too (the loop says whether it could)."""
        self.stage = "closing"
        outcome = Outcome()
        outcome.stop_reading = True
        outcome.close_after_reply = True
        outcome.cause = CloseCause.PEER
        outcome.reason = "peer closed"
        return outcome


class SearchSession:
    """Search mode: read one request, answer it, close first (PROTOCOL.md §2)."""

    mode = "search"

    def __init__(self, max_content_length: int, cache: ReplyCache | None = None) -> None:
        self.decoder = Decoder(max_content_length=max_content_length, max_messages=1)
        self.cache = cache
        self.stage = "reading proto header"
        self.detail = ""
        self.request_summary: str | None = None
        self.response_summary: str | None = None

    def on_data(self, data: bytes) -> Outcome:
        """Feed the decoder; answer the request once it is complete."""
        outcome = Outcome()
        try:
            events = self.decoder.feed(data)
        except ProtocolError as exc:
            return self._fail(outcome, exc)
        for event in events:
            if isinstance(event, ProtoHeaderRead):
                self.stage = "reading JSON header"
                self.detail = f"JSON header is {event.header_length} bytes"
                outcome.stages.append(("proto header read", self.detail))
            elif isinstance(event, JsonHeaderRead):
                header = event.header
                self.stage = "reading content"
                # content-type is any string the peer chose (the header may be 16 KiB).
                self.detail = (f"{short_text(header['content-type'], 80)}, {header['content-encoding']}, "
                               f"content-length {header['content-length']}")
                outcome.stages.append(("JSON header read", self.detail))
            elif isinstance(event, MessageComplete):
                request = event.message
                self.request_summary = request.describe()
                outcome.stages.append(("request complete", self.request_summary))
                data, self.response_summary = reply(request, cache=self.cache)
                self._answer(outcome, data, self.response_summary, "response sent")
                if self.decoder.extra:
                    outcome.stages.append(("extra bytes", f"{self.decoder.extra} bytes after the request ignored"))
        return outcome

    def on_eof(self) -> Outcome:
        """The peer half-closed before the request was complete: nothing to answer."""
        outcome = Outcome()
        outcome.close_now = True
        outcome.cause = CloseCause.PEER
        got = self.decoder.buffered_length
        if self.decoder.messages:
            outcome.reason = "peer closed after its request"
            outcome.close_now = False
            outcome.close_after_reply = True
        elif got == 0 and self.stage == "reading proto header":
            outcome.reason = "peer closed without sending a request"
        else:
            outcome.reason = f"peer closed mid-request while {self.stage}"
        return outcome

    def _answer(self, outcome: Outcome, reply: bytes, summary: str, reason: str) -> None:
        self.stage = "writing response"
        self.detail = summary
        outcome.reply = reply
        outcome.summary = summary
        outcome.stop_reading = True
        outcome.close_after_reply = True
        outcome.reason = reason

    def _fail(self, outcome: Outcome, exc: ProtocolError) -> Outcome:
        # Logged once, by the loop, as an error event whose text names the stage.
        reason = str(exc)
        outcome.error = reason
        if exc.answerable:
            self._answer(outcome, encode(error_response(exc.reason)), f"error {short_repr(exc.reason)}",
                         f"answered protocol error: {exc.reason}")
            outcome.cause = CloseCause.ERROR
        else:
            self.stage = "failed"
            outcome.close_now = True
            outcome.cause = CloseCause.ERROR
            outcome.reason = f"not the search protocol: {reason}"
        return outcome


Session = EchoSession | SearchSession
