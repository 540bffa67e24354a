"""Domain errors: what went wrong and with which field, without HTTP. The API maps each class to one
status in one place (controller.api.app); the CLI prints the field and the reason."""

from __future__ import annotations


class DomainError(Exception):
    status = 400

    def __init__(self, field: str | None, reason: str):
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field, self.reason = field, reason


class FieldError(DomainError):
    """A value is invalid (422)."""
    status = 422


class NotFound(DomainError):
    """What a field names does not exist (404)."""
    status = 404


class Conflict(DomainError):
    """Valid, but the current state does not allow it (409): a duplicate, a gateway that refused."""
    status = 409


class Unavailable(DomainError):
    """Something it needs is missing right now (503): no MQTT bridge, too many commands waiting."""
    status = 503


class NoAnswer(DomainError):
    """A gateway did not answer in time (504)."""
    status = 504
