"""monthly call aggregates (call_months), kept equal to the hourly ones by triggers, filled from them

`call_months` holds, per gateway, UTC month, route and target, the sums of the `call_hours` rows of that
month and `hours`, how many hourly rows they are: the call report's months come from 12 rows a year per
key instead of 365 day rows. A month is a UTC calendar month, as call_days' days are UTC days (both are
what `/reports/calls` buckets by; local periods are counted elsewhere). An hour that is no date (before
1970 or after 9999, a stored start may be anything) is kept under its day, `(hour / 86400) * 86400` as in
call_days, which no reader takes for a month.

Triggers on call_hours apply every insert, update and delete to call_months in the same transaction, as
0008's do to call_days, so whoever writes an hour (the ingest upsert, a late record, a repair by hand)
the months never disagree with the hours; a month row goes when its last hour row goes.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

COUNTS = ("offered", "answered", "abandoned", "failed", "rejected", "after_hours", "callback", "denied",
          "talk_s", "ring_s")
KEY = ("gateway_id", "month", "route", "target")
COLS = ", ".join((*KEY, "hours", *COUNTS))
DATE_MAX = 253402300799  # 9999-12-31T23:59:59Z
PG_TRIGGERS = {"insert": "NEW TABLE AS new_rows", "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
               "delete": "OLD TABLE AS old_rows"}


def month_of(hour: str, postgresql: bool) -> str:
    """SQL for the UTC month an hour falls in (its day when it is no date)."""
    start = (f"CAST(extract(epoch FROM date_trunc('month', to_timestamp({hour}) AT TIME ZONE 'UTC')) AS BIGINT)"
             if postgresql else f"CAST(strftime('%s', {hour}, 'unixepoch', 'start of month') AS INTEGER)")
    return f"(CASE WHEN {hour} >= 0 AND {hour} <= {DATE_MAX} THEN {start} ELSE ({hour} / 86400) * 86400 END)"


def _upsert(select: str) -> str:
    """Add the (KEY, hours, COUNTS) rows of `select` to call_months."""
    return (f"INSERT INTO call_months ({COLS}) {select} ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
            + ", ".join(f"{c} = call_months.{c} + excluded.{c}" for c in ("hours", *COUNTS)))


def _pg_function() -> str:
    """One statement-level function: the statement's transition tables folded in one ordered upsert."""
    month = month_of("hour", True)

    def rows(table: str, sign: str) -> str:
        return (f"SELECT gateway_id, {month} AS month, route, target, {sign}1 AS hours, "
                + ", ".join(f"{sign}{c} AS {c}" for c in COUNTS) + f" FROM {table}")

    folded = ("SELECT gateway_id, month, route, target, sum(hours), " + ", ".join(f"sum({c})" for c in COUNTS)
              + " FROM ({}) AS m GROUP BY gateway_id, month, route, target "
              "ORDER BY gateway_id, month, route, target")
    gone = (f"DELETE FROM call_months d USING (SELECT DISTINCT gateway_id, {month} AS month, route, target "
            "FROM old_rows) o WHERE d.gateway_id = o.gateway_id AND d.month = o.month AND d.route = o.route "
            "AND d.target = o.target AND d.hours = 0")
    return f"""CREATE FUNCTION call_months_follow_hours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {_upsert(folded.format(rows('new_rows', '')))};
  ELSIF TG_OP = 'UPDATE' THEN
    {_upsert(folded.format(rows('new_rows', '') + ' UNION ALL ' + rows('old_rows', '-')))};
    {gone};
  ELSE
    {_upsert(folded.format(rows('old_rows', '-')))};
    {gone};
  END IF;
  RETURN NULL;
END $$"""


def _sqlite_triggers() -> list[str]:
    """Row-level triggers (SQLite has no statement-level ones)."""
    def add(row: str, sign: str) -> str:
        values = (f"{row}.gateway_id, {month_of(row + '.hour', False)}, {row}.route, {row}.target, {sign}1, "
                  + ", ".join(f"{sign}{row}.{c}" for c in COUNTS))
        return _upsert(f"SELECT {values} WHERE true")

    old_month, new_month = month_of("OLD.hour", False), month_of("NEW.hour", False)
    where_old = (f"gateway_id = OLD.gateway_id AND month = {old_month} AND route = OLD.route "
                 "AND target = OLD.target")
    same_month = (f"OLD.gateway_id = NEW.gateway_id AND {old_month} = {new_month} AND OLD.route = NEW.route "
                  "AND OLD.target = NEW.target")
    gone = f"DELETE FROM call_months WHERE {where_old} AND hours = 0"
    return [
        f"CREATE TRIGGER call_months_insert AFTER INSERT ON call_hours BEGIN {add('NEW', '')}; END",
        f"CREATE TRIGGER call_months_update AFTER UPDATE ON call_hours WHEN {same_month} BEGIN "
        "UPDATE call_months SET " + ", ".join(f"{c} = {c} + NEW.{c} - OLD.{c}" for c in COUNTS)
        + f" WHERE {where_old}; END",
        f"CREATE TRIGGER call_months_move AFTER UPDATE ON call_hours WHEN NOT ({same_month}) BEGIN "
        f"{add('OLD', '-')}; {gone}; {add('NEW', '')}; END",
        f"CREATE TRIGGER call_months_delete AFTER DELETE ON call_hours BEGIN {add('OLD', '-')}; {gone}; END",
    ]


def upgrade() -> None:
    op.create_table(
        'call_months',
        sa.Column('gateway_id', sa.String(length=32), nullable=False),
        sa.Column('month', sa.BigInteger(), nullable=False),
        sa.Column('route', sa.String(length=48), nullable=False),
        sa.Column('target', sa.String(length=48), nullable=False),
        sa.Column('hours', sa.Integer(), nullable=False),
        *[sa.Column(c, sa.BigInteger(), nullable=False) for c in COUNTS],
        sa.PrimaryKeyConstraint('gateway_id', 'month', 'route', 'target'),
    )
    op.create_index('ix_call_months_month', 'call_months', ['month'])
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:  # no writer may add an hour between the fill and the triggers
        op.execute("LOCK TABLE call_hours IN SHARE ROW EXCLUSIVE MODE")
    month = month_of("hour", postgresql)
    op.execute(f"INSERT INTO call_months ({COLS}) SELECT gateway_id, {month}, route, target, count(*), "
               + ", ".join(f"sum({c})" for c in COUNTS) + f" FROM call_hours GROUP BY gateway_id, {month}, route, "
               "target")
    if postgresql:
        op.execute(_pg_function())
        for event, tables in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER call_months_{event} AFTER {event.upper()} ON call_hours "
                       f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION call_months_follow_hours()")
    else:
        for sql in _sqlite_triggers():
            op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for event in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER call_months_{event} ON call_hours")
        op.execute("DROP FUNCTION call_months_follow_hours()")
    else:
        for event in ("insert", "update", "move", "delete"):
            op.execute(f"DROP TRIGGER call_months_{event}")
    op.drop_index('ix_call_months_month', table_name='call_months')
    op.drop_table('call_months')
