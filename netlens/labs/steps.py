"""Step actions more than one lab uses."""

from __future__ import annotations

from netlens.labs.context import LabContext


def connect_reading(ctx: LabContext) -> None:
    """Connect a client to the lab's server and read whatever comes back on a background thread.

    Keeps ``client_port``, the server's ``conn`` id for it, and ``received`` (a one-item list
    with the bytes read so far) for the later steps and the checks.
    """
    sock = ctx.connect()
    ctx.keep("client_port", sock.getsockname()[1])
    ctx.keep("conn", ctx.server_conn(sock))
    ctx.keep("received", ctx.drain(sock))
