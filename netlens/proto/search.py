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


#: Default byte budget of a :class:`ReplyCache`.
DEFAULT_REPLY_CACHE_BYTES = 4 * 1024 * 1024
#: What one cache entry costs besides its strings and bytes (dict slot, tuples, object headers).
ENTRY_OVERHEAD = 320
_HASHABLE_SCALARS = (str, int, float, bool, type(None))


class ReplyCache:
    """Encoded responses by request key, bounded by bytes (not entries).

    The lookup table is tiny and most requests repeat, so a server answers a
    repeated request with one dict lookup instead of two JSON encodings. Every
    entry is charged its key's and reply's sizes plus :data:`ENTRY_OVERHEAD`;
    when the total passes ``budget`` the oldest entries go first. An entry
    bigger than an eighth of the budget (a megabyte search value) is not kept:
    it would push everything else out and is unlikely to repeat. Owned by one
    thread (the server loop); not locked.
    """

    def __init__(self, budget: int = DEFAULT_REPLY_CACHE_BYTES) -> None:
        if budget < 0:
            raise ValueError("the reply cache budget cannot be negative")
        self.budget = budget
        #: Bytes charged for the entries held now.
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._entries: dict[tuple[object, ...], tuple[bytes, str, int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[object, ...]) -> tuple[bytes, str] | None:
        """The cached (encoded reply, summary) for ``key``, or None."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        return entry[0], entry[1]

    def put(self, key: tuple[object, ...], data: bytes, summary: str) -> None:
        """Keep (``data``, ``summary``) for ``key`` if it fits, evicting the oldest entries."""
        size = ENTRY_OVERHEAD + len(data) + len(summary) + _key_size(key)
        if size > self.budget // 8 or key in self._entries:
            return
        entries = self._entries
        self.bytes += size
        entries[key] = (data, summary, size)
        while self.bytes > self.budget:
            oldest = next(iter(entries))
            self.bytes -= entries.pop(oldest)[2]

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()
        self.bytes = 0


def _key_size(key: tuple[object, ...]) -> int:
    return sum(len(part) for part in key if isinstance(part, (str, bytes)))


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


def reply(request: Message, byteorder: str = sys.byteorder, cache: ReplyCache | None = None) -> tuple[bytes, str]:
    """The encoded response to ``request`` and its one-line summary (:func:`respond`, memoised in ``cache``)."""
    key = _reply_key(request, byteorder) if cache is not None else None
    if key is not None:
        assert cache is not None
        cached = cache.get(key)
        if cached is not None:
            return cached
    response = respond(request, byteorder)
    data, summary = encode(response), response.describe()
    if key is not None:
        assert cache is not None
        cache.put(key, data, summary)
    return data, summary
