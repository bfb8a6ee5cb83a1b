"""The portable fallback: TCP sockets from ``psutil.net_connections``, with what it cannot see left unknown.

psutil gives state, addresses, pid and fd, but no queues, inode, uid,
TCP_INFO, memory or timers; those fields are ``None`` (never 0, which would
be a lie a teacher could point at).
"""

from __future__ import annotations

import socket
from typing import Any

from netlens.probe.model import ProcessRef, SocketInfo

_FAMILIES = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}
# psutil's CONN_* strings are already the ss names, except its "NONE".
_UNKNOWN_STATE = "NONE"


def _endpoint(addr: Any, family: int) -> tuple[str, int]:
    """Return (address, port) of a psutil address tuple; an unconnected end is the wildcard with port 0, as in ss."""
    if addr:
        return addr[0], addr[1]
    return ("::" if family == socket.AF_INET6 else "0.0.0.0"), 0


def psutil_sockets(port: int | None = None, processes: bool = True) -> list[SocketInfo]:
    """Return TCP sockets as psutil sees them, filtered to ``port`` at either end when given.

    ``processes=False`` drops owner information, as with sock_diag. psutil
    needs root to attribute other users' sockets; unattributed ones keep no owner.
    """
    import psutil  # a dependency, but only this path needs it loaded

    names: dict[int, str | None] = {}
    result: list[SocketInfo] = []
    for conn in psutil.net_connections(kind="tcp"):
        local_addr, local_port = _endpoint(conn.laddr, conn.family)
        remote_addr, remote_port = _endpoint(conn.raddr, conn.family)
        if port is not None and port not in (local_port, remote_port):
            continue
        owners: tuple[ProcessRef, ...] = ()
        if processes and conn.pid:
            if conn.pid not in names:
                try:
                    names[conn.pid] = psutil.Process(conn.pid).name()
                except (psutil.Error, OSError):
                    names[conn.pid] = None
            name = names[conn.pid]
            if name is not None:
                owners = (ProcessRef(conn.pid, name, conn.fd if conn.fd is not None and conn.fd >= 0 else None),)
        result.append(
            SocketInfo(
                state=conn.status if conn.status != _UNKNOWN_STATE else "UNKNOWN",
                family=_FAMILIES.get(conn.family, str(int(conn.family))),
                local_addr=local_addr,
                local_port=local_port,
                remote_addr=remote_addr,
                remote_port=remote_port,
                recv_q=None,
                send_q=None,
                inode=None,
                uid=None,
                cookie=None,
                timer=None,
                owners=owners,
                attributes=b"",  # so tcp_info, memory, congestion and shutdown are None
            )
        )
    return result
