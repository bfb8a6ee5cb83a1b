"""TUI under a search flood, measured from outside through tmux (issue 15, goals 2, 3 and 5).

Run as root: ``python tests/benchmarks/bench_tui_flood.py [--seconds 20] [--presses 20] [--rss-minutes 0]``

For each of two apps, in the same run, under the same flood:

* ``netlens serve`` (the TUI: server in its worker, capture on lo, probe), and
* the lightest Textual app we can write (a 100-row ``DataTable``; the flood then goes
  to ``netlens serve --headless`` so the machine carries the same server work),

the app runs in a detached tmux session (``nlf-<pid>-<name>``, 200x50: the status line fits). The flood:
``--idle`` (200) idle connections held open, and ``netlens load --mode search
--clients 8`` looping requests for the whole measurement. Then:

1. Throughput, with no key pressed: the first load's requests per second (``--seconds``)
   inside the TUI vs against the headless server (goal 3: >= 0.5x), and where the
   machine's CPU went meanwhile: CPU microseconds per request of each party (the app,
   its threads by name, its helper processes, tcpdump or the headless server, the
   clients) and the machine's idle and stolen shares (/proc), so the two runs' budgets
   compare. ``--rss-minutes M`` samples the TUI's RSS every ``--rss-every`` seconds
   during that load (goal 5; ``soak_tui.py`` does it for longer runs).
2. Then, under the same flood (more loads as needed): ``ctrl+p`` sent ``--presses`` times
   (25-75 ms apart after the previous answer); latency is from ``tmux send-keys`` until
   ``tmux capture-pane`` shows the command palette's prompt (polled every ms or so; each
   poll costs a tmux client run, so figures carry ~2-5 ms of measurement overhead, the
   same for both apps); ``escape`` closes it again (also waited for). The TUI's server
   rate while keys are handled is read off its status line (its server gives way to
   keys: netlens.keygate).
3. Capture: tcpdump on the same port in the same run counts the packets; the TUI's
   status line ("lo: N pkts") is read once the flood stopped and the count settled
   (goal 3: equal).

Arrow keys (goal 2's second half): in the packet list and in the connection table
(the light app: its DataTable), ``--presses`` presses of down/up alternately; latency
is from ``send-keys`` until ``capture-pane -e`` shows the cursor (the row drawn in the
focused cursor's background) on another row: another packet number, another
connection (the table's cursor stays on its connection while rows come and go), or
the light app's next row. The packet list first gets one ``up`` (it stops following
the newest packet, so only keys move its cursor).

Not a pytest test: it prints figures side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NETLENS = [sys.executable, "-m", "netlens"]
PALETTE_PROMPT = "Search for commands"
PKTS = re.compile(r"lo: ([\d,]+) pkts")
REQUESTS = re.compile(r" requests ([\d,]+)")
SGR = re.compile(r"\x1b\[([0-9;]*)m")
#: Background of a focused cursor row in Textual's default theme: DataTable's (the light app), and the packet list's.
TABLE_CURSOR = "48;5;32"
LIST_CURSOR = "48;5;130"
#: netlens's connections table (a VirtualTable) draws its focused cursor in DataTable's colours
#: ($block-cursor-background; $block-cursor-blurred-background when unfocused, which is not this).
CONNECTIONS_CURSOR = TABLE_CURSOR

LIGHT_APP = '''
from textual.app import App, ComposeResult
from textual.widgets import DataTable


class Light(App[None]):
    def compose(self) -> ComposeResult:
        yield DataTable()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("no", "text")
        table.add_rows([(str(i), f"row {i}") for i in range(100)])


Light().run()
'''


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Tmux:
    """One detached tmux session running one command."""

    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "200", "-y", "50",
                        "exec " + " ".join(command)], check=True, cwd=ROOT)
        out = subprocess.run(["tmux", "display-message", "-p", "-t", name, "#{pane_pid}"], check=True,
                             capture_output=True, text=True)
        self.pid = int(out.stdout.strip())

    def screen(self) -> str:
        """The pane's text now."""
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True,
                              text=True).stdout

    def keys(self, *keys: str) -> None:
        """Send keys as typed."""
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, present: bool, text: str, timeout: float = 10.0) -> float:
        """Seconds until ``text`` is (or is no longer) on screen; raises on timeout."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if (text in self.screen()) == present:
                return time.perf_counter() - started
            time.sleep(0.001)
        raise TimeoutError(f"{self.name}: {text!r} {'never appeared' if present else 'stayed'}")

    def styled_lines(self) -> list[str]:
        """The pane's lines with their colours (SGR escapes)."""
        return subprocess.run(["tmux", "capture-pane", "-e", "-p", "-t", self.name], capture_output=True,
                              text=True).stdout.splitlines()

    def rss_kib(self) -> int:
        """Resident set size of the pane's process."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def close(self) -> None:
        """Stop the app (SIGTERM) and the session."""
        with suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        time.sleep(0.5)
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@contextmanager
def session(name: str, command: list[str], ready: str) -> Iterator[Tmux]:
    """A tmux session whose screen showed ``ready``; closed whatever happens."""
    tmux = Tmux(name, command)
    try:
        tmux.wait_for(True, ready, timeout=30)
        yield tmux
    finally:
        tmux.close()


class Flood:
    """The search clients: a first load of ``seconds`` whose rate is reported, then more until :meth:`stop`.

    The keys are timed under the flood however long they take: when a load
    ends before they are done, :meth:`keep_up` starts another (its rate is not used).
    """

    def __init__(self, port: int, clients: int, seconds: float) -> None:
        self.command = [*NETLENS, "load", "--mode", "search", "--port", str(port), "--clients", str(clients),
                        "--requests", "100000000", "--duration", str(seconds), "--json"]
        self.measured = self._start()
        self.extra: subprocess.Popen[str] | None = None
        self.rate: float | None = None

    def _start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def keep_up(self) -> None:
        """Start another load if the running one ended (call between key presses)."""
        if self.rate is None and self.measured.poll() is not None:
            self.rate = load_rate(self.measured)
        running = self.extra if self.extra is not None else self.measured
        if running.poll() is not None:
            if self.extra is not None:
                self.extra.communicate()
            self.extra = self._start()

    def measured_rate(self) -> float:
        """Requests per second of the first load (waits for it to end)."""
        if self.rate is None:
            self.rate = load_rate(self.measured)
        return self.rate

    def stop(self) -> None:
        """End every load still running."""
        for load in (self.measured, self.extra):
            if load is not None:
                if load.poll() is None:
                    load.terminate()
                load.communicate(timeout=30)


@contextmanager
def flood(port: int, idle: int, clients: int, seconds: float) -> Iterator[Flood]:
    """``idle`` idle connections and ``clients`` looping search clients (see :class:`Flood`)."""
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(idle)]
    load = Flood(port, clients, seconds)
    try:
        yield load
    finally:
        load.stop()
        for sock in held:
            sock.close()


def load_rate(load: subprocess.Popen[str]) -> float:
    """Requests per second the load reported (waits for it to end)."""
    out, _ = load.communicate(timeout=600)
    try:
        figures = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return 0.0
    for key in ("req_per_s", "requests_per_second", "rate", "rps"):
        if key in figures:
            return float(figures[key])
    return 0.0


def palette_latencies(tmux: Tmux, presses: int, load: Flood) -> list[float]:
    """``ctrl+p`` until the palette is on screen, ``presses`` times (ms)."""
    out = []
    for _ in range(presses):
        load.keep_up()
        time.sleep(random.uniform(0.025, 0.075))
        started = time.perf_counter()
        tmux.keys("C-p")
        tmux.wait_for(True, PALETTE_PROMPT)
        out.append((time.perf_counter() - started) * 1e3)
        tmux.keys("Escape")
        tmux.wait_for(False, PALETTE_PROMPT)
    return out


class CursorRow:
    """Where a list's cursor is, read from the screen: the text of the row drawn in the cursor's background.

    ``panel`` is the title on the panel's top border ("" for the whole screen), ``columns``
    how many leading words identify a row (a packet's number; a connection's state and ends).
    """

    def __init__(self, tmux: Tmux, panel: str, background: str, columns: int) -> None:
        self.tmux, self.panel, self.background, self.columns = tmux, panel, background, columns

    def now(self) -> str | None:
        """The identifying words of the cursor's row, or None if no row shows the cursor."""
        lines = self.tmux.styled_lines()
        start, stop = 0, len(lines)
        if self.panel:
            plain = [SGR.sub("", line) for line in lines]
            start = next((i for i, line in enumerate(plain) if f"─ {self.panel} ─" in line), -1) + 1
            if not start:
                return None
            stop = next((i for i in range(start, len(lines)) if plain[i].startswith("╰")), len(lines))
        for line in lines[start:stop]:
            # The first colour change after the border decides: the row's own background.
            first = next((codes for codes in SGR.findall(line[:80]) if "48;" in codes or codes == "49"), "")
            if first.endswith(self.background):
                words = SGR.sub("", line).strip("│ ").split()
                return " ".join(words[: self.columns])
        return None

    def wait_moved(self, before: str | None, timeout: float = 10.0) -> float:
        """Seconds until the cursor is on a row other than ``before``; raises on timeout."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            row = self.now()
            if row is not None and row != before:
                return time.perf_counter() - started
            time.sleep(0.001)
        screen = "\n".join(SGR.sub("", line) for line in self.tmux.styled_lines())
        raise TimeoutError(f"{self.tmux.name}: the {self.panel or 'list'} cursor stayed on {before!r}; "
                           f"the screen:\n{screen}")


def focus(tmux: Tmux, cursor: CursorRow, tries: int = 8) -> None:
    """Press tab until ``cursor``'s list has the focus (its cursor row shows the focused colour)."""
    for _ in range(tries):
        if cursor.now() is not None:
            return
        tmux.keys("Tab")
        # Each tab's frame may take a while under the flood: a second tab before it would skip a widget.
        waited = time.monotonic()
        while time.monotonic() - waited < 1.5 and cursor.now() is None:
            time.sleep(0.05)
    if cursor.now() is None:
        raise TimeoutError(f"{tmux.name}: the {cursor.panel} list never got the focus")


def arrow_latencies(tmux: Tmux, cursor: CursorRow, presses: int, load: Flood) -> list[float]:
    """Down, up, down, ... ``presses`` times; each until the cursor is seen on another row (ms)."""
    out = []
    for press in range(presses):
        load.keep_up()
        time.sleep(random.uniform(0.025, 0.075))
        before = cursor.now()
        started = time.perf_counter()
        tmux.keys("Down" if press % 2 == 0 else "Up")
        cursor.wait_moved(before)
        out.append((time.perf_counter() - started) * 1e3)
    return out


def arrow_targets(name: str, tmux: Tmux) -> dict[str, CursorRow]:
    """The lists whose arrow keys are timed: the netlens TUI's two, or the light app's table."""
    if name != "netlens":
        return {"table": CursorRow(tmux, "", TABLE_CURSOR, 2)}
    return {"packets": CursorRow(tmux, "Packets", LIST_CURSOR, 1),
            "connections": CursorRow(tmux, "Connections", CONNECTIONS_CURSOR, 3)}


def arrow_keys(name: str, tmux: Tmux, presses: int, load: Flood) -> dict[str, list[float]]:
    """Arrow-key latencies per list (the packet list is measured first, then the connection table)."""
    out = {}
    targets = arrow_targets(name, tmux)
    for label, cursor in targets.items():
        focus(tmux, cursor)
        if label == "packets":
            tmux.keys("Up")  # stop following the newest packet: from now on only keys move the cursor
            time.sleep(0.3)
        out[label] = arrow_latencies(tmux, cursor, presses, load)
    return out


def captured(tmux: Tmux) -> int | None:
    """The TUI's capture count once it stopped moving (None if not on screen)."""
    last = None
    for _ in range(40):
        found = PKTS.search(tmux.screen())
        now = int(found.group(1).replace(",", "")) if found else None
        if now is not None and now == last:
            return now
        last = now
        time.sleep(0.5)
    return last


def cpu_seconds(pid: int, part: str = "tree") -> float:
    """User + system CPU seconds of ``pid`` ("self"), of its living descendants ("helpers"), or both ("tree")."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                children.setdefault(int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]), []).append(
                    int(entry.name))
    total = 0.0
    todo = [pid] if part != "helpers" else list(children.get(pid, []))
    while todo:
        current = todo.pop()
        with suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        if part != "self":
            todo.extend(children.get(current, []))
    return total


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of ``pid``'s threads by their names (netlens names its busy threads; the main one is the UI)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[str, float] = {}
    with suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with suppress(OSError, IndexError, ValueError):
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                name = "main" if task.name == str(pid) else (task / "comm").read_text().strip()
                found[name] = found.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return found


def machine_ticks() -> list[int]:
    """The machine's CPU time by kind (/proc/stat's first line: user ... steal)."""
    return [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


class CpuBudget:
    """CPU seconds per party over the measured load, per request: where the machine's time went.

    ``parties`` maps a name to ``(pid, part)`` (see :func:`cpu_seconds`). The
    second reading is taken half a second before the measured load ends (the
    clients' process must still be there to be read).
    """

    def __init__(self, parties: dict[str, tuple[int, str]], seconds: float, app: int) -> None:
        self.parties = parties
        self.app = app
        self.before = {name: cpu_seconds(*party) for name, party in parties.items()}
        self.threads_before = thread_cpu(app)
        self.threads: dict[str, float] = {}
        self.machine = machine_ticks()
        self.used: dict[str, float] = {}
        self.steal = self.idle = 0.0
        self._timer = threading.Timer(max(0.5, seconds - 0.5), self._stop)
        self._timer.start()

    def _stop(self) -> None:
        self.used = {name: cpu_seconds(*party) - self.before[name] for name, party in self.parties.items()}
        after = thread_cpu(self.app)
        self.threads = {name: used - self.threads_before.get(name, 0.0) for name, used in after.items()}
        delta = [after - before for after, before in zip(machine_ticks(), self.machine, strict=True)]
        total = max(1, sum(delta))
        self.idle, self.steal = (delta[3] + delta[4]) / total, delta[7] / total

    def line(self, rate: float, seconds: float) -> str:
        """``party µs/request`` for each party (``rate`` requests a second over ``seconds``), idle and stolen shares."""
        self._timer.join()
        requests = max(1.0, rate * max(0.5, seconds - 0.5))
        parts = "  ".join(f"{name} {used / requests * 1e6:.0f}" for name, used in self.used.items())
        busy = sorted(((used, name) for name, used in self.threads.items() if used / requests * 1e6 >= 1),
                      reverse=True)
        threads = ", ".join(f"{name} {used / requests * 1e6:.0f}" for used, name in busy)
        return (f"CPU µs per request: {parts}  (machine idle {self.idle:.0%}, "
                f"stolen by the hypervisor {self.steal:.0%}); the app's threads: {threads}")


def served(tmux: Tmux) -> tuple[float, int] | None:
    """``(when, requests)``: the TUI's request count on its status line now (None if not shown)."""
    found = REQUESTS.search(tmux.screen())
    return (time.monotonic(), int(found.group(1).replace(",", ""))) if found else None


def measure_app(name: str, tmux: Tmux, port: int, args: argparse.Namespace,
                others: dict[str, tuple[int, str]] | None = None) -> dict[str, object]:
    """The load's rate and its CPU with no key pressed, then the keys' latencies under the same flood.

    ``others``: more processes whose CPU counts. Keys come after the measured load, so the
    rate is the server's under the flood alone; the netlens TUI's rate while its keys are
    handled (its server gives way to keys, see netlens.keygate) is read off its status line.
    """
    with flood(port, args.idle, args.clients, args.seconds) as load:
        budget = CpuBudget({name: (tmux.pid, "self"), f"{name}'s helpers": (tmux.pid, "helpers"), **(others or {}),
                            "clients": (load.measured.pid, "tree")}, args.seconds, tmux.pid)
        rss = []
        if args.rss_minutes and name == "netlens":
            started = time.monotonic()
            while time.monotonic() - started < args.rss_minutes * 60:
                rss.append(tmux.rss_kib())
                print(f"  TUI RSS {rss[-1] / 1024:7.1f} MiB after {(time.monotonic() - started) / 60:5.1f} min "
                      f"of flood", flush=True)
                time.sleep(args.rss_every)
        rate = load.measured_rate()
        load.keep_up()
        time.sleep(args.warmup)
        before = served(tmux)
        latencies = palette_latencies(tmux, args.presses, load)
        arrows = arrow_keys(name, tmux, args.presses, load)
        after = served(tmux)
    keys_rate = (after[1] - before[1]) / (after[0] - before[0]) if before and after else None
    return {"latencies": latencies, "rate": rate, "keys_rate": keys_rate, "rss": rss, "arrows": arrows,
            "cpu": budget.line(rate, args.seconds)}


def report(name: str, figures: dict[str, object]) -> None:
    """One line per app."""
    lat = figures["latencies"]
    assert isinstance(lat, list)
    keys_rate = figures["keys_rate"]
    while_keys = f", {keys_rate:,.0f} while its keys are handled" if isinstance(keys_rate, float) else ""
    print(f"  {name:9s} ctrl+p -> palette  p50 {statistics.median(lat):6.1f} ms  worst {max(lat):6.1f} ms  "
          f"(n={len(lat)})   server under the flood: {figures['rate']:,.0f} req/s{while_keys}")
    arrows = figures["arrows"]
    assert isinstance(arrows, dict)
    for label, times in arrows.items():
        print(f"  {name:9s} arrow key in the {label:11s}  p50 {statistics.median(times):6.1f} ms  "
              f"worst {max(times):6.1f} ms  (n={len(times)})")
    print(f"  {name:9s} {figures['cpu']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20,
                        help="length of the flood whose rate is reported (the keys are timed under more if needed)")
    parser.add_argument("--warmup", type=float, default=3, help="flood seconds before the first key")
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--idle", type=int, default=200)
    parser.add_argument("--rss-minutes", type=float, default=0, help="sample the TUI's RSS under the flood")
    parser.add_argument("--rss-every", type=float, default=60)
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("tmux") or not shutil.which("tcpdump"):
        print("needs root (capture), tmux and tcpdump", file=sys.stderr)
        return 2
    if args.rss_minutes:
        args.seconds = max(args.seconds, args.rss_minutes * 60 + args.warmup + 60)
    tag = f"nlf-{os.getpid()}"
    results = {}
    with tempfile.TemporaryDirectory(prefix=tag) as tmp:
        light = Path(tmp) / "light_app.py"
        light.write_text(LIGHT_APP)
        pcap = Path(tmp) / "flood.pcap"
        # netlens TUI: server, capture and probe in one app; tcpdump counts the same port.
        port = free_port()
        command = [*NETLENS, "serve", "--port", str(port), "--idle-timeout", "0"]
        with session(f"{tag}-netlens", command, "pkts") as tmux:
            dump = subprocess.Popen(["tcpdump", "-i", "lo", "-w", str(pcap), "-U", "-B", "65536",
                                     f"tcp port {port}"], stderr=subprocess.DEVNULL)
            try:
                time.sleep(1)
                results["netlens"] = measure_app("netlens", tmux, port, args, {"tcpdump": (dump.pid, "self")})
                time.sleep(1)
                tui_count = captured(tmux)
            finally:
                dump.send_signal(signal.SIGTERM)
                dump.wait(10)
            dumped = subprocess.run(["tcpdump", "-r", str(pcap), "-nn", "-q"], capture_output=True, text=True)
            tcpdump_count = len(dumped.stdout.splitlines())
        # The lightest Textual app, the same flood against the headless server.
        port = free_port()
        server = subprocess.Popen([*NETLENS, "serve", "--headless", "--port", str(port), "--idle-timeout", "0"],
                                  stdout=subprocess.DEVNULL, cwd=ROOT)
        try:
            time.sleep(1.5)
            with session(f"{tag}-light", [sys.executable, str(light)], "row 1") as tmux:
                results["light"] = measure_app("light", tmux, port, args, {"headless server": (server.pid, "tree")})
        finally:
            server.terminate()
            server.wait(10)
    print(f"TUI under a search flood ({args.clients} clients looping, {args.idle} idle connections, "
          f"capture on), {args.presses} presses each:")
    report("netlens", results["netlens"])
    report("light", results["light"])
    net_lat, light_lat = results["netlens"]["latencies"], results["light"]["latencies"]
    assert isinstance(net_lat, list) and isinstance(light_lat, list)
    print(f"  palette p50 ratio netlens/light: {statistics.median(net_lat) / statistics.median(light_lat):.2f}x "
          f"(goal <= 1.5x), worst {max(net_lat):.0f} ms (goal < 250 ms)")
    light_arrow = results["light"]["arrows"]["table"]  # type: ignore[index]
    for label, times in results["netlens"]["arrows"].items():  # type: ignore[attr-defined]
        print(f"  arrow key p50 ratio netlens {label}/light table: "
              f"{statistics.median(times) / statistics.median(light_arrow):.2f}x (goal <= 1.5x), "
              f"worst {max(times):.0f} ms (goal < 250 ms)")
    net_rate, head_rate = results["netlens"]["rate"], results["light"]["rate"]
    assert isinstance(net_rate, float) and isinstance(head_rate, float)
    print(f"  server in the TUI / headless: {net_rate / max(head_rate, 1e-9):.2f}x (goal >= 0.5x)")
    print(f"  capture: TUI {tui_count if tui_count is not None else '?'} packets, tcpdump {tcpdump_count} "
          f"on the same port (goal: equal)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
