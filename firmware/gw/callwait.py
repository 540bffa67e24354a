"""Waiting helpers of the call machine (gw.calls) and the operators' calls (gw.outbound): racing a dial
against the caller leaving, waiting for either of two events, and collecting garbage while idle.
"""

import asyncio
import gc


def collect_idle():
    """Collect while no call runs, and let an automatic collection wait until half the free heap is
    allocated again: a call allocates a few KB, so none starts between a +CLIP and its ATD (a table push
    allocating tens of KB still gets one before the heap runs out)."""
    gc.collect()
    gc.threshold(max(8192, gc.mem_free() // 2))


async def race(task, event):
    """Await `task` unless `event` fires first (then cancel it and return None); gw.outbound's dials."""
    async def watch():
        await event.wait()
        task.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await task
    except asyncio.CancelledError:
        if event.is_set():
            return None
        raise
    finally:
        watcher.cancel()


async def wait_any(a, b):
    """Return once either event is set."""
    done = asyncio.Event()

    async def relay(ev):
        await ev.wait()
        done.set()

    tasks = [asyncio.create_task(relay(a)), asyncio.create_task(relay(b))]
    try:
        await done.wait()
    finally:
        for t in tasks:
            t.cancel()
