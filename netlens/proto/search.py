"""The search responder as a pure function: request message in, response message out.

Strings and the lookup table are exactly the reference server's (PROTOCOL.md §2),
so a stock tutorial client cannot tell netlens from the tutorial server — except
that netlens also answers the requests the reference never answers.
"""

from __future__ import annotations

import sys

from netlens.proto.encoder import binary_message, encode, json_message
from netlens.proto.message import JSON_CONTENT_TYPE, SERVER_BINARY_TYPE, Message

#: The reference server's lookup table, exact strings.
TABLE: dict[str, str] = {
    "morpheus": "Follow the white rabbit. \U0001f430",
    "ring": "In the caves beneath the Misty Mountains. \U0001f48d",
    "\U0001f436": "\U0001f43e Playing ball! \U0001f3d0",
}

BINARY_PREFIX = b"First 10 bytes of request: "


def respond(request: Message, byteorder: str = sys.byteorder) -> Message:
    """The response to ``request``, exactly as the reference table says.

    An empty JSON request (``{}``) has no action, so — as in the reference's
    own lookup — it gets ``Error: invalid action 'None'.``; the reference
    never sends that because it tests the request for truthiness and spins.
    """
    if request.content_type != JSON_CONTENT_TYPE or request.value is None:
        return binary_message(BINARY_PREFIX + request.content[:10], SERVER_BINARY_TYPE, byteorder)
    action = request.value.get("action")
    if action == "search":
        query = request.value.get("value")
        answer = TABLE.get(query) if isinstance(query, str) else None
        if answer is None:
            answer = f"No match for '{query}'."
        return json_message({"result": answer}, byteorder)
    return json_message({"result": f"Error: invalid action '{action}'."}, byteorder)


def error_response(reason: str, byteorder: str = sys.byteorder) -> Message:
    """The ``text/json`` error answer for a request whose framing was readable."""
    return json_message({"error": reason}, byteorder)


#: Encoded responses by request key: the table is tiny and most requests repeat,
#: so the server answers a repeated request with one dict lookup instead of
#: two JSON encodings. Bounded: cleared whole when full.
_REPLY_CACHE: dict[tuple[object, ...], tuple[bytes, str]] = {}
_REPLY_CACHE_SIZE = 4096
_HASHABLE_SCALARS = (str, int, float, bool, type(None))


def _reply_key(request: Message, byteorder: str) -> tuple[object, ...] | None:
    """What the response depends on, or None when that is not hashable."""
    if request.content_type != JSON_CONTENT_TYPE or request.value is None:
        return ("binary", byteorder, request.content[:10])
    action = request.value.get("action")
    if not isinstance(action, _HASHABLE_SCALARS):
        return None
    if action != "search":
        return ("action", byteorder, type(action).__name__, action)
    query = request.value.get("value")
    if not isinstance(query, _HASHABLE_SCALARS):
        return None
    # The type is part of the key: True == 1 but "No match for 'True'." differs.
    return ("search", byteorder, type(query).__name__, query)


def reply(request: Message, byteorder: str = sys.byteorder) -> tuple[bytes, str]:
    """The encoded response to ``request`` and its one-line summary (memoised :func:`respond`)."""
    key = _reply_key(request, byteorder)
    if key is not None:
        cached = _REPLY_CACHE.get(key)
        if cached is not None:
            return cached
    response = respond(request, byteorder)
    result = (encode(response), response.describe())
    if key is not None:
        if len(_REPLY_CACHE) >= _REPLY_CACHE_SIZE:
            _REPLY_CACHE.clear()
        _REPLY_CACHE[key] = result
    return result
