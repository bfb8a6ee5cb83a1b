"""Help: the keys, and a one-page TCP primer for the workshop."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# netlens — keys

| key | what it does |
|---|---|
| `tab` / `shift+tab` | move between panels (connections, socket, events, packets) |
| `m` | maximize the focused panel to the whole screen (again, or `escape`, to restore) |
| `s` | send a request (search, binary or echo; optionally one byte per segment) |
| `n` | start N clients |
| `o` | open a connection that stays: idle, half a request, or a stream (with or without reading) |
| `r` | pause / resume **reading** the selected connection — watch Recv-Q grow and the window close |
| `w` | `shutdown(SHUT_WR)` the selected connection: the server sends FIN, keeps reading |
| `x` | close the selected connection (FIN; RST if unread bytes wait) |
| `X` | abort it: RST (`SO_LINGER` 0) |
| `d` | toggle `TCP_NODELAY` on it |
| `b` | set its `SO_RCVBUF` |
| `f` | packets: show only the selected connection's (again: all) |
| `e` | events: show only the selected connection's (again: all) |
| `enter` | on a packet: details, hex, follow stream, ladder diagram, analysis |
| `g` | on a packet: select its connection |
| `k` | on a packet: the kernel's events at its time; on an event: back to the packet at its time |
| `home` / `end` | first / last row; packets and events: `end` jumps to the newest and follows again |
| `c` / `C` | pause / clear the capture |
| `ctrl+s` | save the capture as a pcap file (opens in Wireshark, tshark, tcpdump) |
| `F12` | save a screenshot (SVG) |
| `ctrl+p` | command palette: every action by name |
| `?` | this help · `q` quit |

**Reading the connections table.** Rows come in this order: the listening socket,
open connections (newest first), closing ones, then TIME_WAIT; the two ends of a
loopback connection sit together, the server's end first. *State* is the kernel's
(`ss`), except for the moment between the server's own event and the kernel's next
snapshot (once a second): then it says what the server just did — `RST sent`,
`RST received`, `CLOSED by server`, `FIN received`, `FIN sent` — and the
inspector says it was the server's event. `CLOSED`: the kernel no longer lists the
socket. *Age*: `12s` since the server accepted it (exact); `42s left` a TIME_WAIT
socket's remaining timer (the kernel's); `≥12s` since netlens first saw it (it may be
older). New rows are green and changed ones yellow for two seconds; closed ones red.

# TCP in one page

**A connection** is two byte streams, one each way. Each side numbers the bytes
it sends (*sequence numbers*, counted from a random start; netlens shows them
*relative*, from 0) and acknowledges what it has received (*ACK* = the next byte
it expects).

**Flags** mark what a segment does: `S` SYN (open, carries the starting sequence
number), `A` ACK, `P` PSH (data, deliver it now), `F` FIN (I have nothing more to
send), `R` RST (abort: forget this connection).

**Opening**: `S` → `SA` → `A`, the three-way handshake. **Closing**: each side sends
its own `F` and the other acknowledges it; whoever sends FIN first ends in
**TIME_WAIT** for about a minute (2×MSL) so stray old segments die out. The
search server closes first, so TIME_WAIT shows up on the server's side.

**States** (what `ss` shows): `LISTEN` waiting for connections · `SYN_SENT` /
`SYN_RECV` during the handshake · `ESTABLISHED` open · `FIN_WAIT1` our FIN sent ·
`FIN_WAIT2` our FIN acknowledged, waiting for theirs · `CLOSE_WAIT` their FIN came,
our program has not closed yet · `LAST_ACK` our FIN sent after theirs ·
`CLOSING` both FINs crossed · `TIME_WAIT` done, waiting out stray segments.

**Queues**: *Recv-Q* is bytes the kernel received that the program has not
`recv()`d yet; *Send-Q* is bytes sent and not yet acknowledged. On a `LISTEN`
socket they are the accept queue and its limit (the backlog). Pause reading
(`r`) and Recv-Q grows until the receive buffer is full; then the receiver
advertises a **zero window** and the sender must stop — flow control.

**The window** is how many more bytes the receiver will accept; it is scaled by
the *window scale* agreed in the handshake. **RTT** is the round-trip time; the
**RTO** (retransmission timeout) is derived from it; **cwnd** (congestion window)
is how many segments the sender allows itself in flight.

**Selectors** (the server's side): a socket registered for READ is woken when
bytes (or a FIN) arrive; for WRITE when it can send. netlens registers WRITE only
while bytes wait to go out, so an idle server sleeps instead of spinning.

*`escape` closes this help.*
"""


class HelpScreen(ModalScreen[None]):
    """Keys and the TCP primer."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)
