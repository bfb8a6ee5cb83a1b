"""What an analysis rule produces: a :class:`Mark` on a packet, its :class:`Rule` and its :class:`Severity`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from netlens.capture.analysis.segment import Segment


class Severity(IntEnum):
    """How much a mark matters, Wireshark's expert levels; the UI styles a packet by its worst mark.

    ``NONE`` is what an unmarked packet has.
    """

    NONE = 0
    #: Worth naming, nothing wrong (a keep-alive, a window update).
    NOTE = 1
    #: Something went wrong on the way or at an end (a retransmission, a zero window).
    WARNING = 2
    #: The connection was cut short (a reset).
    ERROR = 3


#: A rule's check: the mark's detail text if the rule applies to the segment, None if not.
Check = Callable[["Segment"], "str | None"]


@dataclass(frozen=True)
class Rule:
    """One analysis rule: its short name, Wireshark's label, the rule in a sentence, its severity, its check.

    ``kinds`` are the segment kinds (``netlens.capture.analysis.segment.KINDS``)
    the check can apply to: the analysis skips it for the others (a test
    checks that no rule fires outside its kinds).
    """

    name: str
    label: str
    rule: str
    severity: Severity
    check: Check
    kinds: frozenset[str]


#: Every rule by name, in the order they run (filled by :mod:`netlens.capture.analysis.rules`).
RULES: dict[str, Rule] = {}


def rule(name: str, label: str, severity: Severity, kinds: tuple[str, ...], sentence: str
         ) -> Callable[[Check], Check]:
    """Register the decorated check as the rule ``name`` (rules run in the order they are registered)."""

    def register(check: Check) -> Check:
        if name in RULES:
            raise ValueError(f"two analysis rules are named {name!r}")
        RULES[name] = Rule(name, label, sentence, severity, check, frozenset(kinds))
        return check

    return register


class Mark(NamedTuple):
    """One analysis flag on one packet: rule name and a packet-specific detail (a tuple: made per flagged packet)."""

    name: str
    detail: str = ""

    @property
    def rule(self) -> str:
        """The plain sentence explaining when this flag is set."""
        return RULES[self.name].rule

    @property
    def label(self) -> str:
        """Wireshark's name for the flag (``TCP Dup ACK``)."""
        return RULES[self.name].label

    @property
    def severity(self) -> Severity:
        """How much this flag matters."""
        return RULES[self.name].severity

    def __str__(self) -> str:
        return f"{self.label} ({self.detail})" if self.detail else self.label


@functools.lru_cache(maxsize=1024)
def worst(names: tuple[str, ...]) -> Severity:
    """The highest severity among the marks named ``names`` (NONE for none); few combinations occur, so cached."""
    return max((RULES[name].severity for name in names), default=Severity.NONE)
