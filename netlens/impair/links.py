"""The wire between the two lab namespaces: a veth pair, or two TAP devices joined by the delay relay.

Both kinds end up the same to a lab: one Ethernet device per namespace, MTU as
asked, fixed MAC addresses, a /24 with the client at .1 and the server at .2,
and *permanent* neighbour entries, so no ARP exchange ever appears in a capture
or delays the first SYN.

The veth ends are made to behave like a real NIC for a capture: offloads off
(``gso_max_segs 1``, TX checksumming off), so a capture shows frames of at most
MTU bytes with correct checksums rather than 64 KB super-frames whose
checksums the hardware would have filled in. TAP devices have no offloads.
"""

from __future__ import annotations

import ctypes
import fcntl
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass

from netlens.impair.errors import ImpairError
from netlens.impair.netns import Namespace
from netlens.impair.relay import DelayLink, open_tap
from netlens.impair.tools import run_tool

# 198.18.0.0/15 is set aside for network benchmark labs (RFC 2544): 512 subnets of /24.
LAB_SUPERNET = ipaddress.IPv4Network("198.18.0.0/15")
SUBNETS = 512
CLIENT_MAC = "02:6e:6c:00:00:01"
SERVER_MAC = "02:6e:6c:00:00:02"

SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17


@dataclass(frozen=True)
class Endpoint:
    """One end of the lab wire: its namespace, device, address and MAC."""

    role: str
    namespace: Namespace
    device: str
    address: str
    mac: str


def subnet_addresses(index: int) -> tuple[str, str]:
    """The (client, server) addresses of lab subnet ``index`` (0-511): ``198.18.K.1`` and ``.2``."""
    if not 0 <= index < SUBNETS:
        raise ImpairError(f"the lab subnet {index} is not between 0 and {SUBNETS - 1}.")
    base = int(LAB_SUPERNET.network_address) + index * 256
    return str(ipaddress.IPv4Address(base + 1)), str(ipaddress.IPv4Address(base + 2))


def disable_tx_checksum(device: str) -> None:
    """Turn TX checksum offload off on ``device`` in the calling thread's namespace (``ethtool -K tx off``)."""
    # struct ifreq carries a pointer to struct ethtool_value {u32 cmd; u32 data}.
    value = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0), 8)
    request = struct.pack("16sP", device.encode(), ctypes.addressof(value)).ljust(40, b"\0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        try:
            fcntl.ioctl(control.fileno(), SIOCETHTOOL, request)
        except OSError as exc:
            raise ImpairError(f"cannot turn checksum offload off on {device}: {exc.strerror}.") from None


def create_veth(client: Endpoint, server: Endpoint, mtu: int) -> None:
    """Create the veth pair with each end born directly inside its namespace (nothing in the root one)."""
    def end(endpoint: Endpoint) -> list[str]:
        return [endpoint.device, "netns", endpoint.namespace.name, "address", endpoint.mac, "mtu", str(mtu),
                "gso_max_segs", "1"]
    run_tool(["ip", "link", "add", *end(client), "type", "veth", "peer", "name", *end(server)])
    for endpoint in (client, server):
        with endpoint.namespace.entered():
            disable_tx_checksum(endpoint.device)


def create_tap_link(client: Endpoint, server: Endpoint, mtu: int, delay_ms: float) -> DelayLink:
    """Create a TAP device in each namespace and start the relay that joins them with ``delay_ms`` each way."""
    ends: list[int] = []
    try:
        for endpoint in (client, server):
            with endpoint.namespace.entered():
                ends.append(open_tap(endpoint.device))
        return DelayLink(ends[0], ends[1], delay_ms)
    finally:
        # The relay holds its own copies; ours would keep the devices alive after it exits.
        for fd in ends:
            os.close(fd)


def configure_end(endpoint: Endpoint, peer: Endpoint, mtu: int) -> None:
    """Address, MTU, MAC, permanent neighbour entry for the peer, and every device up, in one ``ip -batch``."""
    batch = "\n".join([
        f"link set dev {endpoint.device} address {endpoint.mac} mtu {mtu}",
        f"addr add {endpoint.address}/24 dev {endpoint.device}",
        f"link set dev {endpoint.device} up",
        f"neigh replace {peer.address} lladdr {peer.mac} dev {endpoint.device} nud permanent",
        "link set dev lo up",
    ]) + "\n"
    endpoint.namespace.tool(["ip", "-batch", "-"], stdin=batch)
