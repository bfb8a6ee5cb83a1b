"""Every lab on the real stack (root): it passes, its key step matters, outside witnesses agree with
its checks, and it leaves nothing behind."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from netlens.labs.catalog import COURSE, discover
from netlens.labs.model import LabResult
from netlens.labs.runner import LabSession, run_lab
from tests.integration.lab_witness import census, left_behind, nstat_value, tshark

LABS = discover()
Witness = Callable[[LabSession, Path], None]


def _run(name: str, variant: str | None = None, pcap: Path | None = None,
         during: Callable[[LabSession], None] | None = None) -> LabResult:
    before = census()
    result = run_lab(LABS[name], variant, write=pcap, before_cleanup=during)
    assert left_behind(before, census()) == {}, f"lab {name} left something behind"
    return result


def _explain(result: LabResult) -> str:
    return "; ".join(f"{c.name}: {c.observed}" for c in result.checks if not c.ok) + " | " + "; ".join(result.notes)


def _facts(session: LabSession) -> dict[str, object]:
    return session.evidence.facts


# ------------------------------------------------------------------ outside witnesses, one per lab

def _handshake(session: LabSession, pcap: Path) -> None:
    syns = tshark(pcap, "tcp.flags.syn == 1", ("tcp.flags.ack", "tcp.options.mss_val", "tcp.options.wscale.shift"))
    assert [row[0] for row in syns] == ["0", "1"] and all(row[1] and row[2] for row in syns)


def _refused(session: LabSession, pcap: Path) -> None:
    assert tshark(pcap, f"tcp.flags.reset == 1 && tcp.srcport == {_facts(session)['port']}")


def _time_wait(session: LabSession, pcap: Path) -> None:
    server = _facts(session)["server_port"]
    assert session.net is not None
    lines = session.net.run(["ss", "-Htan", "state", "time-wait"]).splitlines()
    assert any(f":{server} " in line.split(None, 3)[2] + " " for line in lines), lines


def _half_close(session: LabSession, pcap: Path) -> None:
    port = _facts(session)["client_port"]
    fin = tshark(pcap, f"tcp.flags.fin == 1 && tcp.srcport == {port}")
    later = tshark(pcap, f"tcp.len > 0 && tcp.dstport == {port} && frame.number > {fin[0][0]}")
    assert later


def _abort(session: LabSession, pcap: Path) -> None:
    assert len(tshark(pcap, "tcp.flags.reset == 1")) >= 2


def _framing(session: LabSession, pcap: Path) -> None:
    port = _facts(session)["client_port"]
    sizes = [row[0] for row in tshark(pcap, f"tcp.len > 0 && tcp.srcport == {port}", ("tcp.len",))]
    assert sizes[:2] == ["6", "6"]


def _nagle(session: LabSession, pcap: Path) -> None:
    port = _facts(session)["client_port"]
    times = [float(row[0]) for row in tshark(pcap, f"tcp.len > 0 && tcp.srcport == {port}", ("frame.time_epoch",))]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps[:15]) >= 0.035 and max(gaps[16:]) < 0.035
    assert session.net is not None
    assert nstat_value(session.net.run(["nstat", "-asz"]), "TcpExtDelayedACKs") > 0


def _zero_window(session: LabSession, pcap: Path) -> None:
    assert tshark(pcap, "tcp.analysis.zero_window")
    assert len(tshark(pcap, "tcp.analysis.zero_window_probe || tcp.analysis.keep_alive")) >= 3


def _backlog(session: LabSession, pcap: Path) -> None:
    port = _facts(session)["port"]
    assert session.net is not None
    row = session.net.run(["ss", "-Hltn", f"sport = :{port}"]).split()
    assert row[1:3] == ["2", "1"], row  # Recv-Q (the accept queue), Send-Q (the backlog)
    assert nstat_value(session.net.run(["nstat", "-asz"]), "TcpExtListenOverflows") > 0


def _syn_cookies(session: LabSession, pcap: Path) -> None:
    assert session.net is not None
    counters = session.net.run(["nstat", "-asz"])
    assert nstat_value(counters, "TcpExtSyncookiesSent") > 0 and nstat_value(counters, "TcpExtSyncookiesRecv") > 0


def _keepalive(session: LabSession, pcap: Path) -> None:
    assert len(tshark(pcap, "tcp.analysis.keep_alive")) >= 2
    assert session.net is not None
    assert nstat_value(session.net.run(["nstat", "-asz"]), "TcpExtTCPKeepAlive") >= 2


def _self_connect(session: LabSession, pcap: Path) -> None:
    port = _facts(session)["port"]
    assert tshark(pcap, f"tcp.flags.syn == 1 && tcp.flags.ack == 1 && tcp.srcport == {port} && tcp.dstport == {port}")


def _retransmitted(session: LabSession, pcap: Path) -> None:
    assert len(tshark(pcap, "tcp.analysis.retransmission || tcp.analysis.fast_retransmission")) >= 3
    assert session.net is not None
    assert nstat_value(session.net.run(["nstat", "-asz"]), "TcpRetransSegs") >= 3


def _slow_start(session: LabSession, pcap: Path) -> None:
    # The outage that ends slow start: tshark sees the retransmissions, the sender's kernel counted them.
    assert tshark(pcap, "tcp.analysis.retransmission || tcp.analysis.fast_retransmission")
    assert session.client_net is not None
    assert nstat_value(session.client_net.run(["nstat", "-asz"]), "TcpRetransSegs") > 0


def _mss(session: LabSession, pcap: Path) -> None:
    assert [row[0] for row in tshark(pcap, "tcp.flags.syn == 1", ("tcp.options.mss_val",))] == ["1460", "1460"]
    assert max(int(row[0]) for row in tshark(pcap, "tcp.len > 0", ("tcp.len",))) == 1448


def _linger(session: LabSession, pcap: Path) -> None:
    port = _facts(session)["client_port"]
    assert not tshark(pcap, f"tcp.flags.reset == 1 && tcp.srcport == {port}")
    assert session.net is not None
    row = session.net.run(["ss", "-Htanp", f"sport = :{port}"]).split()
    assert row[0] == "FIN-WAIT-1" and int(row[2]) > 0 and "users:" not in " ".join(row), row


WITNESSES: dict[str, Witness] = {
    "handshake": _handshake, "refused": _refused, "time-wait": _time_wait, "half-close": _half_close,
    "abort": _abort, "framing": _framing, "nagle": _nagle, "zero-window": _zero_window, "backlog": _backlog,
    "syn-cookies": _syn_cookies, "keepalive": _keepalive, "self-connect": _self_connect,
    "rto-backoff": _retransmitted, "loss": _retransmitted, "slow-start": _slow_start, "mss": _mss,
    "linger": _linger,
}


def test_every_lab_of_the_course_exists() -> None:
    assert [name for name in LABS if name in COURSE] == list(COURSE)
    assert set(WITNESSES) == set(COURSE)


@pytest.mark.parametrize("name", COURSE)
def test_lab_passes_agrees_with_its_witness_and_leaves_nothing(name: str, tmp_path: Path) -> None:
    pcap = tmp_path / f"{name}.pcap"
    seen: list[str] = []

    def witness(session: LabSession) -> None:
        session.write_pcap(pcap)
        WITNESSES[name](session, pcap)
        seen.append(name)

    result = _run(name, during=witness)
    assert result.passed, _explain(result)
    assert seen == [name]
    assert result.checks and all(check.expected and check.observed for check in result.checks)


@pytest.mark.parametrize("name", COURSE)
def test_lab_fails_without_its_key_step(name: str) -> None:
    lab = LABS[name]
    result = _run(name, lab.control)
    assert not result.passed, f"{name} passed with its key step removed ({lab.variants[lab.control]})"
    failed = [check.name for check in result.checks if not check.ok]
    assert failed and result.variant == lab.control
