"""What every loopback broker shares: a free port, waiting for a listener, and the context-manager shape
(`with Broker() as b: b.host, b.port, b.url; b.stop(); b.start()`)."""

from __future__ import annotations

import socket
import time

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(host: str, port: int, timeout: float = 5.0, alive=None) -> None:
    """Block until host:port accepts a TCP connection; `alive()` False aborts early."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            pass
        if alive is not None and not alive():
            raise RuntimeError(f"broker on {host}:{port} died while starting")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing accepts connections on {host}:{port} after {timeout} s")
        time.sleep(0.02)


class _Broker:
    host = HOST
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.stop()


