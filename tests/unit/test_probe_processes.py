"""The /proc owner scan and its cache, on a fake /proc tree of symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netlens.probe import ProcessRef
from netlens.probe.processes import OwnerScanner, read_comm, scan_owners


class FakeProc:
    """A directory shaped like /proc: PID/comm and PID/fd/N -> 'socket:[INODE]' or a file path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "self").mkdir(parents=True)  # non-numeric entries are ignored

    def process(self, pid: int, comm: str, fds: dict[int, str | int]) -> None:
        fd_dir = self.root / str(pid) / "fd"
        fd_dir.mkdir(parents=True, exist_ok=True)
        (self.root / str(pid) / "comm").write_bytes(comm.encode() + b"\n")
        for fd, target in fds.items():
            self.set_fd(pid, fd, target)

    def set_fd(self, pid: int, fd: int, target: str | int) -> None:
        link = self.root / str(pid) / "fd" / str(fd)
        if link.is_symlink():
            link.unlink()
        os.symlink(f"socket:[{target}]" if isinstance(target, int) else target, link)

    def close_fd(self, pid: int, fd: int) -> None:
        (self.root / str(pid) / "fd" / str(fd)).unlink()


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "proc")


@pytest.fixture
def readlinks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = os.readlink

    def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "readlink", counting)
    return calls


def test_scan_maps_socket_inodes_to_every_owner_lowest_pid_first(proc: FakeProc) -> None:
    proc.process(200, "worker", {3: 1000, 4: "/var/log/x.log", 5: 2000})
    proc.process(100, "server", {0: "/dev/null", 7: 1000})
    owners = scan_owners(str(proc.root))
    assert owners[1000] == (ProcessRef(100, "server", 7), ProcessRef(200, "worker", 3))
    assert owners[2000] == (ProcessRef(200, "worker", 5),)
    assert set(owners) == {1000, 2000}


def test_comm_is_read_raw_and_may_be_hostile(proc: FakeProc) -> None:
    proc.process(300, "[red]\x1b[2J", {3: 5})
    assert read_comm(300, str(proc.root)) == "[red]\x1b[2J"
    assert read_comm(301, str(proc.root)) is None


def test_unchanged_fd_listings_cost_no_readlink(proc: FakeProc, readlinks: list[str]) -> None:
    proc.process(100, "server", {3: 1000, 4: 1001, 5: "/tmp/f"})
    scanner = OwnerScanner(str(proc.root), full_every=1e9)
    first = scanner.owners([1000, 1001])
    assert len(readlinks) == 3
    readlinks.clear()
    assert scanner.owners([1000, 1001]) == first
    assert readlinks == []


def test_a_new_fd_costs_one_readlink(proc: FakeProc, readlinks: list[str]) -> None:
    proc.process(100, "server", {3: 1000})
    scanner = OwnerScanner(str(proc.root), full_every=1e9)
    scanner.owners([1000])
    readlinks.clear()
    proc.set_fd(100, 4, 1001)
    owners = scanner.owners([1000, 1001])
    assert owners[1001] == (ProcessRef(100, "server", 4),)
    assert len(readlinks) == 1


def test_a_reused_fd_number_is_caught_by_a_full_rescan(proc: FakeProc) -> None:
    proc.process(100, "server", {3: 1000})
    scanner = OwnerScanner(str(proc.root), full_every=1e9)
    scanner.owners([1000])
    proc.set_fd(100, 3, 1001)  # closed and reopened between two snapshots: the listing looks the same
    before = scanner.full_scans
    owners = scanner.owners([1001])
    assert owners[1001] == (ProcessRef(100, "server", 3),)
    assert scanner.full_scans == before + 1


def test_sockets_nobody_visible_holds_do_not_rescan_every_time(proc: FakeProc) -> None:
    proc.process(100, "server", {3: 1000})
    scanner = OwnerScanner(str(proc.root), full_every=1e9)
    scanner.owners([1000, 4242])  # 4242: held by a process we cannot see
    count = scanner.full_scans
    scanner.owners([1000, 4242])
    assert scanner.full_scans == count


def test_periodic_full_scan_bounds_staleness(proc: FakeProc) -> None:
    now = [0.0]
    proc.process(100, "server", {3: 1000})
    proc.process(200, "child", {3: 1000})
    scanner = OwnerScanner(str(proc.root), full_every=10.0, clock=lambda: now[0])
    assert len(scanner.owners([1000])[1000]) == 2
    proc.set_fd(100, 3, "/tmp/file")  # the parent closed its copy; fd 3 is now a file
    now[0] = 5.0
    assert len(scanner.owners([1000])[1000]) == 2  # the cache may be stale for a while...
    now[0] = 10.0
    assert scanner.owners([1000])[1000] == (ProcessRef(200, "child", 3),)  # ...but not longer than full_every


def test_processes_that_vanish_drop_out(proc: FakeProc) -> None:
    proc.process(100, "server", {3: 1000})
    scanner = OwnerScanner(str(proc.root), full_every=1e9)
    assert 1000 in scanner.owners([1000])
    proc.close_fd(100, 3)
    (proc.root / "100" / "fd").rmdir()
    (proc.root / "100" / "comm").unlink()
    (proc.root / "100").rmdir()
    assert scanner.owners([1000]) == {}


def test_no_wanted_inodes_means_no_scan(proc: FakeProc, readlinks: list[str]) -> None:
    proc.process(100, "server", {3: 1000})
    assert OwnerScanner(str(proc.root)).owners([0, 0]) == {}
    assert readlinks == []
