"""Waiting in tests: on a condition with a deadline, never a fixed sleep."""

import time


def until(predicate, timeout: float = 20, what: str = "a condition", every: float = 0.05):
    """`predicate()`'s first truthy value within `timeout` seconds; an AssertionError naming `what` after."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(every)
