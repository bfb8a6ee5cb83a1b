"""Labs: staged TCP lessons that run on the real stack and check what the kernel really did.

A lab is one module that defines ``LAB = Lab(...)`` (see :mod:`netlens.labs.model`):
a name, a title, the lesson, a few :class:`Step` s (what to do, what to say, what
to watch) and a few :class:`Check` s (what the kernel should have done, and a
function that reads what it did from the :class:`Evidence`). Labs are found in
this package and in any ``--labs-dir``; :mod:`netlens.labs.catalog` lists them.

Running one (``netlens lab run NAME``, or the TUI's Labs screen)::

    from netlens.labs.catalog import find
    from netlens.labs.runner import run_lab

    result = run_lab(find("zero-window"))            # LabError (one sentence) if it cannot run here
    print(result.passed, [(c.name, c.observed, c.evidence) for c in result.checks])

:class:`~netlens.labs.runner.LabSession` is the same run one step at a time
(``start()``, ``run_step(i)``, ``finish()``, ``close()``; one thread), for a UI.

Where a lab runs
    Every lab gets its own network namespace (root only): an anonymous one with
    its own loopback and a 127.x.y.z address of its own (it vanishes with the
    process, even after SIGKILL), or, with ``network={...}``, a client and a
    server namespace joined by a wire from :mod:`netlens.impair` (veth, or a TAP
    link with delay), which the steps impair through ``ctx.impair``
    (``set_loss``, ``set_blackhole``, ``set_rate``, ``set_delay``).

What is recorded, on one wall clock
    packets (the lab's own capture: ``evidence.packets`` as
    :class:`~netlens.capture.PacketSummary`, numbered as in ``--write``'s pcap);
    the netlens server's socket events; sock_diag snapshots every 50 ms and on
    demand (``ctx.kernel("label")``); kernel-trace events (state changes with
    the trace engine's socket numbers, resets with reasons, retransmissions,
    tcp_probe, congestion states) between the lab's own addresses; the
    namespace's counters before and after (``evidence.counter("TcpExtDelayedACKs")``,
    ``"client.<name>"`` for the client namespace); step marks; and facts the
    steps keep (``ctx.keep("error", ...)``).

What a step can do (:class:`~netlens.labs.context.LabContext`)
    ``ctx.connect(port=None, options={...})`` a client socket (in the client
    namespace when there is one); ``ctx.tcp_socket()``; ``ctx.free_port()``;
    ``ctx.control(PauseReading(conn))`` and ``ctx.server_conn(sock)`` to drive
    the netlens server; ``ctx.kernel(label)``; ``ctx.mark(label)``;
    ``ctx.wait(s)``/``ctx.wait_for(cond, timeout)``; ``ctx.drain(sock)``;
    ``ctx.background(name, fn)``; ``ctx.sysctl(name, value)``, ``ctx.run(argv)``
    inside the namespace; ``ctx.on_cleanup(fn)``; ``ctx.variant``.

Variants
    ``variants`` names ways to run a lab differently; ``control`` is the one that
    removes or reverses its key step, so its checks must fail (a test runs it).
"""

from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, CheckResult, Lab, LabResult, Observation, Step, Watch

__all__ = ["Check", "CheckResult", "Evidence", "Lab", "LabResult", "Observation", "Step", "Watch"]
