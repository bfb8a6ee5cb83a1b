"""The teaching TCP server (stdlib only): one selectors loop, two modes, every socket event published.

``Server(ServerConfig(mode="search", port=0)).start()`` binds and runs the loop
on a thread; ``server.subscribe().drain()`` returns the socket events since the
last drain; ``server.snapshot()`` the server's view of each connection;
``server.submit(PauseReading(conn))`` runs a command on the loop.
"""

from netlens.server.bus import EventBus, Subscription
from netlens.server.config import MODES, Mode, ServerConfig
from netlens.server.connection import ConnectionSnapshot, ServerStats
from netlens.server.controls import (
    AbortConnection,
    CloseConnection,
    Control,
    ControlError,
    PauseReading,
    ResumeReading,
    SendBytes,
    SetOption,
    ShutdownWrite,
    SocketOption,
)
from netlens.server.events import CloseCause, SocketEvent
from netlens.server.loop import PortInUseError, Server

__all__ = [
    "MODES",
    "AbortConnection",
    "CloseCause",
    "CloseConnection",
    "ConnectionSnapshot",
    "Control",
    "ControlError",
    "EventBus",
    "Mode",
    "PauseReading",
    "PortInUseError",
    "ResumeReading",
    "SendBytes",
    "Server",
    "ServerConfig",
    "ServerStats",
    "SetOption",
    "ShutdownWrite",
    "SocketEvent",
    "SocketOption",
    "Subscription",
]
