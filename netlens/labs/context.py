"""What a lab's step can do: the handle every ``Step.action`` receives.

Everything here drives the real stack: real sockets in the lab's namespace,
the real netlens server (through its control queue), real kernel snapshots.
Sockets a step opens are closed when the lab ends, whatever happens.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from netlens.labs.evidence import Evidence
from netlens.labs.hermetic import HermeticNet
from netlens.probe import Prober, Snapshot
from netlens.server import Control, Server

#: Every lab talks over the loopback of its own namespace (or its veth, see ``ctx.server_host``).
LOOPBACK = "127.0.0.1"


class LabAborted(Exception):
    """The lab was asked to stop (Ctrl-C, SIGTERM, the UI) between or inside steps."""


class LabContext:
    """The lab's world while it runs: server, network, sockets, and the evidence being recorded."""

    def __init__(self, variant: str | None, net: HermeticNet, evidence: Evidence, prober: Prober) -> None:
        #: The variant being run (None: the lesson as written).
        self.variant = variant
        self.net = net
        self.evidence = evidence
        #: Values a step keeps for later steps and for the checks (also in ``evidence.facts``).
        self.facts = evidence.facts
        self.server: Server | None = None
        #: The client's namespace in a two-namespace lab (None: the client shares the server's loopback).
        self.client_net: HermeticNet | None = None
        #: The lab network (``netlens.impair.LabNetwork``) of a lab with ``network=...``: loss, blackhole, rate.
        self.impair: Any = None
        self.host = LOOPBACK
        self.port = 0
        self.stopping = threading.Event()
        self._prober = prober
        self._sockets: list[socket.socket] = []
        self._cleanups: list[Callable[[], object]] = []
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------- time, marks

    def mark(self, label: str) -> None:
        """Record that the lab reached ``label`` now (checks slice the evidence by marks)."""
        self.evidence.marks.append((time.time(), label))

    def wait(self, seconds: float) -> None:
        """Sleep, but wake at once (with :class:`LabAborted`) if the lab is being stopped."""
        if self.stopping.wait(seconds):
            raise LabAborted("the lab was stopped")

    def wait_for(self, condition: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
        """Poll ``condition`` until it holds or ``timeout`` passes; returns whether it held."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() >= deadline:
                return False
            self.wait(step)
        return True

    # ----------------------------------------------------------------- sockets

    def tcp_socket(self, client: bool = False) -> socket.socket:
        """A new IPv4 TCP socket, closed when the lab ends; ``client`` makes it in the client's namespace."""
        if client and self.client_net is not None:
            with self.client_net.inside():
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sockets.append(sock)
        return sock

    def connect(self, port: int | None = None, timeout: float = 3.0,
                options: Mapping[tuple[int, int], int | bytes] | None = None) -> socket.socket:
        """A client socket connected to the lab's server (or ``port``); ``options`` set before connect.

        In a two-namespace lab the socket lives in the client's namespace, across the wire.
        """
        sock = self.tcp_socket(client=True)
        for (level, name), value in (options or {}).items():
            sock.setsockopt(level, name, value)
        sock.settimeout(timeout)
        sock.connect((self.host, port if port is not None else self.port))
        return sock

    def free_port(self) -> int:
        """A port nobody in the lab's namespace listens on (the namespace is ours alone)."""
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind((self.host, 0))
            return int(probe.getsockname()[1])
        finally:
            probe.close()

    def background(self, name: str, work: Callable[[], None]) -> threading.Thread:
        """Run ``work`` on a daemon thread inside the lab's namespace (it inherits the caller's).

        ``work`` must end when the lab's sockets close (they all are, at cleanup);
        the thread is joined then, for at most a second.
        """
        thread = threading.Thread(target=work, name=f"netlens-lab-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    def drain(self, sock: socket.socket) -> list[int]:
        """Read ``sock`` on a background thread until it closes; returns a one-item list of bytes read so far."""
        got = [0]
        sock.settimeout(None)  # the reader may wait out a blackout; closing the socket at the end wakes it

        def read() -> None:
            try:
                while chunk := sock.recv(65536):
                    got[0] += len(chunk)
            except OSError:
                return

        self.background("drain", read)
        return got

    def on_cleanup(self, action: Callable[[], object]) -> None:
        """Run ``action`` when the lab ends (in reverse order of registration)."""
        self._cleanups.append(action)

    # ------------------------------------------------------------------ server

    def control(self, control: Control, timeout: float = 3.0) -> str:
        """Run a server control (``PauseReading(conn)``...) on the loop and return its sentence."""
        if self.server is None:
            raise RuntimeError("this lab runs no netlens server")
        return self.server.submit(control).result(timeout)

    def server_conn(self, peer: socket.socket, timeout: float = 3.0) -> int:
        """The server's connection id of the client socket ``peer`` (waits for the accept)."""
        if self.server is None:
            raise RuntimeError("this lab runs no netlens server")
        server = self.server
        wanted = peer.getsockname()[:2]
        found: list[int] = []

        def accepted() -> bool:
            found[:] = [c.conn for c in server.snapshot(buffers=False) if tuple(c.peer[:2]) == wanted]
            return bool(found)

        if not self.wait_for(accepted, timeout):
            raise RuntimeError(f"the server never accepted {wanted[0]}:{wanted[1]}")
        return found[0]

    # ------------------------------------------------------------------ kernel

    def kernel(self, label: str | None = None, owners: bool = False) -> Snapshot:
        """A sock_diag snapshot of the lab's namespace now, kept in the evidence (and marked).

        ``owners`` also finds each socket's owning processes (a /proc scan, like ``ss -p``).
        """
        snap = self._prober.snapshot(port=None, processes=owners)
        self.evidence.snapshots.append(snap)
        if label is not None:
            self.evidence.labelled[label] = snap
            self.mark(label)
        return snap

    def sysctl(self, name: str, value: int | str) -> None:
        """Set a per-namespace sysctl of the lab's network (``net.ipv4.tcp_syncookies``...)."""
        self.net.sysctl(name, value)

    def run(self, argv: list[str], stdin: str | None = None) -> str:
        """Run a command (``nft``, ``ss``...) inside the lab's namespace; returns its stdout."""
        return self.net.run(argv, stdin=stdin)

    def keep(self, key: str, value: Any) -> None:
        """Keep a fact for the checks (what a client received, the error it saw...)."""
        self.facts[key] = value

    # ----------------------------------------------------------------- cleanup

    def close(self) -> None:
        """Run the registered cleanups and close every socket the steps opened (idempotent)."""
        while self._cleanups:
            action = self._cleanups.pop()
            try:
                action()
            except Exception as exc:  # a failed cleanup must not stop the others
                self.evidence.notes.append(f"cleanup failed: {exc}")
        while self._sockets:
            sock = self._sockets.pop()
            try:
                # shutdown() wakes a thread blocked in recv() on it; close() alone may not.
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        while self._threads:
            self._threads.pop().join(1.0)
