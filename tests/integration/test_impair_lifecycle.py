"""Nothing is left behind (as root): after a normal exit, an exception, SIGTERM, and SIGKILL followed by a new lab."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from impair_helpers import PREFIX, held_netns, lab, leftovers_inside, ours_alive, process_gone

from netlens.impair import ImpairError, LabNetwork
from netlens.impair.netns import process_start_ticks

NOTHING_INSIDE = {"links": "", "tables": "", "qdiscs": ""}

# A lab with every kind of part (TAP relay, nft table, tbf qdisc) in a process of its own,
# which reports what it built and then waits to be signalled.
CHILD = textwrap.dedent(f"""
    import json, signal, sys, time
    from netlens.impair import LabNetwork
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if started in background
    with LabNetwork(prefix={PREFIX!r}, delay_ms=2) as net:
        net.set_loss(1)
        net.set_rate(50_000)
        print(json.dumps(net.describe()), flush=True)
        time.sleep(30)
""")


def _impair_everything(net: LabNetwork) -> None:
    net.set_loss(5)
    net.set_blackhole(True, toward="client")
    net.set_rate(50_000)
    for endpoint in (net.client, net.server):
        assert "tbf" in endpoint.namespace.tool(["tc", "qdisc", "show"]).stdout
        assert PREFIX in endpoint.namespace.tool(["nft", "list", "tables"]).stdout


@contextmanager
def _child_lab() -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, child.stderr.read() if child.stderr else "the child printed nothing"
        yield child, json.loads(line)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=10)


@pytest.mark.parametrize("delay_ms", [0, 3])
def test_a_normal_exit_leaves_nothing_anywhere(delay_ms: int) -> None:
    with lab(delay_ms=delay_ms) as net:
        _impair_everything(net)
        names = [net.client.namespace.name, net.server.namespace.name]
        relay = (net.relay.pid, process_start_ticks(net.relay.pid)) if net.relay else None
        # Descriptors on the namespaces pin them past `ip netns del`, as a forgotten socket
        # would: their contents must be gone all the same, and the test can look inside.
        held = held_netns(net)
        for fd in held:  # the check below sees every kind of part while the lab is up
            assert all(leftovers_inside(fd).values())
    try:
        assert not set(names) & set(ours_alive())
        for fd in held:
            assert leftovers_inside(fd) == NOTHING_INSIDE
        if relay:
            assert process_gone(*relay, timeout=2)
    finally:
        for fd in held:
            os.close(fd)


def test_an_exception_inside_the_lab_still_tears_it_down() -> None:
    names: list[str] = []
    with pytest.raises(RuntimeError, match="lab step failed"):
        with lab(delay_ms=2) as net:
            names = [net.client.namespace.name, net.server.namespace.name]
            relay = net.relay
            raise RuntimeError("lab step failed")
    assert names and not set(names) & set(ours_alive())
    assert relay is not None and relay.process.poll() is not None


@pytest.mark.parametrize(("signum", "status"), [
    (signal.SIGTERM, 128 + signal.SIGTERM),
    (signal.SIGHUP, 128 + signal.SIGHUP),
    (signal.SIGINT, -signal.SIGINT),  # Ctrl-C: KeyboardInterrupt, then Python dies of SIGINT as it should
])
def test_a_terminating_signal_tears_the_lab_down_before_the_process_exits(signum: int, status: int) -> None:
    with _child_lab() as (child, built):
        names = [built["client"]["netns"], built["server"]["netns"]]
        relay = (built["relay_pid"], process_start_ticks(built["relay_pid"]))
        assert set(names) <= set(ours_alive())
        child.send_signal(signum)
        assert child.wait(10) == status
        assert not set(names) & set(ours_alive())
        assert process_gone(*relay, timeout=2)


def test_after_sigkill_the_relay_dies_by_itself_and_the_next_lab_cleans_the_stale_namespaces() -> None:
    with _child_lab() as (child, built):
        names = [built["client"]["netns"], built["server"]["netns"]]
        relay = (built["relay_pid"], process_start_ticks(built["relay_pid"]))
        held = [os.open(f"/run/netns/{name}", os.O_RDONLY) for name in names]
        try:
            child.kill()
            child.wait(10)
            # The relay notices its lifeline closed and exits; its TAP devices go with it.
            assert process_gone(*relay, timeout=3)
            assert set(names) <= set(ours_alive())  # SIGKILL ran no cleanup: the namespaces are stale
            with lab() as fresh:  # building a new lab cleans what dead owners left
                assert not set(names) & set(ours_alive())
                assert fresh.server.namespace.name in ours_alive()
            for fd in held:
                assert leftovers_inside(fd) == NOTHING_INSIDE
        finally:
            for fd in held:
                os.close(fd)


def test_without_root_building_a_lab_says_in_one_sentence_what_it_needs() -> None:
    code = ("from netlens.impair import LabNetwork, ImpairError\n"
            f"try:\n    LabNetwork(prefix={PREFIX!r}).build()\nexcept ImpairError as exc:\n    print(exc)\n")
    result = subprocess.run(["setpriv", "--bounding-set=-all", sys.executable, "-c", code],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    message = result.stdout.strip()
    assert message.startswith("Lab networks need root") and message.count(".") == 1
    assert "CAP_NET_ADMIN" in message and "sudo" in message


def test_a_failure_halfway_through_building_removes_what_was_made_and_says_why() -> None:
    before = set(ours_alive())
    net = LabNetwork(prefix=PREFIX, delay_ms=2, sysctls=(("net.ipv4.no_such_setting", "1"),))
    with pytest.raises(ImpairError, match=r"no setting net\.ipv4\.no_such_setting"):
        net.build()  # fails after the client namespace exists
    assert set(ours_alive()) == before
    with pytest.raises(ImpairError, match="built only once"):
        net.build()
