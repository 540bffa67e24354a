"""The controller's storage (SQLAlchemy 2): the region's configuration, the fleet, and what the
fleet reported. The same models run on SQLite and PostgreSQL; Alembic owns the schema."""

from __future__ import annotations

import time

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ROLES = ("admin", "operator", "viewer", "technician")


def now() -> int:
    return int(time.time())


class Base(DeclarativeBase):
    type_annotation_map = {dict: JSON, list: JSON}


# ---------------------------------------------------------------- people


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)  # argon2; null: tokens only
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # no sign-in, no token
    tokens: Mapped[list[Token]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Token(Base):
    """A bearer token; only its SHA-256 is stored, the token itself is shown once."""
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    user: Mapped[User] = relationship(back_populates="tokens")


class WebSession(Base):
    """A signed-in browser: the SHA-256 of its cookie, its CSRF token (checked on every form), its expiry."""
    __tablename__ = "web_sessions"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    expires_at: Mapped[int] = mapped_column(BigInteger)


class SecretAudit(Base):
    """One hand-out of a gateway's secrets (its table key and MQTT password): who, when, which gateway.

    Plain names, no foreign keys: the trail outlives the user and the gateway it names."""
    __tablename__ = "secret_audit"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[int] = mapped_column(BigInteger, default=now, index=True)
    actor: Mapped[str] = mapped_column(String(80))  # a user's name, or `cli:<login>` / `demo`
    gateway_id: Mapped[str] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(16))  # register | rotate-key | bundle


# ---------------------------------------------------------------- the region


class Service(Base):
    """A number citizens dial: police 102, the 505 information line."""
    __tablename__ = "services"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    # holidays close its routes (DESIGN §5a calendars); an emergency line never closes
    closed_on_holidays: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class City(Base):
    __tablename__ = "cities"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    zone: Mapped[str] = mapped_column(String(64))  # IANA time zone, e.g. Europe/Kyiv


class Centre(Base):
    """A call centre (a routing target): its code is the target id in tables."""
    __tablename__ = "centres"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(48), unique=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    number: Mapped[str] = mapped_column(String(16))
    capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)  # lines: max_calls per gateway
    ring_timeout_s: Mapped[int] = mapped_column(Integer, default=30)


class Gateway(Base):
    __tablename__ = "gateways"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"))
    profile: Mapped[str] = mapped_column(String(32), default="esp32-2gsm")
    ports: Mapped[list] = mapped_column(JSON, default=list)  # port names the board has
    out_ports: Mapped[list] = mapped_column(JSON, default=list)  # ports it dials centres on
    key_hex: Mapped[str] = mapped_column(String(64))
    password_sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    # what the gateway last said (state / acks)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    state: Mapped[dict] = mapped_column(JSON, default=dict)
    applied_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    applied_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    desired_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_reject: Mapped[str | None] = mapped_column(Text, nullable=True)
    city: Mapped[City] = relationship()
    services: Mapped[list[GatewayService]] = relationship(cascade="all, delete-orphan")


class GatewayService(Base):
    """Which inbound port of a gateway serves which service."""
    __tablename__ = "gateway_services"
    __table_args__ = (UniqueConstraint("gateway_id", "port"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    port: Mapped[str] = mapped_column(String(16))
    service: Mapped[Service] = relationship()


class Route(Base):
    """How a city's calls to a service are routed; several rows make a schedule (from/until)."""
    __tablename__ = "routes"
    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    name: Mapped[str] = mapped_column(String(48))  # the route id in tables
    targets: Mapped[list] = mapped_column(JSON, default=list)  # centre codes, in order
    strategy: Mapped[str] = mapped_column(String(16), default="sequential")
    hours: Mapped[list | None] = mapped_column(JSON, nullable=True)
    caller: Mapped[list] = mapped_column(JSON, default=list)
    fallback: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    after_hours: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    valid_from: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    valid_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    city: Mapped[City] = relationship()
    service: Mapped[Service] = relationship()


class Menu(Base):
    """A service's menu (IVR at the edge, DESIGN §5a): for one city, or every city without its own when
    city_id is null. `options` {key: {"label", "targets", "strategy", "fallback"}}; `default_option` is
    the key a caller who presses nothing (or a wrong key) gets: the operator."""
    __tablename__ = "menus"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(48), unique=True)  # the menu id in tables
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    city_id: Mapped[int | None] = mapped_column(ForeignKey("cities.id"), nullable=True)
    prompt: Mapped[str] = mapped_column(String(64))
    timeout_s: Mapped[int] = mapped_column(Integer, default=8)
    tries: Mapped[int] = mapped_column(Integer, default=2)
    default_option: Mapped[str] = mapped_column(String(1))
    options: Mapped[dict] = mapped_column(JSON, default=dict)


class ProbeSchedule(Base):
    """Probe calls to a centre (DESIGN §5a probes): every `every_s` within `hours` (null = always); an alert
    once `alert_after` probes in a row from one gateway failed. No row = no probes (the default)."""
    __tablename__ = "probe_schedules"
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id", ondelete="CASCADE"), primary_key=True)
    every_s: Mapped[int] = mapped_column(Integer, default=3600)
    hours: Mapped[list | None] = mapped_column(JSON, nullable=True)
    alert_after: Mapped[int] = mapped_column(Integer, default=3)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Holiday(Base):
    """A closed day: for one city, or region-wide when city_id is null."""
    __tablename__ = "holidays"
    __table_args__ = (UniqueConstraint("city_id", "date"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int | None] = mapped_column(ForeignKey("cities.id"), nullable=True)
    date: Mapped[str] = mapped_column(String(10))


class DenyPrefix(Base):
    """A region-wide forbidden prefix: never dialled by any gateway."""
    __tablename__ = "deny_prefixes"
    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    note: Mapped[str] = mapped_column(String(128), default="")


# ---------------------------------------------------------------- tables and rollouts


class TableVersion(Base):
    """A compiled, validated table body for one gateway; versions only grow."""
    __tablename__ = "table_versions"
    __table_args__ = (UniqueConstraint("gateway_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)


class Rollout(Base):
    __tablename__ = "rollouts"
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    status: Mapped[str] = mapped_column(String(16), default="canary")  # canary | rest | done | halted
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    canary: Mapped[list] = mapped_column(JSON, default=list)
    targets: Mapped[list[RolloutTarget]] = relationship(cascade="all, delete-orphan")


class RolloutTarget(Base):
    __tablename__ = "rollout_targets"
    __table_args__ = (UniqueConstraint("rollout_id", "gateway_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    rollout_id: Mapped[int] = mapped_column(ForeignKey("rollouts.id", ondelete="CASCADE"))
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(8))  # canary | rest
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|applied|rejected|offline
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now)


# ---------------------------------------------------------------- what gateways reported


OPEN_CALLBACKS = text("outcome = 'callback' AND callback_done_at IS NULL")
PROBES = text("kind = 'probe'")


class Record(Base):
    """One record of a gateway's outbox, stored once by (gateway, store_id, seq)."""
    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("gateway_id", "store_id", "seq"),
                      # the callbacks list; no index on outcome for all (migration 0003)
                      Index("ix_records_open_callbacks", "at", sqlite_where=OPEN_CALLBACKS,
                            postgresql_where=OPEN_CALLBACKS),
                      # probes in a row per gateway and centre (alerts, the last result); calls pay nothing
                      Index("ix_records_probes", "gateway_id", "target", "at", sqlite_where=PROBES,
                            postgresql_where=PROBES))
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(32))  # indexed by the unique key, which it leads
    store_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)  # call start / record time
    port: Mapped[str | None] = mapped_column(String(16), nullable=True)
    caller: Mapped[str | None] = mapped_column(String(32), nullable=True)
    route: Mapped[str | None] = mapped_column(String(48), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(24), nullable=True)  # citizen_no_answer: 17
    target: Mapped[str | None] = mapped_column(String(48), nullable=True)
    attempts: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ring_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    talk_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # the record as sent; for a call record only the fields without a column (controller.ingest.record_as_sent)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    received_at: Mapped[int] = mapped_column(BigInteger, default=now)
    callback_done_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    option: Mapped[str | None] = mapped_column(String(8), nullable=True)  # the menu key a call used (§5a)
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class StoreMark(Base):
    """Per gateway and store: the highest seq below which every record is stored (what events/ack says)."""
    __tablename__ = "store_marks"
    gateway_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    acked_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class OutboundCall(Base):
    """An operator's call to a citizen (DESIGN §5a `call`): what was asked, what the gateway answered at once,
    and, once its `outbound` record arrives, how it ended. `callback_id`: the call-back it calls back."""
    __tablename__ = "outbound_calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    command_id: Mapped[str] = mapped_column(String(64), unique=True)
    gateway_id: Mapped[str] = mapped_column(String(32), index=True)
    agent: Mapped[str] = mapped_column(String(16))
    citizen: Mapped[str] = mapped_column(String(16))
    via: Mapped[str | None] = mapped_column(String(16), nullable=True)
    callback_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    outcome: Mapped[str | None] = mapped_column(String(24), nullable=True)  # from the outbound record
    ended_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Alert(Base):
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    gateway_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    code: Mapped[str] = mapped_column(String(48))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    resolved_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    acknowledged_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


class CallbackNote(Base):
    """An operator's note on a call-back (a call record with outcome callback)."""
    __tablename__ = "callback_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(BigInteger, index=True)
    at: Mapped[int] = mapped_column(BigInteger, default=now)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(String(500))


class CallHour(Base):
    """Hourly aggregate of call records per gateway, UTC hour, route and target (`''` when none).

    The bridge adds each new record once, in the transaction that stores it, so these equal what
    the records table would count; reports read them instead of scanning every record.
    """
    __tablename__ = "call_hours"
    __table_args__ = (Index("ix_call_hours_hour", "hour"),)
    gateway_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # UTC seconds, a multiple of 3600
    route: Mapped[str] = mapped_column(String(48), primary_key=True, default="")
    target: Mapped[str] = mapped_column(String(48), primary_key=True, default="")
    offered: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    abandoned: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    after_hours: Mapped[int] = mapped_column(Integer, default=0)
    callback: Mapped[int] = mapped_column(Integer, default=0)
    denied: Mapped[int] = mapped_column(Integer, default=0)
    talk_s: Mapped[int] = mapped_column(BigInteger, default=0)
    ring_s: Mapped[int] = mapped_column(BigInteger, default=0)


class HourSums:
    """The columns a rollup of call_hours keeps: how many hour rows it sums, and their counts summed."""
    hours: Mapped[int] = mapped_column(Integer)
    offered: Mapped[int] = mapped_column(BigInteger)
    answered: Mapped[int] = mapped_column(BigInteger)
    abandoned: Mapped[int] = mapped_column(BigInteger)
    failed: Mapped[int] = mapped_column(BigInteger)
    rejected: Mapped[int] = mapped_column(BigInteger)
    after_hours: Mapped[int] = mapped_column(BigInteger)
    callback: Mapped[int] = mapped_column(BigInteger)
    denied: Mapped[int] = mapped_column(BigInteger)
    talk_s: Mapped[int] = mapped_column(BigInteger)
    ring_s: Mapped[int] = mapped_column(BigInteger)


class CallDay(HourSums, Base):
    """The hourly aggregates summed per gateway, UTC day, route and target, with how many hour rows they are.

    Kept by triggers on call_hours (migration 0008), in the transaction that changes an hour, so a day
    row always equals its hours, late records for an old day included; the call report reads whole days
    here and only the hours of partial days at a window's edges (a year: 365 rows a gateway, not 8,760).
    """
    __tablename__ = "call_days"
    __table_args__ = (Index("ix_call_days_day", "day"),)
    gateway_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # UTC seconds, (hour / 86400) * 86400
    route: Mapped[str] = mapped_column(String(48), primary_key=True)
    target: Mapped[str] = mapped_column(String(48), primary_key=True)


class CallMonth(HourSums, Base):
    """The hourly aggregates summed per gateway, UTC month, route and target, with how many hour rows they are.

    Kept by triggers on call_hours (migration 0009) as call_days is, so a month row always equals its
    hours; the call report reads whole months here, whole days of partial months from call_days and hours
    only at a window's ragged edges (a year: 12 rows a gateway, not 365). An hour that is no date is kept
    under its day (`(hour / 86400) * 86400`), which no reader takes for a month.
    """
    __tablename__ = "call_months"
    __table_args__ = (Index("ix_call_months_month", "month"),)
    gateway_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    month: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # UTC seconds of the month's first day
    route: Mapped[str] = mapped_column(String(48), primary_key=True)
    target: Mapped[str] = mapped_column(String(48), primary_key=True)
