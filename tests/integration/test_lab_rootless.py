"""Without root: the loopback labs run in a user namespace of their own; the wire labs say what they need.

The test starts as root and gives root up for good before running the lab (as user ``nobody``).
The interpreter and its libraries live under /root here, which nobody may read, so everything the
lab imports is imported first; a user's own Python needs none of that.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

AS_NOBODY = """
import ctypes, encodings.ascii, encodings.idna, encodings.latin_1, json, os, sys
import scapy.all
import netlens.capture.live, netlens.labs.catalog, netlens.labs.runner
from netlens.labs.catalog import find
from netlens.labs.runner import LabError, run_lab
labs = {name: find(name) for name in sys.argv[1:]}
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE, as for any process a user starts
try:
    print(json.dumps(run_lab(labs[sys.argv[1]]).to_dict()))
except LabError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def _as_nobody(name: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", AS_NOBODY, name], capture_output=True, text=True, timeout=60,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_a_loopback_lab_runs_without_root() -> None:
    result = _as_nobody("nagle")
    assert result["passed"] is True, result  # packets, counters and its peer: no root needed


def test_without_root_the_trace_checks_say_why() -> None:
    result = _as_nobody("handshake")
    checks = {c["name"]: c for c in result["checks"]}  # type: ignore[attr-defined]
    assert checks["three-way handshake"]["ok"] and checks["established"]["ok"]
    assert not checks["states"]["ok"] and "needs root" in checks["states"]["observed"]


def test_a_wire_lab_says_it_needs_root() -> None:
    result = _as_nobody("loss")
    assert result == {"error": "lab 'loss' needs root for its two network namespaces and the wire between them "
                               "(try: sudo netlens lab run loss)."}
