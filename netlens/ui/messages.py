"""Messages the workers send up to the app ("attributes down, messages up")."""

from __future__ import annotations

from textual.message import Message

from netlens.server import ConnectionSnapshot
from netlens.ui.kernel_view import KernelUpdate


class KernelSnapshot(Message):
    """A fresh sock_diag snapshot of the server's port, already folded into table rows.

    ``view`` also carries the server's own view of its connections, read right
    after the kernel was asked (off the UI thread: reading it waits for the loop).
    """

    def __init__(self, view: KernelUpdate) -> None:
        super().__init__()
        self.view = view

    def can_replace(self, message: Message) -> bool:
        # Only the newest snapshot matters if the UI falls behind.
        return isinstance(message, KernelSnapshot)


class ProbeFailed(Message):
    """The kernel could not be asked; ``sentence`` says why."""

    def __init__(self, sentence: str) -> None:
        super().__init__()
        self.sentence = sentence


class ClientDone(Message):
    """A request sent from the UI finished; ``lines`` say how (already escaped)."""

    def __init__(self, lines: list[str], error: bool = False) -> None:
        super().__init__()
        self.lines = lines
        self.error = error


class ControlDone(Message):
    """A control ran on the server loop (or could not): ``text`` is its one-sentence result.

    ``wanted`` names the toggle (connection, setting) it was meant to set, so
    a failure can forget what the user asked for.
    """

    def __init__(self, seq: int, text: str, error: bool = False, wanted: tuple[int, str] | None = None) -> None:
        super().__init__()
        #: The control's number (the UI shows results in this order).
        self.seq = seq
        self.text = text
        self.error = error
        self.wanted = wanted


class ClientOpened(Message):
    """A connection opened from the UI (``o``) is up: its client's address and the server's it reached."""

    def __init__(self, local: tuple[str, int], remote: tuple[str, int], what: str) -> None:
        super().__init__()
        self.local = local
        self.remote = remote
        self.what = what


class ServerView(Message):
    """The server's full view of one connection (buffers included), read off the UI thread."""

    def __init__(self, conn: int, snapshot: ConnectionSnapshot | None) -> None:
        super().__init__()
        self.conn = conn
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ServerView)
