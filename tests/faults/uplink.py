"""One board's uplink as a loopback TCP relay in front of the broker, which the test can cut: while cut,
its connections are closed and new ones refused at once (as a dead mobile data link whose modem says so);
restored, it relays again. The other clients of the broker are not touched."""

from __future__ import annotations

import socket
import threading

from controller.brokers import free_port


class Uplink:
    def __init__(self, target_port: int):
        self.target, self.port = target_port, free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.cut_now = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._srv = socket.create_server(("127.0.0.1", self.port))
        self._srv.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, name="uplink", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.cut_now.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                data = a.recv(65536)
                if not data or self.cut_now.is_set():
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut(self) -> None:
        self.cut_now.set()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restore(self) -> None:
        self.cut_now.clear()

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self._srv.close()
        self._thread.join(5)
