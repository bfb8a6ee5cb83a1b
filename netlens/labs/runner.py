"""Run a lab: build its private network, start the engines, play the steps, check, clean up.

One :class:`LabSession` per run, driven from one thread (the CLI's main
thread, or a UI worker). That thread enters the lab's network namespace for
the whole run, so the server, the capture and the sock_diag poller it starts
all live there, and leaves it in :meth:`LabSession.close`, which always runs
and removes everything the lab made (``run_lab`` calls it in ``finally``).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from netlens.capture import Capture, CaptureError, PacketRing, PacketStore, write_pcap
from netlens.errors import UserError
from netlens.labs import counters, tracing
from netlens.labs.context import LabAborted, LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.hermetic import HermeticNet, NamespaceError, current_netns_fd, setns
from netlens.labs.model import Check, CheckResult, Lab, LabResult, Step
from netlens.probe import Prober
from netlens.server import Server, ServerConfig

#: Names of the lab networks' namespaces start with this (plus the pid: see netlens.impair).
NETNS_PREFIX = "nlb"
#: How often the kernel's socket table is sampled during a run.
POLL_INTERVAL = 0.05
#: The capture ring of one lab: labs are seconds long, this is plenty.
RING_PACKETS = 200_000
RING_BYTES = 64 << 20

StepHook = Callable[[int, Step], None]


class LabError(UserError):
    """A lab that cannot run here (not root, unknown variant...): one sentence."""


class _Poller(threading.Thread):
    """Samples sock_diag every ``POLL_INTERVAL`` into the evidence (started inside the namespace)."""

    def __init__(self, ctx: LabContext) -> None:
        super().__init__(name="netlens-lab-poller", daemon=True)
        self._ctx = ctx
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self._ctx.kernel()
            except OSError as exc:
                self._ctx.evidence.notes.append(f"sock_diag polling stopped: {exc}")
                return
            self._stop_event.wait(POLL_INTERVAL)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(2.0)


class LabSession:
    """One run of one lab: ``start()``, ``run_step(i)`` for each step, ``finish()``, ``close()``.

    ``server``, ``ring`` and ``evidence`` are live while it runs (a UI shows
    them). Call every method from the same thread: it is the one inside the
    lab's namespace.
    """

    def __init__(self, lab: Lab, variant: str | None = None, trace: bool = True) -> None:
        if variant is not None and variant not in lab.variants:
            known = ", ".join(sorted(lab.variants)) or "none"
            raise LabError(f"lab {lab.name!r} has no variant {variant!r} (its variants: {known}).")
        self.lab = lab
        self.variant = variant
        self.want_trace = trace
        self.evidence = Evidence()
        self.ring = PacketRing(max_packets=RING_PACKETS, max_bytes=RING_BYTES)
        #: The analysis of the ring, once the lab's packets were read (for the pcapng comments).
        self.store: PacketStore | None = None
        self.net: HermeticNet | None = None
        self.client_net: HermeticNet | None = None
        self.impaired: Any = None
        self.ctx: LabContext | None = None
        self.capture: Capture | None = None
        self.tracer: tracing.LabTracer | None = None
        self._poller: _Poller | None = None
        self._home: int | None = None
        self._started = 0.0
        self._closed = False
        self.step_errors: list[str] = []

    @property
    def server(self) -> Server | None:
        """The netlens server the lab drives (None before start or for labs without one)."""
        return self.ctx.server if self.ctx is not None else None

    # ------------------------------------------------------------------ start

    def start(self) -> LabSession:
        """Create the namespace, set its sysctls, start capture, poller, trace and server."""
        rootless = os.geteuid() != 0
        if rootless and (self.lab.network is not None or threading.active_count() > 1):
            what = "its two network namespaces and the wire between them" if self.lab.network is not None \
                else "a network namespace of its own, which only a single-threaded process can make without root"
            raise LabError(f"lab {self.lab.name!r} needs root for {what} (try: sudo netlens lab run {self.lab.name}).")
        self._started = time.time()
        try:
            if rootless:
                # The process moves into the lab's namespaces for good; there is nothing to return to.
                self.net = HermeticNet.create_rootless()
            else:
                self.net = self._build_network()
                self._home = current_netns_fd()
                setns(self.net.fd)
        except NamespaceError as exc:
            raise LabError(f"cannot build the lab's network namespace: {exc.strerror}.") from None
        self.ctx = LabContext(self.variant, self.net, self.evidence, Prober())
        self.ctx.client_net, self.ctx.impair = self.client_net, self.impaired
        self.ctx.host = self.impaired.server.address if self.impaired is not None else _loopback_address()
        for name, value in self.lab.sysctls.items():
            for net in (self.net, self.client_net):
                if net is not None:
                    net.sysctl(name, value)
        self.evidence.counters_before = self._counters()
        self._start_capture()
        self.tracer = tracing.start(self._addresses(), self.evidence) if self.want_trace else None
        self._poller = _Poller(self.ctx)
        self._poller.start()
        if self.lab.server_mode is not None:
            options = {"idle_timeout": 30.0, **self.lab.server_options}
            config = ServerConfig(mode=self.lab.server_mode, host=self.ctx.host, port=0, **options)
            self.ctx.server = Server(config).start()
            self.ctx.port = self.ctx.server.address[1]
            self.evidence.facts["server_port"] = self.ctx.port
        self.ctx.mark("start")
        return self

    def _build_network(self) -> HermeticNet:
        """The server's namespace: a private loopback, or the server end of an impairable lab network."""
        if self.lab.network is None:
            return HermeticNet.create()
        from netlens.impair import ImpairError, LabNetwork

        try:
            self.impaired = LabNetwork(prefix=NETNS_PREFIX, **self.lab.network).build()
        except ImpairError as exc:
            raise LabError(f"cannot build the lab network: {exc}") from None
        self.client_net = HermeticNet(os.open(self.impaired.client.namespace.path, os.O_RDONLY | os.O_CLOEXEC))
        return HermeticNet(os.open(self.impaired.server.namespace.path, os.O_RDONLY | os.O_CLOEXEC))

    def _addresses(self) -> tuple[str, ...]:
        """The lab's own addresses: what its kernel-trace filter keeps."""
        if self.impaired is not None:
            return (self.impaired.server.address, self.impaired.client.address)
        return (self.ctx.host,) if self.ctx is not None else ()

    def _counters(self) -> dict[str, int]:
        """Kernel counters of the server's namespace, and the client's under ``client.NAME``."""
        values = counters.read()
        if self.client_net is not None:
            with self.client_net.inside():
                values.update({f"client.{name}": value for name, value in counters.read().items()})
        return values

    def _start_capture(self) -> None:
        iface = self.impaired.server.device if self.impaired is not None else "lo"
        capture = Capture(iface=iface, port=None, ring=self.ring)
        try:
            self.capture = capture.start()
        except CaptureError as exc:
            self.evidence.notes.append(f"no packets recorded: {exc}")

    # ------------------------------------------------------------------ steps

    def run_step(self, index: int) -> bool:
        """Run step ``index``; False (with the reason in ``step_errors``) if it failed."""
        assert self.ctx is not None, "start() first"
        step = self.lab.steps[index]
        self.ctx.mark(f"step:{index}")
        try:
            step.action(self.ctx)
        except LabAborted:
            raise
        except Exception as exc:  # a step that fails is a lab result, not a crash
            self.step_errors.append(f"step {index + 1} ({step.title}) failed: {type(exc).__name__}: {exc}")
            return False
        return True

    # ----------------------------------------------------------------- finish

    def finish(self) -> LabResult:
        """Stop recording, read what was recorded, and evaluate every check."""
        assert self.ctx is not None, "start() first"
        ctx = self.ctx
        ctx.mark("end")
        time.sleep(self.lab.settle)
        ctx.kernel("final")
        self.evidence.counters_after = self._counters()
        if self._poller is not None:
            self._poller.stop()
        if ctx.server is not None:
            self.evidence.events = ctx.server.subscribe(from_start=True).drain()
        if self.tracer is not None:
            self.tracer.collect()
        self._read_packets()
        self.evidence.notes.extend(self.step_errors)
        results = tuple(_evaluate(check, self.evidence) for check in self.lab.checks)
        return LabResult(lab=self.lab.name, variant=self.variant, checks=results,
                         seconds=time.time() - self._started, packets=len(self.evidence.packets),
                         notes=tuple(self.evidence.notes))

    def _read_packets(self) -> None:
        if self.capture is None:
            return
        # Let the capture thread hand over the last frames before stopping it.
        self.capture.wait(0.05)
        self.capture.stop()
        self.capture = None
        ports = (self.ctx.port,) if self.ctx is not None and self.ctx.port else ()
        store = self.store = PacketStore(self.ring, server_ports=ports)
        while store.update():
            pass
        self.evidence.ring = self.ring
        if self.ring.last:
            self.evidence.packets = store.summaries(self.ring.first, self.ring.last)

    def write_pcap(self, path: str | os.PathLike[str]) -> int:
        """Save the lab's capture as pcapng, each packet's analysis as its comment; returns the count.

        Wireshark and tshark read it whatever the file is called (``frame.comment`` holds the
        sentences); without a store (nothing captured) the frames are written as they are.
        """
        from netlens.capture.annotate import packet_comments
        from netlens.capture.pcapng import write_pcapng

        if self.store is None:
            return write_pcap(Path(path), self.ring)
        return write_pcapng(Path(path), self.ring, packet_comments(self.store))

    # ------------------------------------------------------------------ close

    def stop(self) -> None:
        """Ask a running step to stop at its next wait (thread-safe)."""
        if self.ctx is not None:
            self.ctx.stopping.set()

    def close(self) -> None:
        """Stop everything and remove the namespace; safe to call at any point, more than once."""
        if self._closed:
            return
        self._closed = True
        if self.ctx is not None:
            self.ctx.close()
            if self.ctx.server is not None:
                self.ctx.server.stop()
        if self._poller is not None and self._poller.is_alive():
            self._poller.stop()
        if self.capture is not None:
            self.capture.stop()
        if self.tracer is not None:
            self.tracer.close()
        if self._home is not None:
            setns(self._home)
            os.close(self._home)
            self._home = None
        for net in (self.net, self.client_net):
            if net is not None:
                net.close()
        if self.impaired is not None:
            self.impaired.close()


_runs = itertools.count(1)


def _loopback_address() -> str:
    """A 127.x.y.z address for this run alone: kernel trace events are global, the address tells ours apart."""
    run = next(_runs)
    return f"127.{100 + os.getpid() % 100}.{(os.getpid() // 100) % 250 + 1}.{run % 250 + 1}"


def _evaluate(check: Check, evidence: Evidence) -> CheckResult:
    try:
        seen = check.observe(evidence)
    except Exception as exc:  # a check that cannot read its evidence failed, it did not crash
        return CheckResult(check.name, check.expected, f"could not be read: {type(exc).__name__}: {exc}",
                           False, None)
    return CheckResult(check.name, check.expected, seen.observed, seen.ok, seen.evidence)


def run_lab(lab: Lab, variant: str | None = None, before_step: StepHook | None = None,
            trace: bool = True, write: str | os.PathLike[str] | None = None,
            before_cleanup: Callable[[LabSession], None] | None = None) -> LabResult:
    """Run ``lab`` start to end and return its checked result; always cleans up.

    ``before_step(i, step)`` runs before each step (narration; a UI may block
    in it to pause). ``before_cleanup(session)`` runs after the checks while the
    namespace still exists (tests use it for outside witnesses such as ``ss``).
    """
    session = LabSession(lab, variant, trace=trace)
    try:
        session.start()
        for index, step in enumerate(lab.steps):
            if before_step is not None:
                before_step(index, step)
            if not session.run_step(index):
                break
        result = session.finish()
        if write is not None:
            session.write_pcap(write)
        if before_cleanup is not None:
            before_cleanup(session)
        return result
    finally:
        session.close()

