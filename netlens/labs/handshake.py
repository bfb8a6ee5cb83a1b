"""Lab ``handshake``: SYN, SYN-ACK, ACK, the options each side offers, and relative numbers."""

from __future__ import annotations

from netlens.labs.checks import has_flags, recv_all, ref, state_observation
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch
from netlens.proto import encode_request


def connect(ctx: LabContext) -> None:
    if ctx.variant == "no-connect":
        return
    sock = ctx.connect()
    ctx.keep("client_port", sock.getsockname()[1])
    ctx.keep("client", sock)
    ctx.kernel("connected")


def ask(ctx: LabContext) -> None:
    sock = ctx.facts.get("client")
    if sock is None:
        return
    sock.sendall(encode_request("search", "morpheus"))
    ctx.keep("answer_bytes", len(recv_all(sock)))


def _handshake(evidence: Evidence) -> Observation:
    port = evidence.facts.get("client_port")
    packets = [p for p in evidence.tcp() if port in (p.sport, p.dport)]
    if len(packets) < 3:
        return Observation(False, f"{len(packets)} packet(s) of the client's connection")
    syn, synack, ack = packets[:3]
    ok = (syn.flags == "S" and syn.sport == port and has_flags(synack, "SA") and synack.dport == port
          and ack.flags == "A" and ack.sport == port and synack.ack == 1 and ack.ack == 1)
    return Observation(ok, f"{syn.flags} → {synack.flags} (ack={synack.ack}) → {ack.flags} (seq={ack.seq}, "
                           f"ack={ack.ack})", ref(syn))


def _options(evidence: Evidence) -> Observation:
    syn = evidence.find(lambda p: p.flags == "S" and p.sport == evidence.facts.get("client_port"))
    synack = evidence.find(lambda p: p.flags == "SA")
    if syn is None or synack is None:
        return Observation(False, "no SYN and SYN-ACK captured")
    wanted = {"MSS", "SACK_PERM", "WS", "TS"}
    offered, answered = set(evidence.tcp_options(syn.no)), set(evidence.tcp_options(synack.no))
    return Observation(wanted <= offered and wanted <= answered,
                       f"SYN: {', '.join(sorted(offered)) or 'none'}; SYN-ACK: {', '.join(sorted(answered)) or 'none'}",
                       ref(syn))


def _established(evidence: Evidence) -> Observation:
    port = evidence.facts.get("client_port")
    for ts, _sock in evidence.sockets(lambda s: s.local_port == port and s.state == "ESTABLISHED"):
        return Observation(True, f"client socket :{port} ESTABLISHED in sock_diag at {ts:.3f}",
                           f"kernel snapshot at {ts:.3f}")
    return Observation(False, "the client socket was never ESTABLISHED in sock_diag")


def _states(evidence: Evidence) -> Observation:
    client, server = evidence.facts.get("client_port"), evidence.facts.get("server_port")
    return state_observation(evidence, {
        "client": (client, server, ["CLOSE", "SYN_SENT", "ESTABLISHED"]),
        "server": (server, client, ["LISTEN", "SYN_RECV", "ESTABLISHED"]),
    })


LAB = Lab(
    name="handshake",
    title="The three-way handshake",
    lesson="A connection opens with SYN, SYN-ACK, ACK; each side picks a random initial sequence number "
           "(shown relative, from 0) and offers its options (MSS, SACK, window scale, timestamps).",
    steps=(
        Step("Connect", "The client calls connect(): the kernel sends a SYN with its options, the server's "
             "kernel answers SYN-ACK with its own, the client ACKs. No application code runs on the server "
             "side until accept().",
             Watch("packets", "the first three rows: S, SA, A", {"flags": "S"}), connect),
        Step("Ask and read", "Now data flows: the request, the answer, and the server closes first. The "
             "sequence numbers count bytes from the ISN, which netlens shows as 0.",
             Watch("packets", "the rows with len > 0 and their seq/ack", {"flags": "PA"}), ask),
    ),
    checks=(
        Check("three-way handshake", "S from the client, SA (ack=1), A (ack=1)", _handshake),
        Check("options offered", "MSS, SACK_PERM, WS and TS in both SYN and SYN-ACK", _options),
        Check("established", "the client socket ESTABLISHED in sock_diag after connect()", _established),
        Check("states", "kernel trace: client SYN_SENT → ESTABLISHED, server LISTEN → SYN_RECV → ESTABLISHED",
              _states),
    ),
    control="no-connect",
    variants={"no-connect": "the client never connects (no handshake to see)"},
    needs=frozenset({"trace"}),
)
