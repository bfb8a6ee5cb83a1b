"""Lab ``mss``: the MSS each side announces comes from its link's MTU, and caps every segment."""

from __future__ import annotations

from netlens.labs.checks import ref
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch
from netlens.labs.steps import connect_reading
from netlens.server import SendBytes

MTU = 1500
#: IPv4 and TCP headers without options: MSS = MTU - 40.
MSS = MTU - 40
#: With timestamps (12 bytes of options in every segment) a full segment carries 12 bytes less.
FULL_SEGMENT = MSS - 12
PAYLOAD = 200_000


def jumbo(ctx: LabContext) -> None:
    if ctx.variant == "jumbo":
        # Both ends of the wire get a 9000-byte MTU before the connection exists.
        ctx.run(["ip", "link", "set", ctx.impair.server.device, "mtu", "9000"])
        assert ctx.client_net is not None
        ctx.client_net.run(["ip", "link", "set", ctx.impair.client.device, "mtu", "9000"])
    connect_reading(ctx)


def send(ctx: LabContext) -> None:
    ctx.control(SendBytes(ctx.facts["conn"], b"m" * PAYLOAD))
    received: list[int] = ctx.facts["received"]
    ctx.wait_for(lambda: received[0] >= PAYLOAD, timeout=5.0)


def _announced(evidence: Evidence) -> Observation:
    syn = evidence.find(lambda p: p.flags == "S")
    synack = evidence.find(lambda p: p.flags == "SA")
    if syn is None or synack is None:
        return Observation(False, "no SYN and SYN-ACK captured")
    offered, answered = evidence.mss_option(syn.no), evidence.mss_option(synack.no)
    return Observation(offered == MSS and answered == MSS, f"SYN: MSS {offered}; SYN-ACK: MSS {answered}", ref(syn))


def _segments(evidence: Evidence) -> Observation:
    server = evidence.facts.get("server_port")
    data = [p for p in evidence.tcp() if p.sport == server and (p.len or 0) > 0]
    if not data:
        return Observation(False, "no data from the server")
    largest = max(data, key=lambda p: p.len or 0)
    full = sum(1 for p in data if p.len == FULL_SEGMENT)
    return Observation(largest.len == FULL_SEGMENT and full > 1,
                       f"{len(data)} segments, the largest {largest.len} bytes ({full} of them full)", ref(largest))


LAB = Lab(
    name="mss",
    title="MSS: the largest segment, from the MTU",
    lesson=f"Each side announces in its SYN the largest segment it can take: its link's MTU ({MTU}) minus the "
           f"IP and TCP headers, {MSS}. With timestamps on, every segment spends 12 bytes on options, so a "
           f"full one carries {FULL_SEGMENT} bytes. Bigger writes are cut into segments of that size.",
    steps=(
        Step("Connect across a 1500-byte wire", "The client connects over a veth pair with an Ethernet MTU.",
             Watch("packets", "the MSS option of the SYN and the SYN-ACK", {"flags": "S"}), jumbo),
        Step("Send 200 kB", "The server sends 200 kB in one call; the kernel cuts it into full segments.",
             Watch("packets", f"the data rows: len={FULL_SEGMENT}", {"port": "server"}), send),
    ),
    checks=(
        Check("MSS announced", f"both SYNs announce MSS {MSS}", _announced),
        Check("full segments", f"data travels in segments of at most {FULL_SEGMENT} bytes, most of them full",
              _segments),
    ),
    control="jumbo",
    variants={"jumbo": "both ends get a 9000-byte MTU: MSS 8960"},
    server_mode="echo",
    network={"mtu": MTU},
    settle=0.05,
)
