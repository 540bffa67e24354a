"""The bridge's decoder thread's steps: gather queued messages, check them, refuse the bad ones.

Events of plain call records go column by column (controller.ingest.fastpath); every other message,
and any such message that path does not take, through protocols.messages.decode.
"""

from __future__ import annotations

import logging
import queue
import time

from controller.ingest.fastpath import call_rows
from controller.ingest.records import wire_events
from controller.limits import max_payload
from controller.models import now
from protocols import messages

log = logging.getLogger("citygate.bridge")


class Decoding:
    """Mixed into controller.ingest.bridge.Bridge (its inbox, counters, refusals and pending commands)."""

    def _gather(self, raw: list, most: int, linger_s: float) -> None:
        """Add to `raw` what is queued and what comes within linger_s, up to `most` messages."""
        linger = time.monotonic() + linger_s
        while len(raw) < most:
            try:
                raw.append(self.inbox.get(timeout=max(0.0, linger - time.monotonic())))
            except queue.Empty:
                return

    def _decode(self, raw: list[tuple]) -> list[tuple]:
        items, received = [], now()
        for gw, kind, payload in raw:
            try:
                if type(payload) is int:
                    self.refused["oversized"] += 1
                    raise messages.MessageError("payload", f"is {payload} bytes, more than the "
                                                           f"{max_payload(kind)} allowed")
                if kind == "events":  # the common message (call records only): checked column by column
                    fast = call_rows(gw, payload, received)
                    if fast is not None:
                        items.append((gw, kind, fast))
                        continue
                msg = messages.decode(kind, payload)
                if kind == "cmd_result" and not self.commands.expects(gw, msg["id"]):
                    self.commands.count_unsolicited()  # a reply nobody waits for, or from another gateway
                    self.refused["unsolicited_replies"] += 1
                    continue
                items.append((gw, kind, wire_events(gw, msg, received) if kind == "events" else msg))
            except messages.MessageError as e:
                self._refuse(gw, f"{kind}: {e.path}: {e.reason}")
            except Exception as e:  # the decoder's own fault: this message only, counted and alerted
                self.refused["decode_errors"] += 1
                self._refuse(gw, f"{kind}: {type(e).__name__}: {e}", error=e)
        return items

    def _refuse(self, gw: str, detail: str, error: BaseException | None = None) -> None:
        self.refused["bad_messages"] += 1
        alert = self._refusals.note(gw, detail, time.monotonic())
        if alert is not None:  # logged as alerted: once a minute per gateway at most
            log.warning("refused a message of %s: %s", gw, detail[:300], exc_info=error)
            self._bad.append(alert)

