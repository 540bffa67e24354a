"""Commands to gateways (DESIGN §3 `cmd` / `cmd/result`): checked before they go, answered only by
the gateway they went to.

Ids are random (128 bits), so no gateway can guess another's; a reply counts only when its
(gateway, id) is waiting, anything else is dropped and counted; at most `limit` commands wait
at once, so neither callers nor replies can grow the controller's memory without bound (a
reply's size is bounded by the bridge's payload limit).
"""

from __future__ import annotations

import json
import secrets
import threading
import time

from protocols import checks, messages

# what the firmware answers (firmware/gw/link.py, DESIGN §5a); anything else would only come back as an error
OPS = ("resend_state", "selftest", "reboot", "meminfo", "counters", "call", "probe")
MAX_PENDING = 1000
MAX_ARGS_BYTES = 4096


class CommandsBusy(TimeoutError):
    """Too many commands are waiting for answers already (a caller's error to retry later, not a crash)."""


def _need(args: dict, key: str, ok, reason: str, optional: bool = False) -> None:
    if key not in args and optional:
        return
    if not ok(args.get(key)):
        raise messages.MessageError("args." + key, reason)


def check(op, args) -> dict:
    """The args to send, or MessageError naming what is wrong (nothing is sent then, nobody waits)."""
    if type(op) is not str or op not in OPS:
        raise messages.MessageError("op", "must be one of " + ", ".join(OPS))
    args = {} if args is None else args
    if type(args) is not dict:
        raise messages.MessageError("args", "must be an object")
    if op == "call":
        _need(args, "agent", checks.is_number, "must be a dialable number (E.164 with + or 2-15 digits)")
        _need(args, "citizen", checks.is_number, "must be a dialable number (E.164 with + or 2-15 digits)")
        _need(args, "via", checks.is_port_name, "must be a port name", optional=True)
        _need(args, "ring_timeout_s", lambda v: type(v) is int and 1 <= v <= 600, "must be an integer 1-600",
              optional=True)
    elif op == "probe":
        _need(args, "target", checks.is_ident, "must be a target id")
    messages.validate("cmd", messages.cmd("x", op, args))  # JSON values only (no floats, string keys)
    if len(json.dumps(args)) > MAX_ARGS_BYTES:
        raise messages.MessageError("args", "is larger than " + str(MAX_ARGS_BYTES) + " bytes")
    return args


class Pending:
    """The commands waiting for their gateway's answer, keyed by (gateway, id)."""

    def __init__(self, limit: int = MAX_PENDING):
        self.limit = limit
        self._waiting: dict[tuple[str, str], dict | None] = {}
        self._changed = threading.Condition()
        self.unsolicited = 0  # replies nobody waited for (or from another gateway than the one asked)

    def __len__(self) -> int:
        return len(self._waiting)

    def open(self, gateway_id: str) -> str:
        """A fresh id for a command to `gateway_id`, waiting from now on."""
        with self._changed:
            if len(self._waiting) >= self.limit:
                raise CommandsBusy(f"{len(self._waiting)} commands wait for answers already; try again later")
            cid = secrets.token_hex(16)
            self._waiting[(gateway_id, cid)] = None
            return cid

    def expects(self, gateway_id: str, cid) -> bool:
        """Cheap look before a reply is passed on (the decoder drops the others at once)."""
        return (gateway_id, cid) in self._waiting

    def deliver(self, gateway_id: str, reply: dict) -> bool:
        with self._changed:
            key = (gateway_id, reply.get("id"))
            if key not in self._waiting or self._waiting[key] is not None:
                self.unsolicited += 1
                return False
            self._waiting[key] = reply
            self._changed.notify_all()
            return True

    def count_unsolicited(self) -> None:
        with self._changed:
            self.unsolicited += 1

    def wait(self, gateway_id: str, cid: str, timeout: float, what: str) -> dict:
        """The reply, or TimeoutError; the command stops waiting either way."""
        key = (gateway_id, cid)
        deadline = time.monotonic() + timeout
        with self._changed:
            try:
                while self._waiting.get(key) is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"{gateway_id} did not answer {what} within {timeout}s")
                    self._changed.wait(left)
                return self._waiting[key]
            finally:
                self._waiting.pop(key, None)

    def cancel(self, gateway_id: str, cid: str) -> None:
        with self._changed:
            self._waiting.pop((gateway_id, cid), None)
