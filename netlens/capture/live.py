"""Live capture: one thread reading raw frames from a Linux packet socket into a :class:`PacketRing`.

The kernel does the filtering (BPF) and, on loopback, drops the outgoing copy
of every frame, so user space only sees the frames it keeps. The thread then
reads them in one of two ways, both without building any scapy object:

* ``mmap`` (default): a TPACKET_V3 ring shared with the kernel, the way
  libpcap reads. The kernel fills 1 MiB blocks and hands one over when it is
  full or 10 ms old; the thread walks the block's frames with ``struct`` and
  copies each into the ring. No system call per packet, ~2.5 µs per frame.
* ``recvmsg`` (fallback if the ring cannot be set up): ``recvmsg_into`` one
  frame at a time into a reused buffer, with the kernel timestamp as
  SO_TIMESTAMPNS ancillary data and a large receive buffer (SO_RCVBUFFORCE),
  draining the socket in bursts after each wake-up. ~7 µs per frame.

Either way the timestamp is the kernel's, on the ``time.time()`` clock.
scapy is imported only in :meth:`Capture.start` (it opens and binds the
socket); constructing a :class:`Capture` is cheap.
"""

from __future__ import annotations

import logging
import mmap
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from netlens import DEFAULT_PORT
from netlens.capture import bpf, packet_socket
from netlens.capture.errors import CaptureError
from netlens.capture.frames import LINKTYPE_ETHERNET, LINKTYPE_RAW
from netlens.capture.pcap import PcapWriter
from netlens.capture.ring import PacketRing
from netlens.threadname import show_thread_name

log = logging.getLogger("netlens.capture")

SOL_PACKET = packet_socket.SOL_PACKET
PACKET_AUXDATA = 8
TP_STATUS_USER = 1
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = 35
#: Receive buffer asked for: at ~1 KiB of kernel accounting per small frame this
#: absorbs a stall of well over a second at 40,000 packets/s.
DEFAULT_RCVBUF = 64 * 1024 * 1024
#: TPACKET_V3 ring: 32 blocks of 1 MiB (a block must hold the largest lo frame,
#: 65,550 bytes); ~190,000 small frames fit before the kernel has to drop.
RING_BLOCK_SIZE = 1 << 20
RING_BLOCKS = 32
#: A block goes to user space when full or after this many ms: the capture's latency.
RING_BLOCK_TIMEOUT_MS = 10
# tpacket3_hdr: tp_next_offset, tp_sec, tp_nsec, tp_snaplen, tp_len, (tp_status), tp_mac.
_TPACKET3_HDR = struct.Struct("IIIII4xH")
#: Big enough for any frame the filter keeps (the programs keep up to bpf.SNAPLEN).
_BUFFER = bpf.SNAPLEN
#: Frames read per wake-up before checking for stop; the socket is drained in bursts.
_BURST = 8192
#: poll() timeout: the latest a stop request or a stats refresh waits.
_POLL_MS = 200
#: After waking up, let frames pile up this long before draining them: one wake-up
#: per few hundred frames instead of one per frame, which on a busy 2-core machine
#: is the difference between slowing the traffic down and not (the big receive
#: buffer holds them meanwhile).
_BATCH_DELAY = 0.002

# ARPHRD_* (the interface's hardware type) -> pcap link type of its frames.
_ARPHRD_LINKTYPE = {1: LINKTYPE_ETHERNET, 772: LINKTYPE_ETHERNET, 0xFFFE: LINKTYPE_RAW}
ARPHRD_LOOPBACK = 772


@dataclass(frozen=True)
class CaptureStats:
    """Counters of one capture, consistent at the moment :meth:`Capture.stats` was called."""

    iface: str
    running: bool
    #: Frames read from the socket and stored (after the kernel filter).
    captured: int
    #: Frames the kernel dropped because the receive buffer was full (PACKET_STATISTICS).
    kernel_drops: int
    #: Packets evicted from the ring to stay within its bounds.
    ring_evictions: int
    #: Packets currently in the ring.
    stored: int
    #: Frame bytes captured.
    bytes: int
    started: float
    #: Seconds since start (frozen at stop).
    elapsed: float
    #: Kernel buffer between the wire and the thread, in bytes (the mmap ring, or the receive buffer).
    rcvbuf: int
    #: The sentence that stopped the capture, if something went wrong mid-way.
    error: str | None
    #: CPU seconds the capture thread used (its own cost, for the benchmark and the UI).
    cpu: float = 0.0
    #: How frames are read: "mmap" (TPACKET_V3 ring) or "recvmsg".
    method: str = ""


class Capture:
    """Capture frames on ``iface`` into ``ring`` on a background thread.

    ``port`` (default 65432) captures ``tcp port P``; ``bpf`` takes any
    tcpdump-style expression instead (needs libpcap); both None captures
    everything. ``libpcap=None`` uses libpcap when it is installed; False
    forces netlens's hand-built port filter. ``writer`` receives every frame as
    it is captured; ``write`` names a pcap file to open once the link type is
    known (``-w FILE``; closed by :meth:`stop`). ``count`` stops the capture
    by itself after that many packets. ``method`` is ``"mmap"`` (a TPACKET_V3
    ring, falling back to ``"recvmsg"`` if the kernel refuses it) or
    ``"recvmsg"``. After :meth:`start`, :attr:`filter_note` is one sentence
    saying which filter path is in use, and :attr:`method` how frames are read.
    """

    def __init__(
        self,
        iface: str = "lo",
        port: int | None = DEFAULT_PORT,
        bpf: str | None = None,
        ring: PacketRing | None = None,
        writer: PcapWriter | None = None,
        libpcap: bool | None = None,
        rcvbuf: int = DEFAULT_RCVBUF,
        promisc: bool = False,
        write: str | os.PathLike[str] | None = None,
        count: int | None = None,
        method: str = "mmap",
        yield_to: Callable[[], bool] | None = None,
    ) -> None:
        self.iface = iface
        self._yield_to = yield_to
        self.port = port
        self.expression = bpf
        self.ring = ring if ring is not None else PacketRing()
        self.writer = writer
        self.write_path = write
        self._owns_writer = False
        self.count = count
        if method not in ("mmap", "recvmsg"):
            raise ValueError(f"method must be 'mmap' or 'recvmsg', not {method!r}")
        self.method = method
        self._mmap: mmap.mmap | None = None
        self.libpcap = libpcap
        self.rcvbuf_wanted = rcvbuf
        self.promisc = promisc
        #: One sentence: which kernel filter is in use and who built it (set by start()).
        self.filter_note = ""
        self.linktype = LINKTYPE_ETHERNET
        self.error: str | None = None
        self._scapy_socket: object | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._new = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._lock = threading.Lock()
        self._captured = 0
        self._bytes = 0
        self._drops = 0
        self._started = 0.0
        self._stopped_at: float | None = None
        self._rcvbuf = 0
        self._cpu = 0.0
        self._cpu_start = 0.0
        # Packets still allowed before stopping by itself (None: no limit).
        self._count_left: int | None = None

    # ----------------------------------------------------------------- setup

    def _filter_program(self, linktype: int) -> tuple[bpf.Program, str]:
        use_libpcap = self.libpcap if self.libpcap is not None else bpf.libpcap_available()
        if self.expression is not None:
            if not use_libpcap:
                raise CaptureError(
                    f"the capture filter {self.expression!r} needs libpcap, which is not installed or cannot be "
                    f"loaded; "
                    f"install it (apt-get install libpcap0.8) or filter by port with --port."
                )
            program = bpf.compile_expression(self.expression, linktype)
            return program, f"kernel BPF filter {self.expression!r} compiled by libpcap"
        if self.port is None:
            return bpf.accept_all(), "no filter: every frame on the interface is captured"
        text = f"tcp port {self.port}"
        if use_libpcap:
            return bpf.compile_expression(text, linktype), f"kernel BPF filter {text!r} compiled by libpcap"
        why = ("libpcap is switched off" if self.libpcap is False and bpf.libpcap_available()
               else "libpcap is not installed or cannot be loaded, so only port filters work")
        return bpf.tcp_port_program(self.port, linktype), f"kernel BPF filter {text!r} built by netlens ({why})"

    def start(self) -> Capture:
        """Open the socket, attach the filter and start the capture thread. Returns ``self``.

        Raises :class:`CaptureError` (one sentence, exit code 2) when the
        interface does not exist, capture needs privileges the process lacks,
        or the filter cannot be used.
        """
        if self._thread is not None:
            raise RuntimeError("capture already started")
        try:
            socket.if_nametoindex(self.iface)
        except OSError:
            names = ", ".join(name for _, name in socket.if_nameindex())
            raise CaptureError(
                f"there is no network interface named {self.iface!r} (this machine has: {names})."
            ) from None
        self._open()
        if self.write_path is not None and self.writer is None:
            try:
                self.writer = PcapWriter(self.write_path, self.linktype)
            except Exception:
                self._close_socket()
                raise
            self._owns_writer = True
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._started = time.time()
        self._thread = threading.Thread(target=self._run, name=f"netlens-capture-{self.iface}", daemon=True)
        self._thread.start()
        return self

    def _open(self) -> None:
        listener = packet_socket.listen(self.iface, self.promisc)
        sock: socket.socket = listener.ins
        try:
            hatype = sock.getsockname()[3]
            linktype = _ARPHRD_LINKTYPE.get(hatype)
            if linktype is None:
                raise CaptureError(
                    f"{self.iface} has hardware type {hatype}, whose frames netlens cannot decode; "
                    f"capture on lo or an Ethernet interface."
                )
            program, note = self._filter_program(linktype)
            if hatype == ARPHRD_LOOPBACK:
                # lo shows each packet twice (leaving, arriving): the kernel keeps the outgoing copy
                # from this socket, without even cloning it (kernels before 4.20: a filter prefix drops it).
                if not packet_socket.ignore_outgoing(sock):
                    program = bpf.drop_outgoing(program)
                note += "; loopback's outgoing copies are dropped in the kernel"
            bpf.attach(sock, program)
            # Only the timestamp as ancillary data (scapy also asks for VLAN auxdata).
            try:
                sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 0)
            except OSError:
                pass
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if self.method == "mmap":
                try:
                    self._mmap = packet_socket.rx_ring(sock, RING_BLOCK_SIZE, RING_BLOCKS, RING_BLOCK_TIMEOUT_MS)
                    self._rcvbuf = RING_BLOCK_SIZE * RING_BLOCKS
                except OSError as exc:
                    log.info("no TPACKET_V3 ring (%s); reading with recvmsg", exc)
                    self.method = "recvmsg"
            if self.method == "recvmsg":
                self._rcvbuf = packet_socket.grow_rcvbuf(sock, self.rcvbuf_wanted)
            packet_socket.drain(sock, _BUFFER)  # frames queued before the filter was attached
            packet_socket.read_stats(sock)  # and their counters
        except BaseException:
            if self._mmap is not None:
                self._mmap.close()
                self._mmap = None
            listener.close()
            raise
        self.linktype = linktype
        self.ring.linktype = linktype
        self.filter_note = note + "."
        self._scapy_socket = listener
        self._sock = sock
        log.info("capturing on %s: %s", self.iface, self.filter_note)

    # ----------------------------------------------------------------- the thread

    def _run(self) -> None:
        show_thread_name("capture")
        self._cpu_start = time.thread_time()
        self._count_left = self.count if self.count else None
        try:
            if self._mmap is not None:
                self._loop_mmap()
            else:
                self._loop_recvmsg()
        except OSError as exc:
            self.error = f"capture on {self.iface} stopped: {exc.strerror or exc}."
            log.error("%s", self.error)
        except Exception as exc:  # the thread must end with a sentence, not a silent traceback
            self.error = f"capture on {self.iface} stopped: {type(exc).__name__}: {exc}."
            log.exception("capture thread failed")
        finally:
            self._collect_drops()
            writer = self.writer
            if writer is not None:
                try:
                    if self._owns_writer:
                        writer.close()
                    else:
                        writer.flush()
                except OSError as exc:
                    self.error = self.error or f"writing the pcap file failed: {exc.strerror or exc}."
            self._new.set()

    def _publish(self, got: int, nbytes: int) -> None:
        """Account for a batch of stored frames and wake consumers (once per batch, not per frame)."""
        with self._lock:
            self._captured += got
            self._bytes += nbytes
            self._cpu = time.thread_time() - self._cpu_start
        if self._count_left is not None:
            self._count_left -= got
            if self._count_left <= 0:
                self._stop.set()
        self._new.set()

    def _loop_mmap(self) -> None:
        """Walk TPACKET_V3 blocks as the kernel hands them over; no system call per frame."""
        sock, ring_map = self._sock, self._mmap
        assert sock is not None and ring_map is not None
        view = memoryview(ring_map)
        try:
            append = self.ring.append
            write = self.writer.write if self.writer is not None else None
            status_at = struct.Struct("I").unpack_from
            block_head = struct.Struct("III").unpack_from  # block_status, num_pkts, offset_to_first_pkt
            header = _TPACKET3_HDR.unpack_from
            set_status = struct.Struct("I").pack_into
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN)
            poller.register(self._wake_r, select.POLLIN)
            stop = self._stop
            yield_to = self._yield_to
            block = 0
            while not stop.is_set():
                base = block * RING_BLOCK_SIZE
                if not status_at(ring_map, base + 8)[0] & TP_STATUS_USER:
                    poller.poll(_POLL_MS)
                    if not status_at(ring_map, base + 8)[0] & TP_STATUS_USER:
                        self._collect_drops()
                    continue
                # A key to handle (yield_to): frames wait in the kernel's ring while half of it is free.
                if yield_to is not None and yield_to() and not status_at(
                        ring_map, (block + RING_BLOCKS // 2) % RING_BLOCKS * RING_BLOCK_SIZE + 8)[0] & TP_STATUS_USER:
                    time.sleep(_BATCH_DELAY)
                    continue
                _, count, first = block_head(ring_map, base + 8)
                if self._count_left is not None:
                    count = min(count, self._count_left)
                offset = base + first
                got = nbytes = 0
                for _ in range(count):
                    # (Loopback's outgoing copies never get here: the kernel filter drops them.)
                    next_offset, seconds, nanos, snaplen, wire_len, mac = header(ring_map, offset)
                    start = offset + mac
                    ts_ns = seconds * 1_000_000_000 + nanos
                    frame = view[start:start + snaplen]
                    append(ts_ns, frame, wire_len)
                    if write is not None:
                        write(ts_ns, frame, wire_len)
                    got += 1
                    nbytes += snaplen
                    offset += next_offset
                # Hand the block back to the kernel only after copying every frame out of it.
                set_status(ring_map, base + 8, 0)
                block = (block + 1) % RING_BLOCKS
                if got:
                    self._publish(got, nbytes)
        finally:
            view.release()

    def _loop_recvmsg(self) -> None:
        """Read one frame per recvmsg_into, draining the socket in bursts after each wake-up."""
        sock = self._sock
        assert sock is not None
        append = self.ring.append
        write = self.writer.write if self.writer is not None else None
        buffer = bytearray(_BUFFER)
        view = memoryview(buffer)
        buffers = [view]
        ancsize = socket.CMSG_SPACE(16)
        recvmsg_into = sock.recvmsg_into
        unpack_ts = struct.Struct("qq").unpack
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        dontwait = socket.MSG_DONTWAIT
        sleep = time.sleep
        stop = self._stop
        while not stop.is_set():
            if poller.poll(_POLL_MS):
                sleep(_BATCH_DELAY)
            got = nbytes = 0
            burst = _BURST if self._count_left is None else min(_BURST, self._count_left)
            while got < burst:
                try:
                    n, ancdata, _flags, address = recvmsg_into(buffers, ancsize, dontwait)
                except (BlockingIOError, InterruptedError):
                    break
                if address[2] == PACKET_OUTGOING and address[3] == ARPHRD_LOOPBACK:
                    continue  # the kernel filter already drops these; belt and braces
                if ancdata:
                    seconds, nanos = unpack_ts(ancdata[0][2])
                    ts_ns = seconds * 1_000_000_000 + nanos
                else:
                    ts_ns = time.time_ns()
                frame = view[:n]
                append(ts_ns, frame)
                if write is not None:
                    write(ts_ns, frame)
                got += 1
                nbytes += n
            if got:
                self._publish(got, nbytes)
            else:
                self._collect_drops()

    def _collect_drops(self) -> None:
        sock = self._sock
        if sock is None:
            return
        with self._lock:
            try:
                _, drops = packet_socket.read_stats(sock)
            except OSError:
                return
            self._drops += drops

    # ----------------------------------------------------------------- public API

    @property
    def running(self) -> bool:
        """True while the capture thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until new packets were stored (or the capture ended) or ``timeout``; True if so."""
        got = self._new.wait(timeout)
        self._new.clear()
        return got

    def stop(self, timeout: float = 1.0) -> CaptureStats:
        """Stop the thread (within ~0.2 s), flush the writer, close the socket; returns final stats."""
        self._stop.set()
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)
        if self._stopped_at is None and self._started:
            self._stopped_at = time.time()
        stats = self.stats()
        if not self.running:
            self._close_socket()
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1
        return stats

    def _close_socket(self) -> None:
        with self._lock:
            if self._mmap is not None:
                self._mmap.close()
                self._mmap = None
            if self._scapy_socket is not None:
                self._scapy_socket.close()  # type: ignore[attr-defined]
            self._scapy_socket = None
            self._sock = None

    def stats(self) -> CaptureStats:
        """A consistent snapshot of the counters (thread-safe)."""
        if self.running:
            self._collect_drops()
        with self._lock:
            end = self._stopped_at or time.time()
            return CaptureStats(
                iface=self.iface,
                running=self.running,
                captured=self._captured,
                kernel_drops=self._drops,
                ring_evictions=self.ring.evicted,
                stored=len(self.ring),
                bytes=self._bytes,
                started=self._started,
                elapsed=max(0.0, end - self._started) if self._started else 0.0,
                rcvbuf=self._rcvbuf,
                error=self.error,
                cpu=self._cpu,
                method=self.method,
            )

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
