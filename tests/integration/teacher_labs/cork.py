"""A teacher's lab: TCP_CORK holds small writes back until the cork comes out."""

import socket

from netlens.labs.checks import refs
from netlens.labs.model import Check, Lab, Observation, Step, Watch


def corked_writes(ctx):
    sock = ctx.connect(options={(socket.IPPROTO_TCP, socket.TCP_NODELAY): 1})
    ctx.keep("port", sock.getsockname()[1])
    if ctx.variant != "no-cork":
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
    for word in (b"one ", b"two ", b"three"):
        sock.send(word)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)  # out comes the cork: everything leaves
    sock.recv(64)


def one_segment(evidence):
    port = evidence.facts["port"]
    data = evidence.all(lambda p: p.sport == port and p.len)
    return Observation([p.len for p in data] == [13], f"segments of {[p.len for p in data]} bytes", refs(data))


LAB = Lab(
    name="cork",
    title="TCP_CORK: many writes, one segment",
    lesson="With TCP_CORK set the kernel keeps small writes until the cork is removed (or 200 ms pass).",
    steps=(Step("Three corked writes", "The client corks, writes three words, uncorks.",
                Watch("packets", "a single data segment of 13 bytes", {"flags": "PA"}), corked_writes),),
    checks=(Check("one segment", "the three writes leave as one 13-byte segment", one_segment),),
    control="no-cork",
    variants={"no-cork": "no cork: with TCP_NODELAY each write is its own segment"},
    server_mode="echo",
)
