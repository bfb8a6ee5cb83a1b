"""Loopback packet capture and Wireshark-style TCP analysis (the only package that imports scapy).

Importing this package does not import scapy: the ring, the summaries, the
analysis and pcap I/O work on raw bytes with ``struct``. scapy is imported
when a live capture starts (socket setup, libpcap filter compilation) and
when a packet is fully dissected.

Typical use (the UI and ``netlens capture`` do exactly this)::

    ring = PacketRing(max_packets=1_000_000, max_bytes=256 << 20)
    capture = Capture(iface="lo", port=65432, ring=ring).start()   # CaptureError: one sentence
    store = PacketStore(ring, server_ports=(65432,))
    print(capture.filter_note)          # which kernel filter is in use, and who built it
    ...
    store.update()                      # on a ~10 Hz timer: analyse what arrived, O(new)
    rows = store.summaries(first, last) # only the visible rows
    capture.stop()

Thread model: the capture thread only appends to the ring (thread-safe);
everything on :class:`PacketStore` runs on the consumer's thread.
``Capture.start()`` imports scapy (~0.5 s the first time) and opens the
socket: call it from a worker thread, not before the UI's first frame.

API
---
Capture
    ``Capture(iface="lo", port=65432, bpf=None, ring=None, writer=None, libpcap=None,
    write=None, count=None, method="mmap")``: ``bpf`` any tcpdump expression (needs libpcap),
    ``libpcap=False`` forces the hand-built port filter, ``write`` a pcap path opened at start,
    ``method`` "mmap" (TPACKET_V3 ring) or "recvmsg". ``.start() -> Capture`` opens the socket and
    the thread (raises :class:`CaptureError`, exit code 2); ``.stop() -> CaptureStats``;
    ``.stats() -> CaptureStats`` (captured, kernel_drops, ring_evictions, stored, bytes, elapsed,
    rcvbuf, cpu, method, error); ``.wait(timeout) -> bool`` until new packets; ``.filter_note``
    one sentence (which filter, built by whom); ``.running``; ``.error`` (sentence if it died).
PacketRing
    ``PacketRing(max_packets=1_000_000, max_bytes=256 MiB, linktype=1)``; ``.first``, ``.last``,
    ``len()``, ``.frame(no) -> bytes``, ``.ts(no) -> float``, ``.ts_ns(no)``, ``.record(no)``,
    ``.read(start, stop, limit) -> [(no, ts_ns, frame)]``, ``.append(ts_ns, frame)``,
    ``.evicted``, ``.bytes_stored``, ``.memory_bytes()``. Packet numbers are 1-based and stable.
PacketStore
    ``PacketStore(ring, server_ports=(65432,))``; ``.update(limit) -> int``; ``.last``;
    ``.summary(no) -> PacketSummary``; ``.summaries(start, stop)``; ``.stream_of(no) -> Stream``;
    ``.stream_id_of(no)``; ``.stream(id)``; ``.streams()``; ``.stream_packets(id) -> [no]``;
    ``.analysis(no) -> [Mark]`` (``mark.name``, ``.label``, ``.rule``, ``.detail``);
    ``.flagged()``; ``.messages(no)``; ``.follow(id) -> Follow``; ``.ladder(id) -> Ladder``;
    ``.dissect(no) -> [Layer]``; ``.hexdump(no) -> [str]``.
Stream
    ``.id``, ``.key`` (:class:`StreamKey`: ``family``, ``client``/``server`` as (host, port),
    ``.matches(local, remote)`` to link a socket), ``.client``/``.server`` text, ``.packets``,
    ``.completeness()``, ``.first_fin`` (0 client, 1 server), ``.closed``, ``.describe()``.
Views
    ``PacketSummary`` (``no, time, rel_time, src, sport, dst, dport, flags, seq, ack, win, len,
    info, analysis, stream, direction``; ``.line()``, ``.to_json()``); ``Follow`` (``chunks`` of
    :class:`FollowChunk` with ``direction``, ``data``, ``packets``; ``.render()``); ``Ladder``
    (``client``, ``server``, ``arrows`` of :class:`Arrow`: ``no, time, rel_time, direction,
    label, marks``; ``.render(width)``); ``dissect(frame, linktype, search_port) -> [Layer]``
    (``name``, ``fields`` as (name, value)); ``hexdump(frame) -> [str]``, ``hexdump_rows``.
pcap
    ``PcapWriter(path|"-"|file, linktype, nanosecond=True)`` (``.write(ts_ns, frame)``,
    ``.flush()``, ``.close()``); ``write_pcap(path, ring, start, stop)``;
    ``PcapReader(path|"-"|file)`` iterates ``(ts_ns, frame, orig_len)``, ``.linktype``,
    ``.warning``; ``read_pcap(source, ring=None) -> ReadResult(ring, packets, warning)``.
Rules
    ``RULES[name].rule`` is the sentence behind each analysis flag.
Test data
    :mod:`netlens.capture.synth`: ``tcp_frame(...)`` and ``Conversation(ring)`` write
    deterministic frames (for UI snapshot tests too).

Every string from the wire that these objects expose is escaped for the terminal
(no control characters); render it as ``rich.text.Text``, never as markup.
"""

from netlens.capture.analysis import RULES, Mark, Rule, Severity
from netlens.capture.bpf import libpcap_available, tcp_port_program
from netlens.capture.dissect import Layer, dissect
from netlens.capture.errors import CaptureError, PcapError
from netlens.capture.follow import Follow, FollowChunk
from netlens.capture.hexdump import HexRow, hexdump, hexdump_rows
from netlens.capture.ladder import Arrow, Ladder, render_ladder
from netlens.capture.live import Capture, CaptureStats
from netlens.capture.pcap import PcapReader, PcapWriter, ReadResult, read_pcap, write_pcap
from netlens.capture.ring import PacketRing
from netlens.capture.store import PacketStore
from netlens.capture.streams import Stream, StreamKey
from netlens.capture.summary import PacketSummary

__all__ = [
    "RULES",
    "Arrow",
    "Capture",
    "CaptureError",
    "CaptureStats",
    "Follow",
    "FollowChunk",
    "HexRow",
    "Ladder",
    "Layer",
    "Mark",
    "PacketRing",
    "PacketStore",
    "PacketSummary",
    "PcapError",
    "PcapReader",
    "PcapWriter",
    "ReadResult",
    "Rule",
    "Severity",
    "Stream",
    "StreamKey",
    "dissect",
    "hexdump",
    "hexdump_rows",
    "libpcap_available",
    "read_pcap",
    "render_ladder",
    "tcp_port_program",
    "write_pcap",
]
