"""The live packet feed: capture on an interface, analysed on its own thread, behind :class:`PacketFeed`.

Thread model (the whole of it):

* the capture thread (:class:`netlens.capture.Capture`) only appends raw
  frames to the ring, which has its own lock;
* the analysis thread takes the feed's lock for one small batch at a time
  (:data:`ANALYSIS_BATCH` packets, about a millisecond), works at most
  :data:`ANALYSIS_DUTY` of the time, and while ``yield_to()`` is true (the UI
  has a key to handle) it waits; past :data:`MAX_BACKLOG` packets behind it
  jumps to the newest :data:`CATCH_UP` (the skipped ones still list,
  unanalysed), so the list stays live under a flood; the capture thread also
  leaves frames in the kernel's ring while ``yield_to()`` is true (as long as
  half of the ring is free);
* a short-lived thread opens each capture (importing scapy takes ~0.5 s the
  first time) and one writes each saved file;
* every query holds the lock while it copies its answer out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from netlens.capture.errors import CaptureError
from netlens.capture.feed import FeedState, FeedStatus, StoreFeed
from netlens.capture.live import Capture
from netlens.capture.ring import PacketRing
from netlens.capture.store import PacketStore
from netlens.threadname import show_thread_name

#: Packets analysed per hold of the lock (about a millisecond of work).
ANALYSIS_BATCH = 200
#: Share of the time the analysis thread may work (it sleeps the rest).
ANALYSIS_DUTY = 0.3
#: Packets the analysis may lag behind the capture before it jumps to the present.
MAX_BACKLOG = 100_000
#: How many of the newest packets it analyses after such a jump.
CATCH_UP = 10_000
#: Idle wait of the analysis thread (seconds).
_IDLE = 0.02


class LivePacketFeed(StoreFeed):
    """Capture on ``iface`` (``tcp port port``), analysed as it arrives.

    ``yield_to`` is polled by the analysis thread between batches and by the
    capture thread between ring blocks: while it returns True they wait (the UI
    passes "a key was just pressed").
    """

    def __init__(self, iface: str, port: int, yield_to: Callable[[], bool] | None = None,
                 ring: PacketRing | None = None) -> None:
        ring = ring if ring is not None else PacketRing()
        super().__init__(ring, PacketStore(ring, server_ports=(port,)), FeedState.STARTING, iface)
        self.iface = iface
        self.port = port
        self._yield_to = yield_to or (lambda: False)
        self.capture: Capture | None = None
        #: Packets and drops counted by captures that were paused, since the last clear.
        self._captured_before = 0
        self._drops_before = 0
        #: The running capture's counts at the last clear (what it counted before was cleared).
        self._captured_at_clear = 0
        self._drops_at_clear = 0
        self._stop = threading.Event()
        self._analysis: threading.Thread | None = None

    # ------------------------------------------------------------------ life

    def start(self) -> None:
        """Open the capture on a thread and start analysing; returns at once."""
        self._open()
        self._analysis = threading.Thread(target=self._analyse, name="netlens-packet-analysis", daemon=True)
        self._analysis.start()

    def _open(self) -> None:
        self._set_state(FeedState.STARTING, "")
        threading.Thread(target=self._open_capture, name="netlens-capture-start", daemon=True).start()

    def _open_capture(self) -> None:
        capture = Capture(self.iface, port=self.port, ring=self.ring, yield_to=self._yield_to)
        try:
            capture.start()
        except CaptureError as exc:
            self._set_state(FeedState.FAILED, str(exc))
            return
        with self.lock:
            if self._stop.is_set():
                capture.stop(timeout=0.5)
                return
            self.capture = capture
            self._captured_at_clear = self._drops_at_clear = 0
            self._status = replace(self._status, state=FeedState.RUNNING, sentence=capture.filter_note)

    def _set_state(self, state: FeedState, sentence: str) -> None:
        with self.lock:
            self._status = replace(self._status, state=state, sentence=sentence)

    def close(self) -> None:
        """Stop the capture and the analysis thread (within about a second)."""
        self._stop.set()
        with self.lock:
            capture, self.capture = self.capture, None
        if capture is not None:
            capture.stop(timeout=0.5)
        if self._analysis is not None:
            self._analysis.join(1.0)
        self._set_state(FeedState.STOPPED, self._status.sentence)

    # ------------------------------------------------------------------ the analysis thread

    def _analyse(self) -> None:
        """Analyse packets as they arrive, in small locked batches, at most ANALYSIS_DUTY of the time."""
        show_thread_name("packet-analysis")
        stop = self._stop
        while not stop.is_set():
            if self._yield_to():
                # A key was just pressed: leave this process's one GIL to the keyboard.
                time.sleep(_IDLE)
                continue
            started = time.perf_counter()
            with self.lock:
                store = self.store
                if store.pending > MAX_BACKLOG:
                    store.skip_to(self.ring.last + 1 - CATCH_UP)
                done = store.update(limit=ANALYSIS_BATCH)
            if not done:
                time.sleep(_IDLE)
                continue
            # The server and the keyboard share this process's GIL with us: a flood must not take it.
            busy = time.perf_counter() - started
            time.sleep(busy * (1 / ANALYSIS_DUTY - 1))

    # ------------------------------------------------------------------ status

    def _counters(self) -> FeedStatus:
        status = super()._counters()
        capture = self.capture
        captured, drops = self._captured_before, self._drops_before
        if capture is not None:
            stats = capture.stats()
            captured += stats.captured - self._captured_at_clear
            drops += stats.kernel_drops - self._drops_at_clear
        return replace(status, captured=captured, kernel_drops=drops)

    # ------------------------------------------------------------------ controls

    def pause(self) -> str:
        """Stop capturing; the packets stay, and so do the counters."""
        with self.lock:
            capture, self.capture = self.capture, None
            if capture is None or self._status.state is not FeedState.RUNNING:
                self.capture = capture
                return "The capture is not running."
        stats = capture.stop(timeout=0.5)
        with self.lock:
            self._captured_before += stats.captured - self._captured_at_clear
            self._drops_before += stats.kernel_drops - self._drops_at_clear
            self._captured_at_clear = self._drops_at_clear = 0
            self._status = replace(self._status, state=FeedState.PAUSED)
        return "Capture paused (c resumes)."

    def resume(self) -> str:
        """Capture again into the same ring: numbering and counters go on."""
        if self._status.state is not FeedState.PAUSED:
            return "The capture is not paused."
        self._open()
        return f"Resuming capture on {self.iface}…"

    def clear(self) -> str:
        """Forget every packet: numbering restarts at 1 and the counters at 0."""
        with self.lock:
            forgotten = self.ring.clear(renumber=True)
            self.store = PacketStore(self.ring, server_ports=(self.port,), protocols=self.store.protocols)
            self._ends, self._indexed = {}, 0  # stream ids start again at 1
            self._cleared += forgotten
            self._generation += 1
            self._captured_before = self._drops_before = 0
            capture = self.capture
            if capture is not None:
                stats = capture.stats()
                self._captured_at_clear, self._drops_at_clear = stats.captured, stats.kernel_drops
        return f"Cleared {forgotten:,} packets; numbering starts again at 1."
