"""netlens's TCP analysis against tshark's on the same files: per-flag precision, recall and every disagreement.

tshark is the witness: ``tshark -T fields -e tcp.analysis.*`` gives Wireshark's
flags per frame, ``netlens read --json`` gives netlens's. Wireshark sets its
plain "retransmission" field on fast and spurious retransmissions as well;
netlens names exactly one kind, so the plain flag is dropped from tshark's side
where a more specific one is set.

Run as a script for the report: ``.venv/bin/python tests/support/witness_compare.py FILE...``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

#: tshark's field -> netlens's mark name.
FLAGS = {
    "tcp.analysis.retransmission": "retransmission",
    "tcp.analysis.fast_retransmission": "fast-retransmission",
    "tcp.analysis.spurious_retransmission": "spurious-retransmission",
    "tcp.analysis.out_of_order": "out-of-order",
    "tcp.analysis.lost_segment": "lost-segment",
    "tcp.analysis.ack_lost_segment": "ack-unseen",
    "tcp.analysis.duplicate_ack": "dup-ack",
    "tcp.analysis.window_full": "window-full",
    "tcp.analysis.zero_window": "zero-window",
    "tcp.analysis.zero_window_probe": "zero-window-probe",
    "tcp.analysis.zero_window_probe_ack": "zero-window-probe-ack",
    "tcp.analysis.keep_alive": "keep-alive",
    "tcp.analysis.keep_alive_ack": "keep-alive-ack",
    "tcp.analysis.window_update": "window-update",
}
_SPECIFIC = {"fast-retransmission", "spurious-retransmission"}
#: Text in a netlens mark's detail that says Wireshark is wrong about this segment (the rule's sentence says why).
WIRESHARK_DIFFERS = "Wireshark calls this"
#: How netlens explains the frames it leaves out (its rule's name).
RULES_NOTE = {"capture-duplicate": "capture duplicate (same IP id and bytes within 5 ms)"}
_TIMEOUT = 120


def netlens_command() -> list[str]:
    """``netlens`` as run from this interpreter (the worktree's editable install)."""
    return [sys.executable, "-m", "netlens"]


def tshark_flags(path: Path) -> tuple[dict[int, set[str]], dict[int, str]]:
    """Per frame number: the netlens names of the flags tshark sets, and tshark's expert messages."""
    fields = ["frame.number", *FLAGS, "_ws.expert.message"]
    argv = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a"]
    for name in fields:
        argv += ["-e", name]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT, check=False).stdout
    flags: dict[int, set[str]] = {}
    messages: dict[int, str] = {}
    for line in out.splitlines():
        cells = line.split("\t")
        if len(cells) < len(fields) or not cells[0].isdigit():
            continue
        no = int(cells[0])
        found = {FLAGS[name] for name, cell in zip(FLAGS, cells[1:], strict=False) if cell}
        if found & _SPECIFIC:
            found.discard("retransmission")
        flags[no] = found
        messages[no] = cells[-1]
    return flags, messages


#: netlens's marks that explain a deliberate difference: the frame is left out of the count.
EXPLAINED = {"capture-duplicate"}


def netlens_flags(path: Path) -> tuple[dict[int, set[str]], dict[int, str]]:
    """Per frame number: the analysis marks ``netlens read --json`` prints; and the frames it explains apart."""
    result = subprocess.run([*netlens_command(), "read", "--json", str(path)], capture_output=True, text=True,
                            timeout=_TIMEOUT, check=False)
    flags, explained = {}, {}
    for line in result.stdout.splitlines():
        row = json.loads(line)
        marks = set(row["analysis"])
        flags[row["no"]] = marks & set(FLAGS.values())
        for name in marks & EXPLAINED:
            explained[row["no"]] = name
    return flags, explained


@dataclass
class Disagreement:
    """One frame where the two disagree on one flag, with both sides' reasons."""

    file: str
    frame: int
    flag: str
    #: Who set it: "tshark" (netlens missed it) or "netlens" (tshark did not set it).
    set_by: str
    wireshark: str
    netlens: str

    def __str__(self) -> str:
        return (f"{self.file} #{self.frame} {self.flag}: set by {self.set_by} only; Wireshark: "
                f"{self.wireshark or '-'}; netlens: {self.netlens or '-'}")


@dataclass
class Agreement:
    """Counts per flag over a corpus: true positives, false positives (netlens only), false negatives."""

    tp: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fp: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fn: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    disagreements: list[Disagreement] = field(default_factory=list)
    #: Frames left out because netlens deliberately differs (a capture duplicate), with both reasons.
    explained: list[Disagreement] = field(default_factory=list)
    frames: int = 0

    def precision(self, flag: str) -> float:
        """Share of netlens's marks that tshark also set (1.0 when netlens set none)."""
        marked = self.tp[flag] + self.fp[flag]
        return self.tp[flag] / marked if marked else 1.0

    def recall(self, flag: str) -> float:
        """Share of tshark's flags that netlens also set (1.0 when tshark set none)."""
        expected = self.tp[flag] + self.fn[flag]
        return self.tp[flag] / expected if expected else 1.0

    def table(self) -> str:
        """Flag, tshark count, netlens count, precision, recall: one line each."""
        lines = [f"{'flag':<24}{'tshark':>8}{'netlens':>9}{'precision':>11}{'recall':>8}"]
        for flag in FLAGS.values():
            lines.append(f"{flag:<24}{self.tp[flag] + self.fn[flag]:>8}{self.tp[flag] + self.fp[flag]:>9}"
                         f"{self.precision(flag):>11.3f}{self.recall(flag):>8.3f}")
        return "\n".join(lines)


def _netlens_reasons(path: Path, frames: set[int]) -> dict[int, str]:
    """netlens's mark details and rule sentences for ``frames`` (loaded in-process, for the report only)."""
    from netlens.capture import PacketRing, PacketStore, read_pcap

    ring = PacketRing()
    read_pcap(str(path), ring)
    store = PacketStore(ring)
    while store.update():
        pass
    return {no: "; ".join(f"{mark}" for mark in store.analysis(no)) for no in frames if no in ring}


#: A file whose fair witness is tshark on another file: (that file's name, its frame k is this file's frame f(k)).
Witness = tuple[str, Callable[[int], int]]
#: Every frame of ``duplicated.pcap`` is a frame of ``lossy_client.pcap`` twice: tshark's own state is moved
#: by the copies there, so the witness for the first copies is tshark on the original.
WITNESSES: dict[str, Witness] = {"duplicated.pcap": ("lossy_client.pcap", lambda k: 2 * k - 1)}


def witness_flags(path: Path, witness: Witness | None, directory: Path
                  ) -> tuple[dict[int, set[str]], dict[int, str], dict[int, set[str]]]:
    """tshark's flags for ``path`` (its own, or its witness file's mapped onto its frames), messages, its own."""
    own, own_messages = tshark_flags(path)
    if witness is None:
        return own, own_messages, own
    name, mapping = witness
    flags, messages = tshark_flags(directory / name)
    mapped = {no: set() for no in own}
    mapped.update({mapping(no): found for no, found in flags.items()})
    notes = {no: own_messages.get(no, "") for no in own}
    notes.update({mapping(no): f"(on {name} #{no}) {text}" for no, text in messages.items()})
    return mapped, notes, own


def compare(paths: list[Path], agreement: Agreement | None = None, witnesses: dict[str, Witness] | None = None,
            directory: Path | None = None) -> Agreement:
    """Add every file of ``paths`` to ``agreement`` (a new one by default).

    ``witnesses`` names files judged against tshark on another file in ``directory`` (see WITNESSES).
    """
    agreement = agreement if agreement is not None else Agreement()
    for path in paths:
        witness = (witnesses or {}).get(path.name)
        theirs, messages, own = witness_flags(path, witness, directory or path.parent)
        if witness is not None and not any(theirs.values()):
            raise FileNotFoundError(f"the witness of {path.name} ({witness[0]}) is not in {directory}")
        ours, apart = netlens_flags(path)
        agreement.frames += len(theirs)
        pending: list[tuple[int, str, str]] = []
        differing = {no for no in set(theirs) | set(ours) if theirs.get(no, set()) != ours.get(no, set())}
        reasons = _netlens_reasons(path, differing) if differing else {}
        for no, reason in reasons.items():
            if WIRESHARK_DIFFERS in reason:
                apart[no] = reason
        for no in sorted(set(theirs) | set(ours)):
            mine, wire = ours.get(no, set()), theirs.get(no, set())
            if no in apart:
                wire = own.get(no, set()) if apart[no] in EXPLAINED else wire
                for flag in sorted(wire ^ mine):
                    who = "tshark" if flag in wire else "netlens"
                    agreement.explained.append(Disagreement(path.name, no, flag, who, messages.get(no, ""),
                                                            RULES_NOTE.get(apart[no], apart[no])))
                continue
            for flag in mine & wire:
                agreement.tp[flag] += 1
            for flag in mine - wire:
                agreement.fp[flag] += 1
                pending.append((no, flag, "netlens"))
            for flag in wire - mine:
                agreement.fn[flag] += 1
                pending.append((no, flag, "tshark"))
        for no, flag, who in pending:
            agreement.disagreements.append(
                Disagreement(path.name, no, flag, who, messages.get(no, ""), reasons.get(no, "")))
    return agreement


if __name__ == "__main__":
    result = compare([Path(p) for p in sys.argv[1:]], witnesses=WITNESSES,
                     directory=Path(__file__).resolve().parents[1] / "data" / "witness")
    print(result.table())
    for item in result.disagreements:
        print(item)
    print(f"{len(result.explained)} flags on frames netlens explains apart:")
    for item in result.explained:
        print(item)
