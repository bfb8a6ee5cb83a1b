"""Classic BPF programs for the capture socket: built by hand, or compiled by libpcap.

Two paths lead to the same kernel filter:

* libpcap present: scapy asks libpcap to compile any filter expression
  (``tcp port 65432``, ``host 10.0.0.1 and not port 22``...).
* libpcap absent: :func:`tcp_port_program` writes the program for
  ``tcp port P`` directly from the classic BPF instruction set (IPv4 and IPv6,
  either direction, Ethernet/loopback or raw-IP framing). Any other expression
  needs libpcap.

Either way, on loopback a two-instruction prefix rejects the outgoing copy of
every frame (lo shows each packet twice: once leaving, once arriving), in the
kernel, so those copies never cost a system call. libpcap drops them too, in
user space.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import socket
import struct
from collections.abc import Sequence

from netlens.capture.errors import CaptureError
from netlens.capture.frames import LINKTYPE_ETHERNET, LINKTYPE_NAMES, LINKTYPE_RAW

#: One instruction: (code, jump-if-true, jump-if-false, k), as in ``struct sock_filter``.
Instruction = tuple[int, int, int, int]
Program = list[Instruction]

# Instruction classes and modes (linux/filter.h, the BSD BPF instruction set).
BPF_LD, BPF_LDX, BPF_JMP, BPF_RET = 0x00, 0x01, 0x05, 0x06
BPF_W, BPF_H, BPF_B = 0x00, 0x08, 0x10
BPF_IMM, BPF_ABS, BPF_IND, BPF_MSH = 0x00, 0x20, 0x40, 0xA0
BPF_JEQ, BPF_JSET = 0x10, 0x40
BPF_K = 0x00

#: Base of the kernel's "ancillary data" loads; +4 reads skb->pkt_type.
SKF_AD_OFF = -0x1000
SKF_AD_PKTTYPE = 4
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = 26
BPF_MAXINSNS = 4096

#: What an accepting ``ret`` keeps of each frame: everything (lo frames reach 65,549 bytes).
SNAPLEN = 262144

_LDH_ABS = BPF_LD | BPF_H | BPF_ABS
_LDB_ABS = BPF_LD | BPF_B | BPF_ABS
_LDW_ABS = BPF_LD | BPF_W | BPF_ABS
_LDH_IND = BPF_LD | BPF_H | BPF_IND
_LDX_MSH = BPF_LDX | BPF_B | BPF_MSH
_JEQ = BPF_JMP | BPF_JEQ | BPF_K
_JSET = BPF_JMP | BPF_JSET | BPF_K
_RET = BPF_RET | BPF_K
_AND = 0x04 | 0x50 | BPF_K  # BPF_ALU | BPF_AND | BPF_K


def tcp_port_program(port: int, linktype: int = LINKTYPE_ETHERNET) -> Program:
    """The classic BPF program for ``tcp port <port>`` (source or destination, IPv4 or IPv6).

    Like libpcap's, it accepts IPv4 TCP that is not a non-first fragment and
    IPv6 whose next header is TCP (no extension headers), with either port
    equal to ``port``; it returns :data:`SNAPLEN` to keep the whole frame.
    """
    if not 0 <= port <= 0xFFFF:
        raise ValueError(f"port {port} is outside 0-65535")
    if linktype == LINKTYPE_ETHERNET:
        link, ethertype_at = 14, 12
    elif linktype == LINKTYPE_RAW:
        link, ethertype_at = 0, None
    else:
        raise CaptureError(
            f"netlens can build its own port filter only for Ethernet or raw-IP interfaces, "
            f"not {LINKTYPE_NAMES.get(linktype, linktype)}; install libpcap for this one."
        )
    # Labels are resolved to relative jumps below, so the layout reads top to bottom.
    code: list[tuple[object, object, object, int]] = []
    if ethertype_at is not None:
        code += [
            (_LDH_ABS, 0, 0, ethertype_at),
            (_JEQ, "v4", "check_v6", 0x0800),
            ("label", "check_v6", 0, 0),
            (_JEQ, "v6", "reject", 0x86DD),
        ]
    else:
        # Raw IP: the version nibble says which header follows.
        code += [
            (_LDB_ABS, 0, 0, 0),
            (_AND, 0, 0, 0xF0),
            (_JEQ, "v4", "check_v6", 0x40),
            ("label", "check_v6", 0, 0),
            (_JEQ, "v6", "reject", 0x60),
        ]
    code += [
        ("label", "v4", 0, 0),
        (_LDB_ABS, 0, 0, link + 9),  # IPv4 protocol
        (_JEQ, "v4_tcp", "reject", 6),
        ("label", "v4_tcp", 0, 0),
        (_LDH_ABS, 0, 0, link + 6),  # flags + fragment offset
        (_JSET, "reject", "v4_ports", 0x1FFF),  # a non-first fragment has no TCP header
        ("label", "v4_ports", 0, 0),
        (_LDX_MSH, 0, 0, link),  # X = IPv4 header length
        (_LDH_IND, 0, 0, link),  # source port
        (_JEQ, "accept", "v4_dport", port),
        ("label", "v4_dport", 0, 0),
        (_LDH_IND, 0, 0, link + 2),  # destination port
        (_JEQ, "accept", "reject", port),
        ("label", "v6", 0, 0),
        (_LDB_ABS, 0, 0, link + 6),  # IPv6 next header
        (_JEQ, "v6_tcp", "reject", 6),
        ("label", "v6_tcp", 0, 0),
        (_LDH_ABS, 0, 0, link + 40),
        (_JEQ, "accept", "v6_dport", port),
        ("label", "v6_dport", 0, 0),
        (_LDH_ABS, 0, 0, link + 42),
        (_JEQ, "accept", "reject", port),
        ("label", "accept", 0, 0),
        (_RET, 0, 0, SNAPLEN),
        ("label", "reject", 0, 0),
        (_RET, 0, 0, 0),
    ]
    return _assemble(code)


def _assemble(code: Sequence[tuple[object, object, object, int]]) -> Program:
    """Resolve label names to the relative jump offsets classic BPF uses."""
    labels: dict[object, int] = {}
    program: list[tuple[int, object, object, int]] = []
    for op, a, b, k in code:
        if op == "label":
            labels[a] = len(program)
        else:
            program.append((int(op), a, b, k))  # type: ignore[call-overload]
    def relative(target: object, index: int) -> int:
        if isinstance(target, int):
            return target
        offset = labels[target] - index - 1
        if not 0 <= offset <= 255:
            raise ValueError(f"jump to {target!r} out of range")
        return offset

    return [(int(op), relative(jt, index), relative(jf, index), k & 0xFFFFFFFF)
            for index, (op, jt, jf, k) in enumerate(program)]


def drop_outgoing(program: Program) -> Program:
    """``program`` preceded by a check that rejects frames the host is sending (loopback's copies).

    Classic BPF jumps are relative and only go forward, so prepending keeps
    every jump of ``program`` valid; A and X are reloaded by any program
    before use, so the prefix's A value does not leak into it.
    """
    prefix: Program = [
        (_LDW_ABS, 0, 0, (SKF_AD_OFF + SKF_AD_PKTTYPE) & 0xFFFFFFFF),
        (_JEQ, 0, 1, PACKET_OUTGOING),
        (_RET, 0, 0, 0),
    ]
    return prefix + program


def accept_all() -> Program:
    """A program that keeps every frame whole."""
    return [(_RET, 0, 0, SNAPLEN)]


@functools.lru_cache(maxsize=1)
def _find_libpcap() -> str | None:
    """The libpcap scapy would load, if it is installed *and* loads (a listed but broken library does not)."""
    name = ctypes.util.find_library("pcap")
    if name is None:
        return None
    try:
        ctypes.CDLL(name)
    except OSError:
        return None
    return name


def libpcap_available() -> bool:
    """True when libpcap can be loaded, so scapy can compile filter expressions."""
    return _find_libpcap() is not None


def compile_expression(expression: str, linktype: int) -> Program:
    """Compile a tcpdump-style filter with libpcap (through scapy) into instructions.

    Raises :class:`CaptureError` if libpcap is missing or rejects the expression.
    """
    if not libpcap_available():
        raise CaptureError(
            f"the capture filter {expression!r} needs libpcap, which is not installed or cannot be loaded; "
            f"install it (apt-get install libpcap0.8) or filter by port with --port."
        )
    try:
        from scapy.arch.common import compile_filter
        from scapy.error import Scapy_Exception
        from scapy.libs.structures import bpf_program  # noqa: F401  (loaded by compile_filter)
    except (ImportError, OSError) as exc:  # pragma: no cover - scapy is a dependency
        raise CaptureError(f"scapy cannot compile capture filters here: {exc}.") from None
    try:
        compiled = compile_filter(expression, linktype=linktype)
    except (Scapy_Exception, OSError, ImportError) as exc:
        reason = str(exc).strip().rstrip(".") or "libpcap rejected it"
        raise CaptureError(f"the capture filter {expression!r} is not valid: {reason}.") from None
    try:
        program: Program = []
        for i in range(compiled.bf_len):
            insn = compiled.bf_insns[i]
            code, jt, jf, k = int(insn.code), int(insn.jt), int(insn.jf), int(insn.k) & 0xFFFFFFFF
            # scapy compiles with a 65535-byte snaplen; lo frames are longer, so keep them whole.
            if code == _RET and k:
                k = SNAPLEN
            program.append((code, jt, jf, k))
    finally:
        try:
            from scapy.libs.winpcapy import pcap_freecode

            pcap_freecode(ctypes.byref(compiled))
        except Exception:  # freeing is best effort; the program is tiny
            pass
    return program


def attach(sock: socket.socket, program: Program) -> None:
    """Attach ``program`` to ``sock`` with SO_ATTACH_FILTER (the kernel copies it)."""
    if len(program) > BPF_MAXINSNS:
        raise CaptureError(f"the capture filter compiles to {len(program)} instructions; "
                           f"the kernel allows {BPF_MAXINSNS}.")
    raw = b"".join(struct.pack("=HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(raw, len(raw))
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; } with native alignment.
    fprog = struct.pack("HP", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
