"""Sans-IO codec for the search protocol of PROTOCOL.md (stdlib only, no I/O, no clock).

Bytes in, events out (:class:`Decoder`); messages in, bytes out (:func:`encode`).
The echo protocol needs no codec beyond bytes.
"""

from netlens.proto.decoder import Decoder, DecoderEvent, JsonHeaderRead, MessageComplete, ProtoHeaderRead
from netlens.proto.encoder import (
    binary_message,
    encode,
    encode_request,
    json_message,
    make_message,
    request_message,
)
from netlens.proto.errors import ProtocolError
from netlens.proto.message import (
    CLIENT_BINARY_TYPE,
    DEFAULT_MAX_CONTENT_LENGTH,
    DEFAULT_MAX_HEADER_LENGTH,
    JSON_CONTENT_TYPE,
    REQUIRED_KEYS,
    SERVER_BINARY_TYPE,
    Message,
    Stage,
)
from netlens.proto.search import DEFAULT_REPLY_CACHE_BYTES, TABLE, ReplyCache, error_response, reply, respond

__all__ = [
    "CLIENT_BINARY_TYPE",
    "DEFAULT_MAX_CONTENT_LENGTH",
    "DEFAULT_MAX_HEADER_LENGTH",
    "DEFAULT_REPLY_CACHE_BYTES",
    "JSON_CONTENT_TYPE",
    "REQUIRED_KEYS",
    "SERVER_BINARY_TYPE",
    "TABLE",
    "Decoder",
    "DecoderEvent",
    "JsonHeaderRead",
    "Message",
    "MessageComplete",
    "ProtoHeaderRead",
    "ProtocolError",
    "ReplyCache",
    "Stage",
    "binary_message",
    "encode",
    "encode_request",
    "error_response",
    "json_message",
    "make_message",
    "reply",
    "request_message",
    "respond",
]
