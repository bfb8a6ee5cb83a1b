"""Loopback packet capture and Wireshark-style TCP analysis (the only package that imports scapy).

Importing this package does not import scapy: the ring, the summaries, the
analysis and pcap I/O work on raw bytes with ``struct``. scapy is imported
when a live capture starts (socket setup, libpcap filter compilation) and
when a packet is fully dissected.

Where things are
----------------
``live.py`` (+ ``packet_socket.py``, ``bpf.py``)
    :class:`Capture`: one thread reading a packet socket into a :class:`PacketRing` (``ring.py``).
``store.py`` (+ ``streams.py``, ``appdata.py``, ``reassembly.py``)
    :class:`PacketStore`: incremental analysis of the ring — streams, flags, messages, summaries.
``analysis/``
    The TCP analysis rules, one function each (``rules.py``), over a per-segment context.
``protocols/``
    Application protocols (search, echo), one module each, behind one small interface.
``feed.py``, ``live_feed.py``
    :class:`PacketFeed`: what a UI talks to (recorded, or live with its capture and analysis thread).
``follow.py``, ``ladder.py``, ``dissect.py``, ``tcp_detail.py``, ``hexdump.py``
    Views of a stream or a packet, built from plain data.
``pcap.py``
    pcap out, pcap/pcapng in.

Typical use (``netlens capture`` does exactly this; the UI goes through a feed)::

    ring = PacketRing(max_packets=1_000_000, max_bytes=256 << 20)
    capture = Capture(iface="lo", port=65432, ring=ring).start()   # CaptureError: one sentence
    store = PacketStore(ring, server_ports=(65432,))
    print(capture.filter_note)          # which kernel filter is in use, and who built it
    ...
    store.update()                      # analyse what arrived, O(new)
    rows = store.summaries(first, last) # only the rows wanted
    capture.stop()

Thread model: the capture thread only appends to the ring (which has its own
lock). A :class:`PacketStore` is used by one thread at a time: the command's
loop, or a feed's analysis thread and its queries under the feed's lock
(``live_feed.py`` says it all). ``Capture.start()`` imports scapy (~0.5 s the
first time) and opens the socket: call it off the UI thread (feeds do).

Every string from the wire that these objects expose is escaped for the terminal
(no control characters); render it as ``rich.text.Text``, never as markup.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netlens.capture.analysis import RULES, Mark, Rule, Severity
    from netlens.capture.bpf import libpcap_available, tcp_port_program
    from netlens.capture.dissect import Layer, dissect
    from netlens.capture.errors import CaptureError, PcapError
    from netlens.capture.feed import FeedState, FeedStatus, PacketDetail, PacketFeed, RecordedPacketFeed, StreamView
    from netlens.capture.follow import Follow, FollowChunk
    from netlens.capture.hexdump import HexRow, hexdump, hexdump_rows
    from netlens.capture.ladder import Arrow, Ladder, render_ladder
    from netlens.capture.live import Capture, CaptureStats
    from netlens.capture.pcap import PcapReader, PcapWriter, ReadResult, read_pcap, write_pcap
    from netlens.capture.ring import PacketRing
    from netlens.capture.store import PacketStore
    from netlens.capture.streams import Stream, StreamKey
    from netlens.capture.summary import PacketSummary

# Functions named like their module are imported now: once anything imports the
# submodule, Python binds its name on the package to the module, which would
# hide a lazily imported function of that name.
from netlens.capture.dissect import dissect
from netlens.capture.hexdump import hexdump

# The package's other names are imported on first use (PEP 562): ``netlens read``
# needs the store and pcap reader, not the live capture, dissection or feeds,
# and each command starts faster for not importing them.
_WHERE: dict[str, str] = {
    "RULES": "netlens.capture.analysis",
    "Mark": "netlens.capture.analysis",
    "Rule": "netlens.capture.analysis",
    "Severity": "netlens.capture.analysis",
    "libpcap_available": "netlens.capture.bpf",
    "tcp_port_program": "netlens.capture.bpf",
    "Layer": "netlens.capture.dissect",
    "CaptureError": "netlens.capture.errors",
    "PcapError": "netlens.capture.errors",
    "FeedState": "netlens.capture.feed",
    "FeedStatus": "netlens.capture.feed",
    "PacketDetail": "netlens.capture.feed",
    "PacketFeed": "netlens.capture.feed",
    "RecordedPacketFeed": "netlens.capture.feed",
    "StreamView": "netlens.capture.feed",
    "Follow": "netlens.capture.follow",
    "FollowChunk": "netlens.capture.follow",
    "HexRow": "netlens.capture.hexdump",
    "hexdump_rows": "netlens.capture.hexdump",
    "Arrow": "netlens.capture.ladder",
    "Ladder": "netlens.capture.ladder",
    "render_ladder": "netlens.capture.ladder",
    "Capture": "netlens.capture.live",
    "CaptureStats": "netlens.capture.live",
    "PcapReader": "netlens.capture.pcap",
    "PcapWriter": "netlens.capture.pcap",
    "ReadResult": "netlens.capture.pcap",
    "read_pcap": "netlens.capture.pcap",
    "write_pcap": "netlens.capture.pcap",
    "PacketRing": "netlens.capture.ring",
    "PacketStore": "netlens.capture.store",
    "Stream": "netlens.capture.streams",
    "StreamKey": "netlens.capture.streams",
    "PacketSummary": "netlens.capture.summary",
}


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` the first time it is asked for."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "RULES",
    "Arrow",
    "Capture",
    "CaptureError",
    "CaptureStats",
    "FeedState",
    "FeedStatus",
    "Follow",
    "FollowChunk",
    "HexRow",
    "Ladder",
    "Layer",
    "Mark",
    "PacketDetail",
    "PacketFeed",
    "PacketRing",
    "PacketStore",
    "PacketSummary",
    "PcapError",
    "PcapReader",
    "PcapWriter",
    "ReadResult",
    "RecordedPacketFeed",
    "Rule",
    "Severity",
    "Stream",
    "StreamKey",
    "StreamView",
    "dissect",
    "hexdump",
    "hexdump_rows",
    "libpcap_available",
    "read_pcap",
    "render_ladder",
    "tcp_port_program",
    "write_pcap",
]
