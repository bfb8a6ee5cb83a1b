"""Printing the UI benchmark's figures (each beside its target)."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from uibench.meter import Press

ROOT = Path(__file__).resolve().parents[3]


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (values in any order)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:7.1f}"


def print_live(result: dict[str, Any], args: argparse.Namespace) -> None:
    for fig in result["targets"]:
        lat = fig["latencies"]
        print(f"\n  [{fig['target']}] {fig['presses']} presses, {fig['painted']} painted"
              f" ({fig['presses'] - fig['painted']} not painted within 3 s"
              + (f"; {fig['noops']} more could not move the cursor and are not counted" if fig["noops"] else "")
              + f"), window {fig['elapsed']:.1f} s")
        print(f"    capture: {fig['pps']:,.0f} packets/s stored, {fig['drops']} kernel drops, "
              f"{fig['stored']:,} in the ring, {fig['pending']:,} waiting for analysis at the end")
        rows = fig["list_rows"]
        if rows:
            print(f"    packet list: {min(rows):,} to {max(rows):,} rows (median {int(statistics.median(rows)):,}); "
                  f"{fig['skipped']:,} packets left the ring before they were analysed (never listed)")
        print(f"    server: {fig['active']} connections open, echo {fig['server_bytes_in_per_s'] / 1e3:,.0f} kB/s in;"
              f" connections table: {fig['table_rows']} rows")
        print(f"    key -> painted frame  p50 {ms(pct(lat, 50))}  p90 {ms(pct(lat, 90))}  p99 {ms(pct(lat, 99))}"
              f"  max {ms(max(lat) if lat else float('nan'))} ms")
        act = fig["to_action"]
        print(f"    key -> action ran     p50 {ms(pct(act, 50))}  p90 {ms(pct(act, 90))}  p99 {ms(pct(act, 99))}"
              f"  max {ms(max(act) if act else float('nan'))} ms")
        frames = fig["frames_per_press"]
        if frames:
            first = sum(1 for n in frames if n == 1) / len(frames)
            print(f"    the first frame after the key's action showed it for {first:.0%} of presses "
                  f"(at most {max(frames)} frames later)")
        lag = fig["lag"]
        print(f"    event-loop lag (10 ms sleeps, {len(lag)}): p50 {ms(pct(lag, 50))}  p99 {ms(pct(lag, 99))}  "
              f"max {ms(max(lag) if lag else float('nan'))} ms")
        print("    UI-thread work while measuring:      per s   share   p50 ms   p99 ms   max ms")
        for name, spans in fig["intervals"].items():
            durations = [b - a for a, b in spans]
            if not durations:
                continue
            print(f"      {name:<30} {len(durations) / fig['elapsed']:6.1f} {sum(durations) / fig['elapsed']:6.1%}"
                  f" {ms(pct(durations, 50))}  {ms(pct(durations, 99))}  {ms(max(durations))}")
        cpu = ", ".join(f"{name} {share:.0%}" for name, share in sorted(fig["cpu"].items(), key=lambda kv: -kv[1])
                        if share >= 0.01)
        print(f"    CPU of this process's threads (share of one core): {cpu}")
        load_cpu = ", ".join(f"{share:.0%}" for share in fig["load_cpu"])
        machine = ", ".join(f"{name} {share:.0%}" for name, share in fig["machine"].items())
        print(f"    CPU of the load processes (holder, echo...): {load_cpu}; "
              f"whole machine ({os.cpu_count()} cores): {machine}")
        print(f"    this process used {fig['app_cpu']:.2f} cores; everything else on the machine (kernel softirq work "
              f"included) {max(0.0, fig['others']):.2f} cores")
        attribution(fig)
    reports = result.get("load_reports", [])
    for rep in reports:
        if "error" in rep:
            print(f"  load process error: {rep['error']}")
    good = [rep for rep in reports if "error" not in rep and rep["elapsed"] > 0]
    if good:
        print(f"\n  echo load over the whole run ({len(good)} processes): "
              f"{sum(r['sends'] / r['elapsed'] for r in good):,.0f} requests/s sent, "
              f"{sum(r['echoed'] / r['elapsed'] for r in good):,.0f} echoed/s, "
              f"{sum(r['packets'] / r['elapsed'] for r in good):,.0f} packets/s on their connections (TCP_INFO), "
              f"{sum(r['cpu'] / r['elapsed'] for r in good):.0%} CPU in total")


def attribution(fig: dict[str, Any]) -> None:
    """Where the time between key and frame went: UI-thread work overlapping each press, by activity."""
    presses = [p for p in fig["presses_raw"] if p.painted is not None]
    if not presses:
        return
    top = [name for name in fig["intervals"] if not name.startswith(" ")]
    cut = pct([p.painted - p.posted for p in presses], 90)

    def overlap(name: str, p: Press) -> float:
        return sum(max(0.0, min(b, p.painted) - max(a, p.posted))  # type: ignore[type-var,arg-type]
                   for a, b in fig["intervals"][name])

    for label, group in (("all presses", presses), (f"slowest 10 % (>= {cut * 1e3:.0f} ms)",
                                                     [p for p in presses if p.painted - p.posted >= cut])):
        parts = {name: statistics.mean(overlap(name, p) for p in group) for name in top}
        total = statistics.mean(p.painted - p.posted for p in group)  # type: ignore[operator]
        # GC pauses happen inside the other activities; do not count them twice.
        accounted = sum(v for k, v in parts.items() if k != "garbage collection")
        shown = "  ".join(f"{name} {v * 1e3:.1f}" for name, v in sorted(parts.items(), key=lambda kv: -kv[1])
                          if v >= 0.0005)
        print(f"    mean latency of {label}: {total * 1e3:.1f} ms = {shown}  "
              f"other {max(0.0, total - accounted) * 1e3:.1f} (ms)")


def tree_state() -> str:
    """The commit measured, and which files under netlens/ differ from it (the figures belong to that state)."""

    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "netlens"],
                                 capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    files = [line[3:] for line in changed if line.strip()]
    return f"commit {head}" + (f" + uncommitted changes in {', '.join(files)}" if files else " (clean)")


def other_load() -> str:
    """Other processes busy on the CPU right now (they would skew the figures)."""
    import psutil

    me = os.getpid()
    procs = [p for p in psutil.process_iter(["pid", "name", "cmdline"]) if p.info["pid"] != me]
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(0.5)
    busy = []
    for p in procs:
        try:
            share = p.cpu_percent(None)
        except psutil.Error:
            continue
        if share >= 10:
            busy.append(f"{' '.join(p.info['cmdline'] or [p.info['name']])[:60]} ({share:.0f}%)")
    return "; ".join(busy)


def summary(live: dict[str, Any] | None, refresh: dict[int, dict[str, dict[str, float]]],
            args: argparse.Namespace) -> None:
    print("\nSummary")
    print(f"  machine: {os.cpu_count()} cores")
    if live is not None:
        for fig in live["targets"]:
            lat = fig["latencies"]
            verdict = "MEETS" if lat and pct(lat, 99) < 0.1 and fig["painted"] == fig["presses"] else "MISSES"
            print(f"  key->frame, {fig['target']:<18} n={fig['painted']:>3}/{fig['presses']:<3} "
                  f"p50 {ms(pct(lat, 50))} p90 {ms(pct(lat, 90))} p99 {ms(pct(lat, 99))} max "
                  f"{ms(max(lat) if lat else float('nan'))} ms  [{verdict} p99 < 100 ms]  "
                  f"at {fig['pps']:,.0f} packets/s (target {args.pps:,.0f}), {fig['active']} server connections "
                  f"({live['held']} idle + {live['load_conns']} echo); packet list {fig['pending']:,} packets "
                  f"behind the capture at the end")
    if refresh:
        sizes = sorted(refresh)
        for where in ("end", "middle"):
            for key, label in (("rows", "visible rows render_line"), ("list_frame", "packet list repaint"),
                               ("full_frame", "full-screen frame")):
                cells = "  ".join(f"{s:>9,}: {refresh[s][where][key] * 1e3:6.2f} ms" for s in sizes)
                ratio = (f"  ratio {sizes[-1]:,}/{sizes[0]:,} = "
                         f"{refresh[sizes[-1]][where][key] / refresh[sizes[0]][where][key]:.2f}"
                         if len(sizes) > 1 else "")
                print(f"  refresh, cursor {where:<6} {label:<25} {cells}{ratio}")

