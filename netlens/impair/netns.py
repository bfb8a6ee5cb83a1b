"""Named network namespaces: create, enter from Python, run commands in, scrub and delete.

Entering is per *thread*: :func:`entered_netns` moves only the calling OS thread
into the namespace (``setns(2)`` through ctypes, since Python 3.11 has no
``os.setns``) and moves it back afterwards. Anything made inside keeps the
namespace for its whole life: a socket, a TUN device, a thread started there, a
child process forked there. Do not ``await`` inside the block: other coroutines
would run in the lab namespace.

Names carry their owner: ``PREFIX-PID-START-SEQ-ROLE`` (START is the owner's
start time in clock ticks since boot, so a recycled pid is not mistaken for the
owner). :func:`clean_stale` deletes the namespaces whose owner is gone, which is
how a lab killed with SIGKILL is cleaned by the next one.
"""

from __future__ import annotations

import ctypes
import os
import re
import socket
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from netlens.impair.errors import ImpairError
from netlens.impair.tools import TOOL_TIMEOUT, run_tool
from netlens.probe.counters import flat, read_counters

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
# Only per-namespace settings may be written: a "kernel." key would change the host.
_SYSCTL_KEY = re.compile(r"net(\.[A-Za-z0-9_-]+)+")
_PREFIX = re.compile(r"[a-z][a-z0-9]{0,11}")

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def entered_netns(path: str) -> Iterator[None]:
    """Run the block with the calling thread inside the network namespace at ``path``."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ImpairError(f"the network namespace {path} does not exist (was the lab torn down?).") from None
        try:
            _setns(target)
        except OSError as exc:
            raise ImpairError(f"cannot enter the network namespace {path}: {exc.strerror}.") from None
        finally:
            os.close(target)
        try:
            yield
        finally:
            # A thread left in a lab namespace would quietly open later sockets
            # there; failing loudly is the only safe answer if this ever fails.
            _setns(home)
    finally:
        os.close(home)


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of its stat), or ``None`` if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            text = stat.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rfind(")") + 2:].split()
    return int(fields[19])


@dataclass(frozen=True)
class Owner:
    """The process a namespace name says owns it."""

    pid: int
    start_ticks: int

    @classmethod
    def me(cls) -> Owner:
        """This process."""
        pid = os.getpid()
        return cls(pid, process_start_ticks(pid) or 0)

    def alive(self) -> bool:
        """Whether that very process still runs (same pid *and* same start time)."""
        return process_start_ticks(self.pid) == self.start_ticks


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a short lowercase name (letters then digits), else raise."""
    if not _PREFIX.fullmatch(prefix):
        raise ImpairError(f"the lab name prefix {prefix!r} must be 1-12 lowercase letters or digits, starting "
                          f"with a letter.")
    return prefix


def namespace_name(prefix: str, owner: Owner, seq: int, role: str) -> str:
    """The name of one lab namespace, e.g. ``nlab-4242-90871-1-client``."""
    return f"{prefix}-{owner.pid}-{owner.start_ticks}-{seq}-{role}"


def parse_owner(prefix: str, name: str) -> Owner | None:
    """The owner encoded in a namespace name made with ``prefix``, or ``None`` if the name is not ours."""
    match = re.fullmatch(rf"{re.escape(prefix)}-(\d+)-(\d+)-\d+-[a-z]+", name)
    return Owner(int(match[1]), int(match[2])) if match else None


def list_namespaces() -> list[str]:
    """Names of the named network namespaces (``ip netns list``), read from ``/run/netns``."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


class Namespace:
    """One named network namespace of a lab: enter it, run commands in it, read its counters."""

    def __init__(self, name: str, role: str) -> None:
        self.name = name
        self.role = role
        self.path = f"{NETNS_DIR}/{name}"

    def __repr__(self) -> str:
        return f"Namespace({self.name!r})"

    @property
    def inode(self) -> int:
        """The namespace's inode number (``lsns``, ``/proc/PID/ns/net``): one key for a tracer to filter on."""
        return os.stat(self.path).st_ino

    def entered(self) -> AbstractContextManager[None]:
        """Context manager: the calling thread runs inside this namespace (see the module docstring)."""
        return entered_netns(self.path)

    def tool(self, argv: Sequence[str], stdin: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``ip``/``nft``/``tc``/``ss``/... inside; failures raise :class:`ImpairError`."""
        with self.entered():
            return run_tool(argv, stdin=stdin, check=check)

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped in ``ip netns exec``, for commands that also need the namespace's ``/sys``."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], timeout: float = TOOL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run any command inside with ``ip netns exec`` and capture its output (it does not raise on failure)."""
        return subprocess.run(self.exec_argv(argv), capture_output=True, text=True, timeout=timeout)

    def set_sysctl(self, key: str, value: str | int, missing_ok: bool = False) -> None:
        """Write a per-namespace ``net.*`` sysctl inside this namespace only.

        ``missing_ok`` skips a setting this kernel does not have (IPv6 switched off at boot, say).
        """
        if not _SYSCTL_KEY.fullmatch(key):
            raise ImpairError(f"{key!r} is not a net.* sysctl; a lab may only change its own namespace's settings.")
        path = "/proc/sys/" + key.replace(".", "/")
        with self.entered():
            try:
                with open(path, "w", encoding="ascii") as setting:
                    setting.write(f"{value}\n")
            except FileNotFoundError:
                if not missing_ok:
                    raise ImpairError(f"this kernel has no setting {key}.") from None
            except OSError as exc:
                raise ImpairError(f"cannot set {key} = {value} in {self.name}: {exc.strerror}.") from None

    def get_sysctl(self, key: str) -> str:
        """Read a ``net.*`` sysctl as this namespace sees it."""
        if not _SYSCTL_KEY.fullmatch(key):
            raise ImpairError(f"{key!r} is not a net.* sysctl.")
        with self.entered(), open("/proc/sys/" + key.replace(".", "/"), encoding="ascii") as setting:
            return setting.read().strip()

    def counters(self) -> dict[str, int]:
        """The namespace's SNMP and TcpExt counters, nstat-style (``"TcpExt:ListenOverflows": 3``)."""
        with self.entered():
            # /proc/net is /proc/self/net, the *main* thread's namespace: ask for this thread's.
            return flat(read_counters("/proc/thread-self/net"), ":")


def create_namespace(name: str) -> None:
    """``ip netns add NAME``."""
    run_tool(["ip", "netns", "add", name])


def scrub_and_delete(namespace: Namespace) -> list[str]:
    """Remove everything inside ``namespace`` and then the namespace; returns the problems met (never raises).

    Links, rules and qdiscs are removed explicitly first, so nothing outlives
    ``ip netns del`` even while some socket of ours still pins the namespace.
    """
    problems: list[str] = []
    if not os.path.exists(namespace.path):
        return problems
    try:
        with namespace.entered():
            # if_nameindex asks the kernel of the calling thread's namespace (no tool to start).
            devices = [name for _, name in socket.if_nameindex() if name != "lo"]
        for device in devices:
            # Deleting one end of a veth pair deletes the other, which may already be gone.
            namespace.tool(["ip", "link", "del", device], check=False)
        namespace.tool(["nft", "flush", "ruleset"], check=False)
    except (ImpairError, OSError) as exc:
        problems.append(str(exc))
    try:
        run_tool(["ip", "netns", "del", namespace.name])
    except ImpairError as exc:
        problems.append(str(exc))
    return problems


def clean_stale(prefix: str) -> list[str]:
    """Delete the namespaces named with ``prefix`` whose owner process is gone; returns their names."""
    removed = []
    for name in list_namespaces():
        owner = parse_owner(prefix, name)
        if owner is not None and not owner.alive():
            scrub_and_delete(Namespace(name, name.rsplit("-", 1)[1]))
            removed.append(name)
    return removed
