"""The codec's one error type."""

from __future__ import annotations


class ProtocolError(Exception):
    """Bytes that break the search protocol (PROTOCOL.md §2).

    ``stage`` names the decoder stage where the problem was found, so the UI
    and the logs can say *where* in the message it went wrong. ``answerable``
    is true when the message framing was readable (the whole JSON header
    arrived), so the peer can still be sent an error response; when false the
    bytes are not this protocol at all and the connection should just close.
    """

    def __init__(self, message: str, *, stage: str, answerable: bool) -> None:
        super().__init__(message)
        self.stage = stage
        self.answerable = answerable

    def __str__(self) -> str:
        return f"{self.args[0]} (while reading the {self.stage})"

    @property
    def reason(self) -> str:
        """The bare sentence, without the stage suffix."""
        return str(self.args[0])
