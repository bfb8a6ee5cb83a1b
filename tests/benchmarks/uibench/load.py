"""The load of the UI benchmark: child processes that hold idle connections and pace a pipelined echo flood.

They run in other processes so they do not share the app's GIL; each stops by
itself (``lifetime``, or when its parent goes away).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import selectors
import signal
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

#: struct tcp_info: tcpi_segs_out, tcpi_segs_in at byte 136 (Linux >= 4.2).
SEGS = struct.Struct("II")
SEGS_OFFSET = 136
PAYLOAD = b"echo 0123456789\n"  # 16 bytes: one small TCP_NODELAY segment per send
PING = b"ping\n"


def _child_init() -> tuple[int, Callable[[], bool]]:
    """Common set-up of a load process: Ctrl-C is the parent's business; die with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    return parent, lambda: os.getppid() != parent


def _segs(sock: socket.socket) -> int:
    """Packets the kernel counted on this connection (both directions)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return 0
    out, inn = SEGS.unpack_from(info, SEGS_OFFSET)
    return out + inn


def hold_connections(port: int, count: int, lifetime: float, stop: Any, ready: Any) -> None:
    """Child: open ``count`` connections and keep them; ping each about every 8 s; stop on ``stop``."""
    _, orphaned = _child_init()
    deadline = time.monotonic() + lifetime
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.setblocking(False)
            socks.append(sock)
        ready.put(len(socks))
        sel = selectors.DefaultSelector()
        for sock in socks:
            sel.register(sock, selectors.EVENT_READ)
        period = 8.0 / max(1, count)
        turn = 0
        next_ping = time.monotonic()
        while not stop.is_set() and time.monotonic() < deadline and not orphaned():
            now = time.monotonic()
            if now >= next_ping:
                try:
                    socks[turn % count].send(PING)
                except (BlockingIOError, OSError):
                    pass
                turn += 1
                next_ping = now + period
            for key, _ in sel.select(timeout=max(0.0, min(0.2, next_ping - time.monotonic()))):
                try:
                    if not key.fileobj.recv(4096):  # type: ignore[union-attr]
                        sel.unregister(key.fileobj)  # the server closed it (the app is going away)
                except BlockingIOError:
                    pass
                except OSError:
                    sel.unregister(key.fileobj)
    except OSError as exc:
        ready.put(f"holder: {exc}")
    finally:
        for sock in socks:
            sock.close()


def echo_load(port: int, conns: int, target_pps: float, depth: int, lifetime: float, stop: Any,
              ready: Any, report: Any) -> None:
    """Child: pipelined small echo requests on ``conns`` connections, paced to ``target_pps`` packets/s.

    Pacing: a token bucket of sends; every 0.2 s the rate is corrected by the ratio of
    the target to the packets the kernel counted on these connections (TCP_INFO).
    At most ``depth`` requests are in flight per connection, so a server that cannot
    keep up bounds the rate instead of piling up buffers.
    """
    _, orphaned = _child_init()
    deadline = time.monotonic() + lifetime
    size = len(PAYLOAD)
    socks: list[socket.socket] = []
    try:
        for _ in range(conns):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            socks.append(sock)
    except OSError as exc:
        ready.put(f"load: {exc}")
        return
    ready.put(len(socks))
    sel = selectors.DefaultSelector()
    inflight = {}
    for sock in socks:
        sel.register(sock, selectors.EVENT_READ)
        inflight[sock] = 0
    limit = depth * size
    rate = target_pps / 2  # sends/s: one request packet and one echo packet per send when not pipelined
    tokens = 0.0
    sends = echoed = 0
    cpu0, started = time.process_time(), time.monotonic()
    segs0 = sum(_segs(s) for s in socks)
    last_tick, last_segs = started, segs0
    last = started
    turn = 0
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            tokens = min(tokens + (now - last) * rate, max(4.0, rate * 0.005))
            last = now
            tries = 0
            while tokens >= 1 and tries < conns:
                sock = socks[turn % conns]
                turn += 1
                if inflight[sock] >= limit:
                    tries += 1
                    continue
                tries = 0
                try:
                    sock.send(PAYLOAD)
                except (BlockingIOError, InterruptedError):
                    tries += 1
                    continue
                inflight[sock] += size
                sends += 1
                tokens -= 1
            for key, _ in sel.select(timeout=0.001):
                sock = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                if not data:
                    raise ConnectionError("the server closed a load connection")
                inflight[sock] -= len(data)
                echoed += len(data)
            if now - last_tick >= 0.2:
                segs = sum(_segs(s) for s in socks)
                pps = (segs - last_segs) / (now - last_tick)
                if pps > 0:
                    rate = min(max(rate * min(2.0, max(0.5, target_pps / pps)) ** 0.7, 100.0), target_pps * 2)
                last_tick, last_segs = now, segs
                if orphaned():
                    break
    except OSError as exc:
        report.put({"error": str(exc)})
        return
    finally:
        elapsed = time.monotonic() - started
        segs = sum(_segs(s) for s in socks)
        for sock in socks:
            sock.close()
    report.put({"sends": sends, "echoed": echoed // size, "packets": segs - segs0, "elapsed": elapsed,
                "cpu": time.process_time() - cpu0})


class LoadProcesses:
    """The holder and the echo-load processes, stopped together (and by themselves)."""

    def __init__(self, port: int, args: argparse.Namespace) -> None:
        self.ctx = mp.get_context("spawn")
        self.stop = self.ctx.Event()
        self.ready = self.ctx.Queue()
        self.report = self.ctx.Queue()
        self.procs: list[Any] = []
        self.port = port
        self.args = args

    def start(self) -> tuple[int, int]:
        """Start every process; returns (idle connections held, load connections)."""
        a = self.args
        held = load_conns = 0
        busy = a.load_procs * a.load_conns if a.pps > 0 else 0
        if a.conns > busy:
            holder = self.ctx.Process(target=hold_connections, name="bench-holder", daemon=True,
                                      args=(self.port, a.conns - busy, a.lifetime, self.stop, self.ready))
            holder.start()
            self.procs.append(holder)
            held = self._ready()
        loaders = []
        for i in range(a.load_procs if a.pps > 0 else 0):
            proc = self.ctx.Process(target=echo_load, name=f"bench-load-{i}", daemon=True,
                                    args=(self.port, a.load_conns, a.pps / a.load_procs, a.depth, a.lifetime,
                                          self.stop, self.ready, self.report))
            proc.start()
            self.procs.append(proc)
            loaders.append(proc)
        for _ in loaders:
            load_conns += self._ready()
        return held, load_conns

    def _ready(self) -> int:
        """The next "ready" (a connection count) from a child; an error if one failed or died."""
        deadline = time.monotonic() + 60
        while True:
            try:
                got = self.ready.get(timeout=0.5)
            except queue.Empty:
                dead = [p.name for p in self.procs if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"load process {', '.join(dead) or '(slow)'} did not get ready") from None
                continue
            if isinstance(got, str):
                raise RuntimeError(got)
            return int(got)

    def finish(self, timeout: float = 10.0) -> list[dict[str, float]]:
        """Stop every process (terminate the ones that do not stop); returns the load processes' reports."""
        self.stop.set()
        reports = []
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            proc.join(max(0.1, deadline - time.monotonic()))
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(2)
        while True:
            try:
                reports.append(self.report.get(timeout=0.2))
            except Exception:
                break
        return reports
