"""Running ``ip``, ``nft`` and ``tc``, and checking up front that we may and can.

Every command the layer runs goes through :func:`run_tool`, so a failure always
becomes one :class:`ImpairError` sentence that names the command and quotes the
tool's own complaint, never a ``CalledProcessError`` traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from netlens.impair.errors import ImpairError

# Capability bits (linux/capability.h): creating namespaces needs CAP_SYS_ADMIN,
# links/rules/qdiscs/TUN devices need CAP_NET_ADMIN.
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21

# Which Debian package brings each tool, for the error sentence.
TOOL_PACKAGES = {"ip": "iproute2", "tc": "iproute2", "nft": "nftables"}

NEEDS_ROOT = (
    "lab networks need root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces, veth pairs, "
    "nftables rules, tc qdiscs and TUN devices: run netlens with sudo."
)

TOOL_TIMEOUT = 10.0


def effective_capabilities(status_text: str) -> int:
    """The ``CapEff`` bit mask from the text of ``/proc/<pid>/status`` (0 when absent)."""
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split(":", 1)[1].strip(), 16)
    return 0


def missing_privileges(status_text: str) -> str | None:
    """The one-sentence reason we may not build labs, or ``None`` when both capabilities are held."""
    caps = effective_capabilities(status_text)
    needed = (1 << CAP_NET_ADMIN) | (1 << CAP_SYS_ADMIN)
    return None if caps & needed == needed else NEEDS_ROOT


def require_lab_support() -> None:
    """Raise :class:`ImpairError` unless this process may build labs and ``ip``, ``nft`` and ``tc`` exist."""
    with open("/proc/self/status", encoding="ascii", errors="replace") as status:
        reason = missing_privileges(status.read())
    if reason is not None:
        raise ImpairError(reason[0].upper() + reason[1:])
    for tool, package in TOOL_PACKAGES.items():
        if shutil.which(tool) is None:
            raise ImpairError(f"Lab networks need the `{tool}` command: install the Debian package {package}.")
    if not os.path.exists("/dev/net/tun"):
        raise ImpairError("Lab networks with a delay need /dev/net/tun: load the tun module (modprobe tun).")


def run_tool(argv: Sequence[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a tool in the calling thread's network namespace; on failure raise one clear sentence.

    A child process inherits the namespaces of the thread that forks it, which
    is how commands run inside a lab namespace (see ``netns.entered``).
    """
    try:
        result = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    except FileNotFoundError:
        package = TOOL_PACKAGES.get(argv[0], argv[0])
        raise ImpairError(f"Lab networks need the `{argv[0]}` command: install the Debian package {package}.") from None
    except subprocess.TimeoutExpired:
        raise ImpairError(f"`{' '.join(argv)}` did not finish within {TOOL_TIMEOUT:.0f} s.") from None
    if check and result.returncode != 0:
        complaint = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        raise ImpairError(f"`{' '.join(argv)}` failed: {complaint}.")
    return result


def read_host_sysctl(path: str) -> str:
    """A sysctl of the root namespace (``path`` under ``/proc/sys``), or ``"?"`` if it cannot be read."""
    try:
        with open(f"/proc/sys/{path}", encoding="ascii") as setting:
            return setting.read().strip()
    except OSError:
        return "?"
