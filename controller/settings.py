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
DEFAULT_BROKER_USER = "citygate-controller"  # `citygate serve`'s broker account unless CITYGATE_BROKER_USER


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
    secret_key: str = Field(DEV_SECRET, description="derives the gateways' MQTT passwords and the watch account's "
                            "and the key that signs bundles; the gateways' table keys are stored in the clear, so "
                            "database dumps are secrets too")
    data_dir: Path = Path(".")
    cookie_secure: bool = Field(False, description="console cookies only over HTTPS (set it behind a TLS proxy; "
                                                   "a request that arrives as https sets it anyway)")
    # reports and privacy (controller/services/report_schedule.py, report_privacy.py): nothing runs by default
    report_schedule: str = Field("", max_length=64, pattern=r"^\s*((daily|weekly|monthly)\s*(,\s*|$))*$",
                                 description="scheduled reports the leader writes: any of "
                                 "daily, weekly, monthly, comma-separated; empty = none")
    report_dir: Path | None = Field(None, description="folder of scheduled reports (default: <data_dir>/reports)")
    report_webhook_url: str | None = Field(None, pattern=r"^https?://[^\s]+$",
                                           description="each scheduled report is POSTed here as JSON")
    report_service_level_s: int = Field(20, ge=1, le=3600, description="service level of scheduled reports: "
                                        "calls answered within this many seconds of ringing")
    mask_callers: bool = Field(True, description="viewers see callers' numbers masked (+38067*****02)")
    caller_retention_days: int = Field(0, ge=0, le=36500, description="call records older than this lose their "
                                       "callers' numbers (counts stay); 0 = numbers kept")
    ingest_max_lag_s: float = Field(60, gt=0, description="/healthz answers 503 when messages wait and nothing "
                                                          "was committed for longer than this")
    db_alert_after_s: float = Field(10, ge=0, description="a database unreachable for longer than this raises "
                                                          "the database_unreachable alert")
    # alert rules (controller/alert_rules.py), evaluated by the leader; a threshold of 0 turns its rule off
    alert_every_s: float = Field(30, gt=0, le=3600, description="how often the leader evaluates the alert rules")
    alert_offline_min: float = Field(10, ge=0, description="gateway_offline: offline for longer than this")
    alert_rollout_min: float = Field(30, ge=0, description="table_not_applied: a rollout target still pending "
                                                           "this long after its table was sent")
    alert_answer_ratio_pct: float = Field(50, ge=0, le=100, description="procedure_failing: a route, centre or "
                                          "menu option answering fewer than this % of its calls in the last hour")
    alert_answer_min_calls: int = Field(20, ge=1, description="... counted only with at least this many calls")
    alert_min_csq: int = Field(5, ge=0, le=31, description="signal_low: a GSM port's CSQ below this")
    alert_clock_skew_s: int = Field(120, ge=0, description="clock_skew: a gateway's clock off by more than this")
    alert_dropped_window_min: float = Field(60, ge=0, description="records_dropped: an outbox dropped records "
                                                                  "within this many minutes")
    alert_webhook_url: str | None = Field(None, description="alert opened/resolved events are POSTed here as JSON")
    alert_webhook_tries: int = Field(5, ge=1, le=20, description="attempts per event before it is given up")
    alert_webhook_backoff_s: float = Field(2, gt=0, le=300, description="wait before the 2nd attempt; doubles")
    alert_webhook_timeout_s: float = Field(5, gt=0, le=60, description="one attempt's time limit")

    @model_validator(mode="after")
    def _safe_outside_development(self) -> Settings:
        if self.environment != "development":
            if self.secret_key == DEV_SECRET or len(self.secret_key) < 32:
                raise ValueError("CITYGATE_SECRET_KEY must be set to 32+ random characters outside development")
            if self.broker != "embedded" and not (self.broker_password or urlparse(self.broker).password):
                raise ValueError("CITYGATE_BROKER_PASSWORD is required for an external broker outside development")
        if not (self.broker == "embedded" or self.broker.startswith(("mqtt://", "mqtts://"))):
            raise ValueError("CITYGATE_BROKER must be 'embedded' or an mqtt:// / mqtts:// URL")
        if self.alert_webhook_url and urlparse(self.alert_webhook_url).scheme not in ("http", "https"):
            raise ValueError("CITYGATE_ALERT_WEBHOOK_URL must be an http:// or https:// URL")
        return self

    def broker_credentials(self) -> tuple[str | None, str | None]:
        """(user, password) `citygate serve` signs in to the broker with, as `citygate broker config` writes
        its account: CITYGATE_BROKER_USER, else citygate-controller once a password is set; (None, None)
        without a password (an mqtt:// URL may carry its own)."""
        password = self.broker_password
        return self.broker_user or (DEFAULT_BROKER_USER if password else None), password


@lru_cache
def get_settings() -> Settings:
    return Settings()
