"""Real captures on lo of real traffic to netlens's search server: handshake, messages, teardown, resets, windows."""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
import sys

import pytest
from capture_helpers import (
    capturing,
    fill_until_blocked,
    requires_capture,
    reset_after_connect,
    rows,
    search,
    settle,
    stalled_reader,
)

from netlens.capture import Capture, CaptureError, PacketStore, bpf, read_pcap
from netlens.errors import UserError
from netlens.proto import encode_request
from netlens.server import Server, ServerConfig

pytestmark = [requires_capture, pytest.mark.capture]


def test_search_exchange_shows_handshake_request_response_and_server_fin_first(search_server: Server) -> None:
    port = search_server.address[1]
    with capturing(port) as capture:
        store = PacketStore(capture.ring, server_ports=(port,))
        search(port, "morpheus")
        settle(capture, store, until=10)
    packets = rows(store)
    flags = [p.flags for p in packets]
    assert flags[:3] == ["S", "SA", "A"], flags
    assert packets[0].dport == port and packets[1].sport == port
    assert (packets[0].seq, packets[1].seq, packets[1].ack, packets[2].seq, packets[2].ack) == (0, 0, 1, 1, 1)

    request = next(p for p in packets if p.len and p.dport == port)
    assert request.len == 146
    assert "search request 'morpheus'" in request.info
    response = next(p for p in packets if p.len and p.sport == port)
    assert response.len == 148
    assert response.info.startswith("response result 'Follow the white rabbit.")

    fins = [p for p in packets if "F" in p.flags]
    assert len(fins) == 2
    assert fins[0].sport == port, "the search server closes first (TIME_WAIT lands on the server)"
    stream = store.stream(request.stream)
    assert stream.first_fin == 1
    assert stream.completeness() == "SYN, SYN-ACK, ACK, data, FIN"
    assert stream.key.matches(("127.0.0.1", port), (stream.key.client[0], stream.key.client[1]))
    assert not any(p.analysis for p in packets), [p.line() for p in packets if p.analysis]
    # Kernel timestamps on the time.time() clock, in capture order.
    times = [p.time for p in packets]
    assert times == sorted(times) and abs(times[0] - search_server.started) < 60
    assert capture.stats().kernel_drops == 0


def test_written_pcap_rereads_identically(search_server: Server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = search_server.address[1]
    path = tmp_path / "search.pcap"
    with capturing(port, write=str(path)) as capture:
        store = PacketStore(capture.ring, server_ports=(port,))
        search(port, "ring")
        settle(capture, store, until=10)
    live = rows(store)
    assert capture.writer is not None and capture.writer.packets == len(live)

    loaded = read_pcap(path)
    assert loaded.warning is None
    again = PacketStore(loaded.ring, server_ports=(port,))
    again.update()
    reread = rows(again)
    strip = lambda p: (p.no, p.src, p.sport, p.dst, p.dport, p.flags, p.seq, p.ack, p.win, p.len, p.info)  # noqa: E731
    assert [strip(p) for p in reread] == [strip(p) for p in live]
    # Nanosecond pcap: the kernel timestamps survive exactly.
    assert [loaded.ring.ts_ns(p.no) for p in reread] == [capture.ring.ts_ns(p.no) for p in live]


def test_tshark_reads_the_written_pcap(search_server: Server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tshark = shutil.which("tshark")
    assert tshark, "tshark is required for this test: apt-get install tshark"
    port = search_server.address[1]
    path = tmp_path / "tshark.pcap"
    with capturing(port, write=str(path)) as capture:
        store = PacketStore(capture.ring, server_ports=(port,))
        search(port, "morpheus")
        settle(capture, store, until=10)
    ours = [(p.sport, p.dport, p.flags, p.seq, p.ack, p.len) for p in rows(store)]
    out = subprocess.run(
        [tshark, "-n", "-r", str(path), "-T", "fields", "-E", "separator=,",
         "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.flags", "-e", "tcp.seq", "-e", "tcp.ack",
         "-e", "tcp.len"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    letters = "FSRPAUECN"
    theirs = []
    for line in out.strip().splitlines():
        sport, dport, flag_bits, seq, ack, length = line.split(",")
        bits = int(flag_bits, 16)
        word = "".join(letter for i, letter in enumerate(letters) if bits >> i & 1)
        theirs.append((int(sport), int(dport), word, int(seq), int(ack) if "A" in word else 0, int(length)))
    assert theirs == ours


def test_reset_is_flagged(search_server: Server) -> None:
    port = search_server.address[1]
    with capturing(port) as capture:
        store = PacketStore(capture.ring, server_ports=(port,))
        client = reset_after_connect(port)
        settle(capture, store, until=4)
    packets = rows(store)
    resets = [p for p in packets if "R" in p.flags]
    assert resets, [p.line() for p in packets]
    assert resets[0].sport == client[1], "the client aborted the connection"
    assert "reset" in resets[0].analysis
    mark = store.analysis(resets[0].no)[0]
    assert mark.name == "reset" and "RST" in mark.rule
    stream = store.stream(resets[0].stream)
    assert "RST" in stream.completeness() and "reset by the client" in stream.describe()


def test_zero_window_is_flagged_when_the_reader_never_reads() -> None:
    with stalled_reader() as (listener, port), capturing(port) as capture:
        store = PacketStore(capture.ring, server_ports=(port,))
        fill_until_blocked(port, listener)
        settle(capture, store, until=10)
    packets = rows(store)
    zero = [p for p in packets if "zero-window" in p.analysis]
    assert zero, "\n".join(p.line() for p in packets[-30:])
    assert all(p.sport == port and p.win == 0 for p in zero), "the stalled reader advertises the zero window"
    assert any("window-full" in p.analysis for p in packets if p.dport == port)
    explained = store.analysis(zero[0].no)
    assert any(m.name == "zero-window" and "window of 0" in m.rule for m in explained)


def test_one_byte_per_segment_is_reassembled_into_one_request(search_server: Server) -> None:
    port = search_server.address[1]
    with capturing(port) as capture:
        store = PacketStore(capture.ring, server_ports=(port,))
        response = search(port, "morpheus", byte_by_byte=True, delay=0.002)
        settle(capture, store, until=150)
    assert b"white rabbit" in response
    packets = rows(store)
    data = [p for p in packets if p.len and p.dport == port]
    assert len(data) >= 100, "TCP_NODELAY with pauses sends (nearly) one byte per segment"
    assert sum(p.len for p in data) == 146
    complete = [p for p in data if "search request" in p.info]
    assert len(complete) == 1
    assert "search request 'morpheus'" in complete[0].info
    assert f"reassembled from {len(data)} segments #{data[0].no}–#{data[-1].no}" in complete[0].info
    assert all(f"reassembled in #{complete[0].no}" in p.info for p in data[:-1])
    # The dissection names the packets the message came from.
    layers = store.dissect(complete[0].no)
    reassembled = [layer for layer in layers if layer.name.startswith("Reassembled search message")]
    assert reassembled, [layer.name for layer in layers]
    fields = dict(reassembled[0].fields)
    assert fields["message"] == "search 'morpheus'"
    assert f"#{data[0].no}" in fields["packets"] and f"#{data[-1].no}" in fields["packets"]


def test_without_libpcap_the_hand_built_filter_keeps_only_the_port(search_server: Server, echo_server: Server,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bpf, "libpcap_available", lambda: False)
    port, other = search_server.address[1], echo_server.address[1]
    with capturing(port) as capture:
        assert "built by netlens" in capture.filter_note and "libpcap is not installed" in capture.filter_note
        store = PacketStore(capture.ring, server_ports=(port,))
        with socket.create_connection(("127.0.0.1", other), timeout=5) as echo:
            echo.sendall(b"not captured")
            assert echo.recv(100) == b"not captured"
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.sendto(b"x", ("127.0.0.1", port))  # right port, wrong protocol
        udp.close()
        search(port, "morpheus")
        settle(capture, store, until=10)
    packets = rows(store)
    assert len(packets) == 10, [p.line() for p in packets]
    assert all(p.proto == "TCP" and port in (p.sport, p.dport) for p in packets)
    with pytest.raises(CaptureError, match="needs libpcap"):
        Capture(port=None, bpf="tcp port 1").start()


@pytest.mark.parametrize("libpcap", [False, True], ids=["hand-built filter", "libpcap filter"])
def test_ipv6_loopback(libpcap: bool) -> None:
    if libpcap and not bpf.libpcap_available():
        pytest.skip("libpcap is not installed here (CI installs it with tshark)")
    try:
        server = Server(ServerConfig(mode="search", host="::1", port=0, idle_timeout=5.0)).start()
    except UserError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        port = server.address[1]
        with capturing(port, libpcap=libpcap) as capture:
            store = PacketStore(capture.ring, server_ports=(port,))
            with socket.create_connection(("::1", port), timeout=5) as sock:
                sock.sendall(encode_request("search", "ring"))
                while sock.recv(65536):
                    pass
            settle(capture, store, until=10)
    finally:
        server.stop()
    packets = rows(store)
    assert [p.flags for p in packets][:3] == ["S", "SA", "A"]
    assert packets[0].src == "::1" and store.stream(1).key.family == socket.AF_INET6
    assert any(p.info == "search request 'ring'" for p in packets)
    assert store.stream(1).key.matches(("::1", port, 0, 0), (store.stream(1).key.client[0], packets[0].sport))


def test_libpcap_path_when_installed(search_server: Server) -> None:
    if not bpf.libpcap_available():
        pytest.skip("libpcap is not installed here (CI installs it with tshark)")
    port = search_server.address[1]
    with capturing(None, bpf=f"tcp and port {port} and host 127.0.0.1") as capture:  # type: ignore[arg-type]
        assert "compiled by libpcap" in capture.filter_note
        store = PacketStore(capture.ring, server_ports=(port,))
        search(port, "morpheus")
        settle(capture, store, until=10)
    assert [p.flags for p in rows(store)][:3] == ["S", "SA", "A"]
    with pytest.raises(CaptureError, match="is not valid"):
        Capture(port=None, bpf="tcp port nonsense-words").start()


def test_recvmsg_reader_captures_the_same(search_server: Server) -> None:
    port = search_server.address[1]
    with capturing(port, method="recvmsg") as capture:
        store = PacketStore(capture.ring, server_ports=(port,))
        search(port, "morpheus")
        settle(capture, store, until=10)
        assert capture.stats().method == "recvmsg"
    assert [p.flags for p in rows(store)] == ["S", "SA", "A", "PA", "A", "PA", "A", "FA", "FA", "A"]


def test_stop_is_quick_and_stats_are_consistent(search_server: Server) -> None:
    import time

    port = search_server.address[1]
    capture = Capture(port=port).start()
    try:
        search(port)
        time.sleep(0.1)
        started = time.monotonic()
    finally:
        stats = capture.stop()
    assert time.monotonic() - started < 0.5
    assert not capture.running and not stats.running
    assert stats.captured == stats.stored == len(capture.ring) == 10
    assert stats.ring_evictions == 0 and stats.error is None and stats.method == "mmap"


def test_count_stops_the_capture_by_itself(search_server: Server) -> None:
    port = search_server.address[1]
    capture = Capture(port=port, count=3).start()
    try:
        search(port)
        for _ in range(40):
            if not capture.running:
                break
            capture.wait(0.05)
    finally:
        capture.stop()
    assert len(capture.ring) == 3


def test_missing_interface_is_one_sentence() -> None:
    with pytest.raises(CaptureError) as info:
        Capture(iface="nosuchif0").start()
    assert info.value.exit_code == 2
    message = str(info.value)
    assert "no network interface named 'nosuchif0'" in message and "lo" in message
    assert "\n" not in message


def test_no_privilege_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    import scapy.arch.linux

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(scapy.arch.linux, "L2ListenSocket", refuse)
    with pytest.raises(CaptureError) as info:
        Capture().start()
    # Root with CAP_NET_RAW refused anyway: a security policy, said in one sentence.
    assert "although this process has CAP_NET_RAW" in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize("euid,net_raw,expected", [
    (1000, False, "needs root or the CAP_NET_RAW capability; run netlens with sudo."),
    (0, False, "needs the CAP_NET_RAW capability, which this process lacks although it runs as root"),
    (0, True, "a security policy such as seccomp, AppArmor or SELinux forbids it"),
])
def test_privilege_sentence_fits_who_asks(euid: int, net_raw: bool, expected: str) -> None:
    from netlens.capture.packet_socket import privilege_sentence

    sentence = privilege_sentence("lo", euid=euid, net_raw=net_raw)
    assert expected in sentence and sentence.count(".") == 1 and ("sudo" in sentence) == (euid != 0)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is needed to drop CAP_NET_RAW")
def test_cli_without_cap_net_raw_exits_2_with_one_sentence() -> None:
    result = subprocess.run(
        ["setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw", sys.executable, "-m", "netlens",
         "capture", "--duration", "1"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith("netlens: capturing packets on lo needs the CAP_NET_RAW capability, "
                                            "which this process lacks")
    assert "sudo" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
