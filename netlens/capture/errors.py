"""The capture package's errors: each one sentence a user can act on."""

from __future__ import annotations

from netlens.errors import UserError


class CaptureError(UserError):
    """Live capture cannot run (no privilege, no such interface, a filter that cannot be used).

    Exit code 2, like every "cannot start" error in netlens. The UI shows
    ``str(error)`` in the packet panel and keeps working without packets.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message, exit_code)


class PcapError(UserError):
    """A pcap file or stream that cannot be read (not pcap, unsupported link type, unreadable)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message, exit_code)
