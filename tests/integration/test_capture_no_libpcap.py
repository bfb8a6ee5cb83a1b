"""``netlens capture --port P`` where libpcap is installed but cannot be loaded: netlens's own filter program.

The library is made unloadable for one process tree only: a private mount
namespace (``unshare -m``) where ``/dev/null`` is bind-mounted over the shared
object, so ``ldconfig`` still lists it but loading it fails, as on a system
with a broken or foreign-architecture libpcap.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import socket
import subprocess
import sys
import time

import pytest


def _libpcap_path() -> str:
    name = ctypes.util.find_library("pcap")
    assert name, "libpcap is part of the test environment"
    listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        if line.strip().startswith(name) and "=>" in line:
            return os.path.realpath(line.split("=>")[1].strip())
    raise AssertionError(f"ldconfig does not list {name}")


@pytest.mark.timeout(60)
def test_port_capture_without_a_loadable_libpcap() -> None:
    library = _libpcap_path()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    script = (f"mount --bind /dev/null {library} && "
              f"exec {sys.executable} -m netlens capture -i lo -p {port} -c 6 -d 20 --json")
    proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        started = proc.stderr.readline()
        assert "capturing on lo" in started, started + proc.stderr.read()
        assert f"kernel BPF filter 'tcp port {port}' built by netlens" in started
        assert "libpcap is not installed or cannot be loaded" in started
        # Traffic on the port (captured) and on another port (filtered out).
        other = socket.create_server(("127.0.0.1", 0))
        for target in (other, listener):
            client = socket.create_connection(target.getsockname())
            server, _ = target.accept()
            client.sendall(b"ping")
            assert server.recv(4) == b"ping"
            client.close()
            server.close()
            time.sleep(0.05)
        other.close()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(5)
        listener.close()
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 6, err
    assert all(port in (row["sport"], row["dport"]) for row in rows)
    assert rows[0]["flags"] == "S"
    # Outside that namespace the library still loads: the bind mount stayed private.
    assert ctypes.CDLL(library) is not None
