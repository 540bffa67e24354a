"""The controller's HTTP API (FastAPI)."""

from controller.api.app import create_app

__all__ = ["create_app"]
