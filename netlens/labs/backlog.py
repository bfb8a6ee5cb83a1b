"""Lab ``backlog``: listen(1) and a crowd of connects; the accept queue holds backlog+1, the rest retry."""

from __future__ import annotations

from collections import Counter

from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch

BACKLOG = 1
CLIENTS = 5


def listen(ctx: LabContext) -> None:
    # A server too busy to accept(): it listens and never takes a connection off the queue.
    listener = ctx.tcp_socket()
    listener.bind((ctx.host, 0))
    listener.listen(16 if ctx.variant == "big-backlog" else BACKLOG)
    ctx.keep("port", listener.getsockname()[1])


def crowd(ctx: LabContext) -> None:
    port = ctx.facts["port"]
    for _ in range(CLIENTS):
        sock = ctx.tcp_socket()
        sock.setblocking(False)
        sock.connect_ex((ctx.host, port))
    # The first SYN retransmission leaves after 1 s.
    ctx.wait(1.3)
    ctx.kernel("crowded")


def _queue(evidence: Evidence) -> Observation:
    port = evidence.facts.get("port")
    snap = evidence.snapshot("crowded")
    sock = next((s for s in snap.sockets if s.state == "LISTEN" and s.local_port == port), None) if snap else None
    if snap is None or sock is None:
        return Observation(False, "no listening socket in sock_diag")
    return Observation(sock.recv_q == BACKLOG + 1 and sock.send_q == BACKLOG,
                       f"accept queue {sock.recv_q} of backlog {sock.send_q}", f"kernel snapshot at {snap.ts:.3f}")


def _overflows(evidence: Evidence) -> Observation:
    count = evidence.counter("TcpExtListenOverflows")
    return Observation(count > 0, f"TcpExtListenOverflows rose by {count}", "counters")


def _syn_retries(evidence: Evidence) -> Observation:
    port = evidence.facts.get("port")
    syns = [p for p in evidence.tcp() if p.flags == "S" and p.dport == port]
    again = [port_ for port_, n in Counter(p.sport for p in syns).items() if n > 1]
    first_retry = next((p for p in syns if p.sport in again and
                        any(q.sport == p.sport and q.no < p.no for q in syns)), None)
    return Observation(bool(again), f"{len(syns)} SYNs from {CLIENTS} clients; {len(again)} client(s) sent "
                       "theirs again", f"packet #{first_retry.no}" if first_retry else None)


LAB = Lab(
    name="backlog",
    title="The accept queue and its backlog",
    lesson="listen(n) sizes the queue of finished handshakes waiting for accept(): Linux lets n+1 in. Once "
           "it is full the kernel ignores new SYNs (ListenOverflows), and those clients send their SYN again "
           "after 1 s, 3 s, 7 s...",
    steps=(
        Step("Listen with backlog 1", "A server calls listen(1) and then never calls accept().",
             Watch("connections", "the LISTEN row: Recv-Q is the queue, Send-Q the backlog", {"state": "LISTEN"}),
             listen),
        Step("Five clients connect", f"{CLIENTS} clients connect at once. Two handshakes complete into the "
             "queue; the other SYNs are dropped and sent again a second later.",
             Watch("packets", "the repeated SYNs from the same client ports", {"flags": "S"}), crowd),
    ),
    checks=(
        Check("accept queue", f"LISTEN Recv-Q {BACKLOG + 1} (backlog + 1), Send-Q {BACKLOG}", _queue),
        Check("overflows", "the kernel counted ListenOverflows", _overflows),
        Check("SYN retries", "clients left out send their SYN again", _syn_retries),
    ),
    control="big-backlog",
    variants={"big-backlog": "listen(16): every client fits in the queue"},
    server_mode=None,
    settle=0.05,
)
