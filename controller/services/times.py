"""Times the controller takes and shows: UTC seconds that a calendar date exists for (years 1 to 9999)."""

from __future__ import annotations

from datetime import UTC, datetime

from controller.services.errors import FieldError

TIME_MIN, TIME_MAX = -62135596800, 253402300799


def utc_text(ts, fmt: str = "%Y-%m-%dT%H:%M:%SZ") -> str | None:
    """UTC seconds as text, or None when there is no such date (a stored row may hold any integer)."""
    if type(ts) is not int or not TIME_MIN <= ts <= TIME_MAX:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime(fmt)


def parse_time(value: int | str | None, field: str) -> int | None:
    """UTC seconds, or ISO-8601 (no offset = UTC) -> UTC seconds, within years 1 to 9999 (else a FieldError)."""
    if value is None:
        return None
    if isinstance(value, int):
        out = value
    elif value.strip().lstrip("-").isdigit() and len(value.strip()) <= 20:
        out = int(value.strip())
    else:
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            out = int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp())
        except (ValueError, OverflowError):
            raise FieldError(field, "must be UTC seconds or an ISO-8601 time") from None
    if not TIME_MIN <= out <= TIME_MAX:
        raise FieldError(field, f"must be between {TIME_MIN} and {TIME_MAX} (years 1 to 9999)")
    return out
