"""A bound on request bodies: a body over MAX_BODY bytes is answered 413 and never reaches the app.

The largest body the API takes is a rollout naming every gateway (100,000 ids of up to 64 characters
is about 7 MB as JSON); 8 MiB leaves room and keeps a runaway client from filling memory.
"""

from __future__ import annotations

import json

MAX_BODY = 8 * 1024 * 1024


def _too_large() -> tuple[dict, dict]:
    body = json.dumps({"detail": [{"field": "body", "reason": f"is larger than {MAX_BODY} bytes"}]}).encode()
    start = {"type": "http.response.start", "status": 413,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    return start, {"type": "http.response.body", "body": body}


class BodyLimit:
    """ASGI middleware: 413 for a declared or streamed body over `limit` bytes."""

    def __init__(self, app, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.limit:
            for message in _too_large():
                await send(message)
            return
        messages, seen = [], 0  # read the body first (at most `limit` bytes kept), then hand it on
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.limit:
                for reply in _too_large():
                    await send(reply)
                return
            if not message.get("more_body"):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
