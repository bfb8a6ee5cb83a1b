"""``k``: from a packet to the kernel's events at its time, and from an event back to the packet at its time.

Both lists are on one clock (capture timestamps and tracepoint timestamps are
both CLOCK_REALTIME), so a jump is a search by time. Each function moves the
other list's cursor there and focuses it, or returns the sentence saying why
it cannot.
"""

from __future__ import annotations

from netlens.ui.kernel_events import is_kernel
from netlens.ui.kernel_trace import packet_near
from netlens.ui.widgets.events import EventLog
from netlens.ui.widgets.packets import PacketsView
from netlens.ui.widgets.virtual_list import VirtualList

#: Rows looked through, either side of the packet's time, for the nearest kernel event.
SCAN = 500


def packet_to_kernel(events: EventLog, packets: PacketsView) -> str | None:
    """Put the events cursor on the first kernel event at the selected packet's time."""
    no = packets.selected_number()
    feed = packets.feed
    if no is None or feed is None:
        return "Put the cursor on a packet first (in the Packets panel), then press k."
    try:
        when = float(feed.summary(no).time)
    except (KeyError, IndexError):
        return f"Packet #{no} is no longer stored."
    row = events.row_at_time(when)
    if row is None:
        return "There are no events yet."
    # The kernel event nearest in time, before or after (a state is set just before its segment goes out).
    rows = range(max(0, row - SCAN), min(events.row_count(), row + SCAN))
    kernel = [(abs(float(events.record_at(r)[1]) - when), r) for r in rows  # type: ignore[arg-type]
              if is_kernel(events.record_at(r))]
    if not kernel:
        _select(events, row)
        return f"No kernel event near packet #{no}'s time; the events at that time are selected."
    _select(events, min(kernel)[1])
    return None


def kernel_to_packet(events: EventLog, packets: PacketsView) -> str | None:
    """Put the packets cursor on the packet captured nearest the selected event's time."""
    if events.cursor < 0 or events.cursor >= events.row_count():
        return "Put the cursor on an event first (in the Events panel), then press k."
    when = float(events.record_at(events.cursor)[1])  # type: ignore[arg-type]  # records are plain tuples
    no = packet_near(packets.feed, when)
    if no is None:
        return "No packets are captured (yet)."
    index = packets.list.index_of(no)
    if index is None:
        return f"Packet #{no}, the nearest in time, is filtered out (f shows all packets)."
    _select(packets.list, index)
    return None


def _select(target: VirtualList, row: int) -> None:
    """Stop following, move the cursor to ``row`` and focus the list."""
    target.follow = False
    target.cursor = row
    target.scroll_to_region_of(row)
    target.focus()
