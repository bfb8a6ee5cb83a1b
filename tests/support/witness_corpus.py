"""Build the witness corpus: real lab captures plus edited copies, each exercising what issue 11 names.

Run ``.venv/bin/python tests/support/witness_corpus.py tests/data/witness`` (as
root) to remake the committed files; the README next to them says what each is.
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
    (out / "cut_mid_record.pcap").write_bytes(whole[:len(whole) - 700])


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
        if n == 10:
            spliced.append(edits.packet(le, 7, edits.ticks(record), record[2], record[3]))
    (out / "spliced.pcapng").write_bytes(b"".join(spliced))
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


def build(out: Path) -> list[Path]:
    """Make every corpus file in ``out`` (real traffic first, then the edits); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    lossy_server, lossy_client = traffic.lossy(out)
    egress = traffic.egress_drops(out)
    traffic.shaped(out)
    traffic.slow_reader(out)
    _derived(out, lossy_server, lossy_client, egress)
    _pcapng(out, egress)
    return sorted(p for p in out.iterdir() if p.suffix in (".pcap", ".pcapng"))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="nla-corpus-"))
    for made in build(target):
        print(f"{made.stat().st_size:>9} {made}")
