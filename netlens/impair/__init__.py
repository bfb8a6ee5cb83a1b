"""Lab networks for the labs: two network namespaces joined by one wire, with loss, blackhole, rate and delay.

Design note (the API the labs use)
==================================

A :class:`LabNetwork` is a context manager. Entering builds, leaving tears
down, always: on an exception, Ctrl-C, SIGTERM/SIGHUP (turned into
``SystemExit`` while a lab is live), at interpreter exit; after a SIGKILL the
next lab deletes what a dead owner left (names carry the owner's pid and start
time), and the delay relay exits by itself when its owner dies.

The network::

    client netns  "PREFIX-PID-START-SEQ-client"      server netns  "...-server"
      lo, veth-client 198.18.K.1/24  <── wire ──>  veth-server 198.18.K.2/24, lo
                    (veth pair, or tap-client/tap-server joined by the delay relay)

- Hermetic: per-namespace sysctls and counters; congestion control and
  ``tcp_slow_start_after_idle`` are pinned in both namespaces; IPv6 is off and
  the neighbours are permanent, so a capture holds only the lab's own packets.
- MTU as asked (1500 by default: MSS 1448 with timestamps); offloads off, so a
  capture shows real frames with real checksums.
- ``delay_ms`` is the **one-way** delay (each frame is held that long in each
  direction, so the RTT is ``2 x delay_ms``); any delay builds the TAP link.
- Loss and blackhole are nftables drops on the netdev **ingress** hook of the
  receiving device: a capture on that device (or on the sender's) still shows
  the lost original, the receiving socket never gets it. ``toward`` names the
  receiver. Counters of what was dropped: :meth:`LabNetwork.drops`.
- Rate is ``tc tbf`` on the *sender's* egress (``toward`` names the receiver).
- Loss, blackhole, rate and delay all change at run time and combine freely.
- Code runs inside a namespace with ``with net.server.namespace.entered():``
  (``setns`` of the calling thread, undone afterwards). A socket, TUN device,
  thread or child process made inside stays in that namespace for its life. The
  tracefs reader must stay in the root namespace (tracepoints are global): filter
  its events by the lab's addresses, ports and ``describe()["server"]["netns_inode"]``.
- Commands: ``net.server.namespace.run(["ss", "-tin"])`` (``ip netns exec``).
- Counters: ``net.counters("server")["TcpExt:ListenOverflows"]`` (nstat-like).

Example (a transfer over a 25 ms, 10 Mbit/s path with 2 % loss toward the client)::

    import socket, threading
    from netlens.impair import LabNetwork

    with LabNetwork(delay_ms=25, slow_start_after_idle=False) as net:
        with net.server.namespace.entered():
            listener = socket.create_server((net.server.address, 0))
        with net.client.namespace.entered():
            client = socket.create_connection((net.server.address, listener.getsockname()[1]))
        server, _ = listener.accept()
        net.set_rate(10_000, toward="client")     # shaped on the server's egress
        net.set_loss(2, toward="client")          # 2 % of frames reaching the client dropped
        threading.Thread(target=server.sendall, args=(b"x" * 500_000,)).start()
        got = 0
        while got < 500_000:
            got += len(client.recv(65536))
        print(net.drops("client").loss, net.counters("server")["Tcp:RetransSegs"])
        for sock in (client, server, listener):
            sock.close()

Without root the constructor's ``build`` raises :class:`ImpairError` with one
sentence: lab networks need CAP_SYS_ADMIN and CAP_NET_ADMIN (run with sudo).
Stdlib only: ``ip``, ``nft`` and ``tc`` are run as commands (Debian packages
iproute2 and nftables); pyroute2 is not needed.
"""

from __future__ import annotations

from netlens.impair.errors import ImpairError
from netlens.impair.lab import LabNetwork, LabSpec, Toward
from netlens.impair.links import Endpoint
from netlens.impair.netns import Namespace, clean_stale, entered_netns
from netlens.impair.rules import DropCounts

__all__ = [
    "DropCounts",
    "Endpoint",
    "ImpairError",
    "LabNetwork",
    "LabSpec",
    "Namespace",
    "Toward",
    "clean_stale",
    "entered_netns",
]
