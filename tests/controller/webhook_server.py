"""A webhook receiver on loopback for tests: refuses the first `fail_first` POSTs with `fail_status`,
then answers 200 and keeps each JSON body it accepted."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookServer:
    def __init__(self, fail_first: int = 0, fail_status: int = 503):
        self.fail_first, self.fail_status = fail_first, fail_status
        self.attempts = 0
        self._accepted: list[dict] = []
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 1 << 20))
                with hook._lock:
                    hook.attempts += 1
                    refuse = hook.attempts <= hook.fail_first
                    if not refuse:
                        hook._accepted.append(json.loads(body))
                self.send_response(hook.fail_status if refuse else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def events(self) -> list[dict]:
        with self._lock:
            return list(self._accepted)

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)
