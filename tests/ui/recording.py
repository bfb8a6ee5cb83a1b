"""A fixed workshop moment, for deterministic screens (snapshot tests).

Three connections to a search server on 127.0.0.1:65432, built byte by byte:

* #1 (client port 50412) searched ``morpheus``, got its answer, and the server
  closed first: its socket now waits in TIME_WAIT;
* #2 (50418) is half way through a request: 60 bytes arrived, the server is
  reading the JSON header, and the user paused reading it;
* #3 (50424) searched for ``[bold red]x[/]\\x1b[2J`` (markup and an ANSI escape that
  must show literally), got "No match", and its client aborted with RST.

The packets are real TCP/IP frames (tests/support/synth.py), the socket events
are the records the server loop publishes, and the kernel snapshot is built
with the probe's own encoder: every layer of the app runs on them unchanged.
"""

from __future__ import annotations

import dataclasses
import selectors

from support.probe_fixtures import encode_attributes
from support.synth import Conversation

from netlens.capture import PacketRing
from netlens.capture.feed import RecordedPacketFeed
from netlens.probe import ProcessRef, Snapshot, SocketInfo, SocketMemory, SocketTimer, TcpInfo
from netlens.proto import encode_request, reply
from netlens.proto.decoder import Decoder
from netlens.server import ConnectionSnapshot, ServerConfig, ServerStats
from netlens.server.bus import make_record
from netlens.server.events import (
    Accepted,
    CloseCause,
    Closed,
    ControlApplied,
    Listening,
    MaskChanged,
    Received,
    ResponseQueued,
    Sent,
    StageReached,
)
from netlens.ui.feeds import RecordedFeeds, RecordedServer

START = 1_767_261_600.0  # 2026-01-01 10:00:00 UTC
NOW = START + 9.0
SERVER = ("127.0.0.1", 65432)
HOSTILE = "[bold red]x[/]\x1b[2J"
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def tcp_info(**values: int) -> TcpInfo:
    """A TcpInfo with every field unknown except ``values``."""
    blank = {f.name: 0 for f in dataclasses.fields(TcpInfo)}
    blank.update(values)
    return TcpInfo(**blank)


def _packets() -> RecordedPacketFeed:
    ring = PacketRing()
    start_ns = int(START * 1e9) + 1_000_000_000
    one = Conversation(ring, client=("127.0.0.1", 50412), server=SERVER, isn=(1000, 90000),
                       start_ns=start_ns, step_ns=40_000)
    one.handshake()
    request = encode_request("search", "morpheus", "little")
    one.client(request)
    one.server(flags="A")
    one.server(reply(Decoder().feed(request)[-1].message, "little")[0])
    one.client(flags="A")
    one.close(first=1)
    two = Conversation(ring, client=("127.0.0.1", 50418), server=SERVER, isn=(7000, 120000),
                       start_ns=one.now + 2_000_000_000, step_ns=40_000)
    two.handshake()
    two.client(encode_request("search", "ring", "little")[:60])
    two.server(flags="A")
    three = Conversation(ring, client=("127.0.0.1", 50424), server=SERVER, isn=(3000, 60000),
                         start_ns=two.now + 1_500_000_000, step_ns=40_000)
    three.handshake()
    hostile = encode_request("search", HOSTILE, "little")
    three.client(hostile)
    three.server(flags="A")
    three.server(reply(Decoder().feed(hostile)[-1].message, "little")[0])
    three.client(flags="R", ack=0)
    return RecordedPacketFeed(ring, server_ports=(SERVER[1],))


def _events() -> list[tuple]:
    t = START
    request = encode_request("search", "morpheus", "little")
    answer = reply(Decoder().feed(request)[-1].message, "little")
    partial = encode_request("search", "ring", "little")[:60]
    hostile = encode_request("search", HOSTILE, "little")
    hostile_answer = reply(Decoder().feed(hostile)[-1].message, "little")
    c1, c2, c3 = ("127.0.0.1", 50412), ("127.0.0.1", 50418), ("127.0.0.1", 50424)
    return [make_record(*event) for event in [
        (Listening, t, 0, SERVER, "search"),
        (Accepted, t + 1.0001, 1, c1, SERVER), (MaskChanged, t + 1.0001, 1, 0, READ),
        (Received, t + 1.0002, 1, len(request), request),
        (StageReached, t + 1.0002, 1, "proto header read", "JSON header is 103 bytes"),
        (StageReached, t + 1.0002, 1, "JSON header read", "text/json, utf-8, content-length 41"),
        (StageReached, t + 1.0002, 1, "request complete", "search 'morpheus'"),
        (ResponseQueued, t + 1.0002, 1, len(answer[0]), answer[1]),
        (MaskChanged, t + 1.0002, 1, READ, WRITE),
        (Sent, t + 1.0003, 1, len(answer[0]), 0),
        (Closed, t + 1.0003, 1, CloseCause.SERVER, "response sent"),
        (Accepted, t + 3.0005, 2, c2, SERVER), (MaskChanged, t + 3.0005, 2, 0, READ),
        (Received, t + 3.0006, 2, 60, partial),
        (StageReached, t + 3.0006, 2, "proto header read", "JSON header is 103 bytes"),
        (ControlApplied, t + 4.2, 2, "paused reading", "unread bytes now pile up in the kernel's receive queue"),
        (MaskChanged, t + 4.2, 2, READ, 0),
        (Accepted, t + 4.5008, 3, c3, SERVER), (MaskChanged, t + 4.5008, 3, 0, READ),
        (Received, t + 4.5009, 3, len(hostile), hostile),
        (StageReached, t + 4.5009, 3, "request complete", f"search {HOSTILE!r}"),
        (ResponseQueued, t + 4.5009, 3, len(hostile_answer[0]), hostile_answer[1]),
        (MaskChanged, t + 4.5009, 3, READ, WRITE),
        (Sent, t + 4.5010, 3, len(hostile_answer[0]), 0),
        (Closed, t + 4.5011, 3, CloseCause.SERVER, "response sent"),
    ]]


def _kernel() -> Snapshot:
    server = ProcessRef(4242, "netlens", 3)
    established = tcp_info(
        ca_state=0, snd_wscale=7, rcv_wscale=7, rto_us=204_000, ato_us=40_000, snd_mss=32768,
        rcv_mss=536, rtt_us=52, rttvar_us=26, min_rtt_us=18, snd_cwnd=10, snd_ssthresh=0x7FFFFFFF,
        bytes_received=60, bytes_acked=1, bytes_sent=0, segs_in=3, segs_out=2, snd_wnd=65536,
        rcv_wnd=65536, last_data_recv_ms=4780, last_data_sent_ms=5200, delivery_rate_bytes_per_s=0,
        pmtu=65535, rcv_space=65483, advmss=65483)
    client_side = dataclasses.replace(established, bytes_received=0, bytes_acked=61, bytes_sent=60,
                                      segs_in=2, segs_out=3, last_data_sent_ms=4780)
    memory = SocketMemory(rmem_alloc=0, rcvbuf=131072, wmem_alloc=0, sndbuf=2626560, fwd_alloc=0,
                          wmem_queued=0, optmem=0, backlog=0, drops=0)
    listen = SocketInfo("LISTEN", "IPv4", *SERVER, "0.0.0.0", 0, recv_q=0, send_q=128, inode=7001, uid=0,
                        owners=(server,))
    tw = SocketInfo("TIME_WAIT", "IPv4", *SERVER, "127.0.0.1", 50412, recv_q=0, send_q=0, inode=0, uid=0,
                    timer=SocketTimer("timewait", 52_400, 0))
    est = SocketInfo("ESTABLISHED", "IPv4", *SERVER, "127.0.0.1", 50418, recv_q=0, send_q=0, inode=7002,
                     uid=0, owners=(ProcessRef(4242, "netlens", 7),),
                     attributes=encode_attributes(tcp_info=established, memory=memory, congestion="cubic"))
    client = SocketInfo("ESTABLISHED", "IPv4", "127.0.0.1", 50418, *SERVER, recv_q=0, send_q=0, inode=7003,
                        uid=1000, owners=(ProcessRef(4300, "python3", 3),),
                        attributes=encode_attributes(tcp_info=client_side, memory=memory, congestion="cubic"))
    return Snapshot(ts=NOW, sockets=(listen, tw, est, client), source="sock_diag", port=SERVER[1])


def _server() -> RecordedServer:
    partial = encode_request("search", "ring", "little")[:60]
    conn = ConnectionSnapshot(
        conn=2, peer=("127.0.0.1", 50418), local=SERVER, mode="search", stage="reading JSON header",
        detail="JSON header is 103 bytes", mask=0, paused=True, reading=True, recv_buffer=partial[2:],
        recv_buffered=58, send_buffer=b"", send_buffered=0, last_in=partial, bytes_in=60, bytes_out=0,
        recv_calls=1, send_calls=0, created=START + 3.0005, last_activity=START + 3.0006,
        age=NOW - START - 3.0005, json_header=None, request=None, response=None, write_shut=False,
        options={})
    stats = ServerStats(address=SERVER, mode="search", started=START, active=1, accepted=3,
                        closed={"server": 2}, requests=2, protocol_errors=0, bytes_in=60 + 146 + 161,
                        bytes_out=148 + 163, events_published=25, refused_emfile=0)
    return RecordedServer(ServerConfig(), SERVER, [conn], stats)


def recorded_feeds() -> RecordedFeeds:
    """The whole recorded moment, ready for ``NetlensApp(recorded_feeds())``."""
    return RecordedFeeds(_server(), _events(), _kernel(), NOW, packets=_packets())

