"""``netlens lab`` as a user runs it: list, run --check/--json/--write, variants, errors, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO
from tests.integration.lab_witness import tshark


def test_lab_list_json_has_every_lab(netlens_cli) -> None:  # type: ignore[no-untyped-def]
    done = netlens_cli("lab", "list", "--json")
    assert done.returncode == 0, done.stderr
    labs = json.loads(done.stdout)
    assert {"handshake", "zero-window", "slow-start"} <= {lab["name"] for lab in labs}
    assert all({"name", "title", "needs_root"} <= set(lab) for lab in labs)
    text = netlens_cli("lab", "list").stdout
    assert "rto-backoff" in text and "veth)" in text


def test_lab_run_check_json_and_write(netlens_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pcap = tmp_path / "refused.pcap"
    done = netlens_cli("lab", "run", "refused", "--check", "--json", "--write", str(pcap))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["lab"] == "refused" and result["passed"] is True
    assert all({"name", "expected", "observed", "ok"} <= set(c) for c in result["checks"])
    assert len(tshark(pcap, "tcp.flags.reset == 1")) == 1
    # pcapng with netlens's analysis as packet comments: the RST carries its rule's sentence.
    assert pcap.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"
    comments = tshark(pcap, "tcp.flags.reset == 1 && frame.comment", ("frame.comment",))
    assert comments and "Reset" in comments[0][0], comments


def test_lab_run_narrates_and_check_fails_without_the_key_step(netlens_cli) -> None:  # type: ignore[no-untyped-def]
    done = netlens_cli("lab", "run", "refused", "--check", "--variant", "listening")
    assert done.returncode == 1
    assert "[1/1] Knock on a closed port" in done.stdout and "watch: packets:" in done.stdout
    assert "FAIL  refused" in done.stdout and "did not pass" in done.stdout
    assert netlens_cli("lab", "run", "refused", "--variant", "listening").returncode == 0  # without --check


def test_lab_errors_are_one_sentence(netlens_cli) -> None:  # type: ignore[no-untyped-def]
    done = netlens_cli("lab", "run", "nope")
    assert done.returncode == 1 and done.stderr.startswith("netlens: there is no lab called 'nope'")
    done = netlens_cli("lab", "run", "refused", "--variant", "nope")
    assert done.returncode == 1 and "has no variant 'nope' (its variants: listening)" in done.stderr
    assert "Traceback" not in done.stderr


def test_sigterm_mid_lab_cleans_up() -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "netlens", "lab", "run", "rto-backoff"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if "[2/3]" in proc.stdout.readline():
                break
        time.sleep(0.3)  # inside the blackout: namespaces, veth, nft table all exist
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"nlb-{proc.pid}-" in namespaces
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"nlb-{proc.pid}-" not in after
    instances = os.listdir("/sys/kernel/tracing/instances") if os.path.isdir("/sys/kernel/tracing/instances") else []
    assert not [name for name in instances if str(proc.pid) in name]


def test_lab_run_is_headless() -> None:
    code = ("import sys\nfrom netlens.cli import main\nmain(['lab', 'run', 'handshake', '--json'])\n"
            "print('textual' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"


def test_sigkill_leftovers_are_cleaned_by_the_next_lab(netlens_cli) -> None:  # type: ignore[no-untyped-def]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "netlens", "lab", "run", "rto-backoff"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "[2/3]" not in proc.stdout.readline():
            pass
        time.sleep(0.3)
        proc.kill()  # no cleanup can run: the next lab must clear what this one left
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stale = f"nlb-{proc.pid}-"
    assert stale in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"netlens-{proc.pid}" in os.listdir("/sys/kernel/tracing/instances")
    assert netlens_cli("lab", "run", "loss", "--check").returncode == 0
    assert stale not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    instances = os.listdir("/sys/kernel/tracing/instances")
    assert not [name for name in instances if f"-{proc.pid}-" in name or name.endswith(f"-{proc.pid}")]


def test_a_teachers_lab_runs_from_labs_dir(netlens_cli) -> None:  # type: ignore[no-untyped-def]
    # The README's example lab, as a teacher would keep it in a directory of their own.
    labs_dir = str(Path(__file__).parent / "teacher_labs")
    listed = json.loads(netlens_cli("lab", "list", "--json", "--labs-dir", labs_dir).stdout)
    assert listed[-1]["name"] == "cork"
    assert netlens_cli("lab", "run", "cork", "--labs-dir", labs_dir, "--check").returncode == 0
    assert netlens_cli("lab", "run", "cork", "--labs-dir", labs_dir, "--check", "--variant", "no-cork").returncode == 1
