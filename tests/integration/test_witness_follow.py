"""Follow stream against tshark's ``-z follow,tcp,raw`` on every stream of the witness corpus, per direction.

Bytes must be equal, and gap markers (``[N bytes missing]``) must sit where
tshark puts them ("[N bytes missing in capture file]"), with the same N.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import witness_corpus
from support.witness_follow import Item, joined, tshark_follow, tshark_streams

from netlens.capture import PacketStore, read_pcap

WITNESS = Path(__file__).resolve().parents[1] / "data" / "witness"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("witness")
    return [path for path in witness_corpus.derive(WITNESS, out) if path.parent.name != "reader"]


def netlens_items(store: PacketStore, stream_id: int) -> tuple[str, list[list[Item]]]:
    """The followed stream's client address and, per direction, its data and gap markers."""
    followed = store.follow(stream_id)
    items: list[list[Item]] = [[], []]
    for chunk in followed.chunks:
        items[chunk.direction].append(chunk.missing if chunk.missing else chunk.data)
    return followed.client, [joined(items[0]), joined(items[1])]


def test_follow_equals_tshark_on_every_stream(corpus: list[Path]) -> None:
    compared = gaps = 0
    for path in corpus:
        result = read_pcap(path)
        store = PacketStore(result.ring)
        while store.update():
            pass
        streams = tshark_streams(path)
        theirs = tshark_follow(path, streams)
        assert len(store.streams()) == len(streams), path.name
        for index in streams:
            nodes, expected = theirs[index]
            client, ours = netlens_items(store, index + 1)
            assert client in nodes, (path.name, index, nodes, client)
            if nodes[0] != client:  # tshark's node 0 is whoever sent the stream's first captured packet
                ours = ours[::-1]
            for side in (0, 1):
                assert ours[side] == expected[side], (path.name, index, side)
            compared += 1
            gaps += sum(isinstance(item, int) for side in expected for item in side)
    assert compared >= 15 and gaps >= 5  # the corpus has gaps to mark, not only clean streams
