"""Lab ``nagle``: small writes meet delayed ACKs (~40 ms stalls); TCP_NODELAY removes them."""

from __future__ import annotations

import socket
import time

from netlens.capture import PacketSummary
from netlens.labs.checks import gaps_ms, ref
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch
from netlens.labs.peers import KeepAliveSearchPeer
from netlens.proto import Decoder, MessageComplete, encode_request

ROUNDS = 8
STALL_MS = 35.0


def _rounds(ctx: LabContext, label: str) -> None:
    sock: socket.socket = ctx.facts["client"]
    request = encode_request("search", "morpheus")
    times = []
    ctx.mark(label)
    for _ in range(ROUNDS):
        started = time.perf_counter()
        # Write-write-read: the proto header alone, then the rest, then wait for the answer.
        sock.send(request[:2])
        sock.sendall(request[2:])
        decoder = Decoder(max_messages=1)
        while not any(isinstance(e, MessageComplete) for e in decoder.feed(sock.recv(65536))):
            pass
        times.append(round((time.perf_counter() - started) * 1000, 1))
    ctx.keep(f"{label}_ms", times)
    ctx.mark(f"{label}-done")


def connect(ctx: LabContext) -> None:
    peer = KeepAliveSearchPeer(ctx)
    ctx.keep("peer_port", peer.port)
    sock = ctx.connect(peer.port)
    ctx.keep("client", sock)
    ctx.keep("client_port", sock.getsockname()[1])
    if ctx.variant == "nodelay-always":
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def with_nagle(ctx: LabContext) -> None:
    _rounds(ctx, "nagle")


def without_nagle(ctx: LabContext) -> None:
    sock: socket.socket = ctx.facts["client"]
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _rounds(ctx, "nodelay")


def _client_data(evidence: Evidence, label: str) -> list[PacketSummary]:
    port = evidence.facts.get("client_port")
    return [p for p in evidence.between(label, f"{label}-done") if p.sport == port and (p.len or 0) > 0]


def _stalls(evidence: Evidence) -> Observation:
    data = _client_data(evidence, "nagle")
    gaps = gaps_ms(data)
    stalls = [(g, p) for g, p in zip(gaps, data[1:], strict=True) if g >= STALL_MS]
    if not stalls:
        return Observation(False, f"largest gap between the client's segments {max(gaps, default=0)} ms")
    return Observation(True, f"{len(stalls)} gaps of ≥ {STALL_MS:.0f} ms (largest {max(g for g, _ in stalls)} ms)",
                       ref(stalls[0][1]))


def _no_stalls(evidence: Evidence) -> Observation:
    data = _client_data(evidence, "nodelay")
    gaps = gaps_ms(data)
    if len(data) < 2 * ROUNDS:
        return Observation(False, f"only {len(data)} data segments from the client with TCP_NODELAY")
    worst = max(gaps, default=0.0)
    return Observation(worst < STALL_MS, f"largest gap {worst} ms over {len(data)} segments",
                       ref(data[gaps.index(worst) + 1]) if gaps else None)


def _delayed_acks(evidence: Evidence) -> Observation:
    count = evidence.counter("TcpExtDelayedACKs")
    return Observation(count > 0, f"TcpExtDelayedACKs rose by {count}", "counters")


LAB = Lab(
    name="nagle",
    title="Nagle meets delayed ACK",
    lesson="Nagle's algorithm holds a small segment while an earlier one is unacknowledged; the peer "
           "delays its ACK (up to ~40 ms) hoping to piggyback it on an answer it cannot send before the "
           "whole request is in. Write-write-read therefore stalls ~40 ms per request; TCP_NODELAY sends at once.",
    steps=(
        Step("Connect", "The client connects to a search peer that, unlike the netlens server, keeps the "
             "connection open for more requests (HTTP/1.1 style).",
             Watch("packets", "the handshake to the peer's port", {"flags": "S"}), connect),
        Step("Write, write, read (Nagle on)", f"{ROUNDS} requests, each written as the 2-byte header and "
             "then the rest. The rest waits for the ACK of the header, which the peer delays.",
             Watch("packets", "the ~40 ms gap before each request's second segment", {"port": "client"}),
             with_nagle),
        Step("The same with TCP_NODELAY", "Now the client sets TCP_NODELAY: the second write leaves at once.",
             Watch("packets", "both segments of each request back to back", {"port": "client"}),
             without_nagle),
    ),
    checks=(
        Check("stalls with Nagle", f"gaps of ≥ {STALL_MS:.0f} ms between the client's segments", _stalls),
        Check("no stalls without", f"no gap ≥ {STALL_MS:.0f} ms with TCP_NODELAY", _no_stalls),
        Check("delayed ACKs", "the kernel counted delayed ACKs (TcpExtDelayedACKs)", _delayed_acks),
    ),
    control="nodelay-always",
    variants={"nodelay-always": "TCP_NODELAY from the start: no stall to see"},
    server_mode=None,
)
