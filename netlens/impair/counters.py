"""A minimal nstat-like reader of ``netstat`` and ``snmp`` under a ``/proc/.../net`` directory.

Internal to the impairment layer for now; ``netlens/probe/counters.py`` is the
project's general reader and the two should be unified once both exist.
"""

from __future__ import annotations

import os


def parse_counter_table(text: str) -> dict[str, int]:
    """Parse the header/value line pairs of ``/proc/net/snmp`` or ``netstat`` into ``{"Group:Name": value}``.

    A line pair whose group or length disagrees is skipped rather than misread.
    """
    counters: dict[str, int] = {}
    lines = text.splitlines()
    for header, values in zip(lines[0::2], lines[1::2], strict=False):
        group, _, names = header.partition(":")
        value_group, _, numbers = values.partition(":")
        names_list, numbers_list = names.split(), numbers.split()
        if group != value_group or len(names_list) != len(numbers_list):
            continue
        for name, number in zip(names_list, numbers_list, strict=True):
            try:
                counters[f"{group}:{name}"] = int(number)
            except ValueError:
                continue
    return counters


def read_counters(net_dir: str) -> dict[str, int]:
    """All counters of ``net_dir/snmp`` and ``net_dir/netstat`` (files that are missing are skipped)."""
    counters: dict[str, int] = {}
    for table in ("snmp", "netstat"):
        try:
            with open(os.path.join(net_dir, table), encoding="ascii", errors="replace") as source:
                counters.update(parse_counter_table(source.read()))
        except FileNotFoundError:
            continue
    return counters
