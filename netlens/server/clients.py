"""Blocking clients for both protocols, the way the tutorial's clients talk.

Used by ``netlens client``, by the UI's "send a request" action and by tests.
Every failure is a :class:`ClientError`: one sentence a user can act on.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from netlens.display import endpoint
from netlens.errors import UserError
from netlens.proto import Decoder, Message, MessageComplete, ProtocolError, encode, request_message
from netlens.server.events import Address

DEFAULT_TIMEOUT = 5.0
#: The tutorial multiconn client's two messages (44 bytes in all).
TUTORIAL_MESSAGES = (b"Message 1 from client.", b"Message 2 from client.")


class ClientError(UserError):
    """A client request that failed, explained in one sentence."""


def not_an_echo_server(where: str, what_it_did: str,
                       hint: str = "talk to it with `netlens client search`") -> ClientError:
    """The sentence for an echo client that reached a server of another kind (``hint``: what to do instead)."""
    return ClientError(f"{where} {what_it_did}: it is not an echo server (a search server closes on bytes that "
                       f"are not its protocol); {hint}, or start an echo server with `netlens serve --mode echo`.")


def is_an_echo_server(where: str, hint: str = "talk to it with `netlens client echo`") -> ClientError:
    """The sentence for a search client whose request came back unchanged (``hint``: what to do instead)."""
    return ClientError(f"{where} sent our request back unchanged: it is an echo server, not a search server; "
                       f"{hint}, or start a search server with `netlens serve --mode search`.")


@dataclass(frozen=True)
class Reply:
    """A search-protocol exchange: what was sent and what came back."""

    request: Message
    response: Message
    sent_bytes: int
    received_bytes: int
    elapsed: float
    local: Address


def connect(host: str, port: int, timeout: float = DEFAULT_TIMEOUT, nodelay: bool = False) -> socket.socket:
    """Open a TCP connection or raise :class:`ClientError` saying why not."""
    where = endpoint(host, port)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        raise ClientError(
            f"nothing is listening on {where}; start the server first with "
            f"`netlens serve` (or `netlens serve --headless`)."
        ) from None
    except TimeoutError:
        raise ClientError(f"connecting to {where} timed out after {timeout:g} s.") from None
    except socket.gaierror as exc:
        raise ClientError(f"cannot resolve {host!r}: {exc.strerror}.") from None
    except OSError as exc:
        raise ClientError(f"cannot connect to {where}: {exc.strerror or exc}.") from None
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _send(sock: socket.socket, data: bytes, chunk_size: int | None, chunk_delay: float, where: str) -> None:
    try:
        if not chunk_size:
            sock.sendall(data)
            return
        for start in range(0, len(data), chunk_size):
            sock.sendall(data[start:start + chunk_size])
            if chunk_delay:
                time.sleep(chunk_delay)
    except TimeoutError:
        raise ClientError(f"sending to {where} timed out.") from None
    except OSError as exc:
        raise ClientError(f"the connection to {where} broke while sending: {exc.strerror or exc}.") from None


def request(
    host: str,
    port: int,
    action: str,
    value: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    chunk_size: int | None = None,
    chunk_delay: float = 0.0,
    on_connect: Callable[[socket.socket], None] | None = None,
) -> Reply:
    """Send one request (``search`` or any other action) and read the one response.

    ``chunk_size``/``chunk_delay`` write the request in pieces (1 = one byte per
    segment, with TCP_NODELAY) to show the server reassembling it.
    """
    where = endpoint(host, port)
    message = request_message(action, value)
    data = encode(message)
    started = time.perf_counter()
    sock = connect(host, port, timeout, nodelay=bool(chunk_size))
    with sock:
        local = sock.getsockname()
        if on_connect is not None:
            on_connect(sock)
        _send(sock, data, chunk_size, chunk_delay, where)
        decoder = Decoder(max_messages=1)
        received = 0
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise ClientError(f"no complete answer from {where} within {timeout:g} s.") from None
            except ConnectionResetError:
                raise ClientError(f"{where} reset the connection before answering.") from None
            except OSError as exc:
                raise ClientError(f"reading from {where} failed: {exc.strerror or exc}.") from None
            if not chunk:
                got = f" after {received} bytes" if received else " without answering"
                raise ClientError(f"{where} closed the connection{got}.")
            received += len(chunk)
            try:
                events = decoder.feed(chunk)
            except ProtocolError as exc:
                raise ClientError(f"the answer from {where} is not the search protocol: {exc}.") from None
            for event in events:
                if isinstance(event, MessageComplete):
                    if event.message.content == message.content and event.message.header == message.header:
                        # No search server answers with the request itself: an echo server does.
                        raise is_an_echo_server(where)
                    elapsed = time.perf_counter() - started
                    received += _await_close(sock)
                    return Reply(message, event.message, len(data), received, elapsed, (local[0], local[1]))


def _await_close(sock: socket.socket, timeout: float = 1.0) -> int:
    """Read until the server's FIN (the protocol says the server closes first), then let go.

    Closing before the FIN arrives would race the server and could put the
    TIME_WAIT on our side instead of the server's, which the workshop points at.
    Returns how many unexpected extra bytes came.
    """
    extra = 0
    sock.settimeout(timeout)
    try:
        while chunk := sock.recv(65536):
            extra += len(chunk)
    except (TimeoutError, OSError):
        pass
    return extra


def search(host: str, port: int, value: str, **kwargs: object) -> Reply:
    """A ``search`` request for ``value`` (see :func:`request` for options)."""
    return request(host, port, "search", value, **kwargs)  # type: ignore[arg-type]


def echo(
    host: str,
    port: int,
    messages: Sequence[bytes] = TUTORIAL_MESSAGES,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    on_event: Callable[[str], None] | None = None,
) -> bytes:
    """Send ``messages`` on one connection and return the echo once all of it came back.

    Mirrors the tutorial's multiconn client: send everything, read until as
    many bytes came back as were sent, then close. ``on_event`` hears each step.
    """
    where = endpoint(host, port)
    total = sum(len(m) for m in messages)
    say = on_event or (lambda line: None)
    sock = connect(host, port, timeout)
    with sock:
        say(f"connected to {where} from {endpoint(*sock.getsockname()[:2])}")
        for message in messages:
            say(f"sending {message!r}")
            _send(sock, message, None, 0.0, where)
        received = bytearray()
        sent = b"".join(messages)
        while len(received) < total:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                raise ClientError(
                    f"{where} echoed {len(received)} of {total} bytes within {timeout:g} s.") from None
            except OSError as exc:
                if exc.errno == errno.ECONNRESET:
                    raise ClientError(f"{where} reset the connection.") from None
                raise ClientError(f"reading from {where} failed: {exc.strerror or exc}.") from None
            if not chunk:
                if not received:
                    raise not_an_echo_server(where, "closed the connection without echoing a byte")
                raise ClientError(f"{where} closed after echoing {len(received)} of {total} bytes.")
            if not sent.startswith(bytes(received) + chunk):
                raise not_an_echo_server(where, "answered with bytes that are not the ones we sent")
            received += chunk
            say(f"received {bytes(chunk)!r}")
        say("closing")
    return bytes(received)
