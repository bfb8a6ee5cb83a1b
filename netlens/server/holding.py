"""Clients that stay connected: ``hold`` keeps a connection open, ``stream`` sends without end.

Every tutorial client finishes in milliseconds, too fast to pause its
reading, shut it down or reset it from the TUI. These two stay until their
time is up, a stop event is set (Ctrl-C, SIGTERM, the app quitting) or the
server ends the connection, and say what happened in plain sentences:

* :func:`hold` connects, optionally sends some bytes, and waits, reading
  whatever arrives. After the server's FIN it keeps its own side open (the
  socket sits in CLOSE_WAIT) until it is told to stop.
* :func:`stream` sends a repeating pattern at a given rate and (unless
  ``read=False``) reads the echo back. Not reading is the slow-reader demo:
  the client's Recv-Q fills, then the server stops reading and the client's
  Send-Q fills. It needs an echo server and says so in one sentence when the
  other end is not one.

Both wait in ``select()`` with short timeouts, so a stop request is seen
within a fifth of a second and the socket is always closed on the way out.
"""

from __future__ import annotations

import errno
import fcntl
import selectors
import socket
import struct
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from netlens.display import endpoint
from netlens.server.clients import DEFAULT_TIMEOUT, ClientError, connect, not_an_echo_server
from netlens.textsafe import safe_bytes

#: Longest wait in select() before looking at the stop event and the clock again (seconds).
POLL = 0.2
#: The bytes ``stream`` sends, over and over: readable in a capture, and its own echo is recognisable.
PATTERN = b"netlens stream 0123456789 abcdefghijklmnopqrstuvwxyz\n"
#: Bytes per send() call by default.
DEFAULT_CHUNK = 16 * 1024
#: What to do instead when ``stream`` reached a server that does not echo.
_HINT = "stream needs an echo server (`netlens client hold` works with any)"
#: How many echoed bytes are compared with what was sent (enough to tell an echo server from another).
VERIFY_BYTES = 64 * 1024


class Stop(Protocol):
    """What stops a client early: a ``threading.Event`` (set by a signal handler or a UI)."""

    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass
class Outcome:
    """How a held or streaming connection went."""

    local: tuple[str, int]
    remote: tuple[str, int]
    seconds: float
    sent: int
    received: int
    #: Why it ended: "time is up", "stopped", "the server reset the connection (RST)", ...
    ended: str

    def summary(self) -> str:
        """One sentence for the user."""
        return (f"{endpoint(*self.local)} ⇄ {endpoint(*self.remote)}: {self.ended} after {self.seconds:.1f} s; "
                f"{self.sent:,} bytes sent, {self.received:,} received.")


def socket_queues(sock: socket.socket) -> tuple[int, int]:
    """This socket's Recv-Q and Send-Q as the kernel counts them (bytes unread; bytes unacknowledged)."""
    buf = struct.pack("i", 0)
    recv_q = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, buf))[0]
    send_q = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf))[0]
    return recv_q, send_q


class _Session:
    """One connection's clock, counters and way out (shared by hold and stream)."""

    def __init__(self, host: str, port: int, seconds: float | None, stop: Stop | None,
                 on_event: Callable[[str], None] | None, timeout: float) -> None:
        self.where = endpoint(host, port)
        self.sock = connect(host, port, timeout)
        self.local = _address(self.sock.getsockname())
        self.remote = _address(self.sock.getpeername())
        self.started = time.monotonic()
        self.deadline = self.started + seconds if seconds else float("inf")
        self.stop = stop
        self.say = on_event or (lambda line: None)
        self.sent = 0
        self.received = 0
        self.ended = ""

    def over(self) -> bool:
        """True once stopped or out of time (and ``ended`` says which)."""
        if self.stop is not None and self.stop.is_set():
            self.ended = self.ended or "stopped"
        elif time.monotonic() >= self.deadline:
            self.ended = self.ended or "time is up"
        return bool(self.ended)

    def wait(self) -> float:
        """How long select() may wait now."""
        return max(0.0, min(POLL, self.deadline - time.monotonic()))

    def pause(self, seconds: float | None = None) -> None:
        """Sleep a little (at most until the deadline), waking at once when stopped."""
        wait = self.wait() if seconds is None else max(0.0, min(seconds, self.wait()))
        if self.stop is not None:
            self.stop.wait(wait)
        else:
            time.sleep(wait)

    def close(self) -> Outcome:
        """Close the socket (RST instead of FIN if unread bytes wait, as the kernel does) and report."""
        try:
            unread = socket_queues(self.sock)[0]
        except OSError:
            unread = 0
        if unread and self.ended in ("stopped", "time is up"):
            self.say(f"closing with {unread:,} unread bytes in our receive queue: the kernel sends RST, not FIN")
        self.sock.close()
        return Outcome(self.local, self.remote, time.monotonic() - self.started, self.sent, self.received,
                       self.ended or "closed")


def _address(raw: object) -> tuple[str, int]:
    return (str(raw[0]), int(raw[1]))  # type: ignore[index]


def hold(host: str, port: int, *, send: bytes = b"", seconds: float | None = None, stop: Stop | None = None,
         on_event: Callable[[str], None] | None = None,
         on_connect: Callable[[tuple[str, int], tuple[str, int]], None] | None = None,
         timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    """Connect, send ``send`` (if any), and keep the connection open until told otherwise.

    Whatever the server sends is read and reported. After its FIN our side
    stays open (CLOSE_WAIT) until the time is up or ``stop`` is set; an RST
    ends the hold at once.
    """
    session = _Session(host, port, seconds, stop, on_event, timeout)
    say = session.say
    say(f"connected to {session.where} from {endpoint(*session.local)}")
    if on_connect is not None:
        on_connect(session.local, session.remote)
    sock = session.sock
    try:
        if send:
            # Still the blocking socket connect() made (with its timeout): sendall is fine here.
            sock.sendall(send)
            session.sent = len(send)
            say(f"sent {len(send):,} bytes: {safe_bytes(send, 64)}")
        sock.setblocking(False)
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ)
            reading = True
            while not session.over():
                if not reading:
                    session.pause()
                elif sel.select(session.wait()):
                    reading = _read_held(session)
    except OSError as exc:
        session.ended = session.ended or f"the connection failed: {exc.strerror or exc}"
    finally:
        outcome = session.close()
    return outcome


def _read_held(session: _Session) -> bool:
    """Read what the server sent to a held connection; False once it sent FIN (or the connection ended)."""
    try:
        data = session.sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return True
    except ConnectionResetError:
        session.ended = "the server reset the connection (RST)"
        return False
    if not data:
        session.say("the server sent FIN (no more data from it); holding our side open: "
                    "this socket now waits in CLOSE_WAIT")
        return False
    session.received += len(data)
    session.say(f"received {len(data):,} bytes: {safe_bytes(data, 64)}")
    return True


def _size(n: float) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``."""
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class _Pattern:
    """The endless byte stream ``stream`` sends: PATTERN repeated, sliced by offset."""

    def __init__(self, chunk: int) -> None:
        self.chunk = chunk
        self._block = PATTERN * (chunk // len(PATTERN) + 2)

    def at(self, offset: int, n: int) -> memoryview:
        """``n`` (at most one chunk) bytes starting at stream offset ``offset``."""
        start = offset % len(PATTERN)
        return memoryview(self._block)[start:start + min(n, self.chunk)]

    def matches(self, offset: int, data: bytes) -> bool:
        """True if ``data`` is what the stream holds at ``offset`` (its first VERIFY_BYTES are checked)."""
        data = data[:max(0, VERIFY_BYTES - offset)]
        start = offset % len(PATTERN)
        block = PATTERN * (len(data) // len(PATTERN) + 2)
        return block[start:start + len(data)] == data


class _Streamer:
    """The send/receive loop of :func:`stream` on a non-blocking socket."""

    def __init__(self, session: _Session, rate: int | None, chunk: int, read: bool) -> None:
        self.session = session
        self.rate = rate
        self.read = read
        self.pattern = _Pattern(chunk)
        #: Whether the echo has been seen to match (without reading: peeked at).
        self.verified = False
        self.fin = False

    def allowance(self) -> int:
        """Bytes the rate allows now (at most a chunk; a whole chunk when there is no rate)."""
        if not self.rate:
            return self.pattern.chunk
        elapsed = time.monotonic() - self.session.started
        return max(0, min(self.pattern.chunk, int(self.rate * elapsed) - self.session.sent))

    def send_wait(self) -> float:
        """Seconds until the rate allows the next byte (0: now)."""
        if not self.rate or self.allowance() > 0:
            return 0.0
        elapsed = time.monotonic() - self.session.started
        return max(0.001, (self.session.sent + 1 - self.rate * elapsed) / self.rate)

    def interest(self) -> int:
        """The selector events wanted now."""
        events = selectors.EVENT_WRITE if self.allowance() > 0 else 0
        if not self.fin and (self.read or not self.verified):
            events |= selectors.EVENT_READ
        return events

    def write(self) -> None:
        """Send what the rate allows, a few chunks at most, until the kernel takes no more."""
        session = self.session
        try:
            for _ in range(8):
                allowed = self.allowance()
                if not allowed:
                    return
                session.sent += session.sock.send(self.pattern.at(session.sent, allowed))
        except (BlockingIOError, InterruptedError):
            pass
        except (BrokenPipeError, ConnectionResetError) as exc:
            if not self.verified:
                raise not_an_echo_server(session.where, "reset the connection instead of echoing", _HINT) from None
            session.ended = ("the server reset the connection (RST)" if isinstance(exc, ConnectionResetError)
                             else "the server closed the connection")

    def receive(self) -> None:
        session = self.session
        try:
            data = session.sock.recv(65536, 0 if self.read else socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionResetError:
            if not self.verified:
                raise not_an_echo_server(session.where, "reset the connection instead of echoing", _HINT) from None
            session.ended = "the server reset the connection (RST)"
            return
        offset = session.received if self.read else 0
        if not data:
            if not self.verified:
                raise not_an_echo_server(session.where, "closed the connection without echoing a byte", _HINT)
            self.fin = True
            session.say("the server sent FIN: it will send nothing more")
            return
        if offset < VERIFY_BYTES and not self.pattern.matches(offset, data):
            raise not_an_echo_server(session.where, "answered with bytes that are not the ones we sent", _HINT)
        if not self.verified and (offset + len(data) >= min(len(PATTERN), session.sent)):
            self.verified = True
            if not self.read:
                session.say("the server echoes; from now on we never read: watch our Recv-Q, "
                            "then the server's, then our Send-Q fill")
        if self.read:
            session.received += len(data)


def stream(host: str, port: int, *, rate: int | None = None, chunk: int = DEFAULT_CHUNK, read: bool = True,
           seconds: float | None = None, stop: Stop | None = None,
           on_event: Callable[[str], None] | None = None,
           on_progress: Callable[[str], None] | None = None,
           on_connect: Callable[[tuple[str, int], tuple[str, int]], None] | None = None,
           progress_every: float = 1.0, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    """Send a repeating pattern to an echo server at ``rate`` bytes/s (None: as fast as it goes).

    With ``read`` the echo is read back (and checked); without, nothing is
    ever read after the first echo was peeked at to make sure the server
    echoes: the slow-reader demo. ``on_progress`` hears the counters and this
    socket's own Recv-Q/Send-Q every ``progress_every`` seconds.
    """
    session = _Session(host, port, seconds, stop, on_event, timeout)
    session.say(f"connected to {session.where} from {endpoint(*session.local)}; streaming "
                f"{'as fast as it goes' if not rate else _size(rate) + '/s'}"
                f"{'' if read else ', never reading'}")
    if on_connect is not None:
        on_connect(session.local, session.remote)
    streamer = _Streamer(session, rate, chunk, read)
    sock = session.sock
    sock.setblocking(False)
    next_report = session.started + progress_every
    registered = 0
    try:
        with selectors.DefaultSelector() as sel:
            while not session.over():
                now = time.monotonic()
                if on_progress is not None and now >= next_report:
                    next_report = now + progress_every
                    on_progress(_progress(session, now))
                wanted = streamer.interest()
                if wanted != registered:
                    _reregister(sel, sock, registered, wanted)
                    registered = wanted
                wait = min(session.wait(), streamer.send_wait() or POLL)
                if not wanted:
                    session.pause(wait)
                    continue
                for _, events in sel.select(wait):
                    if events & selectors.EVENT_READ:
                        streamer.receive()
                    if events & selectors.EVENT_WRITE and not session.ended:
                        streamer.write()
    except OSError as exc:
        if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
            raise ClientError(f"streaming to {session.where} failed: {exc.strerror or exc}.") from None
        session.ended = "the server reset the connection (RST)"
    finally:
        outcome = session.close()
    return outcome


def _reregister(sel: selectors.BaseSelector, sock: socket.socket, old: int, new: int) -> None:
    if not old:
        sel.register(sock, new)
    elif not new:
        sel.unregister(sock)
    else:
        sel.modify(sock, new)


def _progress(session: _Session, now: float) -> str:
    elapsed = now - session.started
    recv_q, send_q = socket_queues(session.sock)
    return (f"{elapsed:5.1f} s  sent {_size(session.sent)} ({_size(session.sent / max(elapsed, 1e-3))}/s)  "
            f"echoed back {_size(session.received)}  this socket: Recv-Q {recv_q:,}  Send-Q {send_q:,}")


_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}


def parse_rate(text: str) -> int | None:
    """``64k``, ``1M``, ``1.5m`` or ``500`` (bytes per second) -> bytes/s; ``0`` or ``max`` -> None (no limit).

    Raises ``ValueError`` with a sentence for anything else.
    """
    value = text.strip().lower().removesuffix("/s").removesuffix("b").removesuffix("i")
    if value in ("0", "max", "unlimited"):
        return None
    unit = value[-1:] if value[-1:] in _UNITS else ""
    try:
        number = float(value[: len(value) - len(unit)])
    except ValueError:
        raise ValueError(f"{text!r} is not a rate; give bytes per second like 64k, 1M or 0 for no limit") from None
    if not number > 0 or number * _UNITS[unit] > 1 << 40:
        raise ValueError(f"{text!r} is not a rate; give bytes per second like 64k, 1M or 0 for no limit")
    return max(1, int(number * _UNITS[unit]))
