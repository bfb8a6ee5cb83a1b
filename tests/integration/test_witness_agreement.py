"""netlens's TCP analysis against Wireshark's on the witness corpus: per-flag precision and recall >= 0.98.

The corpus is real lab traffic (``tests/data/witness``) plus edited copies made
here (duplicated, thinned, reordered, VLAN, MPLS, pcapng variants). tshark is
the witness. Where netlens deliberately differs (a frame it recognises as a
capture duplicate, which Wireshark analyses as network behaviour), the frame is
left out of the count and listed with both reasons; the rule's sentence says so.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import witness_compare, witness_corpus

WITNESS = Path(__file__).resolve().parents[1] / "data" / "witness"
THRESHOLD = 0.98


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("witness")
    made = witness_corpus.derive(WITNESS, out)
    return [path for path in made if path.parent.name != "reader"]


def test_every_flag_agrees_with_wireshark(corpus: list[Path]) -> None:
    result = witness_compare.compare(corpus, witnesses=witness_compare.WITNESSES, directory=WITNESS)
    report = (result.table() + "\n" + "\n".join(str(item) for item in result.disagreements)
              + f"\n{len(result.explained)} flags on frames netlens explains apart, e.g.:\n"
              + "\n".join(str(item) for item in result.explained[:5]))
    print(report)
    assert result.frames > 1000
    # The copies in duplicated.pcap are told apart, and each explained difference says why.
    assert len(result.explained) > 100
    assert all(item.netlens for item in result.explained)
    exercised = {flag for flag in witness_compare.FLAGS.values() if result.tp[flag] + result.fn[flag]}
    # The corpus exercises what issue 11 names (zero-window probes need a peer that probes before
    # keep-alives; Linux probes a zero window with keep-alive-shaped segments instead).
    assert exercised >= {"retransmission", "fast-retransmission", "spurious-retransmission", "out-of-order",
                         "lost-segment", "ack-unseen", "dup-ack", "window-full", "zero-window", "keep-alive",
                         "window-update"}, report
    low = {flag: (round(result.precision(flag), 3), round(result.recall(flag), 3))
           for flag in witness_compare.FLAGS.values()
           if result.precision(flag) < THRESHOLD or result.recall(flag) < THRESHOLD}
    assert not low, f"below {THRESHOLD}: {low}\n{report}"
