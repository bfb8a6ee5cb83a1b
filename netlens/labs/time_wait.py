"""Lab ``time-wait``: whoever closes first keeps the TIME_WAIT; the search server closes first."""

from __future__ import annotations

from netlens.labs.checks import has_flags, recv_all, ref, state_observation
from netlens.labs.context import LabContext
from netlens.labs.evidence import Evidence
from netlens.labs.model import Check, Lab, Observation, Step, Watch
from netlens.proto import encode_request


def exchange(ctx: LabContext) -> None:
    sock = ctx.connect()
    ctx.keep("client_port", sock.getsockname()[1])
    request = encode_request("search", "ring")
    if ctx.variant == "client-closes-first":
        # Half a request, then close: now the client's FIN comes first.
        sock.sendall(request[:10])
        ctx.wait(0.05)
        sock.close()
        return
    sock.sendall(request)
    ctx.keep("answer", len(recv_all(sock)))
    sock.close()


def look(ctx: LabContext) -> None:
    ctx.wait(0.1)
    ctx.kernel("after-close")


def _first_fin(evidence: Evidence) -> Observation:
    fin = evidence.find(lambda p: has_flags(p, "F"))
    if fin is None:
        return Observation(False, "no FIN captured")
    who = "the server" if fin.sport == evidence.facts.get("server_port") else "the client"
    return Observation(who == "the server", f"the first FIN came from {who} (port {fin.sport})", ref(fin))


def _server_time_wait(evidence: Evidence) -> Observation:
    client = evidence.facts.get("client_port")
    for ts, sock in evidence.sockets(lambda s: s.state == "TIME_WAIT"):
        side = "client" if sock.local_port == client else "server"
        timer = sock.timer
        left = f", {timer.expires_ms / 1000:.1f} s left on its {timer.name} timer" if timer else ""
        return Observation(side == "server", f"TIME_WAIT on the {side} side (:{sock.local_port}){left}",
                           f"kernel snapshot at {ts:.3f}")
    return Observation(False, "no socket in TIME_WAIT")


def _timer(evidence: Evidence) -> Observation:
    for ts, sock in evidence.sockets(lambda s: s.state == "TIME_WAIT" and s.timer is not None):
        assert sock.timer is not None
        seconds = sock.timer.expires_ms / 1000
        return Observation(50 <= seconds <= 60, f"{sock.timer.name} timer, {seconds:.1f} s left",
                           f"kernel snapshot at {ts:.3f}")
    return Observation(False, "no TIME_WAIT timer in sock_diag")


def _states(evidence: Evidence) -> Observation:
    client, server = evidence.facts.get("client_port"), evidence.facts.get("server_port")
    return state_observation(evidence, {
        "server": (server, client, ["ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2", "CLOSE"]),
        "client": (client, server, ["ESTABLISHED", "CLOSE_WAIT", "LAST_ACK", "CLOSE"]),
    })


LAB = Lab(
    name="time-wait",
    title="Who closes first keeps TIME_WAIT",
    lesson="The side that closes first ends in TIME_WAIT for 60 s, so that a late segment of this "
           "connection cannot be taken for part of a new one on the same ports, and so the last ACK can "
           "be sent again if it was lost. The search server closes first, so the TIME_WAIT is the server's.",
    steps=(
        Step("One search", "The client sends a search and reads the answer; the server closes first "
             "(its FIN is the first one), the client closes after.",
             Watch("packets", "the first FIN: it comes from the server's port", {"flags": "F"}), exchange),
        Step("Look at the sockets", "The client's socket is gone; the server side of the connection is "
             "still in the kernel, in TIME_WAIT, with its timer counting down from 60 s.",
             Watch("connections", "the TIME_WAIT row and its timer", {"state": "TIME_WAIT"}), look),
    ),
    checks=(
        Check("server closes first", "the first FIN comes from the server", _first_fin),
        Check("TIME_WAIT side", "TIME_WAIT on the server's side of the connection", _server_time_wait),
        Check("TIME_WAIT timer", "a timewait timer with 50-60 s left", _timer),
        Check("states", "kernel trace: server FIN_WAIT1 → FIN_WAIT2 → (TIME_WAIT), client CLOSE_WAIT → LAST_ACK",
              _states),
    ),
    control="client-closes-first",
    variants={"client-closes-first": "the client gives up and closes first, so it keeps the TIME_WAIT"},
    needs=frozenset({"trace"}),
)
