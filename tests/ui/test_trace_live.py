"""The kernel's account in the live app (root, loopback): a closed connection's state timeline and lit
diagram, kernel rows among the server's events on one clock, and k jumping packet ⇄ kernel events."""

from __future__ import annotations

import asyncio
import re

from test_app_live import SIZE, capture_running, live_app, rows_of, select, server_port, table_row, text_of
from waiting import until

from netlens.server import clients
from netlens.ui.kernel_events import is_kernel
from netlens.ui.tcp_states import CURRENT, LIT
from netlens.ui.widgets.events import EventLog
from netlens.ui.widgets.inspector import SocketInspector


def styled(text, style: str) -> set[str]:  # type: ignore[no-untyped-def]
    """The words of a Rich Text drawn in ``style``."""
    return {text.plain[span.start:span.end] for span in text.spans if str(span.style) == style}


async def test_closed_connection_timeline_diagram_events_and_jumps() -> None:
    app = live_app()
    async with app.run_test(size=(SIZE[0], 60)) as pilot:
        view = await capture_running(pilot, app)
        port = await server_port(pilot, app)
        trace = app.screen.kernel_trace
        await until(pilot, lambda: trace.feed is not None and (trace.feed.session or trace.feed.unavailable))
        assert trace.feed is not None and trace.feed.unavailable is None, trace.feed.unavailable
        reply = await asyncio.to_thread(clients.search, "127.0.0.1", port, "morpheus")
        client_port = reply.local[1]
        # The server closed first: its end of the connection waits in TIME_WAIT.
        await until(pilot, lambda: (table_row(app, port, client_port) or [""])[0] == "TIME_WAIT")
        await select(pilot, app, port, client_port)
        body = app.screen.query_one(SocketInspector).query_one("Static")
        await until(pilot, lambda: "FIN_WAIT2 → TIME_WAIT" in text_of(body, 160), timeout=10)
        text = text_of(body, 160)
        steps = re.findall(r"\+ *[\d.]+s  (\w+) → (\w+)", text)
        assert steps == [("LISTEN", "SYN_RECV"), ("SYN_RECV", "ESTABLISHED"), ("ESTABLISHED", "FIN_WAIT1"),
                         ("FIN_WAIT1", "FIN_WAIT2"), ("FIN_WAIT2", "TIME_WAIT")]
        caused = re.search(r"FIN_WAIT1 → FIN_WAIT2  on packet #(\d+), the ACK of our FIN", text)
        assert caused is not None, text
        assert re.search(r"FIN_WAIT2 → TIME_WAIT  on packet #\d+, the peer's FIN  \(sock_diag\)", text)
        assert re.search(r"TIME_WAIT timer: (5\d|60)\.\d s left", text)
        # The diagram: every state this end went through lit, TIME_WAIT highlighted.
        content = body.content
        assert styled(content, CURRENT) == {"TIME_WAIT"}
        assert {"LISTEN", "SYN_RECV", "ESTABLISHED", "FIN_WAIT1", "FIN_WAIT2"} <= styled(content, LIT)
        assert "SYN_SENT" not in styled(content, LIT) and "CLOSE_WAIT" not in styled(content, LIT)

        # The events panel: kernel rows among the server's, in time order, marked by source.
        log = app.screen.query_one(EventLog)
        await until(pilot, lambda: any("kernel  cli state LAST_ACK → CLOSE" in row for row in rows_of(log)))
        rows = rows_of(log)
        times = [log.record_at(i)[1] for i in range(log.row_count())]
        assert times == sorted(times)
        closed = next(i for i, row in enumerate(rows) if "closed by server: response sent" in row)
        fin_wait1 = next(i for i, row in enumerate(rows) if "kernel  srv state ESTABLISHED → FIN_WAIT1" in row)
        # The server's close() and the kernel's FIN_WAIT1 it caused: a fraction of a millisecond apart.
        assert abs(times[closed] - times[fin_wait1]) < 0.05

        # k on the packet that moved FIN_WAIT1 → FIN_WAIT2 selects the kernel's events at its time...
        number = int(caused.group(1))
        packets = view.list
        packets.focus()
        packets.follow = False
        index = packets.index_of(number)
        assert index is not None
        packets.cursor = index
        await pilot.press("k")
        await pilot.pause()
        assert app.focused is log
        record = log.record_at(log.cursor)
        assert is_kernel(record)
        packet_time = view.feed.summary(number).time
        assert abs(record[1] - packet_time) < 0.01
        # The kernel's events at its time include the transition this packet caused (the client's own
        # close may land within the same few microseconds, so it may be the row right beside it).
        near = rows_of(log)[max(0, log.cursor - 2):log.cursor + 3]
        assert any("srv state FIN_WAIT1 → FIN_WAIT2" in row for row in near), near
        # ... and k on a kernel event goes back to the packet at its time.
        await pilot.press("k")
        await pilot.pause()
        assert app.focused is packets
        assert abs(view.feed.summary(packets.number_at(packets.cursor)).time - record[1]) < 0.01
