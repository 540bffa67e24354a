"""The controller's one settings object: environment (CITYGATE_*), then a config file, then defaults."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "development-only-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYGATE_", env_file=os.environ.get("CITYGATE_CONFIG"),
                                      extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = Field("sqlite:///citygate.db",
                              description="sqlite:///path.db (WAL) or postgresql+psycopg://user@host/db")
    broker: str = Field("embedded", description='"embedded" (amqtt in-process) or mqtt://host:port')
    broker_port: int = Field(0, description="port of the embedded broker; 0 = a free one")
    broker_user: str | None = None
    broker_password: str | None = None
    broker_ca: str | None = Field(None, description="CA certificate file an mqtts:// broker is checked against "
                                                    "(default: the system's CA store)")
    listen_host: str = "127.0.0.1"
    listen_port: int = 8000
    secret_key: str = Field(DEV_SECRET, description="signs nothing on the wire; protects stored gateway keys")
    data_dir: Path = Path(".")

    @model_validator(mode="after")
    def _safe_outside_development(self) -> Settings:
        if self.environment != "development":
            if self.secret_key == DEV_SECRET or len(self.secret_key) < 32:
                raise ValueError("CITYGATE_SECRET_KEY must be set to 32+ random characters outside development")
            if self.broker != "embedded" and not (self.broker_password or urlparse(self.broker).password):
                raise ValueError("CITYGATE_BROKER_PASSWORD is required for an external broker outside development")
        if not (self.broker == "embedded" or self.broker.startswith(("mqtt://", "mqtts://"))):
            raise ValueError("CITYGATE_BROKER must be 'embedded' or an mqtt:// / mqtts:// URL")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
