"""The socket inspector: one connection as the server sees it and as the kernel sees it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from netlens.display import endpoint
from netlens.probe import SHUTDOWN_RD, SHUTDOWN_WR, SocketInfo
from netlens.server import ConnectionSnapshot
from netlens.textsafe import json_preview
from netlens.ui.format import duration, hexdump, micros, pairs, size, wire

# One line each for what the columns mean, for people meeting them for the first time.
_QUEUE_HELP = {
    "LISTEN": ("accept queue: connections waiting for accept()", "backlog: the queue's limit"),
    None: ("bytes received, not yet read by the program", "bytes sent, not yet acknowledged by the peer"),
}


def _opt(value: object, unit: str = "") -> str:
    return "-" if value is None else f"{value}{unit}"


def server_view(snap: ConnectionSnapshot, now: float, hex_width: int = 16) -> list[Text]:
    """The server's own state for one connection (``hex_width`` bytes per hex line)."""
    header = Text(f"#{snap.conn} server's view", style="bold cyan")
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
    parts: list[Text] = [header, pairs(rows)]
    parts.append(Text(f"receive buffer ({snap.recv_buffered:,} bytes, not yet parsed)", style="bold"))
    parts.append(hexdump(snap.recv_buffer, width=hex_width, limit=512))
    parts.append(Text(f"send buffer ({snap.send_buffered:,} bytes, not yet accepted by send())", style="bold"))
    parts.append(hexdump(snap.send_buffer, width=hex_width, limit=512))
    if snap.last_in and not snap.recv_buffered:
        parts.append(Text(f"last recv() ({len(snap.last_in):,} bytes)", style="bold"))
        parts.append(hexdump(snap.last_in, width=hex_width, limit=256))
    return parts


def kernel_view(sock: SocketInfo) -> list[Text]:
    """The kernel's state for one socket: queues, TCP_INFO, memory, timer — with units."""
    recv_help, send_help = _QUEUE_HELP["LISTEN" if sock.state == "LISTEN" else None]
    rows: list[tuple[str, str | Text]] = [
        ("state", Text(sock.state, style="bold")),
        ("Recv-Q", Text.assemble(_opt(sock.recv_q), ("  " + recv_help, "dim"))),
        ("Send-Q", Text.assemble(_opt(sock.send_q), ("  " + send_help, "dim"))),
    ]
    owners = ", ".join(f"{o.name}/{o.pid} fd {o.fd}" for o in sock.owners) or "none (no process holds it)"
    rows.append(("process", wire(owners, 100)))
    if sock.shutdown:
        done = [name for bit, name in ((SHUTDOWN_RD, "read"), (SHUTDOWN_WR, "write")) if sock.shutdown & bit]
        rows.append(("shut down", " and ".join(done)))
    timer = sock.timer
    rows.append(("timer", "none" if timer is None else
                 f"{timer.name}, fires in {timer.expires_ms} ms, {timer.retrans} retransmissions"))
    info = sock.tcp_info
    if sock.state == "LISTEN":
        rows.append(("TCP_INFO", "a listening socket has no peer: no RTT, window or bytes"))
    elif info is not None:
        rows += [
            ("rtt / rttvar", f"{micros(info.rtt_us)} / {micros(info.rttvar_us)}  (min {micros(info.min_rtt_us)})"),
            ("rto / ato", f"{micros(info.rto_us)} / {micros(info.ato_us)}"),
            ("mss snd/rcv", f"{_opt(info.snd_mss)} / {_opt(info.rcv_mss)} bytes"),
            ("cwnd / ssthresh", f"{_opt(info.snd_cwnd)} segments / "
                                f"{'-' if info.snd_ssthresh in (None, 0x7FFFFFFF) else info.snd_ssthresh}"),
            ("unacked", f"{_opt(info.unacked)} segments"),
            ("retransmits", f"{_opt(info.retransmits)} now, {_opt(info.total_retrans)} total, "
                            f"{_opt(info.lost)} lost"),
            ("bytes", f"sent {size(info.bytes_sent)}, acked {size(info.bytes_acked)}, "
                      f"received {size(info.bytes_received)}, retrans {size(info.bytes_retrans)}"),
            ("not sent", size(info.notsent_bytes)),
            ("windows", f"peer's {size(info.snd_wnd)}, ours {size(info.rcv_wnd)}, "
                        f"wscale {_opt(info.snd_wscale)}/{_opt(info.rcv_wscale)}"),
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
    title = Text("kernel's view (sock_diag, TCP_INFO)", style="bold cyan")
    return [title, pairs(rows, key_width=16)]


class SocketInspector(VerticalScroll):
    """Scrollable detail of the selected connection."""

    DEFAULT_CSS = """
    SocketInspector { height: 1fr; }
    /* One screen line per text line: the line count alone decides when a layout is needed. */
    SocketInspector > Static { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._body = Static(Text("Select a connection to inspect it.", style="dim"), expand=True)
        self._last: object = None
        self._lines = 0
        self._args: tuple[SocketInfo | None, ConnectionSnapshot | None, float, bool, Any, object] = (
            None, None, 0.0, False, None, None)

    def compose(self):  # type: ignore[no-untyped-def]
        yield self._body

    def show(self, sock: SocketInfo | None, snap: ConnectionSnapshot | None, now: float,
             closed: bool = False, kernel: Callable[[], list[Text]] | None = None, kernel_sig: object = None) -> None:
        """Show one connection (or a hint when nothing is selected); ``kernel`` builds the trace's parts."""
        self._args = (sock, snap, now, closed, kernel, kernel_sig)
        signature = (self.size.width, sock, snap and (snap.stage, snap.mask, snap.bytes_in, snap.bytes_out,
                                     snap.recv_buffered, snap.send_buffered, snap.paused, snap.options),
                     closed, int(now), kernel_sig)
        if signature == self._last:
            return
        self._last = signature
        if sock is None:
            self._body.update(Text("Select a connection to inspect it.", style="dim"), layout=False)
            return
        route = (f"{endpoint(sock.local_addr, sock.local_port)} ⇄ "
                 f"{endpoint(sock.remote_addr, sock.remote_port)}" if sock.state != "LISTEN"
                 else f"{endpoint(sock.local_addr, sock.local_port)} listening")
        side = "server side" if snap is not None else ("closed" if closed else "")
        parts: list[Text] = [Text.assemble((route, "bold"), ("  " + side, "dim"))]
        if snap is not None:
            # 16 bytes a line need ~74 columns; a narrow panel gets 8.
            parts += server_view(snap, now, 16 if self.size.width >= 74 else 8)
            parts.append(Text("─" * max(10, self.size.width - 2), style="dim"))
        parts += kernel_view(sock)
        if kernel is not None:
            parts += kernel()
        body = Text("\n", no_wrap=True, overflow="ellipsis").join(parts)
        lines = body.plain.count("\n") + 1
        # The body only ever grows (shorter content is padded with blank lines): moving
        # between connections then needs no layout pass, which would repaint the screen.
        if lines < self._lines:
            body.append("\n" * (self._lines - lines))
        self._body.update(body, layout=lines > self._lines)
        self._lines = max(lines, self._lines)

    def on_resize(self) -> None:
        """Redraw for the new width (the hex dump's bytes per line depend on it)."""
        self.show(*self._args)
