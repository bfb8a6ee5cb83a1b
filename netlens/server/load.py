"""Concurrent load: many non-blocking clients in one selectors loop.

``N`` clients each run ``M`` requests back to back, so ``N`` requests are in
flight at any time. In search mode every request is a new connection (one
request per connection, as the protocol says); in echo mode each client keeps
one connection and does ``M`` round trips on it. Latency is measured per
request from the connect (search) or the send (echo) to the last byte back.
"""

from __future__ import annotations

import errno
import math
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from netlens.display import endpoint
from netlens.proto import Decoder, MessageComplete, ProtocolError, encode_request
from netlens.server.clients import ClientError, is_an_echo_server, not_an_echo_server

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE
DEFAULT_VALUES = ("morpheus", "ring", "\U0001f436", "neo")
ECHO_MESSAGE = b"Message 1 from client.Message 2 from client."


@dataclass
class LoadResult:
    """What a load run measured."""

    mode: str
    clients: int
    completed: int = 0
    errors: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    error_kinds: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.completed / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, pct: float) -> float:
        """Latency (seconds) at ``pct`` percent (nearest rank); 0 when nothing completed."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = min(len(ordered), max(1, math.ceil(pct / 100 * len(ordered))))
        return ordered[rank - 1]


class _Client:
    __slots__ = ("index", "sock", "remaining", "outbox", "decoder", "expect", "got", "started", "answered",
                 "request", "reply")

    def __init__(self, index: int, requests: int) -> None:
        self.index = index
        self.sock: socket.socket | None = None
        self.remaining = requests
        self.outbox = b""
        self.decoder: Decoder | None = None
        self.expect = 0
        self.got = 0
        self.started = 0.0
        self.answered = False
        #: The request in flight and the bytes of its answer so far (to recognise an echo of it).
        self.request = b""
        self.reply = bytearray()


class LoadRunner:
    """Drive ``clients`` concurrent clients against a server until done or ``duration`` ends."""

    def __init__(self, host: str, port: int, mode: str = "search", clients: int = 16,
                 requests: int | None = 100, duration: float | None = None,
                 values: tuple[str, ...] = DEFAULT_VALUES, timeout: float = 10.0,
                 keep_latencies: bool = True) -> None:
        if mode not in ("search", "echo"):
            raise ValueError("mode must be 'search' or 'echo'")
        if clients < 1:
            raise ValueError("at least one client is needed")
        if requests is None and duration is None:
            raise ValueError("give a number of requests, a duration, or both")
        self.host, self.port, self.mode = host, port, mode
        self.clients = clients
        self.requests = requests
        self.duration = duration
        self.timeout = timeout
        self.keep_latencies = keep_latencies
        self._requests_bytes = [encode_request("search", v) for v in values]
        self.result = LoadResult(mode, clients)
        self._sel = selectors.DefaultSelector()
        self._active = 0
        self._stop_at = 0.0
        self._refused = False
        #: Set when the server turns out to speak the other protocol: the run stops with it.
        self._mismatch: ClientError | None = None

    @property
    def _where(self) -> str:
        return endpoint(self.host, self.port)

    @property
    def total(self) -> int | None:
        """Requests the run will make in all (None when bounded by time only)."""
        return None if self.requests is None else self.requests * self.clients

    def run(self, progress: Callable[[LoadResult], None] | None = None, interval: float = 0.1,
            should_stop: Callable[[], bool] | None = None) -> LoadResult:
        """Run to completion; ``progress`` is called about every ``interval`` seconds.

        ``should_stop`` is asked every fifth of a second at most; once it says
        True the run ends at once, its connections closed (a UI quitting).
        """
        result = self.result
        started = time.perf_counter()
        self._stop_at = started + self.duration if self.duration else float("inf")
        per_client = self.requests if self.requests is not None else 1 << 62
        for index in range(self.clients):
            self._next(_Client(index, per_client))
        next_report = started + interval
        try:
            while self._active and self._mismatch is None:
                for key, events in self._sel.select(0.2):
                    self._service(key.data, events)
                    if self._mismatch is not None:
                        break
                if should_stop is not None and should_stop():
                    break
                now = time.perf_counter()
                if now >= next_report:
                    if progress is not None:
                        result.elapsed = now - started
                        progress(result)
                    next_report = now + interval
                    self._reap_timeouts(now)
        finally:
            for key in list(self._sel.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            self._sel.close()
        result.elapsed = time.perf_counter() - started
        if self._mismatch is not None:
            raise self._mismatch
        if self._refused:
            raise ClientError(
                f"nothing is listening on {endpoint(self.host, self.port)}; start the server "
                f"first with `netlens serve` (or `netlens serve --headless --mode {self.mode}`).")
        if progress is not None:
            progress(result)
        return result

    # One client's life: connect -> send -> receive -> (next request | done).

    def _next(self, client: _Client) -> None:
        # A loop, not recursion: with the server gone every connect fails at once.
        while True:
            if client.remaining <= 0 or time.perf_counter() >= self._stop_at:
                self._finish(client)
                return
            client.remaining -= 1
            if self.mode == "echo" and client.sock is not None:
                break
            if self._open(client):
                break
        self._prepare(client)

    def _open(self, client: _Client) -> bool:
        """Start a non-blocking connect; False (error counted) if it failed at once."""
        self._finish(client)
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        client.started = time.perf_counter()
        err = sock.connect_ex((self.host, self.port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self._count_error(errno.errorcode.get(err, str(err)))
            return False
        client.sock = sock
        self._sel.register(sock, WRITE, client)
        self._active += 1
        return True

    def _prepare(self, client: _Client) -> None:
        if self.mode == "search":
            data = self._requests_bytes[(client.index + client.remaining) % len(self._requests_bytes)]
            client.decoder = Decoder(max_messages=1)
        else:
            data = ECHO_MESSAGE
            client.started = time.perf_counter()
            self._sel.modify(client.sock, WRITE, client)  # type: ignore[arg-type]
        client.outbox = data
        client.request = data
        client.reply.clear()
        client.expect = len(data)
        client.got = 0
        client.answered = False

    def _service(self, client: _Client, events: int) -> None:
        sock = client.sock
        assert sock is not None
        try:
            if events & WRITE:
                sent = sock.send(client.outbox)
                client.outbox = client.outbox[sent:]
                if not client.outbox:
                    self._sel.modify(sock, READ, client)
                return
            chunk = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._error(client, errno.errorcode.get(exc.errno or 0, type(exc).__name__))
            return
        if not chunk:
            if client.answered:
                # The server's FIN after its answer: now it is our turn to close.
                self._next(client)
            elif self.mode == "echo" and not client.got and not self.result.completed:
                self._mismatch = not_an_echo_server(self._where, "closed the connection without echoing a byte",
                                                    "use `netlens load --mode search`")
            else:
                self._error(client, "closed before answering")
            return
        if client.answered:
            return  # bytes after the answer: ignored until the server closes
        if self.mode == "echo":
            if not client.request.startswith(chunk, client.got):
                self._mismatch = not_an_echo_server(self._where, "answered with bytes that are not the ones we sent",
                                                    "use `netlens load --mode search`")
                return
            client.got += len(chunk)
            if client.got >= client.expect:
                self._done(client)
            return
        if len(client.reply) <= len(client.request):
            client.reply += chunk
        assert client.decoder is not None
        try:
            events_ = client.decoder.feed(chunk)
        except ProtocolError:
            self._error(client, "bad response")
            return
        if any(isinstance(e, MessageComplete) for e in events_):
            if client.reply == client.request:
                # No search server answers with the request itself: an echo server does.
                self._mismatch = is_an_echo_server(self._where, "use `netlens load --mode echo`")
                return
            # Latency ends with the answer, but the connection is finished only when the
            # server closes it (it closes first), so TIME_WAIT stays on the server's side.
            client.answered = True
            self._record(client)

    def _record(self, client: _Client) -> None:
        result = self.result
        result.completed += 1
        if self.keep_latencies:
            result.latencies.append(time.perf_counter() - client.started)

    def _done(self, client: _Client) -> None:
        self._record(client)
        self._next(client)

    def _count_error(self, kind: str) -> None:
        result = self.result
        result.errors += 1
        result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1
        # Every client refused before anything worked: no server. Stop now rather
        # than hammer a closed port for the whole run.
        if kind == "ECONNREFUSED" and not result.completed and result.errors >= self.clients:
            self._refused = True
            self._stop_at = 0.0

    def _error(self, client: _Client, kind: str) -> None:
        self._count_error(kind)
        self._finish(client)
        self._next(client)

    def _finish(self, client: _Client) -> None:
        if client.sock is not None:
            self._sel.unregister(client.sock)
            client.sock.close()
            client.sock = None
            self._active -= 1

    def _reap_timeouts(self, now: float) -> None:
        for key in list(self._sel.get_map().values()):
            client = key.data
            if now - client.started > self.timeout:
                if client.answered:
                    self._next(client)  # answered; the server just never closed
                else:
                    self._error(client, "timeout")
