"""A Python interpreter of the classic BPF instruction set, for testing the capture filters without a kernel.

It implements the subset netlens's hand-built programs and libpcap's port
filters use; out-of-bounds loads reject the frame, as in the kernel.
"""

from __future__ import annotations

from netlens.capture.bpf import (
    BPF_ABS,
    BPF_B,
    BPF_H,
    BPF_IMM,
    BPF_IND,
    BPF_JEQ,
    BPF_JMP,
    BPF_JSET,
    BPF_K,
    BPF_LD,
    BPF_LDX,
    BPF_RET,
    BPF_W,
    Program,
)

#: Base of the kernel's "ancillary data" loads; +4 reads skb->pkt_type.
SKF_AD_OFF = -0x1000
SKF_AD_PKTTYPE = 4
_LDX_MSH = 0xB1


def run(program: Program, frame: bytes, pkttype: int = 0) -> int:
    """Interpret ``program`` on ``frame`` in Python (for tests): the number of bytes it keeps.

    Implements the subset the programs above and libpcap's port filters use.
    Out-of-bounds loads reject the frame, as in the kernel.
    """
    a = x = 0
    pc = 0
    size = len(frame)
    while pc < len(program):
        code, jt, jf, k = program[pc]
        pc += 1
        cls = code & 0x07
        if cls == BPF_RET:
            return k if code & 0x18 == BPF_K else a
        if cls in (BPF_LD, BPF_LDX):
            mode, width = code & 0xE0, code & 0x18
            if code == _LDX_MSH:
                if k >= size:
                    return 0
                x = (frame[k] & 0x0F) * 4
                continue
            if mode == BPF_IMM:
                value = k
            elif mode in (BPF_ABS, BPF_IND):
                offset = k if mode == BPF_ABS else x + k
                if offset >= 0x80000000:  # negative: ancillary loads
                    if (offset - 0x100000000) == SKF_AD_OFF + SKF_AD_PKTTYPE:
                        value = pkttype
                    else:
                        return 0
                else:
                    n = {BPF_W: 4, BPF_H: 2, BPF_B: 1}[width]
                    if offset + n > size:
                        return 0
                    value = int.from_bytes(frame[offset:offset + n], "big")
            else:
                raise ValueError(f"unsupported load 0x{code:02x}")
            if cls == BPF_LD:
                a = value
            else:
                x = value
            continue
        if cls == BPF_JMP:
            op = code & 0xF0
            if op == 0x00:  # BPF_JA
                pc += k
                continue
            operand = k if code & 0x08 == 0 else x
            if op == BPF_JEQ:
                taken = a == operand
            elif op == BPF_JSET:
                taken = bool(a & operand)
            elif op == 0x20:  # BPF_JGT
                taken = a > operand
            elif op == 0x30:  # BPF_JGE
                taken = a >= operand
            else:
                raise ValueError(f"unsupported jump 0x{code:02x}")
            pc += jt if taken else jf
            continue
        if cls == 0x04:  # BPF_ALU
            op = code & 0xF0
            operand = k if code & 0x08 == 0 else x
            if op == 0x50:  # AND
                a &= operand
            elif op == 0x00:
                a = (a + operand) & 0xFFFFFFFF
            elif op == 0x10:
                a = (a - operand) & 0xFFFFFFFF
            elif op == 0x60:
                a = (a << operand) & 0xFFFFFFFF
            elif op == 0x70:
                a >>= operand
            else:
                raise ValueError(f"unsupported ALU op 0x{code:02x}")
            continue
        if cls == 0x07:  # BPF_MISC: TAX / TXA
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
            continue
        raise ValueError(f"unsupported instruction 0x{code:02x}")
    return 0
