"""The search responder as a pure function: request message in, response message out.

Strings and the lookup table are exactly the reference server's (PROTOCOL.md §2),
so a stock tutorial client cannot tell netlens from the tutorial server — except
that netlens also answers the requests the reference never answers.
"""

from __future__ import annotations

import sys

from netlens.proto.encoder import binary_message, json_message
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
