"""Messages the workers send up to the app ("attributes down, messages up")."""

from __future__ import annotations

from textual.message import Message

from netlens.ui.kernel_view import KernelUpdate


class KernelSnapshot(Message):
    """A fresh sock_diag snapshot of the server's port, already folded into table rows."""

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
