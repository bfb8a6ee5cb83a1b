"""What a lab is made of: steps with narration, and checks against the recorded evidence.

A lab is data plus small functions, in the spirit of packetdrill: a short
script of steps (each does one thing to the real stack and tells the student
what to watch) and a list of checks (each states what the kernel should have
done and reads what it actually did from the evidence).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from netlens.labs.context import LabContext
    from netlens.labs.evidence import Evidence

#: The panels a step can point at (the TUI's names for them).
Panel = Literal["packets", "connections", "events", "kernel", "counters", "inspector"]

#: What a lab needs beyond a private loopback namespace.
Need = Literal["trace", "veth"]


@dataclass(frozen=True)
class Watch:
    """Where to look during a step: a panel and, in words, the row that matters.

    ``match`` optionally names the row for a UI to highlight: keys among
    ``flags`` (a packet's TCP flags, e.g. ``"S"``), ``state`` (a socket state),
    ``event`` (a server or kernel event kind), ``port`` (``"server"`` or
    ``"client"``).
    """

    panel: Panel
    row: str
    match: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """``packets: the SYN from the client``."""
        return f"{self.panel}: {self.row}"


@dataclass(frozen=True)
class Step:
    """One thing the lab does to the stack, with the words a teacher would say."""

    title: str
    narration: str
    watch: Watch
    action: Callable[[LabContext], None]


@dataclass(frozen=True)
class Observation:
    """What a check found: whether it holds, what was seen, and where (``packet #3``...)."""

    ok: bool
    observed: str
    evidence: str | None = None


@dataclass(frozen=True)
class Check:
    """An expectation: its name, what should happen, and how to read what did happen."""

    name: str
    expected: str
    observe: Callable[[Evidence], Observation]


@dataclass(frozen=True)
class Lab:
    """One lesson. Modules under ``netlens/labs/`` (or ``--labs-dir``) define ``LAB = Lab(...)``.

    ``variants`` maps a variant name to what it changes; the steps read
    ``ctx.variant`` to do it. Every lab names in ``control`` the variant
    that removes or reverses its key step, so a test (and a curious student)
    can see the checks fail without it.
    """

    name: str
    title: str
    lesson: str
    steps: tuple[Step, ...]
    checks: tuple[Check, ...]
    control: str
    variants: Mapping[str, str]
    server_mode: Literal["search", "echo"] | None = "search"
    needs: frozenset[Need] = frozenset()
    #: Per-namespace sysctls set before the first step (``net.ipv4.tcp_syncookies``: 1 ...).
    sysctls: Mapping[str, int | str] = field(default_factory=dict)
    #: Extra options for :class:`netlens.server.ServerConfig` (``backlog``, ``idle_timeout``...).
    server_options: Mapping[str, Any] = field(default_factory=dict)
    #: Seconds to keep recording after the last step (late ACKs, timers).
    settle: float = 0.2
    #: ``None``: the lab runs on the loopback of one private namespace. Otherwise the options of a
    #: :class:`netlens.impair.LabSpec` (``delay_ms``, ``mtu``...): a client and a server namespace
    #: joined by a wire the steps can impair (``ctx.impair.set_loss(5, toward="client")``).
    network: Mapping[str, Any] | None = None

    @property
    def needs_root(self) -> bool:
        """True for labs with an impairable wire (two namespaces, veth/TAP, nftables, tc).

        The others run without root too, in a user namespace of their own (the
        checks that need the kernel trace, which is root-only, then fail saying so).
        """
        return self.network is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``netlens lab list --json``."""
        return {
            "name": self.name,
            "title": self.title,
            "lesson": self.lesson,
            "needs_root": self.needs_root,
            "needs": sorted(self.needs | ({"veth"} if self.network is not None else set())),
            "steps": [step.title for step in self.steps],
            "checks": [check.name for check in self.checks],
            "variants": dict(self.variants),
            "control": self.control,
        }


@dataclass(frozen=True)
class CheckResult:
    """A check after the run: expectation, observation, verdict and where the evidence is."""

    name: str
    expected: str
    observed: str
    ok: bool
    evidence: str | None

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "expected", "observed", "ok", "evidence"}``."""
        return {"name": self.name, "expected": self.expected, "observed": self.observed,
                "ok": self.ok, "evidence": self.evidence}


@dataclass(frozen=True)
class LabResult:
    """The outcome of one run: every check, the variant used, how long it took."""

    lab: str
    variant: str | None
    checks: tuple[CheckResult, ...]
    seconds: float
    packets: int
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when every expectation was observed."""
        return bool(self.checks) and all(check.ok for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``netlens lab run --json``."""
        return {
            "lab": self.lab,
            "variant": self.variant,
            "passed": self.passed,
            "checks": [check.to_dict() for check in self.checks],
            "seconds": round(self.seconds, 3),
            "packets": self.packets,
            "notes": list(self.notes),
        }
