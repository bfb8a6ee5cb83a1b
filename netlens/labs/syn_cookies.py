"""Lab ``syn-cookies``: when the SYN queue overflows, the kernel answers with a cookie instead of memory."""

from __future__ import annotations

import os

from netlens.labs.checks import recv_all
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch
from netlens.proto import encode_request

CLIENTS = 4


def _table() -> str:
    return f"nlb_cookies_{os.getpid()}"


def hold_acks(ctx: LabContext) -> None:
    if ctx.variant == "cookies-off":
        ctx.sysctl("net.ipv4.tcp_syncookies", 0)
    # The clients' handshake ACKs are dropped on the way in, so every half-open connection stays in the
    # server's SYN queue (SYN_RECV): the queue overflows as a SYN flood would make it.
    table = _table()
    ctx.run(["nft", "-f", "-"], stdin=(
        f"table inet {table} {{\n chain hold {{\n  type filter hook input priority 0; policy accept;\n"
        f"  tcp dport {ctx.port} tcp flags & (syn | ack | fin | rst | psh) == ack drop\n }}\n}}\n"))
    ctx.on_cleanup(lambda: ctx.net.run(["nft", "delete", "table", "inet", table], check=False))


def flood(ctx: LabContext) -> None:
    socks = []
    for _ in range(CLIENTS):
        sock = ctx.tcp_socket()
        sock.setblocking(False)
        sock.connect_ex((ctx.host, ctx.port))
        socks.append(sock)
    ctx.keep("clients", socks)
    ctx.wait(0.2)
    ctx.kernel("flooded")


def send_requests(ctx: LabContext) -> None:
    # A data segment carries an ACK too (with PSH, so the rule lets it through): for a cookie
    # connection that ACK is where the kernel checks the cookie and creates the socket.
    answered = 0
    for sock in ctx.facts["clients"]:
        sock.settimeout(3.0)
        try:
            sock.sendall(encode_request("search", "ring"))
            answered += len(recv_all(sock)) > 0
        except OSError:
            continue
    ctx.keep("answered", answered)


def _sent(evidence: Evidence) -> Observation:
    count = evidence.counter("TcpExtSyncookiesSent")
    return Observation(count > 0, f"TcpExtSyncookiesSent rose by {count}", "counters")


def _recv(evidence: Evidence) -> Observation:
    count = evidence.counter("TcpExtSyncookiesRecv")
    return Observation(count > 0, f"TcpExtSyncookiesRecv rose by {count}", "counters")


def _answered(evidence: Evidence) -> Observation:
    answered = evidence.facts.get("answered", 0)
    return Observation(answered == CLIENTS, f"{answered} of {CLIENTS} clients got their answer")


LAB = Lab(
    name="syn-cookies",
    title="SYN cookies when the SYN queue overflows",
    lesson="Half-open connections wait in the SYN queue. When it is full, instead of dropping new SYNs the "
           "kernel encodes the connection in the SYN-ACK's sequence number (a cookie) and keeps nothing; "
           "the client's ACK brings the cookie back and the connection is made from it.",
    steps=(
        Step("Hold the handshake ACKs", "A firewall rule in the lab's namespace drops the clients' final "
             "handshake ACKs, so half-open connections pile up in the server's SYN queue (listen backlog 1).",
             Watch("connections", "the SYN_RECV rows on the server's port", {"state": "SYN_RECV"}), hold_acks),
        Step("Four clients connect", f"{CLIENTS} clients connect: the first SYNs fill the queue, the next "
             "ones are answered with SYN cookies.",
             Watch("counters", "TcpExtSyncookiesSent", {"event": "SyncookiesSent"}), flood),
        Step("Data brings the cookies back", "Each client sends its request: the ACK it carries returns the "
             "cookie, the kernel checks it and creates the connection; every client is answered.",
             Watch("counters", "TcpExtSyncookiesRecv", {"event": "SyncookiesRecv"}), send_requests),
    ),
    checks=(
        Check("cookies sent", "TcpExtSyncookiesSent rises", _sent),
        Check("cookies received", "TcpExtSyncookiesRecv rises (valid cookies came back)", _recv),
        Check("everyone served", f"all {CLIENTS} clients get their answer", _answered),
    ),
    control="cookies-off",
    variants={"cookies-off": "net.ipv4.tcp_syncookies=0: an overflowing SYN queue drops SYNs instead"},
    sysctls={"net.ipv4.tcp_syncookies": 1},
    server_options={"backlog": 1},
)
