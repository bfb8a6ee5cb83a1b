"""Lab ``refused``: connect() to a port nobody listens on, and the kernel's RST answers for it."""

from __future__ import annotations

from netlens.labs.checks import has_flags, ref, trace_missing
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch


def knock(ctx: LabContext) -> None:
    port = ctx.free_port()
    ctx.keep("port", port)
    if ctx.variant == "listening":
        listener = ctx.tcp_socket()
        listener.bind((ctx.host, port))
        listener.listen()
    client = ctx.tcp_socket()
    client.settimeout(2.0)
    try:
        client.connect((ctx.host, port))
        ctx.keep("error", None)
    except OSError as exc:
        ctx.keep("error", type(exc).__name__)


def _error(evidence: Evidence) -> Observation:
    error = evidence.facts.get("error")
    return Observation(error == "ConnectionRefusedError", f"connect() raised {error}" if error else
                       "connect() succeeded")


def _rst(evidence: Evidence) -> Observation:
    port = evidence.facts.get("port")
    syn = evidence.find(lambda p: p.flags == "S" and p.dport == port)
    rst = evidence.find(lambda p: has_flags(p, "R") and p.sport == port)
    if syn is None:
        return Observation(False, f"no SYN to port {port} captured")
    if rst is None:
        answer = evidence.find(lambda p: p.sport == port)
        return Observation(False, f"port {port} answered {answer.flags if answer else 'nothing'}", ref(syn))
    return Observation(True, f"SYN → {rst.flags} from port {port}, {(rst.time - syn.time) * 1e6:.0f} µs later",
                       ref(rst))


def _reason(evidence: Evidence) -> Observation:
    if not evidence.trace:
        return trace_missing(evidence, "no reset seen by the kernel trace")
    port = evidence.facts.get("port")
    for no, event in evidence.trace_events("reset-sent"):
        if port in (event.sport, event.dport):
            return Observation(event.reason == "NO_SOCKET", f"reset sent, reason {event.reason}",
                               f"kernel event #{no}")
    return Observation(False, f"no reset-sent event for port {port}")


LAB = Lab(
    name="refused",
    title="Connection refused",
    lesson="A SYN to a port with no listener gets an immediate RST from the kernel, and connect() "
           "raises ConnectionRefusedError: no timeout, no retry.",
    steps=(
        Step("Knock on a closed port", "The client connects to a port nobody listens on. The kernel has no "
             "socket for it, so it answers the SYN with RST+ACK at once, reason NO_SOCKET.",
             Watch("packets", "the SYN and the RST right after it", {"flags": "R"}), knock),
    ),
    checks=(
        Check("refused", "connect() raises ConnectionRefusedError", _error),
        Check("RST", "the SYN is answered by an RST from the closed port", _rst),
        Check("reset reason", "the kernel sent the reset with reason NO_SOCKET", _reason),
    ),
    control="listening",
    variants={"listening": "someone listens on the port, so the connection is accepted"},
    server_mode=None,
    needs=frozenset({"trace"}),
)
