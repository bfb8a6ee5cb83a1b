"""The part every capture-file writer (pcap, pcapng) shares: opening its target and closing what it opened."""

from __future__ import annotations

import os
import sys
from typing import BinaryIO, TypeVar

from netlens.capture.errors import PcapError


class CaptureFileWriter:
    """What every capture-file writer shares: where it writes, and closing only what it opened.

    ``target`` is a path, ``-`` for stdout, or a binary file object (left open
    by :meth:`close`). An unwritable path is one sentence (:class:`PcapError`).
    """

    def __init__(self, target: str | os.PathLike[str] | BinaryIO) -> None:
        self._owns = False
        if isinstance(target, (str, os.PathLike)):
            if str(target) == "-":
                self._file: BinaryIO = sys.stdout.buffer
            else:
                try:
                    self._file = open(target, "wb", buffering=1 << 20)  # noqa: SIM115 (closed in close())
                except OSError as exc:
                    raise PcapError(f"cannot write {os.fspath(target)}: {exc.strerror or exc}.") from None
                self._owns = True
            self.name = os.fspath(target)
        else:
            self._file = target
            self.name = getattr(target, "name", "<stream>")
        self.packets = 0

    def flush(self) -> None:
        """Push buffered records to the file."""
        self._file.flush()

    def close(self) -> None:
        """Flush and close (closes only files this writer opened)."""
        try:
            self._file.flush()
        finally:
            if self._owns:
                self._file.close()

    def __enter__(self: _Writer) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_Writer = TypeVar("_Writer", bound=CaptureFileWriter)
