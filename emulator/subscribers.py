"""Subscriber lines: devices with phone numbers that call each other through the operator, as a bench's modems do.

A board port given a number (`GsmNetwork.set_number`) can be dialled like a SIM; a subscriber modem
(`GsmNetwork.add_subscriber`) is a modem outside the board with its own number, on its own pty: it dials the
board's ports by number (ATD), presses keys (AT+VTS), and rings when the board dials its number, to be
answered (ATA) or refused (ATH) by whoever drives it. The two legs of such a call are each other's `peer`:
what one side does (answer, hang up, reset) the other hears. Subscribers' own legs go to the operator's
`outside` ledger, so the board's truth() keeps only the board's legs.
"""

from __future__ import annotations

import time

from emulator.ledger import Leg


def dial_device(op, device, number: str, target) -> Leg:
    """`device` dialled the number of `target`: ring it, with the dialler's number as caller id."""
    out = (op.outside if getattr(device, "subscriber", False) else op.ledger).new_leg("out", device.port, number)
    device.leg = out
    busy = target.leg is not None or target.off_hook
    if busy or target.reg not in (1, 5) or target.booting:
        out.after(op.loop, 0.5, op._far_fails, device, out, "busy" if busy else "unreachable")
        return out
    ledger = op.outside if getattr(target, "subscriber", False) else op.ledger
    inbound = ledger.new_leg("in", target.port, getattr(device, "number", None) or "unknown")
    out.peer, inbound.peer = inbound, out
    target.leg = inbound
    inbound.after(op.loop, op.ring_limit_s, op.release_in, inbound, "network", "unanswered")
    target.ring(inbound, first=True)
    out.after(op.loop, 0.2, op._alerting, device, out)
    return out


def answered(op, leg: Leg) -> None:
    """The dialled device answered `leg`: the dialler's call is connected."""
    out = leg.peer
    if out is None or out.state not in ("dialing", "alerting"):
        return
    out.cancel_timers()
    out.state, out.t_answer = "active", time.monotonic()
    op.ports[out.port].far_answered(out)


def peer_ended(op, leg: Leg) -> None:
    """`leg` just ended: its peer ends too, and its device says so in its own words."""
    peer = leg.peer
    if peer is None or peer.state == "ended":
        return
    device = op.ports.get(peer.port)
    if peer.dir == "out":  # the dialled side hung up, refused, reset or was never answered
        if peer.t_answer is not None:
            op.end(peer, "destination", "answered")
            device.remote_gone(peer)
        else:
            detail = "busy" if leg.detail in ("rejected", "busy") else "no_answer"
            op.end(peer, "network", detail)
            device.far_failed(peer, detail)
    else:  # the dialler hung up (or reset): the dialled device's call is over
        op.end(peer, "caller", "answered" if peer.t_answer is not None else "abandoned")
        device.remote_gone(peer)
