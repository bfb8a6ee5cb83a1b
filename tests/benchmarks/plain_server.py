"""A search (or echo) server written the tutorial's way, as the benchmarks' yardstick.

One selectors loop, ``recv(4096)``, ``bytes`` buffers that are re-sliced on
every step, JSON decoded through a text wrapper, a per-connection message
object, a ``print`` when a connection is accepted and when it closes (as the
tutorial's servers do) — and no other instrumentation. It answers exactly what
netlens answers for well-formed requests. The echo server registers WRITE only
while it has bytes to send (the tutorial's READ|WRITE would spin and make the
yardstick slower than it need be). Written for the benchmark; not used by netlens.

Run: ``python plain_server.py [PORT] [--echo]``; the first line printed is the port.
"""

from __future__ import annotations

import io
import json
import selectors
import socket
import struct
import sys

TABLE = {
    "morpheus": "Follow the white rabbit. \U0001f430",
    "ring": "In the caves beneath the Misty Mountains. \U0001f48d",
    "\U0001f436": "\U0001f43e Playing ball! \U0001f3d0",
}


class PlainMessage:
    """Per-connection state: receive buffer, parse steps, send buffer."""

    def __init__(self, sel: selectors.BaseSelector, sock: socket.socket, addr: object) -> None:
        self.sel = sel
        self.sock = sock
        self.addr = addr
        self.inbuf = b""
        self.outbuf = b""
        self.header_len: int | None = None
        self.header: dict | None = None
        self.request: object = None
        self.answered = False

    def on_event(self, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            self.on_read()
        if mask & selectors.EVENT_WRITE:
            self.on_write()

    def on_read(self) -> None:
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return
        if not data:
            self.close()
            return
        self.inbuf += data
        if self.header_len is None and len(self.inbuf) >= 2:
            self.header_len = struct.unpack(">H", self.inbuf[:2])[0]
            self.inbuf = self.inbuf[2:]
        if self.header_len is not None and self.header is None and len(self.inbuf) >= self.header_len:
            self.header = self.decode_json(self.inbuf[: self.header_len], "utf-8")
            self.inbuf = self.inbuf[self.header_len:]
        if self.header is not None and self.request is None:
            length = self.header["content-length"]
            if len(self.inbuf) >= length:
                body, self.inbuf = self.inbuf[:length], self.inbuf[length:]
                if self.header["content-type"] == "text/json":
                    self.request = self.decode_json(body, self.header["content-encoding"])
                else:
                    self.request = body
                self.sel.modify(self.sock, selectors.EVENT_WRITE, data=self)

    @staticmethod
    def decode_json(raw: bytes, encoding: str) -> object:
        wrapper = io.TextIOWrapper(io.BytesIO(raw), encoding=encoding, newline="")
        value = json.load(wrapper)
        wrapper.close()
        return value

    def build_response(self) -> None:
        if isinstance(self.request, dict):
            if self.request.get("action") == "search":
                query = self.request.get("value")
                answer = TABLE.get(query) or f"No match for '{query}'."
            else:
                answer = f"Error: invalid action '{self.request.get('action')}'."
            content = json.dumps({"result": answer}, ensure_ascii=False).encode("utf-8")
            ctype, cenc = "text/json", "utf-8"
        else:
            content = b"First 10 bytes of request: " + bytes(self.request)[:10]  # type: ignore[arg-type]
            ctype, cenc = "binary/custom-server-binary-type", "binary"
        header = json.dumps({"byteorder": sys.byteorder, "content-type": ctype,
                             "content-encoding": cenc, "content-length": len(content)},
                            ensure_ascii=False).encode("utf-8")
        self.outbuf += struct.pack(">H", len(header)) + header + content
        self.answered = True

    def on_write(self) -> None:
        if not self.answered:
            self.build_response()
        if self.outbuf:
            try:
                sent = self.sock.send(self.outbuf)
            except BlockingIOError:
                return
            self.outbuf = self.outbuf[sent:]
            if not self.outbuf:
                self.close()

    def close(self) -> None:
        print(f"Closing connection to {self.addr}")
        self.sel.unregister(self.sock)
        self.sock.close()


class PlainEcho:
    """The tutorial's multiconn echo server's per-connection state."""

    def __init__(self, sel: selectors.BaseSelector, sock: socket.socket, addr: object) -> None:
        self.sel = sel
        self.sock = sock
        self.addr = addr
        self.outbuf = b""

    def on_event(self, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, ConnectionResetError):
                return
            if not data:
                print(f"Closing connection to {self.addr}")
                self.sel.unregister(self.sock)
                self.sock.close()
                return
            self.outbuf += data
        if self.outbuf:
            try:
                sent = self.sock.send(self.outbuf)
            except BlockingIOError:
                sent = 0
            self.outbuf = self.outbuf[sent:]
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outbuf else 0)
            self.sel.modify(self.sock, want, data=self)


def serve(host: str, port: int, echo: bool = False) -> None:
    """Serve forever on host:port (port 0: any); writes the port to stdout when listening."""
    sel = selectors.DefaultSelector()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((host, port))
    lsock.listen(128)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, data=None)
    print(lsock.getsockname()[1], flush=True)
    while True:
        for key, mask in sel.select(timeout=None):
            if key.data is None:
                conn, addr = lsock.accept()
                print(f"Accepted connection from {addr}")
                conn.setblocking(False)
                state = PlainEcho(sel, conn, addr) if echo else PlainMessage(sel, conn, addr)
                sel.register(conn, selectors.EVENT_READ, data=state)
            else:
                key.data.on_event(mask)


if __name__ == "__main__":
    numbers = [arg for arg in sys.argv[1:] if arg.isdigit()]
    serve("127.0.0.1", int(numbers[0]) if numbers else 0, echo="--echo" in sys.argv[1:])
