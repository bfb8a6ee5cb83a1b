"""The socket inspector: one connection as the server sees it and as the kernel sees it.

The live numbers come first (state, queues, windows, RTT, cwnd), then the
server's own state machine, then the rest of TCP_INFO, and the byte dumps
last. When the server's latest event is newer than the kernel's snapshot
(it just reset or closed the connection), that event is the first line and
the state says so. Lines wrap between words; none is cut.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from netlens.display import endpoint
from netlens.probe import SHUTDOWN_RD, SHUTDOWN_WR, SocketInfo
from netlens.server import ConnectionSnapshot
from netlens.textsafe import json_preview
from netlens.ui.facts import Fact
from netlens.ui.fit import pairs, paragraph
from netlens.ui.format import duration, hexdump, micros, size, wire

# One line each for what the columns mean, for people meeting them for the first time.
_QUEUE_HELP = {
    "LISTEN": ("accept queue: connections waiting for accept()", "backlog: the queue's limit"),
    None: ("received, not yet read by the program", "sent, not yet acknowledged by the peer"),
}
KEY_WIDTH = 16


def _opt(value: object, unit: str = "") -> str:
    return "-" if value is None else f"{value}{unit}"


@dataclass(frozen=True)
class Inspected:
    """Everything the inspector shows about one socket."""

    socket: SocketInfo
    #: The server's view of the connection this socket belongs to (its own end or its peer's).
    server: ConnectionSnapshot | None
    #: "server" (the server's own socket), "client" (the other end of a server connection) or "".
    side: str
    #: The kernel no longer lists the socket.
    gone: bool
    #: The server's latest event about this end, if any.
    fact: Fact | None
    #: Time of the kernel snapshot the socket record comes from.
    kernel_ts: float
    #: Builds the kernel trace's parts (state timeline, diagram, sparklines), and what changes when they do.
    trace: Callable[[], list[Text]] | None = None
    trace_sig: object = None


def state_text(item: Inspected) -> Text:
    """The state line: the kernel's, or the server's event when that is newer (and what the kernel last said)."""
    sock, fact = item.socket, item.fact
    if fact is not None and (item.gone or fact.ts > item.kernel_ts):
        last = "no longer listed by the kernel" if item.gone else "not yet in the kernel's snapshot"
        return Text.assemble((fact.state, f"bold {fact.style}".strip()),
                             (f"  (server's event; {last}, which last said {sock.state})", "dim"))
    if item.gone and sock.state == "TIME_WAIT":
        return Text.assemble(("CLOSED", "bold red"), ("  (the kernel dropped it before its TIME_WAIT timer ran out: a "
                                                      "new connection took its 4-tuple, or an RST came)", "dim"))
    if item.gone:
        return Text.assemble(("CLOSED", "bold red"), (f"  (the kernel no longer lists it; last {sock.state})", "dim"))
    return Text(sock.state, style="bold")


def live_rows(item: Inspected) -> list[tuple[str, str | Text]]:
    """The numbers that move: state, queues, windows, RTT, congestion window, unacked, retransmits, timer."""
    sock = item.socket
    recv_help, send_help = _QUEUE_HELP["LISTEN" if sock.state == "LISTEN" else None]
    rows: list[tuple[str, str | Text]] = [
        ("state", state_text(item)),
        ("Recv-Q", Text.assemble(_opt(sock.recv_q), ("  " + recv_help, "dim"))),
        ("Send-Q", Text.assemble(_opt(sock.send_q), ("  " + send_help, "dim"))),
    ]
    info = sock.tcp_info
    if info is not None and sock.state != "LISTEN":
        rows += [
            ("windows", f"peer's {size(info.snd_wnd)}, ours {size(info.rcv_wnd)}, "
                        f"wscale {_opt(info.snd_wscale)}/{_opt(info.rcv_wscale)}"),
            ("rtt / rttvar", f"{micros(info.rtt_us)} / {micros(info.rttvar_us)}  (min {micros(info.min_rtt_us)})"),
            ("cwnd / ssthresh", f"{_opt(info.snd_cwnd)} segments / "
                                f"{'-' if info.snd_ssthresh in (None, 0x7FFFFFFF) else info.snd_ssthresh}"),
            ("unacked", f"{_opt(info.unacked)} segments"),
            ("retransmits", f"{_opt(info.retransmits)} now, {_opt(info.total_retrans)} total, "
                            f"{_opt(info.lost)} lost"),
        ]
    timer = sock.timer
    rows.append(("timer", "none" if timer is None else
                 f"{timer.name}, fires in {timer.expires_ms} ms, {timer.retrans} retransmissions"))
    return rows


def detail_rows(sock: SocketInfo) -> list[tuple[str, str | Text]]:
    """The rest of what the kernel says: owner, shutdown, timers, byte counters, memory."""
    owners = ", ".join(f"{o.name}/{o.pid} fd {o.fd}" for o in sock.owners) or "none (no process holds it)"
    rows: list[tuple[str, str | Text]] = [("process", wire(owners, 100))]
    if sock.shutdown:
        done = [name for bit, name in ((SHUTDOWN_RD, "read"), (SHUTDOWN_WR, "write")) if sock.shutdown & bit]
        rows.append(("shut down", " and ".join(done)))
    info = sock.tcp_info
    if sock.state == "LISTEN":
        rows.append(("TCP_INFO", "a listening socket has no peer: no RTT, window or bytes"))
    elif info is not None:
        rows += [
            ("rto / ato", f"{micros(info.rto_us)} / {micros(info.ato_us)}"),
            ("mss snd/rcv", f"{_opt(info.snd_mss)} / {_opt(info.rcv_mss)} bytes"),
            ("bytes", f"sent {size(info.bytes_sent)}, acked {size(info.bytes_acked)}, "
                      f"received {size(info.bytes_received)}, retrans {size(info.bytes_retrans)}"),
            ("not sent", size(info.notsent_bytes)),
            ("delivery rate", "-" if info.delivery_rate_bytes_per_s is None
             else f"{size(info.delivery_rate_bytes_per_s)}/s"),
            ("segments", f"{_opt(info.segs_out)} out, {_opt(info.segs_in)} in"),
            ("last data", f"sent {_opt(info.last_data_sent_ms, ' ms')} ago, "
                          f"received {_opt(info.last_data_recv_ms, ' ms')} ago"),
        ]
        if sock.congestion:
            rows.append(("congestion", wire(sock.congestion, 20)))
    else:
        rows.append(("TCP_INFO", "none (the kernel keeps none for this state)"))
    memory = sock.memory
    if memory is not None:
        rows.append(("memory", f"rcv {size(memory.rmem_alloc)} of {size(memory.rcvbuf)}, "
                               f"snd {size(memory.wmem_queued)} of {size(memory.sndbuf)}, "
                               f"drops {_opt(memory.drops)}"))
    return rows


def server_rows(snap: ConnectionSnapshot, now: float) -> list[tuple[str, str | Text]]:
    """The server's own state for one connection: stage, selector mask, counters, the request."""
    rows: list[tuple[str, str | Text]] = [
        ("stage", Text.assemble((snap.stage, "bold yellow"), "  ", wire(snap.detail, 80, "dim"))),
        ("selector mask", Text(snap.mask_name + ("  (reading paused by you)" if snap.paused else ""),
                               style="bold magenta")),
        ("bytes in/out", f"{snap.bytes_in:,} / {snap.bytes_out:,}  ({snap.recv_calls} recv, "
                         f"{snap.send_calls} send calls)"),
        ("age / idle", f"{duration(snap.age)} / {duration(max(0.0, now - snap.last_activity))}"),
    ]
    if snap.request is not None:
        rows.append(("request", wire(snap.request, 120)))
    if snap.response is not None:
        rows.append(("response", wire(snap.response, 120)))
    if snap.json_header is not None:
        # Rendered without recursion and cut at 300 characters, whatever the peer nested.
        rows.append(("JSON header", Text(json_preview(snap.json_header, 300))))
    if snap.write_shut:
        rows.append(("shutdown", "SHUT_WR done (FIN sent)"))
    if snap.options:
        rows.append(("options", ", ".join(f"{k}={v}" for k, v in sorted(snap.options.items()))))
    return rows


def buffer_dumps(snap: ConnectionSnapshot, hex_width: int) -> list[Text]:
    """The server's receive and send buffers (and its last recv()) as hex."""
    parts = [Text(f"receive buffer ({snap.recv_buffered:,} bytes, not yet parsed)", style="bold"),
             hexdump(snap.recv_buffer, width=hex_width, limit=512),
             Text(f"send buffer ({snap.send_buffered:,} bytes, not yet accepted by send())", style="bold"),
             hexdump(snap.send_buffer, width=hex_width, limit=512)]
    if snap.last_in and not snap.recv_buffered:
        parts.append(Text(f"last recv() ({len(snap.last_in):,} bytes)", style="bold"))
        parts.append(hexdump(snap.last_in, width=hex_width, limit=256))
    return parts


def headline(item: Inspected) -> Text:
    """Who the socket is: its endpoints and which end of which server connection."""
    sock, snap = item.socket, item.server
    if sock.state == "LISTEN":
        return Text.assemble((f"{endpoint(sock.local_addr, sock.local_port)} listening", "bold"),
                             ("  the server's listening socket", "dim"))
    route = f"{endpoint(sock.local_addr, sock.local_port)} ⇄ {endpoint(sock.remote_addr, sock.remote_port)}"
    conn = snap.conn if snap is not None else item.fact.conn if item.fact is not None else None
    if item.side == "server":
        side = "server's end" + (f", #{conn}" if conn is not None else "")
    elif item.side == "client":
        side = "client's end" + (f"; peer of #{conn}" if conn is not None else "")
    else:
        side = "not one of the server's connections"
    return Text.assemble((route, "bold"), ("  " + side, "dim"))


def inspector_body(item: Inspected, now: float, width: int) -> Text:
    """The whole inspector text for ``width`` columns."""
    parts: list[Text] = [paragraph(headline(item), width)]
    fact = item.fact
    if fact is not None and (item.gone or fact.ts > item.kernel_ts or fact.reset):
        parts.append(paragraph(Text(fact.sentence, style=fact.style), width))
    parts.append(Text("kernel's view (sock_diag, TCP_INFO)", style="bold cyan"))
    parts.append(pairs(live_rows(item), width, KEY_WIDTH))
    snap = item.server
    if snap is not None:
        whose = "" if item.side == "server" else " (of the other end)"
        parts.append(Text(f"#{snap.conn} server's view{whose}", style="bold cyan"))
        parts.append(pairs(server_rows(snap, now), width, KEY_WIDTH))
    parts.append(Text("more from the kernel", style="bold cyan"))
    parts.append(pairs(detail_rows(item.socket), width, KEY_WIDTH))
    if item.trace is not None:
        parts += item.trace()
    if snap is not None:
        # 16 bytes a line need ~74 columns; a narrow panel gets 8.
        parts += buffer_dumps(snap, 16 if width >= 74 else 8)
    return Text("\n", no_wrap=True, overflow="crop").join(parts)


class SocketInspector(VerticalScroll):
    """Scrollable detail of the selected connection."""

    DEFAULT_CSS = """
    SocketInspector { height: 1fr; }
    /* One screen line per text line: the line count alone decides when a layout is needed. */
    SocketInspector > Static { width: 1fr; text-wrap: nowrap; text-overflow: clip; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._body = Static(Text("Select a connection to inspect it.", style="dim"), expand=True)
        self._last: object = None
        self._lines = 0
        self._key: object = None
        self._args: tuple[Inspected | None, float] = (None, 0.0)

    def compose(self) -> ComposeResult:
        yield self._body

    def show(self, item: Inspected | None, now: float) -> None:
        """Show one socket (or a hint when nothing is selected)."""
        self._args = (item, now)
        snap = item.server if item is not None else None
        width = max(20, self.scrollable_content_region.width)
        signature = (width, item and (item.socket, item.side, item.gone, item.fact, item.kernel_ts, item.trace_sig),
                     snap and (snap.stage, snap.mask, snap.bytes_in, snap.bytes_out, snap.recv_buffered,
                               snap.send_buffered, snap.paused, snap.options, snap.write_shut),
                     int(now))
        if signature == self._last:
            return
        self._last = signature
        if item is None:
            body = Text("Select a connection to inspect it.", style="dim")
        else:
            body = inspector_body(item, now, width)
        lines = body.plain.count("\n") + 1
        key = item.socket.key if item is not None else None
        # The body only ever grows (shorter text is padded with blank lines): moving between
        # connections then needs no layout pass, which would repaint the whole screen.
        if lines < self._lines:
            body.append("\n" * (self._lines - lines))
        self._body.update(body, layout=lines > self._lines)
        self._lines = max(lines, self._lines)
        if key != self._key:
            # Another socket: start at its top, where its live numbers are.
            self.scroll_home(animate=False)
        elif self.scroll_y > max(0, lines - self.scrollable_content_region.height):
            # Shorter text, same socket: never leave the view scrolled into the padding (a blank panel).
            self.scroll_to(y=max(0, lines - self.scrollable_content_region.height), animate=False)
        self._key = key

    def on_resize(self) -> None:
        """Redraw for the new width (wrapping and the hex dump's bytes per line depend on it)."""
        self.show(*self._args)
