"""Build the witness corpus: real lab captures plus edited copies, each exercising what issue 11 names.

Run ``.venv/bin/python tests/support/witness_corpus.py DIR`` (as root) to record
the real captures and derive the edited ones into DIR; the committed real
captures in ``tests/data/witness`` were made this way (the README there says
what each is), and the tests derive the edited files from them on the fly.
The real captures differ from run to run (loss is random), so the tests compare
netlens with tshark on whatever the files hold, never with fixed numbers.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support import witness_edits as edits
from support import witness_traffic as traffic

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101


def _derived(out: Path, lossy_server: Path, lossy_client: Path, egress: Path) -> None:
    """The edited captures (pcap), made from the real ones."""
    link, client = edits.read_records(lossy_client)
    _, server = edits.read_records(lossy_server)
    _, gaps = edits.read_records(egress)
    edits.write_pcap(out / "duplicated.pcap", link, edits.duplicated(client))
    edits.write_pcap(out / "capture_loss.pcap", link, edits.thinned(server, every=11))
    edits.write_pcap(out / "reordered.pcap", link, edits.swapped(client, every=7))
    edits.write_pcap(out / "vlan.pcap", link, edits.tagged(gaps, edits.vlan_tag(42)))
    edits.write_pcap(out / "mpls.pcap", link, edits.mpls_frames(gaps))
    whole = edits.pcap_bytes(link, gaps[:40])
    (out / "reader" / "cut_mid_record.pcap").write_bytes(whole[:len(whole) - 700])
    edits.write_pcap(out / "reader" / "fragments.pcap", link, edits.fragmented(gaps[:30]))


def _pcapng(out: Path, egress: Path) -> None:
    """The pcapng reader cases: link types spliced, two sections, undefined interfaces, odd clocks."""
    _, records = edits.read_records(egress)
    head, tail = records[:30], records[30:60]
    le, be = "<", ">"
    # Ethernet and raw IP interleaved, with a frame on an interface nobody defined in between.
    spliced = [edits.section(le), edits.interface(le, LINKTYPE_ETHERNET), edits.interface(le, LINKTYPE_RAW)]
    for n, record in enumerate(head):
        if n % 3 == 1:
            spliced.append(edits.packet(le, 1, edits.ticks(record), record[2][14:], record[3] - 14))
        else:
            spliced.append(edits.packet(le, 0, edits.ticks(record), record[2], record[3]))
    (out / "spliced.pcapng").write_bytes(b"".join(spliced))
    # A packet on interface 7 of a section that described one (tshark calls the file damaged there).
    undefined = [edits.section(le), edits.interface(le, LINKTYPE_ETHERNET)]
    undefined += [edits.packet(le, 7 if n == 11 else 0, edits.ticks(r), r[2], r[3]) for n, r in enumerate(head[:18])]
    (out / "reader" / "undefined_iface.pcapng").write_bytes(b"".join(undefined))
    # A second section in the other byte order continues the same conversation.
    sections = [edits.section(le), edits.interface(le, LINKTYPE_ETHERNET)]
    sections += [edits.packet(le, 0, edits.ticks(r), r[2], r[3]) for r in head]
    sections += [edits.section(be), edits.interface(be, LINKTYPE_ETHERNET)]
    sections += [edits.packet(be, 0, edits.ticks(r), r[2], r[3]) for r in tail]
    (out / "two_sections.pcapng").write_bytes(b"".join(sections))
    # Nanosecond ticks in the year 2300 (past datetime64's 2262), and if_tsresol 0 (whole seconds).
    year_2300 = 10_413_792_000 * 1_000_000_000
    clocks = [edits.section(le), edits.interface(le, LINKTYPE_ETHERNET, tsresol=9),
              edits.interface(le, LINKTYPE_ETHERNET, tsresol=0)]
    for n, record in enumerate(head):
        if n < 15:
            clocks.append(edits.packet(le, 0, year_2300 + n * 1000, record[2], record[3]))
        else:
            clocks.append(edits.packet(le, 1, record[0], record[2], record[3]))
    (out / "clocks.pcapng").write_bytes(b"".join(clocks))


#: The real captures (committed under tests/data/witness); everything else is derived from them.
REAL = ("lossy_server.pcap", "lossy_client.pcap", "egress_drops.pcap", "shaped.pcap", "slow_reader.pcap",
        "snaplen80.pcap")


def record(out: Path) -> list[Path]:
    """Capture the real traffic into ``out`` (needs root; about 10 s)."""
    out.mkdir(parents=True, exist_ok=True)
    traffic.lossy(out)
    traffic.egress_drops(out)
    traffic.shaped(out)
    traffic.slow_reader(out)
    return [out / name for name in REAL]


def derive(real: Path, out: Path) -> list[Path]:
    """Make the edited files in ``out`` from the real captures in ``real``; returns every corpus file.

    ``out/reader/`` holds the files only the reader tests use (tshark stops at or
    reassembles what they hold, so they are not compared flag by flag).
    """
    (out / "reader").mkdir(parents=True, exist_ok=True)
    _derived(out, real / "lossy_server.pcap", real / "lossy_client.pcap", real / "egress_drops.pcap")
    _pcapng(out, real / "egress_drops.pcap")
    return sorted(p for p in [*out.rglob("*"), *real.glob("*")] if p.suffix in (".pcap", ".pcapng"))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="nla-corpus-"))
    record(target)
    for made in derive(target, target):
        print(f"{made.stat().st_size:>9} {made}")
