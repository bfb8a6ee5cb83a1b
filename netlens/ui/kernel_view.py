"""What the connections table shows of a kernel snapshot, prepared off the UI thread.

A busy search server leaves a TIME_WAIT socket behind for every request (a
minute each): at 500 requests/s that is 30,000 rows nobody can read, and the
cost of tracking and drawing them would starve the server sharing our
process. So the table shows every socket in the other states and the newest
TIME_WAIT ones only, and says how many more there are. All of this runs in the
probe worker thread; the UI thread only applies the result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from netlens.probe import ConnectionTracker, Snapshot, SocketInfo, TrackerUpdate
from netlens.server import ConnectionSnapshot

#: TIME_WAIT sockets shown at most (the newest: the most time left on their timer).
MAX_TIME_WAIT = 100
#: Seconds a closed connection stays on screen (red) before it goes.
LINGER = 6.0


@dataclass(frozen=True)
class KernelUpdate:
    """One snapshot, as the table will show it."""

    snapshot: Snapshot
    update: TrackerUpdate
    #: TIME_WAIT sockets in the snapshot that the table does not show.
    hidden_time_wait: int
    #: Seconds the kernel took to answer (the poller uses it to pace itself).
    cost: float
    #: The server's view of its connections (no buffers), read right after the kernel's.
    server: tuple[ConnectionSnapshot, ...] = ()
    #: The connection the inspector shows, in full (buffers too), read at the same moment.
    inspected: ConnectionSnapshot | None = None
    #: Which connection ``inspected`` was asked for (None: none was).
    inspected_conn: int | None = None


class KernelView:
    """Folds snapshots into table rows (tracker included); one per poller thread."""

    def __init__(self, linger: float = LINGER, max_time_wait: int = MAX_TIME_WAIT) -> None:
        self.tracker = ConnectionTracker(linger=linger)
        self.max_time_wait = max_time_wait

    def fold(self, snapshot: Snapshot, cost: float = 0.0) -> KernelUpdate:
        """Track ``snapshot`` with the TIME_WAIT sockets beyond the cap left out."""
        shown, hidden = self._cap_time_wait(snapshot.sockets)
        if hidden:
            # Those left out here are in TIME_WAIT as much as those the probe left out.
            kept = {id(sock) for sock in shown}
            left_out = {sock.cookie for sock in snapshot.sockets if id(sock) not in kept and sock.cookie is not None}
            update = self.tracker.update(dataclasses.replace(snapshot, sockets=tuple(shown),
                                                             hidden_cookies=snapshot.hidden_cookies | left_out))
        else:
            update = self.tracker.update(snapshot)
        # The probe itself may have left TIME_WAIT sockets out (counted, not built): they are hidden too.
        return KernelUpdate(snapshot, update, hidden + snapshot.hidden_time_wait, cost)

    def _cap_time_wait(self, sockets: tuple[SocketInfo, ...]) -> tuple[list[SocketInfo], int]:
        """The sockets to show and how many TIME_WAIT ones are left out.

        TIME_WAIT rows already on screen stay until they expire (a table whose
        rows are swapped out twice a second helps nobody and costs a lot);
        free places go to the newest (most time left on their timer).
        """
        waiting = [sock for sock in sockets if sock.state == "TIME_WAIT"]
        room = self.max_time_wait
        if len(waiting) <= room:
            return list(sockets), 0
        on_screen = {row.key for row in self.tracker.rows if row.socket.state == "TIME_WAIT"}
        keep = [sock for sock in waiting if sock.key in on_screen][:room]
        if len(keep) < room:
            kept = {id(sock) for sock in keep}
            newest = sorted((sock for sock in waiting if id(sock) not in kept),
                            key=lambda sock: sock.timer.expires_ms if sock.timer else 0, reverse=True)
            keep += newest[: room - len(keep)]
        chosen = {id(sock) for sock in keep}
        shown = [sock for sock in sockets if sock.state != "TIME_WAIT" or id(sock) in chosen]
        return shown, len(waiting) - len(keep)
