"""tracefs: find (or mount) it, and own one private instance for the life of a trace.

An instance (``instances/<prefix>-<pid>``) has its own ring buffer, clock,
enabled events and filters, so netlens never touches the system's main
buffer or another tracer's settings, and two netlens processes never see each
other's configuration. The instance is removed on :meth:`TraceInstance.remove`
(called from ``stop()``, ``atexit`` and the commands' SIGTERM handlers); one
left behind by a process that was killed is removed by the next netlens
trace that starts (:func:`remove_stale_instances`).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import time
from pathlib import Path

from netlens.errors import UserError

TRACEFS_MOUNT = Path("/sys/kernel/tracing")
LEGACY_TRACEFS = Path("/sys/kernel/debug/tracing")
DEFAULT_PREFIX = "netlens"


class TraceUnavailable(UserError):
    """Kernel tracing cannot be used here; the message says what is missing and how to get it (exit code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)


def _needs_root() -> TraceUnavailable:
    return TraceUnavailable(
        "kernel tracing needs root (it reads tracefs at /sys/kernel/tracing): run netlens trace with sudo."
    )


def _mounted_tracefs() -> Path | None:
    """Where tracefs is mounted in this mount namespace, if anywhere."""
    try:
        mounts = Path("/proc/self/mounts").read_text()
    except OSError:
        return None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "tracefs":
            return Path(parts[1].replace("\\040", " "))
    return None


def _mount_tracefs(target: Path) -> None:
    """``mount -t tracefs nodev TARGET`` through libc (no subprocess, no mount binary needed)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"nodev", os.fsencode(target), b"tracefs", 0, None) != 0:
        code = ctypes.get_errno()
        if code in (errno.EPERM, errno.EACCES):
            raise _needs_root()
        raise TraceUnavailable(
            f"tracefs is not mounted and mounting it failed ({os.strerror(code)}): "
            f"run 'mount -t tracefs nodev {target}' as root, or use a kernel built with CONFIG_FTRACE."
        )


def find_tracefs(mount: bool = True) -> Path:
    """The tracefs root (``/sys/kernel/tracing``), mounting it there when it is absent and ``mount`` is true."""
    mounted = _mounted_tracefs()
    if mounted is not None:
        root = mounted
    elif mount and TRACEFS_MOUNT.is_dir():
        if os.geteuid() != 0:
            raise _needs_root()
        _mount_tracefs(TRACEFS_MOUNT)
        root = TRACEFS_MOUNT
    elif (LEGACY_TRACEFS / "instances").is_dir():
        root = LEGACY_TRACEFS
    else:
        raise TraceUnavailable(
            "tracefs is not available: mount it with 'mount -t tracefs nodev /sys/kernel/tracing' "
            "(the kernel needs CONFIG_FTRACE, and a container needs /sys/kernel/tracing shared in)."
        )
    try:
        if not (root / "instances").is_dir():
            raise TraceUnavailable(f"{root} has no 'instances' directory: this kernel is too old for netlens trace.")
        os.listdir(root / "instances")
    except PermissionError:
        raise _needs_root() from None
    return root


def _process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
    except (OSError, StopIteration):
        return None
    # Field 22 (starttime, in clock ticks since boot) counts from after the command name's ')'.
    start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return int(boot.split()[1]) + start_ticks / os.sysconf("SC_CLK_TCK")


def _rmdir(path: Path, attempts: int = 20) -> bool:
    """Remove an instance directory; a reader still closing its files makes it EBUSY for a moment."""
    for attempt in range(attempts):
        try:
            path.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY or attempt == attempts - 1:
                return False
            time.sleep(0.05)
    return False


def remove_stale_instances(root: Path, prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Remove instances named ``<prefix>-<pid>[-n]`` whose process is gone; returns their names.

    "Gone" also covers a pid reused by a process that started after the
    instance was made. An instance a live process still reads is busy, and
    the kernel refuses to remove it, so a live tracer in another pid
    namespace is never disturbed.
    """
    pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)(?:-\d+)?$")
    removed: list[str] = []
    try:
        names = os.listdir(root / "instances")
    except OSError:
        return removed
    for name in names:
        match = pattern.match(name)
        if match is None or int(match[1]) == os.getpid():
            continue
        path = root / "instances" / name
        try:
            made = path.stat().st_mtime
        except OSError:
            continue
        started = _process_start(int(match[1]))
        if (started is None or started > made + 1.0) and _rmdir(path, attempts=1):
            removed.append(name)
    return removed


class TraceInstance:
    """One private tracefs instance, created by :meth:`create` and gone after :meth:`remove`."""

    _serial = 0

    def __init__(self, root: Path, prefix: str = DEFAULT_PREFIX) -> None:
        TraceInstance._serial += 1
        suffix = "" if TraceInstance._serial == 1 else f"-{TraceInstance._serial}"
        self.root = root
        self.name = f"{prefix}-{os.getpid()}{suffix}"
        self.path = root / "instances" / self.name
        self.created = False

    @property
    def events_dir(self) -> Path:
        """The instance's ``events`` directory (same formats as the top level's)."""
        return self.path / "events"

    def create(self) -> TraceInstance:
        """Make the instance directory (the kernel fills it in)."""
        try:
            self.path.mkdir()
        except PermissionError:
            raise _needs_root() from None
        except FileExistsError:
            raise TraceUnavailable(f"the trace instance {self.path} already exists; remove it with rmdir.") from None
        except OSError as exc:
            raise TraceUnavailable(f"cannot create a trace instance in {self.root}: {exc.strerror}.") from None
        self.created = True
        return self

    def write(self, relative: str, value: str) -> None:
        """Write one control file of the instance (``trace_clock``, ``events/tcp/tcp_probe/enable``...)."""
        with open(self.path / relative, "w") as handle:
            handle.write(value)

    def read(self, relative: str) -> str:
        """Read one file of the instance."""
        return (self.path / relative).read_text()

    def try_filter(self, event_dir: str, expression: str) -> bool:
        """Set an event's kernel filter; False (and no filter) when this kernel rejects the expression."""
        try:
            self.write(f"events/{event_dir}/filter", expression or "0")
            return True
        except OSError:
            return False

    def cpus(self) -> list[int]:
        """The CPUs with a per-CPU buffer in this instance."""
        found = []
        for entry in os.listdir(self.path / "per_cpu"):
            if entry.startswith("cpu") and entry[3:].isdigit():
                found.append(int(entry[3:]))
        return sorted(found)

    def remove(self) -> bool:
        """Stop tracing and remove the instance (idempotent); False if the kernel kept it (still busy)."""
        if not self.created:
            return True
        try:
            self.write("tracing_on", "0")
            self.write("events/enable", "0")
        except OSError:
            pass
        done = _rmdir(self.path)
        if done:
            self.created = False
        return done
