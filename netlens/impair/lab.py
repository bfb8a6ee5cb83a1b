"""``LabNetwork``: a client namespace and a server namespace joined by one wire, with impairments.

See the package docstring for the API by example. This module owns the order of
building and tearing down; the parts live in ``netns``, ``links``, ``rules``,
``shaping`` and ``relay``.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from netlens.impair import lifecycle
from netlens.impair.errors import ImpairError
from netlens.impair.links import (
    CLIENT_MAC,
    SERVER_MAC,
    SUBNETS,
    Endpoint,
    configure_end,
    create_tap_link,
    create_veth,
    subnet_addresses,
)
from netlens.impair.netns import (
    Namespace,
    Owner,
    check_prefix,
    clean_stale,
    create_namespace,
    namespace_name,
    scrub_and_delete,
)
from netlens.impair.relay import DelayLink
from netlens.impair.rules import DropCounts, IngressPolicy, ingress_script, parse_counters
from netlens.impair.shaping import RateLimit, tbf_command
from netlens.impair.tools import read_host_sysctl, require_lab_support

Toward = Literal["server", "client", "both"]
DEFAULT_PREFIX = "nlab"
# Settings a hermetic lab pins in both namespaces, whatever the host has. IPv6 is
# off so that no router solicitation or MLD report ever appears in a capture.
_BASE_SYSCTLS = (
    ("net.ipv6.conf.all.disable_ipv6", "1"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
)
_sequence = itertools.count(1)
log = logging.getLogger("netlens.impair")


@dataclass(frozen=True)
class LabSpec:
    """What to build. Impairments other than the delay are set (and changed) on the built network."""

    mtu: int = 1500
    #: One-way delay in ms: each frame is held this long in each direction, so the RTT is 2 x delay_ms.
    #: Any delay (or link="tap") builds the TAP relay link instead of a veth pair.
    delay_ms: float = 0.0
    link: Literal["auto", "veth", "tap"] = "auto"
    #: The namespaces' default congestion control, or None to keep the one they inherit from the host.
    #: Outside the root namespace the kernel only accepts names listed in the host's
    #: net.ipv4.tcp_allowed_congestion_control; any other is set per socket (TCP_CONGESTION, as root).
    congestion_control: str | None = None
    slow_start_after_idle: bool = True
    #: Lab subnet 0-511 (198.18.K.0/24); None picks one from the pid, so concurrent labs differ.
    subnet: int | None = None
    #: Further net.* sysctls for both namespaces, e.g. (("net.ipv4.tcp_syncookies", "2"),).
    sysctls: tuple[tuple[str, str], ...] = ()
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not 576 <= self.mtu <= 65535:
            raise ImpairError(f"an MTU of {self.mtu} is outside 576-65535.")
        if self.delay_ms < 0:
            raise ImpairError(f"a delay of {self.delay_ms} ms is negative.")
        if self.link == "veth" and self.delay_ms > 0:
            raise ImpairError("a veth link cannot delay frames: leave link='auto' to get the TAP relay link.")
        check_prefix(self.prefix)

    @property
    def link_kind(self) -> Literal["veth", "tap"]:
        """The kind of wire this spec builds."""
        if self.link != "auto":
            return self.link
        return "tap" if self.delay_ms > 0 else "veth"

    def pinned_sysctls(self) -> list[tuple[str, str]]:
        """Every sysctl written in both namespaces, in order."""
        congestion = [("net.ipv4.tcp_congestion_control", self.congestion_control)] if self.congestion_control else []
        return [*_BASE_SYSCTLS, *congestion,
                ("net.ipv4.tcp_slow_start_after_idle", "1" if self.slow_start_after_idle else "0"),
                *self.sysctls]


@dataclass
class _EndState:
    """The impairments currently set on one endpoint's device (ingress policy, egress rate)."""

    policy: IngressPolicy = field(default_factory=IngressPolicy)
    rate: RateLimit | None = None
    has_table: bool = False


class LabNetwork:
    """Two network namespaces (client, server) joined by a veth pair or a delayed TAP link; a context manager."""

    def __init__(self, spec: LabSpec | None = None, **options: Any) -> None:
        self.spec = spec if spec is not None else LabSpec(**options)
        owner = Owner.me()
        self.seq = next(_sequence)
        subnet = self.spec.subnet if self.spec.subnet is not None else (owner.pid + self.seq) % SUBNETS
        self.subnet = subnet
        client_address, server_address = subnet_addresses(subnet)
        device = "tap" if self.spec.link_kind == "tap" else "veth"
        self.client = Endpoint("client", Namespace(namespace_name(self.spec.prefix, owner, self.seq, "client"),
                                                   "client"), f"{device}-client", client_address, CLIENT_MAC)
        self.server = Endpoint("server", Namespace(namespace_name(self.spec.prefix, owner, self.seq, "server"),
                                                   "server"), f"{device}-server", server_address, SERVER_MAC)
        self.relay: DelayLink | None = None
        self._state = {"client": _EndState(), "server": _EndState()}
        self._created: list[Namespace] = []
        self._lock = threading.RLock()
        self._closed = False
        self._built = False

    # ------------------------------------------------------------------ building and teardown

    def __enter__(self) -> LabNetwork:
        return self.build()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def build(self) -> LabNetwork:
        """Create the namespaces and the wire; on any failure tear down what was made and re-raise."""
        if self._built:
            raise ImpairError("a lab network is built only once; make a new LabNetwork for another run.")
        self._built = True
        require_lab_support()
        clean_stale(self.spec.prefix)
        lifecycle.register(self)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        spec = self.spec
        for endpoint in (self.client, self.server):
            # Recorded before it exists: a signal between the two steps must not leak it.
            self._created.append(endpoint.namespace)
            create_namespace(endpoint.namespace.name)
            for key, value in spec.pinned_sysctls():
                self._pin(endpoint.namespace, key, value)
        if spec.link_kind == "tap":
            self.relay = create_tap_link(self.client, self.server, spec.mtu, spec.delay_ms)
        else:
            create_veth(self.client, self.server, spec.mtu)
        configure_end(self.client, self.server, spec.mtu)
        configure_end(self.server, self.client, spec.mtu)

    @staticmethod
    def _pin(namespace: Namespace, key: str, value: str) -> None:
        try:
            # With IPv6 switched off at boot there is nothing to switch off here.
            namespace.set_sysctl(key, value, missing_ok=key.startswith("net.ipv6."))
        except ImpairError:
            if key != "net.ipv4.tcp_congestion_control":
                raise
            allowed = read_host_sysctl("net/ipv4/tcp_allowed_congestion_control")
            raise ImpairError(
                f"a lab namespace cannot default to the congestion control {value!r}: the host allows only "
                f"{allowed!r} there (net.ipv4.tcp_allowed_congestion_control); set it per socket with "
                f"TCP_CONGESTION instead.") from None

    def close(self) -> None:
        """Remove everything the lab made (relay, devices, rules, qdiscs, namespaces); idempotent, never raises."""
        with self._lock:
            if self._closed:
                return
            if self.relay is not None:
                self.relay.stop()  # its TAP devices vanish with its descriptors
            while self._created:
                for problem in scrub_and_delete(self._created[-1]):
                    log.warning("lab teardown: %s", problem)
                self._created.pop()
            self._closed = True
        lifecycle.unregister(self)

    # ------------------------------------------------------------------ impairments, changeable at run time

    def _endpoints(self, toward: Toward) -> list[Endpoint]:
        """The endpoints whose *received* (ingress) or *sent* (egress) traffic an impairment ``toward`` touches."""
        if toward not in ("server", "client", "both"):
            raise ImpairError(f"toward must be 'server', 'client' or 'both', not {toward!r}.")
        return [e for e in (self.client, self.server) if toward in ("both", e.role)]

    def _apply_policy(self, endpoint: Endpoint, policy: IngressPolicy) -> None:
        state = self._state[endpoint.role]
        endpoint.namespace.tool(["nft", "-f", "-"], stdin=ingress_script(self.spec.prefix, endpoint.device, policy))
        state.policy, state.has_table = policy, True

    def set_loss(self, percent: float, toward: Toward = "both") -> None:
        """Drop ``percent`` % of the frames arriving at the server, the client or both (0 turns loss off)."""
        with self._lock:
            for endpoint in self._endpoints(toward):
                old = self._state[endpoint.role].policy
                self._apply_policy(endpoint, IngressPolicy(loss_percent=percent, blackhole=old.blackhole))

    def set_blackhole(self, on: bool, toward: Toward = "both") -> None:
        """Drop every frame arriving at the server, the client or both, until turned off again."""
        with self._lock:
            for endpoint in self._endpoints(toward):
                old = self._state[endpoint.role].policy
                self._apply_policy(endpoint, IngressPolicy(loss_percent=old.loss_percent, blackhole=on))

    def set_rate(self, rate_kbit: int | None, toward: Toward = "both", queue_ms: float = 50.0) -> None:
        """Limit traffic *toward* the server, the client or both to ``rate_kbit`` kbit/s (``None`` lifts it).

        The limit sits on the sender's egress (tc tbf): traffic toward the client is
        shaped on the server's device, so the queue builds where the sender is.
        """
        limit = RateLimit(rate_kbit, queue_ms) if rate_kbit is not None else None
        with self._lock:
            for receiver in self._endpoints(toward):
                sender = self.server if receiver is self.client else self.client
                state = self._state[sender.role]
                if limit is None and state.rate is None:
                    continue
                sender.namespace.tool(tbf_command(sender.device, limit, self.spec.mtu))
                state.rate = limit

    def set_delay(self, delay_ms: float) -> None:
        """Change the one-way delay (TAP link only; the veth link has none)."""
        if self.relay is None:
            raise ImpairError("this lab has a veth link, which cannot delay: build it with a delay_ms > 0.")
        self.relay.set_delay(delay_ms)

    # ------------------------------------------------------------------ what happened

    def drops(self, role: Literal["server", "client"]) -> DropCounts:
        """Frames dropped so far on arrival at ``role`` (by loss, by the blackhole)."""
        endpoint = self.server if role == "server" else self.client
        if not self._state[role].has_table:
            return DropCounts()
        listing = endpoint.namespace.tool(["nft", "-j", "list", "counters", "table", "netdev", self.spec.prefix])
        return parse_counters(listing.stdout)

    def counters(self, role: Literal["server", "client"]) -> dict[str, int]:
        """The namespace's SNMP/TcpExt counters (``"TcpExt:SyncookiesSent"``...), like ``nstat -az`` there."""
        return (self.server if role == "server" else self.client).namespace.counters()

    def describe(self) -> dict[str, Any]:
        """Everything a tracer, a capture or a report needs to find this lab, as JSON-ready data."""
        ends = {}
        for endpoint in (self.client, self.server):
            state = self._state[endpoint.role]
            ends[endpoint.role] = {
                "netns": endpoint.namespace.name,
                "netns_inode": endpoint.namespace.inode if not self._closed else None,
                "device": endpoint.device, "address": endpoint.address, "mac": endpoint.mac,
                "loss_percent_in": state.policy.loss_percent, "blackhole_in": state.policy.blackhole,
                "rate_kbit_out": state.rate.rate_kbit if state.rate else None,
            }
        return {"link": self.spec.link_kind, "mtu": self.spec.mtu,
                "delay_ms": self.relay.delay_ms if self.relay else 0.0,
                "relay_pid": self.relay.pid if self.relay else None,
                "relay_running": self.relay.running if self.relay else None,
                "congestion_control": (self.client.namespace.get_sysctl("net.ipv4.tcp_congestion_control")
                                       if not self._closed else self.spec.congestion_control),
                "slow_start_after_idle": self.spec.slow_start_after_idle,
                "owner_pid": os.getpid(), **ends}
