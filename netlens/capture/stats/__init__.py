"""Per-packet analysis fields, conversations, RTT estimates and graph series, computed incrementally.

Kept apart from the store's flag analysis: :class:`StatsTracker` follows a
:class:`~netlens.capture.store.PacketStore` over the same ring in its own
single pass; graphs and tables read from it.
"""

from netlens.capture.stats.conversations import HEADER, Conversation, conversations
from netlens.capture.stats.tracker import KernelSample, StatsTracker, StreamStats

__all__ = ["HEADER", "Conversation", "KernelSample", "StatsTracker", "StreamStats", "conversations"]
