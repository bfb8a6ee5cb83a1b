"""Argument helpers shared by several subcommands."""

from __future__ import annotations

import argparse

from netlens import DEFAULT_HOST, DEFAULT_PORT


def port_number(text: str) -> int:
    """argparse type: a TCP port 0-65535, with a one-sentence error otherwise."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is outside 0-65535")
    return port


def positive_float(text: str) -> float:
    """argparse type: a number of seconds >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def byte_size(text: str) -> int:
    """argparse type: a byte count, optionally with a K/M/G suffix (powers of 1024): ``64M``, ``512K``."""
    cleaned = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = cleaned[-1:] if cleaned[-1:] in ("K", "M", "G") else ""
    try:
        value = float(cleaned[: len(cleaned) - len(unit)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (examples: 4096, 512K, 64M, 1G)") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return int(value * _SIZE_UNITS[unit])


def add_endpoint(parser: argparse.ArgumentParser, what: str) -> None:
    """``--host``/``--port`` with the workshop defaults (127.0.0.1:65432)."""
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"{what} address (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                        help=f"{what} TCP port (default {DEFAULT_PORT})")
