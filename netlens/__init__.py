"""netlens: see TCP — a teaching TCP server and a live inspector of its sockets and packets."""

__version__ = "0.1.0"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 65432
