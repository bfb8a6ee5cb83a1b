"""Small helpers the lab modules share to phrase observations and point at their evidence."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterable

from netlens.capture import PacketSummary
from netlens.labs.evidence import Evidence
from netlens.labs.model import Observation


def ref(packet: PacketSummary) -> str:
    """``packet #7``: the link a check gives to its evidence."""
    return f"packet #{packet.no}"


def refs(packets: Iterable[PacketSummary], limit: int = 6) -> str:
    """``packets #3, #5, #9`` (at most ``limit`` numbers)."""
    numbers = [f"#{p.no}" for p in packets]
    more = f" (+{len(numbers) - limit})" if len(numbers) > limit else ""
    return "packets " + ", ".join(numbers[:limit]) + more if numbers else "no packet"


def has_flags(packet: PacketSummary, flags: str) -> bool:
    """True when ``packet`` carries every flag letter of ``flags`` (``"S"``, ``"SA"``, ``"R"``...)."""
    return all(letter in packet.flags for letter in flags)


def missing(what: str) -> Observation:
    """A failed observation: ``what`` was not in the evidence."""
    return Observation(False, what)


def trace_missing(evidence: Evidence, what: str) -> Observation:
    """A failed observation for a check that needs kernel trace events, saying why none are there."""
    why = next((note for note in evidence.notes if "trace" in note), "no kernel trace events were recorded")
    return Observation(False, f"{what}: {why}")


def contains_run(path: list[str], wanted: list[str]) -> bool:
    """True when ``wanted`` appears in ``path`` as consecutive states."""
    return any(path[i:i + len(wanted)] == wanted for i in range(len(path) - len(wanted) + 1))


def state_observation(evidence: Evidence, sides: dict[str, tuple[int | None, int | None, list[str]]]) -> Observation:
    """Check each side's kernel state path (``{"client": (local, remote, [states...])}``) against the trace."""
    if not evidence.trace:
        return trace_missing(evidence, "no state changes seen by the kernel trace")
    ok, seen, first = True, [], None
    for side, (local, remote, wanted) in sides.items():
        path = evidence.state_path(local, remote)
        ok = ok and contains_run(path, wanted)
        seen.append(f"{side} {' → '.join(path) or 'no change'}")
        changes = evidence.states(local, remote)
        first = first or (f"kernel event #{changes[0][0]}" if changes else None)
    return Observation(ok, "; ".join(seen), first)


def gaps_ms(packets: list[PacketSummary]) -> list[float]:
    """Milliseconds between consecutive packets of ``packets``."""
    return [round((b.time - a.time) * 1000, 1) for a, b in itertools.pairwise(packets)]


def recv_all(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """Read until the peer closes (or ``limit`` bytes); the socket's timeout bounds each read."""
    data = bytearray()
    while len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return bytes(data)
